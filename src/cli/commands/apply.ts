/**
 * `edit apply [plan.json]`: lock, compute rows of new edits and solve the set, verify every assertion
 * on the new weights, then write and commit — or write nothing and say which assertion failed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { loadModelFolder } from '../../model/folder.js';
import { readJsonFile } from '../../util/json-file.js';
import { Action, hasChanges, type Plan } from '../../plan/plan.js';
import { planFromJson } from '../../plan/json.js';
import { makePlan } from '../../plan/make-plan.js';
import type { ApplyResult } from '../../apply/apply-plan.js';
import { refreshWorkspace } from '../../apply/refresh.js';
import { checkTargets, driftError, missingEditsError, openWorkspace, problemsError, structuralPlan, type Workspace } from '../../apply/workspace.js';
import { stateDependencies } from '../../apply/commit-paths.js';
import { editorSettings, needsStats } from '../../editor/settings.js';
import { withLock } from '../../state/lock.js';
import { manifestSha, readState, rowsOfOtherEditors, STATE_FILE } from '../../state/state.js';
import { checkCommittable, commitPaths, isRepo, uncommittedPaths } from '../../state/git.js';
import { DELTAS_DIR, deltaFileName, SET_DELTA_NAME } from '../../state/deltas.js';
import { ROWS_DIR, rowsFileName } from '../../state/rows.js';
import { removeStaleTempFiles } from '../../util/atomic.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, WORKERS_OPTION, modelDir, projectRoot, stringFlag, listFlag, workersSetting } from '../flags.js';
import { makeUi } from '../ui.js';
import { loadCompute } from '../compute.js';
import { renderChecks } from '../report.js';
import { reportOnInterrupt, testPause } from '../interrupt.js';

async function readSavedPlan(path: string): Promise<Plan> {
  const json = await readJsonFile(path, 'no such file: a saved plan is what `edit plan --out <file>` writes');
  return planFromJson(json, path);
}

/** A saved plan applies only to the exact state and edit files it was made from. */
function checkFresh(saved: Plan, ws: Workspace, file: string): void {
  const stale = (why: string) => new EditError(`saved plan is stale: ${why}`, { file, hint: 'run `edit plan --out <file>` again and review the new plan' });
  if (saved.model !== ws.modelDir) throw stale(`it is for model ${saved.model}, not ${ws.modelDir}`);
  if (saved.state.serial !== ws.state.serial || saved.state.sha256 !== ws.stateSha) {
    throw stale(`the model's state changed since it was made (serial ${saved.state.serial}, now ${ws.state.serial})`);
  }
  const manifestNow = manifestSha(ws.manifest);
  if (typeof saved.state.manifestSha256 !== 'string') throw stale('it has no model.json binding (made by an older editops)');
  if (saved.state.manifestSha256 !== manifestNow) throw stale('model.json changed since it was made');
  // The same diff must come out of today's files: same ids, same actions, same edit contents.
  const now = makePlan({ model: ws.modelDir, edits: ws.edits, state: ws.state, stateSha256: ws.stateSha, manifestSha256: manifestNow, drift: [], targets: saved.targets });
  const norm = (a: Action) => (a === Action.Satisfied ? Action.Create : a);
  const savedById = new Map(saved.changes.map((c) => [c.id, c]));
  for (const c of now.changes) {
    const s = savedById.get(c.id);
    if (s === undefined) throw stale(`edit ${c.id} is not in the plan (added since)`);
    if (norm(s.action) !== c.action) throw stale(`edit ${c.id} would now be "${c.action}" instead of "${s.action}"`);
    if (c.after !== undefined && s.after?.specSha256 !== c.after.specSha256) throw stale(`edit file ${c.id} changed since the plan was made`);
    savedById.delete(c.id);
  }
  const gone = [...savedById.keys()][0];
  if (gone !== undefined) throw stale(`edit ${gone} is in the plan but no longer declared or applied`);
}

/** state.json and the rows and delta files it names, relative to the project root. */
/**
 * The kept applied edits' rows must come from the editor about to solve the set: rows another editor
 * computed cannot join its solve. `--refresh` recomputes them (refreshWorkspace); without it this
 * refuses before anything is computed — also with no change to make, when `--method` asked for an
 * editor the applied set was not solved with (the flag would otherwise be silently ignored).
 */
function checkSameEditor(ws: Workspace, chosen: string, flag: string | undefined, targets: string[]): void {
  const plan = structuralPlan(ws, targets, flag);
  const leaving = new Set(plan.changes.filter((c) => c.action === Action.Destroy || c.action === Action.Update).map((c) => c.id));
  const other = rowsOfOtherEditors(ws.state, chosen);
  const ids = other.ids.filter((id) => !leaving.has(id));
  if (ids.length === 0 || (flag === undefined && !hasChanges(plan))) return;
  const named = ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`;
  const which = flag === undefined ? `the model's editor is ${chosen}` : `--method asks for ${chosen}`;
  throw new EditError(`${ids.length === 1 ? 'applied edit' : `${ids.length} applied edits`} ${named} ${ids.length === 1 ? 'was' : 'were'} solved by the ${other.methods.join(' and ')} editor and ${which}: ${ids.length === 1 ? 'its rows' : 'their rows'} cannot join its solve; nothing was computed or written`, {
    hint: `run \`edit apply${flag === undefined ? '' : ` --method ${flag}`} --refresh\` to recompute every applied edit with ${chosen} and verify the set again${flag === undefined ? '' : ", or leave out --method to use the model's editor"}`,
  });
}

/** The editor this apply solves with, or undefined when model.json or --method names none it knows (reported after drift, as before). */
function chosenMethod(ws: Workspace, flag: string | undefined): string | undefined {
  try {
    return editorSettings(ws.manifest, flag).method;
  } catch {
    return undefined;
  }
}

function stateFiles(ws: Workspace): string[] {
  const named = [...Object.values(ws.state.edits).flatMap((e) => (e.rows === null ? [] : [e.rows.file])), ...(ws.state.delta === null ? [] : [ws.state.delta.file])];
  return [STATE_FILE, ...named].map((f) => join(ws.modelDir, f));
}

function readIfExists(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

/** What an interrupted apply kept: state.json is written last and atomically, so it tells. */
function keptOnInterrupt(statePath: string, before: Buffer | null, committed: string | null, modelRel: string): string {
  if (committed !== null) return `the apply had finished: committed ${committed.slice(0, 10)}`;
  const now = readIfExists(statePath);
  if (now === null ? before === null : before !== null && now.equals(before)) return 'nothing written; the model state is as before (the lock is released)';
  return `the new state was written to ${modelRel} but not committed; review \`git status\` and commit ${modelRel} yourself`;
}

export const applyCommand: Command = {
  name: 'apply',
  args: '[plan.json]',
  summary: 'solve the edit set (rows of new edits + one joint solve), verify every assertion on the new weights, then write state and commit',
  options: {
    ...MODEL_OPTION,
    ...EDITS_DIR_OPTION,
    'auto-approve': { type: 'boolean', description: 'do not ask for confirmation (needed without a terminal)' },
    'no-commit': { type: 'boolean', description: 'write the new state but leave the git commit to you' },
    target: { type: 'string', multiple: true, value: '<id>', description: 'apply only this edit' },
    refresh: { type: 'boolean', description: 'accept drifted files and recompute what they held' },
    method: { type: 'string', value: '<editor>', description: "the editor to use instead of the model's (e.g. ft); edits applied with another one need --refresh" },
    json: { type: 'boolean', description: 'print the result as JSON (with --auto-approve or a saved plan)' },
    'allow-destroy-all': { type: 'boolean', description: 'apply even when the edits folder is missing and every applied edit would be destroyed' },
    ...WORKERS_OPTION,
  },
  examples: ['edit apply', 'edit apply --auto-approve', 'edit plan --out plan.json && edit apply plan.json'],
  async run(ctx) {
    if (ctx.args.length > 1) throw new EditError('apply takes at most one argument: a saved plan file');
    const savedPath = ctx.args[0];
    const json = ctx.flags.json === true;
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const editsDir = stringFlag(ctx, 'dir', 'edits');
    const method = stringFlag(ctx, 'method');
    const workers = workersSetting(ctx);
    const autoApprove = ctx.flags['auto-approve'] === true || savedPath !== undefined;
    if (!autoApprove && !ctx.io.tty) throw new EditError('apply asks for confirmation; without a terminal pass --auto-approve (or apply a saved plan file)');
    if (!autoApprove && json) throw new EditError('apply --json cannot ask for confirmation: pass --auto-approve (or apply a saved plan file)');
    const commit = ctx.flags['no-commit'] !== true;
    const statePath = join(root, dir, STATE_FILE);
    const stateBefore = readIfExists(statePath);
    let committed: string | null = null;
    reportOnInterrupt(() => keptOnInterrupt(statePath, stateBefore, committed, dir));

    let ws = await openWorkspace(root, dir, editsDir);
    if (ws.problems.length > 0) throw problemsError(ws.problems);
    const { initBackend, applyPlan, commitMessage, planWorkspace, removeStrayFiles, openEditor, readKeyStats, JudgingThreads } = await loadCompute();
    if (ws.editsMissing && ctx.flags['allow-destroy-all'] !== true) {
      const destroyed = structuralPlan(ws, listFlag(ctx, 'target')).changes.filter((c) => c.action === Action.Destroy).map((c) => c.id);
      if (destroyed.length > 0) throw missingEditsError(ws, destroyed);
    }
    // --refresh on a drifted folder rewrites state.json even when the plan is empty: that is the fix.
    const refreshing = ctx.flags.refresh === true && ws.drift.length > 0;
    if (ctx.flags.refresh === true) {
      const r = await refreshWorkspace(ws, chosenMethod(ws, method));
      // A recomputed edit --target leaves out would leave the state without it: its change silently undone.
      const only = listFlag(ctx, 'target');
      const left = only.length === 0 ? [] : r.dropped.map((d) => d.id).filter((id) => !only.includes(id));
      if (left.length > 0) {
        throw new EditError(`--refresh must recompute ${left.join(', ')}, which --target leaves out; nothing was computed or written`, { hint: `add ${left.map((id) => `--target ${id}`).join(' ')}, or run \`edit apply --refresh\` without --target` });
      }
      ws = r.ws;
      for (const d of r.dropped) ctx.io.err(`refresh: ${d.id} will be recomputed (${d.reason})`);
    }
    if (ws.drift.length > 0) throw driftError(ws.drift);
    const targets = checkTargets(ws, listFlag(ctx, 'target'));
    const settings = editorSettings(ws.manifest, method);
    checkSameEditor(ws, settings.method, method, targets);
    const stats = needsStats(settings.method) ? await readKeyStats(join(root, ws.modelDir), ws.manifest) : undefined;
    if (needsStats(settings.method) && stats === undefined) throw new EditError(`the ${settings.method} editor needs key statistics, and ${ws.modelDir}/model.json names none`, { hint: 'compute them with `edit model stats --text <file>` (text the model normally reads), or set "editor": {"method": "ft"} in model.json' });

    const backend = await initBackend();
    ctx.io.err(`backend: ${backend}`);
    const editor = await openEditor(join(root, ws.modelDir), ws.manifest, settings);
    const ui = json ? undefined : await makeUi(ctx.io);
    const progress = (phase: string, d: number, t: number, id?: string) => ui?.progress(phase, d, t, id);
    const loaded = await loadModelFolder(join(root, ws.modelDir));
    const threads = new JudgingThreads(ctx.io, workers, join(root, ws.modelDir), loaded.model, json);
    try {
      let plan: Plan;
      if (savedPath !== undefined) {
        plan = await readSavedPlan(savedPath);
        checkFresh(plan, ws, savedPath);
      } else {
        plan = await planWorkspace(ws, loaded, targets, progress, threads, method);
      }
      if (!json) ui!.plan(plan);
      // Only stray rows/delta files to remove: nothing to compute, no assertion to run, state.json stays as it is.
      const strayOnly = !hasChanges(plan) && !refreshing;
      // A killed apply may have written its state and not committed it: with nothing else to do, this apply commits it.
      // Then rows/ and deltas/ are committed whole (after stray removal they hold what the state names): the deletions of the files it replaced go with it.
      const uncommitted = strayOnly && commit && (await isRepo(root)) ? await uncommittedPaths(root, stateFiles(ws)) : [];
      const unsaved = uncommitted.length === 0 ? [] : [...uncommitted, join(ws.modelDir, ROWS_DIR), join(ws.modelDir, DELTAS_DIR)];
      if (strayOnly && ws.stray.length === 0 && unsaved.length === 0) {
        if (json) ctx.io.out(JSON.stringify({ formatVersion: '1', applied: false, reason: 'no changes' }));
        await ui?.close();
        return 0;
      }
      // Before any work is done or file written: a commit that cannot happen fails now, not after the writes.
      if (commit) {
        // A file's name ends in its hash, unknown yet; whether .gitignore keeps a file out does not depend on it.
        const zero = '0'.repeat(64);
        const written = [join(ws.modelDir, deltaFileName(SET_DELTA_NAME, zero)), ...plan.changes.filter((c) => c.action === Action.Create || c.action === Action.Update).map((c) => join(ws.modelDir, rowsFileName(c.id, zero)))];
        await checkCommittable(root, [join(ws.modelDir, STATE_FILE), ...written]);
      }
      await testPause('apply:planned', ctx.io);
      if (!autoApprove && !(await ui!.confirm('Apply these changes to the model?'))) {
        ui!.text('Apply cancelled; nothing was written.');
        await ui!.close();
        return 1;
      }
      let alsoCommitted: string[] = [];
      const result = await withLock(join(root, ws.modelDir), `edit apply${savedPath ? ` ${savedPath}` : ''}`, async () => {
        // Another apply may have finished while we computed the plan.
        const now = await readState(join(root, ws.modelDir), ws.manifest);
        if (now.sha256 !== ws.stateSha || now.state.serial !== ws.state.serial) {
          throw new EditError('the model state changed while this apply was planning (another apply finished); nothing was written', { hint: 'run the command again' });
        }
        await testPause('apply:locked', ctx.io);
        // applyPlan removes every delta file the new state does not name, stray ones included.
        const r: ApplyResult = strayOnly
          ? { ok: true, check: { edits: [], pass: true, passed: 0, total: 0 }, touched: [...(await removeStrayFiles(root, ws.modelDir, ws.state)), ...unsaved], commit: null, state: ws.state }
          : await applyPlan(ws, plan, loaded, { editor, stats, commit: false, onProgress: progress, backend, threads });
        if (r.ok) {
          await testPause('apply:written', ctx.io);
          // Leftovers of killed writes (dead writers only); under the lock no other editops writer owns them.
          const modelAbs = join(root, ws.modelDir);
          const leftovers = [...(await removeStaleTempFiles(modelAbs)), ...(await removeStaleTempFiles(join(modelAbs, DELTAS_DIR), { recursive: true })), ...(await removeStaleTempFiles(join(modelAbs, ROWS_DIR), { recursive: true }))];
          for (const t of leftovers) ctx.io.err(`removed ${t} (left by a killed write)`);
          await testPause('apply:temp-cleaned', ctx.io);
          if (commit) {
            const message = !strayOnly
              ? commitMessage(plan, r.check)
              : unsaved.length > 0
                ? `edit apply: commit state serial ${ws.state.serial}, written by an apply that did not commit it\n\n${r.touched.join('\n')}\n`
                : `edit apply: removed ${r.touched.length} stray file${r.touched.length === 1 ? '' : 's'}\n\n${r.touched.join('\n')}\n`;
            try {
              // With the new state, the files it depends on (an untracked model folder, the applied edit files): see commit-paths.ts.
              alsoCommitted = strayOnly && unsaved.length === 0 ? [] : await stateDependencies(ws, r.state!);
              r.commit = await commitPaths(root, [...r.touched, ...alsoCommitted], message);
              committed = r.commit;
              await testPause('git:committed', ctx.io);
            } catch (err) {
              if (!(err instanceof EditError)) throw err;
              // The new state is on disk and consistent: say so, rather than "failed" as if nothing happened.
              const done = strayOnly ? 'the stray files were removed' : `the edits were applied (state serial ${r.state!.serial} written)`;
              throw new EditError(`${done} but not committed: ${err.message}`, { file: err.options.file, hint: `commit ${[...r.touched, ...alsoCommitted].join(', ')} yourself` });
            }
          }
        }
        return r;
      });
      const commitNote = result.commit ? `committed ${result.commit.slice(0, 10)}` : ctx.flags['no-commit'] === true ? 'not committed (--no-commit)' : 'nothing to commit';
      if (strayOnly) {
        if (json) ctx.io.out(JSON.stringify({ formatVersion: '1', applied: false, reason: 'no changes', commit: result.commit, touched: result.touched }, null, 2));
        else {
          const removed = result.touched.length - unsaved.length;
          const committedState = unsaved.length > 0 ? `; committed the state (serial ${ws.state.serial}) an earlier apply wrote but did not commit` : '';
          ui!.text(`\nNo changes to apply; removed ${removed} stray file${removed === 1 ? '' : 's'}${committedState}, ${commitNote}.`);
          await ui!.close();
        }
        return 0;
      }
      if (json) {
        ctx.io.out(JSON.stringify({ formatVersion: '1', applied: result.ok, commit: result.commit, touched: result.touched, alsoCommitted, checks: result.check }, null, 2));
        return result.ok ? 0 : 1;
      }
      ui!.text('');
      ui!.text(renderChecks(result.check));
      if (!result.ok) {
        ui!.text('\nApply failed: some assertions do not hold on the edited model. Nothing was written.');
        await ui!.close();
        return 1;
      }
      if (result.commit && alsoCommitted.length > 0) {
        const deleted = alsoCommitted.filter((f) => !existsSync(join(root, f)));
        const depends = alsoCommitted.filter((f) => !deleted.includes(f));
        if (depends.length > 0) ui!.text(`\nCommitted with the new state (files it depends on): ${depends.join(', ')}`);
        if (deleted.length > 0) ui!.text(`\nCommitted with the new state (the deletion of destroyed edits' files): ${deleted.join(', ')}`);
      }
      const removed = result.removed?.length ?? 0;
      const written = result.touched.length - removed;
      ui!.text(`\nApply complete: state serial ${result.state!.serial}, ${written} file${written === 1 ? '' : 's'} written${removed > 0 ? `, ${removed} removed` : ''}, ${commitNote}.`);
      await ui!.close();
      return 0;
    } finally {
      await threads.close();
      loaded.model.dispose();
      editor.dispose?.();
    }
  },
};

