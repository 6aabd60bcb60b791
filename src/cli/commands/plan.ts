/**
 * `edit plan`: diff the edit files against the model's state. Exit codes with
 * --detailed-exitcode (Terraform's): 0 no changes, 1 error, 2 changes.
 */
import { writeFile } from 'node:fs/promises';
import { EditError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { hasChanges, type Plan } from '../../plan/plan.js';
import { planToJson, planMarkdown } from '../../plan/json.js';
import { checkTargets, openWorkspace, problemsError, structuralPlan, lockWarning } from '../../apply/workspace.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, stringFlag, listFlag } from '../flags.js';
import { makeUi } from '../ui.js';

export const planCommand: Command = {
  name: 'plan',
  usage: 'plan [--json] [--out plan.json] [--detailed-exitcode] [--structural]',
  summary: 'show what apply would create, update, destroy; what is already satisfied; what drifted',
  options: {
    ...MODEL_OPTION,
    dir: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    markdown: { type: 'string' },
    'detailed-exitcode': { type: 'boolean' },
    structural: { type: 'boolean' },
    target: { type: 'string', multiple: true },
  },
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`plan takes no arguments (got ${JSON.stringify(ctx.args[0])})`);
    const ws = await openWorkspace(ctx.cwd, modelDir(ctx), stringFlag(ctx, 'dir', 'edits'));
    const warning = lockWarning(ws);
    if (warning !== undefined) ctx.io.err(warning);
    if (ws.problems.length > 0) throw problemsError(ws.problems);
    const targets = checkTargets(ws, listFlag(ctx, 'target'));
    const json = ctx.flags.json === true;
    const ui = json ? undefined : await makeUi(ctx.io);
    let plan: Plan;
    if (ctx.flags.structural === true) {
      plan = structuralPlan(ws, targets);
    } else {
      // TensorFlow.js takes a second or more to import: only the model-checking plan loads it.
      const [{ initBackend }, { loadModelFolder }, { planWorkspace }] = await Promise.all([
        import('../../tensor/backend.js'),
        import('../../model/folder.js'),
        import('../../apply/apply-plan.js'),
      ]);
      const backend = await initBackend();
      if (!json) ctx.io.err(`backend: ${backend}`);
      const loaded = await loadModelFolder(`${ctx.cwd}/${ws.modelDir}`);
      try {
        plan = await planWorkspace(ws, loaded, targets, (phase, d, t, id) => ui?.progress(phase, d, t, id));
      } finally {
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
      if (out !== undefined) ui!.text(`\nSaved the plan to ${out}. Apply exactly it with: edit apply ${out}`);
      await ui!.close();
    }
    if (plan.drift.length > 0) return 1;
    if (ctx.flags['detailed-exitcode'] === true) return hasChanges(plan) ? 2 : 0;
    return 0;
  },
};
