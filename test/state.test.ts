import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { EditError } from '../src/errors.js';
import type { ModelManifest } from '../src/model/folder.js';
import { deltaFileName, serializeDelta } from '../src/state/deltas.js';
import { checkDrift, effectiveSha, emptyState, readState, strayDeltaFiles, writeState } from '../src/state/state.js';
import type { AppliedEdit, ModelState } from '../src/state/types.js';
import { sha256 } from '../src/util/hash.js';

const BASE_BYTES = new TextEncoder().encode('pretend these are base weights');
const BASE_SHA = sha256(BASE_BYTES);

function manifest(): ModelManifest {
  return {
    version: 1,
    name: 'test',
    architecture: 'gpt2',
    config: { vocabSize: 10, nPositions: 8, nEmbd: 4, nLayer: 1, nHead: 1, layerNormEps: 1e-5 },
    tokenizer: { file: 'tokenizer.json', sha256: '0'.repeat(64) },
    weights: { file: 'base.safetensors', sha256: BASE_SHA, dtype: 'F32' },
    editableLayers: ['h.0.mlp.c_fc'],
    editor: { file: 'editor.safetensors', sha256: 'e'.repeat(64), method: 'instructedit' },
    thresholds: { reliability: 1, generalization: 0.5, locality: 0.9, portability: 0 },
  };
}

function applied(delta: AppliedEdit['delta'], spec = 'a'): AppliedEdit {
  return {
    specSha256: sha256(spec),
    method: 'instructedit',
    delta,
    metrics: { reliability: 1, generalization: 1, locality: 1, portability: null, passed: 3, total: 3 },
    appliedAt: '2025-01-01T00:00:00.000Z',
  };
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'editops-state-'));
  await writeFile(join(dir, 'base.safetensors'), BASE_BYTES);
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest()));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Write a real delta file for `id` (at its content-addressed place) and return its state entry. */
async function addDelta(id: string, value: number): Promise<AppliedEdit> {
  const bytes = serializeDelta({ layers: { 'h.0.mlp.c_fc.weight': { kind: 'dense', shape: [2, 2], data: new Float32Array([value, 0, 0, value]) } } }, { id, method: 'instructedit' });
  const file = deltaFileName(id, sha256(bytes));
  await mkdir(dirname(join(dir, file)), { recursive: true });
  await writeFile(join(dir, file), bytes);
  return applied({ file, sha256: sha256(bytes), layers: ['h.0.mlp.c_fc'], rank: null }, id);
}

/** A consistent state with two deltas (one nested) and one "already satisfied" edit. */
async function stateWithEdits(): Promise<ModelState> {
  const state = emptyState(manifest(), BASE_SHA);
  state.serial = 3;
  state.edits['geo/france'] = await addDelta('geo/france', 1);
  state.edits.spain = await addDelta('spain', 2);
  state.edits.satisfied = applied(null, 'satisfied');
  state.effective.sha256 = effectiveSha(BASE_SHA, state.edits);
  return state;
}

describe('state.json', () => {
  it('a missing state.json is the empty state, with no sha256', async () => {
    const { state, sha256: sha } = await readState(dir);
    expect(sha).toBeNull();
    expect(state).toEqual(emptyState(manifest(), BASE_SHA));
    expect(state.editor).toEqual({ method: 'instructedit', sha256: 'e'.repeat(64) });
    expect(state.effective.sha256).toBe(effectiveSha(BASE_SHA, {}));
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
    const shuffled = reverse({ ...state, edits: reverse(Object.fromEntries(Object.entries(state.edits).map(([k, e]) => [k, reverse({ ...e, metrics: reverse(e.metrics) })]))) });
    await writeState(dir, shuffled);
    expect(await readFile(join(dir, 'state.json'), 'utf8')).toBe(first);
    expect(Object.keys(JSON.parse(first))).toEqual(['version', 'serial', 'base', 'editor', 'manifest', 'effective', 'edits']);
    expect(Object.keys(JSON.parse(first).edits)).toEqual(['geo/france', 'satisfied', 'spain']);
    expect(Object.keys(JSON.parse(first).edits.spain)).toEqual(['specSha256', 'method', 'delta', 'metrics', 'appliedAt']);
  });

  it('names the file and the line of bad JSON', async () => {
    await writeFile(join(dir, 'state.json'), '{\n  "version": 1,\n  "serial": 2\n  "base": {}\n}\n');
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
});

describe('effectiveSha', () => {
  it('does not depend on the order edits were inserted', async () => {
    const a = applied({ file: 'deltas/a.safetensors', sha256: '1'.repeat(64), layers: [], rank: 4 });
    const b = applied({ file: 'deltas/b.safetensors', sha256: '2'.repeat(64), layers: [], rank: 4 });
    const c = applied(null);
    expect(effectiveSha(BASE_SHA, { a, b, c })).toBe(effectiveSha(BASE_SHA, { c, b, a }));
  });

  it('changes with the base, a delta hash, or the set of edits; not with a delta-less edit', () => {
    const a = applied({ file: 'deltas/a.safetensors', sha256: '1'.repeat(64), layers: [], rank: 4 });
    const a2 = applied({ file: 'deltas/a.safetensors', sha256: '3'.repeat(64), layers: [], rank: 4 });
    const ref = effectiveSha(BASE_SHA, { a });
    expect(effectiveSha('f'.repeat(64), { a })).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, { a: a2 })).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, { b: a })).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, {})).not.toBe(ref);
    expect(effectiveSha(BASE_SHA, { a, z: applied(null) })).toBe(ref);
  });
});

describe('checkDrift', () => {
  const fileOf = (state: ModelState, id: string) => join(dir, state.edits[id].delta!.file);

  it('finds nothing when files match state', async () => {
    const state = await stateWithEdits();
    expect(state.edits.spain.delta!.file).toMatch(/^deltas\/spain@[0-9a-f]{12}\.safetensors$/);
    expect(state.edits.spain.delta!.file).toBe(`deltas/spain@${state.edits.spain.delta!.sha256.slice(0, 12)}.safetensors`);
    // Leftovers of an interrupted atomic write are neither drift nor stray.
    await writeFile(join(dir, 'deltas', '.spain.safetensors.tmp-123-abcd'), 'x');
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [] });
  });

  it('reports a modified delta', async () => {
    const state = await stateWithEdits();
    await writeFile(fileOf(state, 'geo/france'), 'tampered');
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(fileOf(state, 'geo/france'));
    expect(drift[0].message).toMatch(/delta of edit "geo\/france" has sha256 .* state\.json says/);
  });

  it('reports a missing delta', async () => {
    const state = await stateWithEdits();
    await unlink(fileOf(state, 'spain'));
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [{ file: fileOf(state, 'spain'), message: 'delta of edit "spain" is missing' }], stray: [] });
  });

  it('lists a delta file no edit names as stray, not as drift (it changes no weight)', async () => {
    const state = await stateWithEdits();
    await mkdir(join(dir, 'deltas/old'), { recursive: true });
    await writeFile(join(dir, 'deltas/old/italy.safetensors'), 'x');
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [join(dir, 'deltas/old/italy.safetensors')] });
    expect(await strayDeltaFiles(dir, state)).toEqual(['deltas/old/italy.safetensors']);
  });

  it('a killed update (new delta written, state.json not) leaves the old state without drift and the new file stray', async () => {
    const state = await stateWithEdits();
    const before = await readFile(fileOf(state, 'spain'));
    const killed = { ...state, edits: { ...state.edits, spain: await addDelta('spain', 7) } };
    expect(killed.edits.spain.delta!.file).not.toBe(state.edits.spain.delta!.file);
    expect(await readFile(fileOf(state, 'spain'))).toEqual(before);
    expect(await checkDrift(dir, manifest(), state)).toEqual({ drift: [], stray: [fileOf(killed, 'spain')] });
  });

  it('reports a delta file that is not at its content-addressed place', async () => {
    const state = await stateWithEdits();
    const spain = state.edits.spain.delta!;
    for (const file of ['deltas/spain.safetensors', 'deltas/spain@000000000000.safetensors', `deltas/france@${spain.sha256.slice(0, 12)}.safetensors`]) {
      const moved = { ...state, edits: { ...state.edits, spain: { ...state.edits.spain, delta: { ...spain, file } } } };
      const { drift } = await checkDrift(dir, manifest(), moved);
      expect(drift, file).toEqual([{ file: join(dir, 'state.json'), message: `edit "spain" names delta file "${file}", which is not its place in deltas/ (expected ${spain.file}: the id, "@" and the first 12 hex of its sha256)` }]);
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

  it('reports a changed model.json (thresholds), not its provenance or knowledge', async () => {
    const state = await stateWithEdits();
    expect((await checkDrift(dir, { ...manifest(), provenance: { x: 1 }, knowledge: { y: 2 }, $schema: 'z' }, state)).drift).toEqual([]);
    const { drift } = await checkDrift(dir, { ...manifest(), thresholds: { ...manifest().thresholds, reliability: 0.1 } }, state);
    expect(drift).toEqual([{ file: join(dir, 'model.json'), message: 'model.json changed since the edits were applied (thresholds, layers or editor): run `edit apply --refresh` to re-verify every edit' }]);
  });

  it('reports an effective hash that does not recompute', async () => {
    const state = await stateWithEdits();
    state.effective.sha256 = 'a'.repeat(64);
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift).toHaveLength(1);
    expect(drift[0].file).toBe(join(dir, 'state.json'));
    expect(drift[0].message).toContain('effective sha256');
  });

  it('reports a delta path in state.json that leaves the deltas folder', async () => {
    const state = await stateWithEdits();
    state.edits.spain = { ...state.edits.spain, delta: { ...state.edits.spain.delta!, file: '../../etc/passwd' } };
    const { drift } = await checkDrift(dir, manifest(), state);
    expect(drift.some((p) => p.file === join(dir, 'state.json') && p.message.includes('../../etc/passwd'))).toBe(true);
  });
});
