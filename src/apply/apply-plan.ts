/**
 * apply: rows of new edits + cached rows → one solve of the set → every assertion → write + commit
 * only if all pass. Nothing is written before the last check passed; files are written atomically,
 * state.json last. Rows and the set delta are content-addressed (rows/<id>@<hash>.safetensors,
 * deltas/set@<hash>.safetensors), so no write before state.json touches a file the current state
 * names: a killed apply leaves the previous state usable, at worst with stray files, which plan
 * shows as a warning and the next apply removes (DESIGN §8).
 */
import { tf } from '../tensor/tf.js';
import { rm, mkdir, readdir, rmdir } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { ModelJudge } from '../assert/judge.js';
import type { Judge } from '../assert/types.js';
import type { LoadedEdit } from '../spec/types.js';
import { batchChecks, checkEdit, judgedPrompts, prefetchChecks, type BatchCheck } from '../assert/check-edit.js';
import { prefetchJudgements } from '../assert/prefetch.js';
import { pickNeighbours } from '../assert/neighbours.js';
import { isPreserved, type KnownFact } from '../model/known-facts.js';
import type { LoadedModel } from '../model/folder.js';
import type { GeneratePool, PoolSource } from '../model/pool.js';
import type { EditRequest, LayerCapacity, SetEditor } from '../editor/editor.js';
import type { KeyStats } from '../editor/stats.js';
import { preservedFacts, solveSet } from '../editor/set.js';
import { Action, summarize, type Plan } from '../plan/plan.js';
import { deltaFileName, serializeDelta, SET_DELTA_NAME } from '../state/deltas.js';
import type { Delta } from '../model/weight-change.js';
import { rowCount, rowsFileName, serializeRows } from '../state/rows.js';
import { editorRecord, effectiveSha, manifestSha, solverRecord, strayFiles, writeState, STATE_FILE } from '../state/state.js';
import type { AppliedEdit, ModelState } from '../state/types.js';
import { commitPaths } from '../state/git.js';
import { stateDependencies } from './commit-paths.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import { editRequest, readAppliedRows, readSetDelta, structuralPlan, thresholdsFor, type Workspace } from './workspace.js';
import { excerpt, pct } from '../util/format.js';
import { testKill, testPoint } from '../util/test-hooks.js';
import { toDeltaTensors } from '../model/delta-tensors.js';

export type Progress = (phase: string, done: number, total: number, detail?: string) => void;

/** Judges of the base model and of base + delta, with the model's known facts (edits' neighbours); dispose() frees the delta tensors. */
export function judges(loaded: LoadedModel, delta: Delta | null, pool?: GeneratePool): { base: ModelJudge; edited: ModelJudge; known: readonly KnownFact[]; dispose(): void } {
  const tensors = toDeltaTensors(delta, loaded);
  const base = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, pool });
  const edited = Object.keys(tensors).length === 0 ? base : new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, deltas: tensors, pool });
  // neighbours come from the half of the known facts the joint solve does not keep still (known-facts.ts)
  return { base, edited, known: (loaded.knownFacts ?? []).filter((f) => !isPreserved(f)), dispose: () => tf.dispose(Object.values(tensors)) };
}

/**
 * The structural plan, then (with a model) creates already satisfied become "=": the base model
 * passes them (DESIGN §4; an edit held only thanks to another edit's delta would break when that
 * one is destroyed) and so does the current model (else apply would fail on them right away).
 */
export async function planWorkspace(ws: Workspace, loaded: LoadedModel | undefined, targets: string[] = [], onProgress?: Progress, threads?: PoolSource, method?: string): Promise<Plan> {
  const plan = structuralPlan(ws, targets, method);
  if (loaded === undefined || ws.drift.length > 0) return plan;
  // New edits, and recomputed ones that were recorded without rows (the model passed them then), are checked on the current model.
  const creates = plan.changes.filter((c) => c.action === Action.Create || (c.action === Action.Update && ws.recomputed?.get(c.id)?.applied.rows === null));
  const satisfied = new Set<string>();
  if (creates.length > 0) {
    const edits = creates.map((c) => ws.edits.find((e) => e.id === c.id)!);
    // each new edit is judged on the base model and on the current one
    const j = judges(loaded, await readSetDelta(ws.root, ws.modelDir, ws.state), await threads?.for(2 * judgedPrompts(edits.map((e) => e.spec))));
    try {
      const satisfiedBy = (edit: LoadedEdit, base: Judge, edited: Judge): boolean => {
        const thresholds = thresholdsFor(edit.spec, ws.manifest);
        const hood = pickNeighbours(edit, j.known, ws.edits);
        return checkEdit(edit.spec, base, base, thresholds, hood).pass && (edited === base || checkEdit(edit.spec, edited, base, thresholds, hood).pass);
      };
      edits.forEach((edit, i) => {
        if (i % PREFETCH_EDITS === 0) prefetchJudgements([j.base, j.edited], (base, edited) => edits.slice(i, i + PREFETCH_EDITS).forEach((e) => satisfiedBy(e, base, edited)));
        if (satisfiedBy(edit, j.base, j.edited)) satisfied.add(edit.id);
        onProgress?.('checking the current model', i + 1, creates.length, edit.id);
      });
    } finally {
      j.dispose();
    }
  }
  return structuralPlan(ws, targets, method, satisfied);
}

/** Edits whose generations are prefetched together by checkAll: a batched pass per chunk, progress between. */
const PREFETCH_EDITS = 32;

/** Every check of `edits` on the judges' models, one edit at a time so progress can be shown (generations prefetched per chunk). */
export function checkAll(ws: Workspace, edits: LoadedEdit[], j: { base: Judge; edited: Judge; known?: readonly KnownFact[] }, onProgress?: Progress): BatchCheck {
  const results: BatchCheck['edits'] = [];
  const source = { known: j.known ?? [], declared: ws.edits };
  edits.forEach((e, i) => {
    if (i % PREFETCH_EDITS === 0) {
      const chunk = edits.slice(i, i + PREFETCH_EDITS).map((c) => ({ id: c.id, spec: c.spec, neighbours: pickNeighbours(c, source.known, source.declared) }));
      prefetchChecks(chunk, j.edited, j.base);
    }
    results.push(...batchChecks([{ id: e.id, spec: e.spec }], j.edited, j.base, thresholdsFor(e.spec, ws.manifest), source).edits);
    onProgress?.('verifying', i + 1, edits.length, e.id);
  });
  return {
    edits: results,
    pass: results.every((r) => r.result.pass),
    passed: results.reduce((a, r) => a + r.result.metrics.passed, 0),
    total: results.reduce((a, r) => a + r.result.metrics.total, 0),
  };
}

export interface ApplyResult {
  ok: boolean;
  check: BatchCheck;
  /** Paths written or removed, relative to the repository root. */
  touched: string[];
  /** Those of `touched` that were removed (files the new state no longer names). */
  removed?: string[];
  commit: string | null;
  state?: ModelState;
  /** Rows per edited layer of the solved set, against the key dimension. */
  capacity?: LayerCapacity[];
}

export interface ApplyOptions {
  editor: SetEditor;
  /** Key statistics for joint editors. */
  stats?: KeyStats;
  commit: boolean;
  onProgress?: Progress;
  now?: Date;
  /** The backend the checks ran on, recorded in state.json. */
  backend?: string;
  /** Threads judging the checks (the same results as without), sized by what there is to judge. */
  threads?: PoolSource;
}

/**
 * Rows for created and updated edits (each against the base), the kept edits' rows from their
 * cache files, one solve of the whole set, every assertion of every edit on base + ΔW(set); only if
 * all pass: rows files, the set's delta file, state.json (the commit point), stray removal, commit.
 */
export async function applyPlan(ws: Workspace, plan: Plan, loaded: LoadedModel, opts: ApplyOptions): Promise<ApplyResult> {
  const byId = new Map(ws.edits.map((e) => [e.id, e]));
  const toCompute = plan.changes.filter((c) => c.action === Action.Create || c.action === Action.Update).map((c) => byId.get(c.id)!);
  const dropped = new Set(plan.changes.filter((c) => c.action === Action.Destroy || c.action === Action.Update).map((c) => c.id));
  const { editor } = opts;

  // 1. the set: kept edits (rows from their files) + created and updated ones (rows computed now)
  const keptIds = Object.keys(ws.state.edits).filter((id) => !dropped.has(id) && ws.state.edits[id].rows !== null);
  const cache = await readAppliedRows(ws, keptIds, editor.method);
  // Every edit of the new set as a request: kept ones from their declared files (their rows come from the cache).
  const requests = [...keptIds.map((id) => requestOf(ws, id)), ...toCompute.map((e) => editRequest(e, ws.manifest))];
  const preserve = preservedFacts(loaded.knownFacts ?? [], requests);
  const ctx = { model: loaded.model, tokenizer: loaded.tokenizer, layers: ws.manifest.editableLayers, stats: opts.stats, preserve, onProgress: (d: number, t: number, id: string) => {
    testKill('apply:rows');
    opts.onProgress?.('computing rows', d, t, id);
  } };
  const solution = await solveSet(ctx, editor, requests, cache);
  const delta = Object.keys(solution.delta.layers).length === 0 ? null : solution.delta;
  await testPoint('apply:solved');

  // 2. every assertion of every edit the new state holds: --target narrows what changes, not what
  // must hold — but a declared edit left out by --target and not applied as declared (new or
  // changed) has no rows yet, so its assertions cannot hold and are not this apply's to judge.
  const inPlan = new Set(plan.changes.map((c) => c.id));
  const leftOut = (e: (typeof ws.edits)[number]) => plan.targets.length > 0 && !inPlan.has(e.id) && ws.state.edits[e.id]?.specSha256 !== e.sha256;
  const checked = ws.edits.filter((e) => !leftOut(e));
  const j = judges(loaded, delta, await opts.threads?.for(judgedPrompts(checked.map((e) => e.spec))));
  let check: BatchCheck;
  try {
    check = checkAll(ws, checked, j, (phase, d, t, id) => {
      testKill('apply:verifying');
      opts.onProgress?.(phase, d, t, id);
    });
  } finally {
    j.dispose();
  }
  if (!check.pass) return { ok: false, check, touched: [], commit: null, capacity: solution.capacity };
  await testPoint('apply:verified');

  // 3. encode everything before the first write (a refused file — NaN, empty — leaves nothing half-written)
  const modelAbs = join(ws.root, ws.modelDir);
  const touched: string[] = [];
  const now = (opts.now ?? new Date()).toISOString();
  const metricsOf = new Map(check.edits.map((e) => [e.id, e.result.metrics]));
  const recorded = plan.changes.filter((c) => c.action === Action.Create || c.action === Action.Update || c.action === Action.Satisfied);
  const files: Array<{ rel: string; bytes: Uint8Array }> = [];
  const rowsRef = new Map<string, AppliedEdit['rows']>();
  for (const c of recorded) {
    const rows = solution.rows.get(c.id);
    if (rows === undefined) continue;
    const bytes = serializeRows(rows, { id: c.id, method: editor.method, specSha256: byId.get(c.id)!.sha256 });
    const hash = sha256(bytes);
    const rel = rowsFileName(c.id, hash);
    files.push({ rel, bytes });
    rowsRef.set(c.id, { file: rel, sha256: hash, count: rowCount(rows) });
  }
  let deltaRef: ModelState['delta'] = null;
  if (delta !== null) {
    const bytes = serializeDelta(delta, { id: SET_DELTA_NAME, method: editor.method, edits: String(requests.length) });
    const hash = sha256(bytes);
    const rel = deltaFileName(SET_DELTA_NAME, hash);
    files.push({ rel, bytes });
    deltaRef = { file: rel, sha256: hash, layers: Object.keys(delta.layers).map((p) => p.replace(/\.(weight|bias)$/, '')).filter((l, i, a) => a.indexOf(l) === i).sort(), capacity: solution.capacity, solver: solverRecord(editor.method) };
  }

  // 4. write: content-addressed files (new names: the current state's files stay as they are),
  // then state.json (the commit point), then every file the new state does not name
  for (const f of files) {
    await mkdir(dirname(join(modelAbs, f.rel)), { recursive: true });
    await writeFileAtomic(join(modelAbs, f.rel), f.bytes);
    touched.push(join(ws.modelDir, f.rel));
    if (touched.length === 1 && files.length > 1) await testPoint('apply:between-writes');
  }
  await testPoint('apply:files-written');
  const edits: Record<string, AppliedEdit> = {};
  for (const [id, applied] of Object.entries(ws.state.edits)) if (!dropped.has(id)) edits[id] = applied;
  for (const c of recorded) {
    const m = metricsOf.get(c.id)!;
    const rows = rowsRef.get(c.id) ?? null;
    const spec = byId.get(c.id)!;
    edits[c.id] = {
      specSha256: spec.sha256,
      prompt: spec.spec.prompt,
      target: spec.spec.target,
      method: rows === null ? 'none' : editor.method,
      rows,
      metrics: { reliability: m.reliability, generalization: m.generalization, locality: m.locality, portability: m.portability, passed: m.passed, total: m.total },
      appliedAt: now,
    };
  }
  const state: ModelState = {
    ...ws.state,
    version: 2,
    serial: ws.state.serial + 1,
    base: { sha256: ws.manifest.weights.sha256 },
    editor: editorRecord(ws.manifest) ?? { method: editor.method, sha256: null },
    stats: ws.manifest.stats ? { sha256: ws.manifest.stats.sha256 } : null,
    manifest: { sha256: manifestSha(ws.manifest) },
    delta: deltaRef,
    ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    effective: { sha256: effectiveSha(ws.manifest.weights.sha256, deltaRef?.sha256 ?? null) },
    edits,
  };
  await writeState(modelAbs, state);
  touched.push(join(ws.modelDir, STATE_FILE));
  await testPoint('apply:state-written');
  const removed = await removeStrayFiles(ws.root, ws.modelDir, state);
  touched.push(...removed);
  await testPoint('apply:strays-removed');

  // 5. commit exactly what was written, and what the new state depends on
  const commit = opts.commit ? await commitPaths(ws.root, [...touched, ...(await stateDependencies(ws, state))], commitMessage(plan, check)) : null;
  return { ok: true, check, touched, removed, commit, state, capacity: solution.capacity };
}

/**
 * A kept edit's request: from its edit file when declared (a --target apply keeps edits whose file
 * may be gone or changed — then only the id is known, and the solve needs no more than its rows).
 */
function requestOf(ws: Workspace, id: string): EditRequest {
  const e = ws.edits.find((x) => x.id === id);
  if (e !== undefined && e.sha256 === ws.state.edits[id]?.specSha256) return editRequest(e, ws.manifest);
  return { id, task: '', instruction: '', prompt: '', target: '', rephrase: [] };
}

/**
 * Remove the rows and delta files `state` does not name — replaced and destroyed edits' old files,
 * the previous set delta, a killed apply's leftovers — and the folders that empties. Call it under
 * the model lock, after state.json was written. Returns the removed paths relative to `root`.
 */
export async function removeStrayFiles(root: string, modelDir: string, state: ModelState): Promise<string[]> {
  const modelAbs = join(root, modelDir);
  const removed: string[] = [];
  for (const rel of await strayFiles(modelAbs, state)) {
    await rm(join(modelAbs, rel), { force: true });
    removed.push(join(modelDir, rel));
    const top = rel.split('/')[0];
    await pruneEmptyDirs(join(modelAbs, top), dirname(join(modelAbs, rel)));
    testKill('apply:removing-strays');
  }
  return removed;
}

/** Remove `dir` and its parents while empty, stopping at `stop` (nested ids leave folders behind). */
async function pruneEmptyDirs(stop: string, dir: string): Promise<void> {
  while (dir.startsWith(stop + sep)) {
    if ((await readdir(dir)).length > 0) return;
    await rmdir(dir);
    dir = dirname(dir);
  }
}

export function commitMessage(plan: Plan, check: BatchCheck): string {
  const s = summarize(plan);
  const head = `edit apply: ${s.create} created, ${s.update} updated, ${s.destroy} destroyed${s.satisfied ? `, ${s.satisfied} already satisfied` : ''}`;
  const metrics = new Map(check.edits.map((e) => [e.id, e.result.metrics]));
  const lines = plan.changes
    .filter((c) => c.action !== Action.NoOp)
    .map((c) => {
      const m = metrics.get(c.id);
      const tail = m === undefined ? '' : `  reliability ${pct(m.reliability)} generalization ${pct(m.generalization)} locality ${pct(m.locality)} portability ${pct(m.portability)}`;
      return `${c.action} ${c.id}${c.after ? ` ${excerpt(c.after.prompt)} → ${excerpt(c.after.target)}` : ''}${tail}`;
    });
  return `${head}\n\n${lines.join('\n')}\n\nAssertions: ${check.passed}/${check.total} passed on the combined weights.\n`;
}
