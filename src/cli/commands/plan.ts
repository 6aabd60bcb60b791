/**
 * `edit plan`: diff the edit files against the model's state. Exit codes with
 * --detailed-exitcode (Terraform's): 0 no changes, 1 error, 2 changes.
 */
import { writeFile } from 'node:fs/promises';
import { EditError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { hasChanges, type Plan } from '../../plan/plan.js';
import { planToJson, planMarkdown } from '../../plan/json.js';
import { nextSteps } from '../../plan/render.js';
import { checkTargets, openWorkspace, problemsError, structuralPlan, lockWarning, missingEditsWarning } from '../../apply/workspace.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, WORKERS_OPTION, modelDir, projectRoot, stringFlag, listFlag, workersSetting } from '../flags.js';
import { makeUi } from '../ui.js';
import { loadCompute } from '../compute.js';
import { loadModelFolder } from '../../model/folder.js';

export const planCommand: Command = {
  name: 'plan',
  args: '',
  summary: 'show what apply would create, update, destroy; what is already satisfied; what drifted',
  options: {
    ...MODEL_OPTION,
    ...EDITS_DIR_OPTION,
    json: { type: 'boolean', description: 'print the plan as JSON (schemas/plan.schema.json)' },
    out: { type: 'string', value: '<file>', description: 'save the plan, bound to the current state, for `edit apply <file>`' },
    markdown: { type: 'string', value: '<file>', description: 'also write the plan as markdown (job summary, pull-request comment)' },
    'detailed-exitcode': { type: 'boolean', description: 'exit 0 with no changes, 1 on error, 2 with changes' },
    structural: { type: 'boolean', description: 'do not load the model: faster, but no "= already satisfied" detection' },
    target: { type: 'string', multiple: true, value: '<id>', description: 'plan only this edit' },
    ...WORKERS_OPTION,
  },
  examples: ['edit plan', 'edit plan --detailed-exitcode --markdown plan.md', 'edit plan --target capitals/france --out plan.json'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`plan takes no arguments (got ${JSON.stringify(ctx.args[0])})`);
    const root = projectRoot(ctx);
    const ws = await openWorkspace(root, modelDir(ctx, root), stringFlag(ctx, 'dir', 'edits'));
    for (const warning of [lockWarning(ws), missingEditsWarning(ws)]) if (warning !== undefined) ctx.io.err(warning);
    if (ws.problems.length > 0) throw problemsError(ws.problems);
    const targets = checkTargets(ws, listFlag(ctx, 'target'));
    const workers = workersSetting(ctx);
    const json = ctx.flags.json === true;
    const ui = json ? undefined : await makeUi(ctx.io);
    let plan: Plan;
    if (ctx.flags.structural === true) {
      plan = structuralPlan(ws, targets);
    } else {
      // only the model-checking plan loads TensorFlow.js
      const { initBackend, planWorkspace, JudgingThreads } = await loadCompute();
      const backend = await initBackend();
      if (!json) ctx.io.err(`backend: ${backend}`);
      const loaded = await loadModelFolder(`${root}/${ws.modelDir}`);
      const threads = new JudgingThreads(ctx.io, workers, `${root}/${ws.modelDir}`, loaded.model, json);
      try {
        plan = await planWorkspace(ws, loaded, targets, (phase, d, t, id) => ui?.progress(phase, d, t, id), threads);
      } finally {
        await threads.close();
        loaded.model.dispose();
      }
    }
    const out = stringFlag(ctx, 'out');
    if (out !== undefined) await writeFileAtomic(out, JSON.stringify(planToJson(plan), null, 2) + '\n'); // apply reads it: never half-written
    const md = stringFlag(ctx, 'markdown');
    if (md !== undefined) await writeFile(md, planMarkdown(plan));
    if (json) ctx.io.out(JSON.stringify(planToJson(plan), null, 2));
    else {
      ui!.plan(plan);
      for (const step of nextSteps(plan)) ui!.text(step);
      if (out !== undefined) ui!.text(`\nSaved the plan to ${out}. Apply exactly it with: edit apply ${out}`);
      await ui!.close();
    }
    if (plan.drift.length > 0) return 1;
    if (ctx.flags['detailed-exitcode'] === true) return hasChanges(plan) ? 2 : 0;
    return 0;
  },
};
