/**
 * `edit verify`: every assertion of every declared edit on the current state (base + applied
 * deltas). Exit 1 on any failure. --shard i/n splits the edits across CI runners.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { loadModelFolder } from '../../model/folder.js';
import { judgedPrompts, type BatchCheck } from '../../assert/check-edit.js';
import { checkRecordedWeights, openWorkspace, type Workspace, problemsError, readSetDelta, lockWarning, missingEditsWarning } from '../../apply/workspace.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, WORKERS_OPTION, modelDir, projectRoot, stringFlag, workersSetting } from '../flags.js';
import { makeUi } from '../ui.js';
import { loadCompute } from '../compute.js';
import { renderAnnotations, renderChecks, renderJunit, renderMarkdown } from '../report.js';
import { inGithubActions, workspacePath } from '../github.js';
import { idList } from '../../util/format.js';

export function parseShard(value: string | undefined): { index: number; count: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new EditError(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4), got ${JSON.stringify(value)}`);
  return { index, count };
}

/** Applied edits whose files are gone are still in the weights, but verify checks declared edits only: say so. */
function undeclaredWarning(ws: Workspace): string | undefined {
  if (ws.editsMissing) return undefined;
  const declared = new Set(ws.edits.map((e) => e.id));
  const gone = Object.keys(ws.state.edits).filter((id) => !declared.has(id)).sort();
  if (gone.length === 0) return undefined;
  return `warning: ${gone.length === 1 ? 'an applied edit has' : `${gone.length} applied edits have`} no edit file (${idList(gone)}): ${gone.length === 1 ? 'it is' : 'they are'} still in the weights and not checked here; \`edit plan\` shows ${gone.length === 1 ? 'it' : 'them'} as destroyed, \`edit apply\` removes ${gone.length === 1 ? 'it' : 'them'}`;
}

/**
 * Declared edits the weights do not carry as written — changed since applied, or never applied:
 * verify judges the files as they are now, so their failures say "apply", not "the editor failed".
 */
function pendingWarning(ws: Workspace): string | undefined {
  const changed = ws.edits.filter((e) => ws.state.edits[e.id] !== undefined && ws.state.edits[e.id].specSha256 !== e.sha256).map((e) => e.id);
  const added = ws.edits.filter((e) => ws.state.edits[e.id] === undefined).map((e) => e.id);
  if (changed.length + added.length === 0) return undefined;
  const parts = [
    ...(changed.length > 0 ? [`${changed.length === 1 ? 'an edit file has' : `${changed.length} edit files have`} changed since applied (${idList(changed)})`] : []),
    ...(added.length > 0 ? [`${added.length === 1 ? 'an edit is' : `${added.length} edits are`} not applied yet (${idList(added)})`] : []),
  ];
  return `warning: ${parts.join(' and ')}: verify judges the files as written on weights that do not carry them; \`edit plan\` shows the changes, \`edit apply\` makes them`;
}

export const verifyCommand: Command = {
  name: 'verify',
  args: '',
  summary: 'run every assertion on the current model state; non-zero exit on any failure',
  options: {
    ...MODEL_OPTION,
    ...EDITS_DIR_OPTION,
    json: { type: 'boolean', description: 'print the results as JSON' },
    junit: { type: 'string', value: '<file>', description: 'write a JUnit XML report' },
    markdown: { type: 'string', value: '<file>', description: 'write a markdown summary (job summary, pull-request comment)' },
    shard: { type: 'string', value: '<i/n>', description: 'check only the i-th of n slices of the edits (a CI matrix)' },
    verbose: { type: 'boolean', short: 'v', description: 'list passing checks too, not only failures' },
    ...WORKERS_OPTION,
  },
  examples: ['edit verify', 'edit verify --junit edit-results.xml --markdown verify.md', 'edit verify --shard 2/4'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`verify takes no arguments (got ${JSON.stringify(ctx.args[0])})`);
    const shard = parseShard(stringFlag(ctx, 'shard'));
    const workers = workersSetting(ctx);
    const root = projectRoot(ctx);
    const ws = await openWorkspace(root, modelDir(ctx, root), stringFlag(ctx, 'dir', 'edits'));
    for (const warning of [lockWarning(ws), missingEditsWarning(ws), undeclaredWarning(ws), pendingWarning(ws)]) if (warning !== undefined) ctx.io.err(warning);
    if (ws.problems.length > 0) throw problemsError(ws.problems);
    checkRecordedWeights(ws, (line) => ctx.io.err(line));
    const edits = shard === undefined ? ws.edits : ws.edits.filter((_, i) => i % shard.count === shard.index - 1);
    const json = ctx.flags.json === true;
    const { initBackend, checkAll, judges, JudgingThreads } = await loadCompute();
    const backend = await initBackend();
    if (!json) ctx.io.err(`backend: ${backend}`);
    // Greedy outputs can differ between backends at near-ties: say so when verify judges on another one than apply did.
    if (ws.state.backend !== undefined && ws.state.backend !== backend) ctx.io.err(`warning: the edits were applied and judged on the ${ws.state.backend} backend; verifying on ${backend} (set EDIT_BACKEND=${ws.state.backend} to judge on the same one)`);
    const ui = json ? undefined : await makeUi(ctx.io);
    const t0 = performance.now();
    const loaded = await loadModelFolder(join(root, ws.modelDir));
    const threads = new JudgingThreads(ctx.io, workers, join(root, ws.modelDir), loaded.model, json);
    let check: BatchCheck;
    try {
      const j = judges(loaded, await readSetDelta(ws.root, ws.modelDir, ws.state), await threads.for(judgedPrompts(edits.map((e) => e.spec))));
      try {
        check = checkAll(ws, edits, j, (phase, d, t, id) => ui?.progress(phase, d, t, id));
      } finally {
        j.dispose();
      }
    } finally {
      await threads.close();
      loaded.model.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    const title = `editops verify — \`${ws.modelDir}\`${shard ? ` (shard ${shard.index}/${shard.count})` : ''}`;
    const junit = stringFlag(ctx, 'junit');
    if (junit !== undefined) await writeFile(junit, renderJunit(check, seconds));
    const md = stringFlag(ctx, 'markdown');
    if (md !== undefined) await writeFile(md, renderMarkdown(check, title));
    if (json) {
      ctx.io.out(JSON.stringify({ formatVersion: '1', model: ws.modelDir, shard: shard ?? null, pass: check.pass, passed: check.passed, total: check.total, edits: check.edits, seconds: Number(seconds.toFixed(2)) }, null, 2));
    } else {
      ui!.text(renderChecks(check, { verbose: ctx.flags.verbose === true }));
      await ui!.close();
      if (inGithubActions()) {
        const files = new Map(edits.map((e) => [e.id, workspacePath(root, e.file)]));
        for (const line of renderAnnotations(check, (id) => files.get(id))) ctx.io.out(line);
      }
    }
    return check.pass ? 0 : 1;
  },
};
