import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { EditError } from '../src/errors.js';
import type { ModelManifest } from '../src/model/folder.js';
import { canonicalJson } from '../src/spec/load.js';
import { deltaFileName, serializeDelta, SET_DELTA_NAME } from '../src/state/deltas.js';
import { rowsFileName, serializeRows } from '../src/state/rows.js';
import { checkDrift, effectiveSha, emptyState, outdatedSolver, readState, solverRecord, strayFiles, writeState } from '../src/state/state.js';
import { EDITOR_INFO } from '../src/editor/settings.js';
import type { AppliedEdit, ModelState } from '../src/state/types.js';
import { sha256 } from '../src/util/hash.js';

const BASE_BYTES = new TextEncoder().encode('pretend these are base weights');
const BASE_SHA = sha256(BASE_BYTES);
const STATS_BYTES = new TextEncoder().encode('pretend these are key statistics');
const SETTINGS = { lambda: 30 };

function manifest(): ModelManifest {
  return {
    version: 1,
    name: 'test',
    architecture: 'gpt2',
    config: { vocabSize: 10, nPositions: 8, nEmbd: 4, nLayer: 1, nHead: 1, layerNormEps: 1e-5 },
    tokenizer: { file: 'tokenizer.json', sha256: '0'.repeat(64) },
    weights: { file: 'base.safetensors', sha256: BASE_SHA, dtype: 'F32' },
    editableLayers: ['h.0.mlp.c_proj'],
    editor: { method: 'memit', settings: SETTINGS },
    stats: { file: 'stats.safetensors', sha256: sha256(STATS_BYTES) },
    thresholds: { reliability: 1, generalization: 0.5, locality: 0.9, portability: 0 },
  };
}

function applied(rows: AppliedEdit['rows'], spec = 'a'): AppliedEdit {
  return {
    specSha256: sha256(spec),
    method: rows === null ? 'none' : 'memit',
    rows,
    metrics: { reliability: 1, generalization: 1, locality: 1, portability: null, passed: 3, total: 3 },
    appliedAt: '2025-01-01T00:00:00.000Z',
  };
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'editops-state-'));
  await writeFile(join(dir, 'base.safetensors'), BASE_BYTES);
  await writeFile(join(dir, 'stats.safetensors'), STATS_BYTES);
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest()));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function place(rel: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), bytes);
}

/** Write a real rows file for `id` (at its content-addressed place) and return its state entry. */
async function addRows(id: string, value: number): Promise<AppliedEdit> {
  const bytes = serializeRows({ tensors: { keys: { dtype: 'F32', shape: [1, 2], data: new Float32Array([value, 1]) }, positions: { dtype: 'I32', shape: [1], data: new Int32Array([3]) } } }, { id, method: 'memit', specSha256: sha256(id) });
  const file = rowsFileName(id, sha256(bytes));
  await place(file, bytes);
  return applied({ file, sha256: sha256(bytes), count: 1 }, id);
}

/** Write a real set delta file (at its content-addressed place) and return its state entry. */
async function addSetDelta(value: number): Promise<NonNullable<ModelState['delta']>> {
  const bytes = serializeDelta({ layers: { 'h.0.mlp.c_proj.weight': { kind: 'dense', shape: [2, 2], data: new Float32Array([value, 0, 0, value]) } } }, { id: SET_DELTA_NAME, method: 'memit' });
  const file = deltaFileName(SET_DELTA_NAME, sha256(bytes));
  await place(file, bytes);
  return { file, sha256: sha256(bytes), layers: ['h.0.mlp.c_proj'], capacity: [{ layer: 'h.0.mlp.c_proj', rows: 2, keyDim: 16 }], solver: solverRecord('memit') };
}

/** A consistent state with two edits' rows (one nested), one "already satisfied" edit and the set's delta. */
async function stateWithEdits(): Promise<ModelState> {
  const state = emptyState(manifest(), BASE_SHA);
  state.serial = 3;
  state.edits['geo/france'] = await addRows('geo/france', 1);
  state.edits.spain = await addRows('spain', 2);
  state.edits.satisfied = applied(null, 'satisfied');
  state.delta = await addSetDelta(1);
  state.effective.sha256 = effectiveSha(BASE_SHA, state.delta.sha256);
  return state;
}

describe('state.json', () => {
  it('a missing state.json is the empty state, with no sha256', async () => {
    const { state, sha256: sha } = await readState(dir);
    expect(sha).toBeNull();
    expect(state).toEqual(emptyState(manifest(), BASE_SHA));
    expect(state.version).toBe(2);
    expect(state.editor).toEqual({ method: 'memit', sha256: sha256(canonicalJson(SETTINGS)) });
    expect(state.stats).toEqual({ sha256: sha256(STATS_BYTES) });
    expect(state.delta).toBeNull();
    expect(state.effective.sha256).toBe(effectiveSha(BASE_SHA, null));
  });

  it('round-trips, with the sha256 of the bytes written', async () => {
    const state = await stateWithEdits();
    const written = await writeState(dir, state);
    const text = await readFile(join(dir, 'state.json'), 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "serial": 3,');
    const back = await readState(dir);
    expect(back.state).toEqual(state);
    expect(back.sha256).toBe(written);
    expect(back.sha256).toBe(sha256(text));
  });

  it('writes keys in a stable order whatever order they were built in', async () => {
    const state = await stateWithEdits();
    await writeState(dir, state);
    const first = await readFile(join(dir, 'state.json'), 'utf8');
    // Same content, keys inserted in reverse everywhere.
    const reverse = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).reverse()) as T;
    const shuffled = reverse({
      ...state,
      delta: reverse({ ...state.delta!, solver: reverse(state.delta!.solver!) }),
      edits: reverse(Object.fromEntries(Object.entries(state.edits).map(([k, e]) => [k, reverse({ ...e, rows: e.rows === null ? null : reverse(e.rows), metrics: reverse(e.metrics) })]))),
    });
    await writeState(dir, shuffled);
    expect(await readFile(join(dir, 'state.json'), 'utf8')).toBe(first);
    const json = JSON.parse(first);
    expect(Object.keys(json)).toEqual(['version', 'serial', 'base', 'editor', 'stats', 'manifest', 'delta', 'effective', 'edits']);
    expect(Object.keys(json.delta)).toEqual(['file', 'sha256', 'layers', 'capacity', 'solver']);
    expect(Object.keys(json.edits)).toEqual(['geo/france', 'satisfied', 'spain']);
    expect(Object.keys(json.edits.spain)).toEqual(['specSha256', 'method', 'rows', 'metrics', 'appliedAt']);
    expect(Object.keys(json.edits.spain.rows)).toEqual(['file', 'sha256', 'count']);
  });

  it('names the file and the line of bad JSON', async () => {
    await writeFile(join(dir, 'state.json'), '{\n  "version": 2,\n  "serial": 2\n  "base": {}\n}\n');
    const err = await readState(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EditError);
    const text = (err as EditError).format();
    expect(text).toContain(join(dir, 'state.json'));
    expect(text).toMatch(/line 4/);
  });

  it('names the JSON pointer of a structurally wrong state', async () => {
    const state = await stateWithEdits();
    await writeFile(join(dir, 'state.json'), JSON.stringify({ ...state, edits: { ...state.edits, spain: { ...state.edits.spain, specSha256: 'nope' } } }));
    const err = (await readState(dir).catch((e: unknown) => e)) as EditError;
    expect(err).toBeInstanceOf(EditError);
    expect(err.options.pointer).toBe('/edits/spain/specSha256');
  });

  it('names the JSON pointer of a wrong rows entry and of a wrong set delta', async () => {
    const state = await stateWithEdits();
    const cases: Array<[object, string]> = [
      [{ ...state, edits: { ...state.edits, spain: { ...state.edits.spain, rows: { ...state.edits.spain.rows!, count: -1 } } } }, '/edits/spain/rows/count'],
      [{ ...state, edits: { ...state.edits, spain: { ...state.edits.spain, rows: { ...state.edits.spain.rows!, sha256: 'x' } } } }, '/edits/spain/rows/sha256'],
      [{ ...state, delta: { ...state.delta!, sha256: 'x' } }, '/delta/sha256'],
      [{ ...state, delta: { ...state.delta!, layers: [1] } }, '/delta/layers'],
      [{ ...state, delta: 'deltas/set.safetensors' }, '/delta'],
      [{ ...state, delta: { ...state.delta!, solver: { method: 'memit', revision: 0 } } }, '/delta/solver'],
      [{ ...state, delta: { ...state.delta!, solver: 'memit' } }, '/delta/solver'],
    ];
    for (const [json, pointer] of cases) {
      await writeFile(join(dir, 'state.json'), JSON.stringify(json));
      const err = (await readState(dir).catch((e: unknown) => e)) as EditError;
      expect(err, pointer).toBeInstanceOf(EditError);
      expect(err.options.pointer, pointer).toBe(pointer);
    }
  });

  it('refuses a version-1 state.json (per-edit deltas) with a hint to re-apply the set', async () => {
    await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 1, serial: 1, base: { sha256: BASE_SHA }, editor: null, effective: { sha256: BASE_SHA }, edits: {} }));
    const err = (await readState(dir).catch((e: unknown) => e)) as EditError;
    expect(err).toBeInstanceOf(EditError);
    expect(err.options.pointer).toBe('/version');
    expect(err.message).toContain('version 1');
    expect(err.options.hint).toContain('edit apply');
    await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 3 }));
    const err3 = (await readState(dir).catch((e: unknown) => e)) as EditError;
    expect(err3.message).toContain('unsupported state version 3 (expected 2)');
  });
});

describe('effectiveSha', () => {
  it('is the base itself without a set delta, and changes with the base or the set delta hash', () => {
    const ref = effectiveSha(BASE_SHA, '1'.repeat(64));
    expect(effectiveSha(BASE_SHA, '1'.repeat(64))).toBe(ref);
    expect(effectiveSha('f'.repeat(64), '1'.repeat(64))).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, '3'.repeat(64))).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, null)).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, null)).toBe(effectiveSha(BASE_SHA, null));
    expect(effectiveSha(BASE_SHA, null)).not.toBe(effectiveSha('f'.repeat(64), null));
  });
});

describe('checkDrift', () => {
  const rowsOf = (state: ModelState, id: string) => join(dir, state.edits[id].rows!.file);
  const deltaOf = (state: ModelState) => join(dir, state.delta!.file);

  it('finds nothing when files match state', async () => {
    const state = await stateWithEdits();
    expect(state.edits.spain.rows!.file).toMatch(/^rows\/spain@[0-9a-f]{12}\.safetensors$/);
    expect(state.edits.spain.rows!.file).toBe(`rows/spain@${state.edits.spain.rows!.sha256.slice(0, 12)}.safetensors`);
    expect(state.edits['geo/france'].rows!.file).toMatch(/^rows\/geo\/france@[0-9a-f]{12}\.safetensors$/);
    expect(state.delta!.file).toBe(`deltas/set@${state.delta!.sha256.slice(0, 12)}.safetensors`);
    // Leftovers of an interrupted atomic write are neither drift nor stray.
    await writeFile(join(dir, 'rows', '.spain.safetensors.tmp-123-abcd'), 'x');
    await writeFile(join(dir, 'deltas', '.set.safetensors.tmp-123-abcd'), 'x');
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [] });
  });

  it('reports a modified rows file', async () => {
    const state = await stateWithEdits();
    await writeFile(rowsOf(state, 'geo/france'), 'tampered');
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(rowsOf(state, 'geo/france'));
    expect(drift[0].message).toMatch(/^rows of edit "geo\/france" has sha256 .* state\.json says .*: it changed outside editops$/);
  });

  it('reports a modified set delta file', async () => {
    const state = await stateWithEdits();
    await writeFile(deltaOf(state), 'tampered');
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(deltaOf(state));
    expect(drift[0].message).toMatch(/^the solved change of the edit set has sha256 .* state\.json says .*: it changed outside editops$/);
  });

  it('reports a missing rows file and a missing set delta file', async () => {
    const state = await stateWithEdits();
    await unlink(rowsOf(state, 'spain'));
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [{ file: rowsOf(state, 'spain'), message: 'rows of edit "spain" is missing' }], stray: [] });
    await unlink(deltaOf(state));
    expect((await checkDrift(dir, manifest(), state)).drift).toEqual([
      { file: rowsOf(state, 'spain'), message: 'rows of edit "spain" is missing' },
      { file: deltaOf(state), message: 'the solved change of the edit set is missing' },
    ]);
  });

  it('lists rows and delta files the state does not name as stray, not as drift (they change no weight)', async () => {
    const state = await stateWithEdits();
    await place('deltas/old/italy.safetensors', new Uint8Array([1]));
    await place('rows/italy@000000000000.safetensors', new Uint8Array([1]));
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [join(dir, 'rows/italy@000000000000.safetensors'), join(dir, 'deltas/old/italy.safetensors')] });
    expect(await strayFiles(dir, state)).toEqual(['rows/italy@000000000000.safetensors', 'deltas/old/italy.safetensors']);
  });

  it('a killed update (new rows and set delta written, state.json not) leaves the old state without drift and the new files stray', async () => {
    const state = await stateWithEdits();
    const rowsBefore = await readFile(rowsOf(state, 'spain'));
    const deltaBefore = await readFile(deltaOf(state));
    const killed = { ...state, edits: { ...state.edits, spain: await addRows('spain', 7) }, delta: await addSetDelta(7) };
    expect(killed.edits.spain.rows!.file).not.toBe(state.edits.spain.rows!.file);
    expect(killed.delta.file).not.toBe(state.delta!.file);
    expect(await readFile(rowsOf(state, 'spain'))).toEqual(rowsBefore);
    expect(await readFile(deltaOf(state))).toEqual(deltaBefore);
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [rowsOf(killed, 'spain'), deltaOf(killed)] });
  });

  it('reports a rows file that is not at its content-addressed place', async () => {
    const state = await stateWithEdits();
    const spain = state.edits.spain.rows!;
    for (const file of ['rows/spain.safetensors', 'rows/spain@000000000000.safetensors', `rows/france@${spain.sha256.slice(0, 12)}.safetensors`, `deltas/spain@${spain.sha256.slice(0, 12)}.safetensors`]) {
      const moved = { ...state, edits: { ...state.edits, spain: { ...state.edits.spain, rows: { ...spain, file } } } };
      const { drift } = await checkDrift(dir, manifest(), moved);
      expect(drift, file).toEqual([{ file: join(dir, 'state.json'), message: `rows of edit "spain" is named "${file}", which is not its place (expected ${spain.file}: the name, "@" and the first 12 hex of its sha256)` }]);
    }
  });

  it('reports a set delta file that is not at its content-addressed place', async () => {
    const state = await stateWithEdits();
    const delta = state.delta!;
    for (const file of ['deltas/set.safetensors', 'deltas/set@000000000000.safetensors', `deltas/all@${delta.sha256.slice(0, 12)}.safetensors`, `rows/set@${delta.sha256.slice(0, 12)}.safetensors`]) {
      const { drift } = await checkDrift(dir, manifest(), { ...state, delta: { ...delta, file } });
      expect(drift, file).toEqual([{ file: join(dir, 'state.json'), message: `the solved change of the edit set is named "${file}", which is not its place (expected ${delta.file}: the name, "@" and the first 12 hex of its sha256)` }]);
    }
  });

  it('reports modified base weights against state and manifest', async () => {
    const state = await stateWithEdits();
    await writeFile(join(dir, 'base.safetensors'), 'other weights');
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift.map((p) => p.file)).toEqual([join(dir, 'base.safetensors'), join(dir, 'base.safetensors')]);
    expect(drift[0].message).toContain('state.json');
    expect(drift[1].message).toContain('model.json');
  });

  it('reports a base that matches the manifest but not the state (the base was replaced)', async () => {
    const state = await stateWithEdits();
    const m = { ...manifest(), weights: { ...manifest().weights, sha256: sha256('new base') } };
    await writeFile(join(dir, 'base.safetensors'), 'new base');
    const { drift } = await checkDrift(dir, m, state);
    // model.json's weights hash is part of the manifest hash: a new base is also a changed model.json.
    expect(drift).toHaveLength(2);
    expect(drift[0].message).toContain('does not match state.json');
    expect(drift[1].file).toBe(join(dir, 'model.json'));
    expect(drift[1].message).toContain('model.json changed since the edits were applied');
  });

  it('reports a modified or missing key statistics file', async () => {
    const state = await stateWithEdits();
    await writeFile(join(dir, 'stats.safetensors'), 'other statistics');
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(join(dir, 'stats.safetensors'));
    expect(drift[0].message).toMatch(/^key statistics sha256 .* does not match model\.json .*: the file changed outside editops$/);
    await unlink(join(dir, 'stats.safetensors'));
    expect((await checkDrift(dir, manifest(), state)).drift).toEqual([{ file: join(dir, 'stats.safetensors'), message: 'key statistics file is missing' }]);
  });

  it('reports a changed model.json (thresholds, editor settings), not its provenance or knowledge', async () => {
    const state = await stateWithEdits();
    expect((await checkDrift(dir, { ...manifest(), provenance: { x: 1 }, knowledge: { y: 2 }, $schema: 'z' }, state)).drift).toEqual([]);
    const changed = { file: join(dir, 'model.json'), message: 'model.json changed since the edits were applied (thresholds, layers or editor): run `edit apply --refresh` to re-verify every edit' };
    expect((await checkDrift(dir, { ...manifest(), thresholds: { ...manifest().thresholds, reliability: 0.1 } }, state)).drift).toEqual([changed]);
    expect((await checkDrift(dir, { ...manifest(), editor: { method: 'memit', settings: { lambda: 100 } } }, state)).drift).toEqual([changed]);
  });

  it('reports a set solved by an earlier revision of its editor (recorded, or absent: revision 1 of its edits\' method) as drift of its own kind', async () => {
    const state = await stateWithEdits();
    const now = EDITOR_INFO.memit.revision;
    expect(now).toBeGreaterThan(1);
    const outdated = { file: join(dir, 'state.json'), kind: 'solver', message: `the edit set was solved by memit revision 1; this editops solves with revision ${now}: run \`edit apply --refresh\` to re-solve and re-verify every edit` };
    expect((await checkDrift(dir, manifest(), { ...state, delta: { ...state.delta!, solver: { method: 'memit', revision: 1 } } })).drift).toEqual([outdated]);
    const { solver: _solver, ...older } = state.delta!;
    expect((await checkDrift(dir, manifest(), { ...state, delta: older })).drift).toEqual([outdated]);
    // an editor this editops does not know, or no delta at all: nothing to compare
    expect((await checkDrift(dir, manifest(), { ...state, delta: { ...state.delta!, solver: { method: 'rome', revision: 1 } } })).drift).toEqual([]);
    expect(outdatedSolver({ ...state, delta: null })).toBeUndefined();
  });

  it('reports an effective hash that does not recompute', async () => {
    const state = await stateWithEdits();
    state.effective.sha256 = 'a'.repeat(64);
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(join(dir, 'state.json'));
    expect(drift[0].message).toContain('effective sha256');
  });

  it('reports a rows or delta path in state.json that leaves the model folder', async () => {
    const state = await stateWithEdits();
    const escapedRows = { ...state, edits: { ...state.edits, spain: { ...state.edits.spain, rows: { ...state.edits.spain.rows!, file: '../../etc/passwd' } } } };
    const escapedDelta = { ...state, delta: { ...state.delta!, file: '../../etc/passwd' } };
    for (const s of [escapedRows, escapedDelta]) {
      const { drift } = await checkDrift(dir, manifest(), s);
      expect(drift.some((p) => p.file === join(dir, 'state.json') && p.message.includes('../../etc/passwd'))).toBe(true);
    }
  });
});
