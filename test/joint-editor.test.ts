/**
 * The editors' contract on the tiny 2-layer fixture, parameterised over the editor table: rows are
 * finite and independent of the edits computed alongside, the set's change touches only the
 * editor's layers, is the same bytes in any order, removal is exact, nothing leaks. Plus the
 * float64 solve the joint editor relies on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { importHfFolder } from '../src/model/hf.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { addGram, cholesky, choleskySolve, crossProduct, solveSpd } from '../src/editor/linalg.js';
import { computeKeyStats, parseKeyStats, serializeKeyStats, type KeyStats } from '../src/editor/stats.js';
import { EDITORS, EDITOR_METHODS, makeEditor, needsNetwork, type EditorSettings } from '../src/editor/registry.js';
import { HyperNet } from '../src/editor/mend/network.js';
import { preservedSequences, solveSet } from '../src/editor/set.js';
import { encodePair } from '../src/editor/batch.js';
import { sequenceKeys } from '../src/editor/mend/capture.js';
import type { EditRequest, EditRows, EditorContext, SetEditor } from '../src/editor/editor.js';
import { serializeDelta } from '../src/state/deltas.js';
import { parseRows, serializeRows } from '../src/state/rows.js';
import { MEMIT_DEFAULTS } from '../src/editor/joint.js';
import { innerDim } from '../src/model/config.js';

const ROOT = join(import.meta.dirname, '..');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

describe('float64 solve', () => {
  it('Cholesky solves a symmetric positive definite system to machine precision', () => {
    const r = rng(3);
    const n = 40;
    const d = 12;
    const m = 5;
    const x = Float64Array.from({ length: n * d }, r);
    const a = new Float64Array(d * d);
    for (let i = 0; i < d; i++) a[i * d + i] = 0.5;
    addGram(a, x, n, d);
    const b = Float64Array.from({ length: d * m }, r);
    const sol = solveSpd(a, b, d, m);
    // A·X = B
    let err = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += a[i * d + k] * sol[k * m + j];
        err = Math.max(err, Math.abs(s - b[i * m + j]));
      }
    }
    expect(err).toBeLessThan(1e-10);
  });

  it('addGram and crossProduct equal their definitions; Cholesky refuses a matrix that is not positive definite', () => {
    const r = rng(5);
    const x = Float32Array.from({ length: 6 * 3 }, r);
    const y = Float32Array.from({ length: 6 * 2 }, r);
    const g = new Float64Array(9);
    addGram(g, x, 6, 3, 2);
    const c = crossProduct(x, y, 6, 3, 2);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let k = 0; k < 6; k++) s += x[k * 3 + i] * x[k * 3 + j];
        expect(g[i * 3 + j]).toBeCloseTo(2 * s, 12);
      }
      for (let j = 0; j < 2; j++) {
        let s = 0;
        for (let k = 0; k < 6; k++) s += x[k * 3 + i] * y[k * 2 + j];
        expect(c[i * 2 + j]).toBeCloseTo(s, 12);
      }
    }
    expect(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2)).toThrow(/not positive definite/);
    const l = Float64Array.from([4, 2, 2, 3]);
    cholesky(l, 2);
    const one = Array.from(choleskySolve(l, Float64Array.from([6, 5]), 2, 1));
    expect(one[0]).toBeCloseTo(1, 12);
    expect(one[1]).toBeCloseTo(1, 12);
  });
});

describe.each(EDITOR_METHODS)('editor %s on the tiny fixture', (method) => {
  let dir: string;
  let loaded: LoadedModel;
  let stats: KeyStats;
  let ctx: EditorContext;
  const edits: EditRequest[] = [
    { id: 'a', task: 'counterfact', instruction: '', prompt: 'The capital of France is', target: ' Lyon', rephrase: [] },
    { id: 'b', task: 'counterfact', instruction: '', prompt: 'The currency of Japan is', target: ' Euro coins', rephrase: [] },
    { id: 'c', task: 'counterfact', instruction: '', prompt: 'I think Esperanto is', target: ' dull', rephrase: [] },
  ];
  const settings = { ...EDITORS[method].defaults, ...(method === 'ft' ? { steps: 8 } : { residualSteps: 8 }) };
  // a hypernetwork editor gets a fresh network for the fixture (the contract holds for any network)
  let editor: SetEditor = needsNetwork(method) ? (undefined as unknown as SetEditor) : makeEditor(settings as EditorSettings);
  let network: HyperNet | undefined;
  const bytes = (rows: EditRows, id: string) => serializeRows(rows, { id, method, specSha256: '0'.repeat(64) });

  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), `editops-${method}-`));
    await importHfFolder(join(ROOT, 'test/fixtures/tiny-gpt2'), dir, 'tiny');
    loaded = await loadModelFolder(dir);
    const layers = loaded.manifest.editableLayers.filter((l) => l.endsWith('mlp.c_proj'));
    stats = computeKeyStats(loaded.model, loaded.tokenizer, layers, { texts: ['The capital of Spain is Madrid.', 'Paris is in France.', 'I think Latin is old.'], prompts: ['The capital of Spain is', 'The currency of Peru is'], promptWeight: 10 });
    ctx = { model: loaded.model, tokenizer: loaded.tokenizer, layers: loaded.manifest.editableLayers, stats };
    if (needsNetwork(method)) {
      const keyDims = Object.fromEntries(layers.map((l) => [l, loaded.model.params[`${l}.weight`].shape[0] as number]));
      const valueDim = loaded.model.params[`${layers[0]}.weight`].shape[1] as number;
      const unit = Object.fromEntries(layers.map((l) => [l, { mean: new Float32Array(keyDims[l]), std: new Float32Array(keyDims[l]).fill(1) }]));
      const condDim = method === 'instructedit' ? loaded.model.config.nEmbd : 0;
      network = HyperNet.init({ layers, keyDims, valueDim, hidden: 16, condDim }, unit, { seed: 1 });
      editor = makeEditor({ ...(settings as EditorSettings), lambda: 30 } as EditorSettings, { network });
    }
  });
  afterAll(async () => {
    editor.dispose?.();
    loaded.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('computes finite rows that do not depend on the edits computed alongside, and round-trip through a rows file', async () => {
    const alone = await editor.computeRows(ctx, [edits[0]]);
    const together = await editor.computeRows(ctx, edits);
    expect(bytes(together.get('a')!, 'a')).toEqual(bytes(alone.get('a')!, 'a'));
    for (const [id, rows] of together) {
      const file = bytes(rows, id);
      expect(parseRows(file, 'rows.safetensors', id, method)).toEqual(rows);
      for (const t of Object.values(rows.tensors)) if (t.dtype === 'F32') expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
    expect(() => parseRows(bytes(alone.get('a')!, 'a'), 'rows.safetensors', 'b', method)).toThrow(/belong to edit "a", expected "b"/);
  });

  it('solves the set to the same bytes in any order, changes only its layers, and removal is exact', async () => {
    const before = tf.memory().numTensors;
    const all = await solveSet(ctx, editor, edits);
    const shuffled = await solveSet(ctx, editor, [edits[2], edits[0], edits[1]], all.rows);
    const meta = { id: 'set', method };
    expect(serializeDelta(shuffled.delta, meta)).toEqual(serializeDelta(all.delta, meta));
    expect(shuffled.computed).toEqual([]);
    const layers = editor.editedLayers(ctx.layers);
    expect(Object.keys(all.delta.layers).sort()).toEqual(layers.map((l) => `${l}.weight`).sort());
    // without c: the same bytes as a set that never had it, from scratch
    const withoutC = await solveSet(ctx, editor, edits.slice(0, 2), all.rows);
    const never = await solveSet(ctx, editor, edits.slice(0, 2));
    expect(serializeDelta(withoutC.delta, meta)).toEqual(serializeDelta(never.delta, meta));
    expect(serializeDelta(withoutC.delta, meta)).not.toEqual(serializeDelta(all.delta, meta));
    // adding one edit to a cached set computes that edit's rows only
    const plusOne = await solveSet(ctx, editor, edits, never.rows);
    expect(plusOne.computed).toEqual(['c']);
    expect(serializeDelta(plusOne.delta, meta)).toEqual(serializeDelta(all.delta, meta));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports capacity for joint editors: rows per edited layer against the key dimension', async () => {
    const sol = await solveSet(ctx, editor, edits.slice(0, 1));
    if (!EDITORS[method].joint) {
      expect(sol.capacity).toEqual([]);
      return;
    }
    expect(sol.capacity.length).toBeGreaterThan(0);
    for (const c of sol.capacity) expect(c).toMatchObject({ rows: sol.rows.get('a')!.tensors.positions.shape[0], keyDim: innerDim(loaded.model.config) });
  });

  it('keeps a kept fact still at every position that predicts its object, its later tokens as well as its first', async () => {
    if (!EDITORS[method].joint) return;
    const kept = [{ prompt: 'The capital of Spain is', object: 'Madrid and Toledo' }];
    const [seq] = preservedSequences(loaded.tokenizer, loaded.model.config.nPositions, kept);
    const { ids, start } = encodePair(loaded.tokenizer, kept[0].prompt, ` ${kept[0].object}`);
    expect(seq.ids).toEqual(ids.slice(0, -1));
    expect(seq.positions).toEqual(Array.from({ length: ids.length - start }, (_, i) => start - 1 + i));
    expect(seq.positions.length).toBeGreaterThan(1);
    const layer = editor.editedLayers(ctx.layers)[0];
    const keys = sequenceKeys(loaded.model, [seq], [layer])[layer];
    // |k·ΔW| at each object position of the first edited layer (keys against the base weights)
    const moved = async (preserveWeight: number) => {
      const e = makeEditor({ ...(settings as EditorSettings), lambda: 30, preserveWeight } as EditorSettings, { network });
      const w = (await solveSet({ ...ctx, preserve: kept }, e, edits)).delta.layers[`${layer}.weight`];
      if (w.kind !== 'dense') throw new Error('dense delta expected');
      const [dk, dv] = w.shape;
      return seq.positions.map((_, r) => {
        let ss = 0;
        for (let j = 0; j < dv; j++) {
          let x = 0;
          for (let i = 0; i < dk; i++) x += keys[r * dk + i] * w.data[i * dv + j];
          ss += x * x;
        }
        return Math.sqrt(ss);
      });
    };
    const [free, held] = [await moved(0), await moved(1e4)];
    // unkept, the object's later tokens move most; kept, none moves more than 1% of that
    const most = Math.max(...free.slice(1));
    expect(most).toBeGreaterThan(free[0]);
    for (const h of held) expect(h).toBeLessThan(0.01 * most);
  });
});

describe('key statistics', () => {
  it('round-trip through stats.safetensors and refuse another kind of file', () => {
    const s: KeyStats = { layers: { 'h.1.mlp.c_proj': { dim: 2, second: Float64Array.from([1, 0.5, 0.5, 2]) } } };
    const bytes = serializeKeyStats(s, { note: 'x' });
    expect(parseKeyStats(bytes, 'stats.safetensors')).toEqual(s);
    expect(() => parseKeyStats(serializeDelta({ layers: { 'h.1.mlp.c_proj.weight': { kind: 'dense', shape: [1, 1], data: Float32Array.from([1]) } } }, { id: 'set', method: 'memit' }), 'x.safetensors')).toThrow(/not an editops key-statistics file/);
  });

  it('the memit defaults are the calibrated recipe', () => {
    expect(MEMIT_DEFAULTS).toMatchObject({ method: 'memit', residualSteps: 40, residualLr: 0.3, normPenalty: 0.5 });
  });
});
