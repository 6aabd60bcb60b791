/**
 * models/<name>/state.json: read, write (atomic, stable key order), and check against the files
 * on disk (DESIGN §8: every hash is checked on load; a mismatch is drift).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../errors.js';
import { insideFolder, MANIFEST, readManifest, type ModelManifest } from '../model/folder.js';
import { isTempFile, writeFileAtomic } from '../util/atomic.js';
import { sha256, sha256FileIfExists } from '../util/hash.js';
import { canonicalJson } from '../spec/load.js';
import { DELTA_NAME_HASH, DELTAS_DIR, deltaFileName, SET_DELTA_NAME } from './deltas.js';
import { ROWS_DIR, rowsFileName } from './rows.js';
import type { AppliedEdit, ModelState, SolverRecord } from './types.js';
import { EDITOR_INFO, isMethod } from '../editor/settings.js';

export const STATE_FILE = 'state.json';

/** A file on disk that does not match what state.json (or model.json) says. */
export interface DriftProblem {
  /** Path of the file, as the model folder path joined with its relative path. */
  file: string;
  message: string;
  /** 'solver': the set was solved by an earlier revision of its editor — its weights are what state.json says, so verify still judges them. */
  kind?: 'solver';
}

export function emptyState(manifest: ModelManifest, baseSha: string): ModelState {
  return {
    version: 2,
    serial: 0,
    base: { sha256: baseSha },
    editor: editorRecord(manifest),
    stats: manifest.stats ? { sha256: manifest.stats.sha256 } : null,
    manifest: { sha256: manifestSha(manifest) },
    delta: null,
    effective: { sha256: effectiveSha(baseSha, null) },
    edits: {},
  };
}

/** What state.json records of the manifest's editor: its method and the sha256 of its settings (or weights file). */
export function editorRecord(manifest: ModelManifest): ModelState['editor'] {
  if (!manifest.editor) return null;
  return { method: manifest.editor.method, sha256: manifest.editor.sha256 ?? sha256(canonicalJson(manifest.editor.settings ?? {})) };
}

/**
 * sha256 of what in model.json decides how edits are computed and judged (thresholds, editable
 * layers, editor, tasks, config, weights): its canonical JSON without the informational
 * `provenance`, `knowledge` and `$schema`.
 */
export function manifestSha(manifest: ModelManifest): string {
  const { $schema: _schema, provenance: _provenance, knowledge: _knowledge, ...rest } = manifest;
  return sha256(canonicalJson(rest));
}

/** sha256 of the effective weights' identity: the base hash and the set delta's hash (none: the base itself). */
export function effectiveSha(baseSha: string, deltaSha: string | null): string {
  return sha256(`base ${baseSha}\ndelta ${deltaSha ?? 'none'}\n`);
}

/**
 * The state and the sha256 of state.json's bytes (a saved plan binds to it). A missing state.json
 * is the empty state (sha256 null); the manifest is read from the folder when not given.
 */
export async function readState(modelDir: string, manifest?: ModelManifest): Promise<{ state: ModelState; sha256: string | null }> {
  const path = join(modelDir, STATE_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new EditError(`cannot read: ${code ?? (err as Error).message}`, { file: path });
    const m = manifest ?? (await readManifest(modelDir));
    return { state: emptyState(m, m.weights.sha256), sha256: null };
  }
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const what = msg.replace(/ in JSON at position \d+.*$/s, '').replace(/\s*\(line \d+ column \d+\)/, '');
    throw new EditError(`not valid JSON at ${jsonErrorPlace(text, msg)}: ${what}`, { file: path, hint: `restore it from git: git checkout -- ${path}` });
  }
  const state = checkState(json, path);
  // A state.json written before the manifest hash was recorded: take today's model.json as the one applied against.
  if (state.manifest === undefined) state.manifest = { sha256: manifestSha(manifest ?? (await readManifest(modelDir))) };
  return { state, sha256: sha256(bytes) };
}

/** Write state.json atomically: pretty JSON, keys in a fixed order, edits sorted by id. Returns the file's sha256. */
export async function writeState(modelDir: string, state: ModelState): Promise<string> {
  const text = `${JSON.stringify(orderState(state), null, 2)}\n`;
  await writeFileAtomic(join(modelDir, STATE_FILE), text);
  return sha256(text);
}

/** What checkDrift finds on disk. */
export interface DriftReport {
  /** Files that do not match state.json: plan shows them with "!", apply, verify and generate refuse. */
  drift: DriftProblem[];
  /**
   * Delta files no applied edit names, as the model folder path joined with their relative path:
   * a killed apply's new delta, say. Not drift — they change no weight — and the next apply removes them.
   */
  stray: string[];
}

/**
 * The set's editor, when the revision that solved it is not the one this editops has: the delta's
 * `solver`, or for a state written before it was recorded, the method of the edits with rows at
 * revision 1. Undefined when the set has no delta or its method is unknown here.
 */
export function outdatedSolver(state: ModelState): { method: string; was: number; now: number } | undefined {
  if (state.delta === null) return undefined;
  const method = state.delta.solver?.method ?? Object.values(state.edits).find((e) => e.rows !== null)?.method;
  if (method === undefined || !isMethod(method)) return undefined;
  const was = state.delta.solver?.revision ?? 1;
  const now = EDITOR_INFO[method].revision;
  return was === now ? undefined : { method, was, now };
}

/**
 * Applied edits whose rows another editor computed than `method`, the one about to solve the set
 * (model.json's editor, or `apply --method`): their cached rows cannot join its solve, and
 * `apply --refresh` recomputes them. Sorted ids, and the editors that computed them.
 */
export function rowsOfOtherEditors(state: ModelState, method: string): { ids: string[]; methods: string[] } {
  const other = Object.entries(state.edits).filter(([, e]) => e.rows !== null && e.method !== method);
  return { ids: other.map(([id]) => id).sort(byCodeUnit), methods: [...new Set(other.map(([, e]) => e.method))].sort(byCodeUnit) };
}

/** The record of the editor that solves a set now. */
export function solverRecord(method: string): SolverRecord {
  if (!isMethod(method)) throw new EditError(`unknown editor method "${method}"`);
  return { method, revision: EDITOR_INFO[method].revision };
}

/**
 * Everything on disk that does not match state.json: the base weights (against state and manifest),
 * each delta file (at its content-addressed place, present, same sha256) and the effective hash;
 * apart, the stray files in deltas/. No drift = `drift` empty.
 */
export async function checkDrift(modelDir: string, manifest: ModelManifest, state: ModelState): Promise<DriftReport> {
  const problems: DriftProblem[] = [];
  const short = (s: string) => `${s.slice(0, 12)}…`;

  const basePath = insideFolder(modelDir, manifest.weights.file, '/weights/file');
  const baseFile = join(modelDir, manifest.weights.file);
  const baseSha = await sha256FileIfExists(basePath);
  if (baseSha === null) {
    problems.push({ file: baseFile, message: 'base weights file is missing' });
  } else {
    if (baseSha !== state.base.sha256) {
      problems.push({ file: baseFile, message: `base weights sha256 ${short(baseSha)} does not match state.json (${short(state.base.sha256)}): the base changed since the edits were applied` });
    }
    if (baseSha !== manifest.weights.sha256) {
      problems.push({ file: baseFile, message: `base weights sha256 ${short(baseSha)} does not match model.json (${short(manifest.weights.sha256)}): the file changed outside editops` });
    }
  }

  /** A file model.json names, against the sha256 it records there. */
  const checkNamed = async (ref: { file: string; sha256?: string }, pointer: string, missing: string, label: string) => {
    const file = join(modelDir, ref.file);
    const actual = await sha256FileIfExists(insideFolder(modelDir, ref.file, `${pointer}/file`));
    if (actual === null) problems.push({ file, message: missing });
    else if (actual !== ref.sha256) problems.push({ file, message: `${label} sha256 ${short(actual)} does not match model.json (${short(ref.sha256 ?? 'none')}): the file changed outside editops` });
  };
  if (manifest.stats !== undefined) await checkNamed(manifest.stats, '/stats', 'key statistics file is missing', 'key statistics');
  if (manifest.editor?.file !== undefined) await checkNamed({ file: manifest.editor.file, sha256: manifest.editor.sha256 }, '/editor', `the ${manifest.editor.method} editor's network file is missing`, 'editor network');
  for (const [method, ref] of Object.entries(manifest.hypernetworks ?? {})) {
    if (ref !== undefined) await checkNamed(ref, `/hypernetworks/${method}`, `the ${method} network file is missing`, `${method} network`);
  }

  const checkFile = async (ref: { file: string; sha256: string }, place: () => string, what: string, pointer: string) => {
    const file = join(modelDir, ref.file);
    let path: string;
    try {
      const want = place();
      if (ref.file !== want) throw new EditError(`expected ${want}: the name, "@" and the first ${DELTA_NAME_HASH} hex of its sha256`);
      path = insideFolder(modelDir, ref.file, pointer);
    } catch (err) {
      problems.push({ file: join(modelDir, STATE_FILE), message: `${what} is named "${ref.file}", which is not its place (${(err as Error).message})` });
      return;
    }
    const actual = await sha256FileIfExists(path);
    if (actual === null) problems.push({ file, message: `${what} is missing` });
    else if (actual !== ref.sha256) problems.push({ file, message: `${what} has sha256 ${short(actual)}, state.json says ${short(ref.sha256)}: it changed outside editops` });
  };
  for (const id of Object.keys(state.edits).sort(byCodeUnit)) {
    const rows = state.edits[id].rows;
    if (rows !== null) await checkFile(rows, () => rowsFileName(id, rows.sha256), `rows of edit "${id}"`, `/edits/${id}/rows/file`);
  }
  if (state.delta !== null) {
    const delta = state.delta;
    await checkFile(delta, () => deltaFileName(SET_DELTA_NAME, delta.sha256), 'the solved change of the edit set', '/delta/file');
  }

  const manifestNow = manifestSha(manifest);
  if (manifestNow !== state.manifest.sha256) {
    problems.push({ file: join(modelDir, MANIFEST), message: 'model.json changed since the edits were applied (thresholds, layers or editor): run `edit apply --refresh` to re-verify every edit' });
  }

  const outdated = outdatedSolver(state);
  if (outdated !== undefined) {
    problems.push({ file: join(modelDir, STATE_FILE), kind: 'solver', message: `the edit set was solved by ${outdated.method} revision ${outdated.was}; this editops solves with revision ${outdated.now}: run \`edit apply --refresh\` to re-solve and re-verify every edit` });
  }

  const effective = effectiveSha(state.base.sha256, state.delta?.sha256 ?? null);
  if (effective !== state.effective.sha256) {
    problems.push({ file: join(modelDir, STATE_FILE), message: `effective sha256 ${short(state.effective.sha256)} does not match its base and delta (${short(effective)})` });
  }
  const stray = (await strayFiles(modelDir, state)).map((rel) => join(modelDir, rel));
  return { drift: problems, stray };
}

/**
 * Files in rows/ and deltas/ that `state` does not name, relative to the model folder ("/"
 * separators); temp files of atomic writes are not counted. Lists only, hashes nothing.
 */
export async function strayFiles(modelDir: string, state: ModelState): Promise<string[]> {
  const named = new Set(Object.values(state.edits).flatMap((e) => (e.rows === null ? [] : [e.rows.file])));
  if (state.delta !== null) named.add(state.delta.file);
  const all = [...(await listFiles(join(modelDir, ROWS_DIR), ROWS_DIR)), ...(await listFiles(join(modelDir, DELTAS_DIR), DELTAS_DIR))];
  return all.filter((rel) => !named.has(rel) && !isTempFile(rel));
}

// ---------------------------------------------------------------------------------------------
// Helpers

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files under `dir`, as paths relative to the model folder with "/" separators. */
async function listFiles(dir: string, prefix: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort(byCodeUnit);
}

/** "line L, column C" from a JSON.parse message (V8 gives a position or a line/column). */
function jsonErrorPlace(text: string, message: string): string {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return `line ${lc[1]}, column ${lc[2]}`;
  const pos = /position (\d+)/.exec(message);
  const at = pos ? Number(pos[1]) : text.length;
  const before = text.slice(0, at).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

const STATE_KEYS = ['$schema', 'version', 'serial', 'base', 'editor', 'stats', 'manifest', 'delta', 'backend', 'effective', 'edits'];
const EDIT_KEYS = ['specSha256', 'prompt', 'target', 'method', 'rows', 'metrics', 'appliedAt'];
const ROWS_KEYS = ['file', 'sha256', 'count'];
const DELTA_KEYS = ['file', 'sha256', 'layers', 'capacity', 'solver'];
const SOLVER_KEYS = ['method', 'revision'];
const METRIC_KEYS = ['reliability', 'generalization', 'locality', 'portability', 'passed', 'total'];

/** Known keys in declared order, unknown ones after them alphabetically. */
function ordered<T extends object>(obj: T, keys: string[]): T {
  const rec = obj as Record<string, unknown>;
  const rest = Object.keys(rec).filter((k) => !keys.includes(k)).sort(byCodeUnit);
  return Object.fromEntries([...keys.filter((k) => k in rec), ...rest].map((k) => [k, rec[k]])) as T;
}

function orderState(state: ModelState): ModelState {
  const edits: Record<string, AppliedEdit> = {};
  for (const id of Object.keys(state.edits).sort(byCodeUnit)) {
    const e = state.edits[id];
    edits[id] = ordered({ ...e, rows: e.rows === null ? null : ordered(e.rows, ROWS_KEYS), metrics: ordered(e.metrics, METRIC_KEYS) }, EDIT_KEYS);
  }
  const delta = state.delta === null ? null : ordered(state.delta.solver === undefined ? state.delta : { ...state.delta, solver: ordered(state.delta.solver, SOLVER_KEYS) }, DELTA_KEYS);
  return ordered({ ...state, delta, edits }, STATE_KEYS);
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Structural checks on a parsed state.json; schemas/state.schema.json says the same for editors. */
function checkState(json: unknown, file: string): ModelState {
  const fail = (pointer: string, msg: string): never => {
    throw new EditError(msg, { file, pointer, hint: 'restore it from git, or run `edit apply --refresh` to re-derive it' });
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const isSha = (v: unknown) => typeof v === 'string' && HEX64.test(v);
  if (!isObj(json)) return fail('', 'must be a JSON object');
  if (json.version === 1) {
    throw new EditError('state.json has version 1 (per-edit deltas, summed), written by an older editops; this one solves the edit set jointly (version 2)', {
      file,
      pointer: '/version',
      hint: 'delete state.json and deltas/ (git rm), then run `edit apply` to re-apply every edit file as one set',
    });
  }
  if (json.version !== 2) fail('/version', `unsupported state version ${JSON.stringify(json.version)} (expected 2)`);
  if (typeof json.serial !== 'number' || !Number.isSafeInteger(json.serial) || json.serial < 0) fail('/serial', 'must be a non-negative integer');
  if (!isObj(json.base) || !isSha(json.base.sha256)) fail('/base/sha256', 'must be a hex sha256');
  if (!isObj(json.effective) || !isSha(json.effective.sha256)) fail('/effective/sha256', 'must be a hex sha256');
  if (json.manifest !== undefined && (!isObj(json.manifest) || !isSha(json.manifest.sha256))) fail('/manifest/sha256', 'must be a hex sha256');
  if (json.editor !== null && json.editor !== undefined) {
    if (!isObj(json.editor) || typeof json.editor.method !== 'string') fail('/editor', 'must be null or {method, sha256}');
  }
  if (!isObj(json.edits)) return fail('/edits', 'must be an object keyed by edit id');
  for (const [id, e] of Object.entries(json.edits)) {
    const at = `/edits/${id.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!isObj(e)) return fail(at, 'must be an object');
    if (!isSha(e.specSha256)) fail(`${at}/specSha256`, 'must be a hex sha256');
    if (typeof e.method !== 'string') fail(`${at}/method`, 'must be a string');
    if (e.rows !== null) {
      if (!isObj(e.rows)) return fail(`${at}/rows`, 'must be null or {file, sha256, count}');
      if (typeof e.rows.file !== 'string') fail(`${at}/rows/file`, 'must be a path relative to the model folder');
      if (!isSha(e.rows.sha256)) fail(`${at}/rows/sha256`, 'must be a hex sha256');
      if (typeof e.rows.count !== 'number' || !Number.isSafeInteger(e.rows.count) || e.rows.count < 0) fail(`${at}/rows/count`, 'must be a non-negative integer');
    }
    if (!isObj(e.metrics)) fail(`${at}/metrics`, 'must be an object');
  }
  if (json.delta !== null) {
    if (!isObj(json.delta)) return fail('/delta', 'must be null or {file, sha256, layers, capacity}');
    if (typeof json.delta.file !== 'string') fail('/delta/file', 'must be a path relative to the model folder');
    if (!isSha(json.delta.sha256)) fail('/delta/sha256', 'must be a hex sha256');
    if (!Array.isArray(json.delta.layers) || !json.delta.layers.every((l) => typeof l === 'string')) fail('/delta/layers', 'must be a list of layer names');
    if (!Array.isArray(json.delta.capacity)) fail('/delta/capacity', 'must be a list');
    const solver = json.delta.solver;
    if (solver !== undefined && (!isObj(solver) || typeof solver.method !== 'string' || typeof solver.revision !== 'number' || !Number.isSafeInteger(solver.revision) || solver.revision < 1)) {
      fail('/delta/solver', 'must be {method, revision} with a positive integer revision');
    }
  }
  if (json.stats !== null && (!isObj(json.stats) || !isSha(json.stats.sha256))) fail('/stats/sha256', 'must be null or a hex sha256');
  return { ...(json as unknown as ModelState), editor: (json.editor ?? null) as ModelState['editor'] };
}
