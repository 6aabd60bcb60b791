import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { EditError } from '../src/errors.js';
import { sha256 } from '../src/util/hash.js';
import { serializeSafetensors } from '../src/model/safetensors.js';
import { deltaFileName, deltaPath, parseDelta, serializeDelta, SET_DELTA_NAME } from '../src/state/deltas.js';
import { deltaStats, densify, keyWeightedRelative, sumDeltas, type Delta, type LowRankDelta } from '../src/model/weight-change.js';
import { parseRows, rowCount, rowsFileName, serializeRows } from '../src/state/rows.js';
import type { EditRows } from '../src/editor/editor.js';
import { editErrorOf } from './helpers/errors.js';

/** Deterministic pseudo-random floats. */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function lowRank(inDim: number, out: number, rank: number, seed: number): LowRankDelta {
  return { kind: 'lowrank', a: floats(inDim * rank, seed), b: floats(rank * out, seed + 1), in: inDim, out, rank };
}

const META = { id: SET_DELTA_NAME, method: 'memit' };

function sample(): Delta {
  return {
    layers: {
      'h.3.mlp.c_fc.weight': lowRank(4, 6, 2, 1),
      'h.3.mlp.c_proj.weight': { kind: 'dense', shape: [6, 4], data: floats(24, 7) },
      'h.3.mlp.c_fc.bias': { kind: 'dense', shape: [6], data: floats(6, 9) },
    },
  };
}


describe('delta files', () => {
  it('round-trips dense, low-rank and bias deltas with their metadata', () => {
    const delta = sample();
    const bytes = serializeDelta(delta, { ...META, editor: 'abc' });
    const back = parseDelta(bytes, 'x.safetensors', SET_DELTA_NAME);
    expect(back.file).toBe('x.safetensors');
    expect(back.meta).toMatchObject({ format: 'editops-delta', version: '1', id: 'set', method: 'memit', editor: 'abc' });
    expect(Object.keys(back.layers)).toEqual(['h.3.mlp.c_fc.bias', 'h.3.mlp.c_fc.weight', 'h.3.mlp.c_proj.weight']);
    expect(back.layers['h.3.mlp.c_fc.weight']).toEqual(delta.layers['h.3.mlp.c_fc.weight']);
    expect(back.layers['h.3.mlp.c_proj.weight']).toEqual(delta.layers['h.3.mlp.c_proj.weight']);
    expect(back.layers['h.3.mlp.c_fc.bias']).toEqual(delta.layers['h.3.mlp.c_fc.bias']);
    // Serializing is deterministic: same delta, same bytes (and so the same sha256 in state.json).
    expect(serializeDelta(back, { ...META, editor: 'abc' })).toEqual(bytes);
  });

  it('stores low-rank weights as <param>.A and <param>.B', () => {
    const bytes = serializeDelta(sample(), META);
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { shape: number[] }>;
    expect(header['h.3.mlp.c_fc.weight.A'].shape).toEqual([4, 2]);
    expect(header['h.3.mlp.c_fc.weight.B'].shape).toEqual([2, 6]);
    expect(header['h.3.mlp.c_proj.weight'].shape).toEqual([6, 4]);
    expect(header['h.3.mlp.c_fc.bias'].shape).toEqual([6]);
  });

  it('refuses a delta with the wrong name (a per-edit delta of the old layout where the set delta belongs)', () => {
    const e = editErrorOf(() => parseDelta(serializeDelta(sample(), { id: 'geo/france', method: 'ft' }), 'd.safetensors', SET_DELTA_NAME));
    expect(e.format()).toContain('d.safetensors');
    expect(e.message).toBe('delta belongs to edit "geo/france", expected "set"');
  });

  it('refuses NaN and shape mismatches when writing', () => {
    const bad: Delta = { layers: { 'h.0.mlp.c_fc.weight': { kind: 'dense', shape: [2, 2], data: new Float32Array([1, NaN, 0, 0]) } } };
    expect(editErrorOf(() => serializeDelta(bad, META)).message).toContain('NaN');
    const wrong: Delta = { layers: { 'h.0.mlp.c_fc.weight': { kind: 'lowrank', a: new Float32Array(5), b: new Float32Array(6), in: 2, out: 3, rank: 2 } } };
    expect(editErrorOf(() => serializeDelta(wrong, META)).message).toContain('factor A');
    expect(editErrorOf(() => serializeDelta({ layers: {} }, META)).message).toContain('no parameter');
  });
});

describe('malformed delta files', () => {
  const file = '/m/deltas/x.safetensors';
  const meta = { format: 'editops-delta', version: '1', id: 'x', method: 'ft' };
  const t = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const cases: Array<[string, Uint8Array, string]> = [
    ['truncated bytes', new Uint8Array([1, 2, 3]), 'truncated'],
    ['no format metadata', serializeSafetensors({ 'h.0.mlp.c_fc.weight': t([2, 2]) }), 'not an editops delta file'],
    ['wrong version', serializeSafetensors({ 'h.0.mlp.c_fc.weight': t([2, 2]) }, { ...meta, version: '9' }), 'unsupported delta version'],
    ['missing id', serializeSafetensors({ 'h.0.mlp.c_fc.weight': t([2, 2]) }, { format: 'editops-delta', version: '1', method: 'ft' }), 'no edit "id"'],
    ['a tensor that is not a parameter', serializeSafetensors({ 'h.0.mlp.c_fc': t([2, 2]) }, meta), 'not a parameter name'],
    ['A without B', serializeSafetensors({ 'h.0.mlp.c_fc.weight.A': t([2, 1]) }, meta), 'not B'],
    ['factors that do not chain', serializeSafetensors({ 'h.0.mlp.c_fc.weight.A': t([2, 1]), 'h.0.mlp.c_fc.weight.B': t([2, 3]) }, meta), 'are not [in, r] and [r, out]'],
    ['low-rank bias', serializeSafetensors({ 'h.0.mlp.c_fc.bias.A': t([2, 1]), 'h.0.mlp.c_fc.bias.B': t([1, 3]) }, meta), 'belong to a "<layer>.weight"'],
    ['2-D bias', serializeSafetensors({ 'h.0.mlp.c_fc.bias': t([2, 2]) }, meta), 'is not [out]'],
    ['1-D weight', serializeSafetensors({ 'h.0.mlp.c_fc.weight': t([4]) }, meta), 'is not [in, out]'],
    ['dense and factors at once', serializeSafetensors({ 'h.0.mlp.c_fc.weight': t([2, 3]), 'h.0.mlp.c_fc.weight.A': t([2, 1]), 'h.0.mlp.c_fc.weight.B': t([1, 3]) }, meta), 'both dense and'],
    ['integer data', serializeSafetensors({ 'h.0.mlp.c_fc.weight': { dtype: 'I32', shape: [1, 1], data: new Int32Array(1) } }, meta), 'not a float type'],
    ['no tensors', serializeSafetensors({}, meta), 'no tensors'],
    ['infinite values', serializeSafetensors({ 'h.0.mlp.c_fc.weight': { shape: [1, 1], data: new Float32Array([Infinity]) } }, meta), 'infinite'],
  ];
  for (const [name, bytes, message] of cases) {
    it(`refuses ${name}, naming the file`, () => {
      const e = editErrorOf(() => parseDelta(bytes, file));
      expect(e.message).toContain(message);
      expect(e.format().startsWith(`${file}: `)).toBe(true);
    });
  }
});

describe('rows and delta paths', () => {
  const SHA = '0123456789abcdef'.repeat(4);

  it('the set delta is deltas/set@<first 12 hex of its sha256>; rows nest ids with "/" under rows/', () => {
    expect(deltaFileName(SET_DELTA_NAME, SHA)).toBe('deltas/set@0123456789ab.safetensors');
    expect(deltaPath('/m/models/default', SET_DELTA_NAME, SHA)).toBe(join('/m/models/default', 'deltas/set@0123456789ab.safetensors'));
    expect(rowsFileName('france', SHA)).toBe('rows/france@0123456789ab.safetensors');
    expect(rowsFileName('geo/europe/france.v2', SHA)).toBe('rows/geo/europe/france.v2@0123456789ab.safetensors');
  });

  it('gives new content a new name, so a write never replaces the file the current state names', () => {
    const a = serializeDelta(sample(), META);
    const b = serializeDelta({ layers: { ...sample().layers, 'h.3.mlp.c_fc.bias': { kind: 'dense', shape: [6], data: new Float32Array(6).fill(9) } } }, META);
    expect(deltaFileName(SET_DELTA_NAME, sha256(a))).toBe(deltaFileName(SET_DELTA_NAME, sha256(a)));
    expect(deltaFileName(SET_DELTA_NAME, sha256(b))).not.toBe(deltaFileName(SET_DELTA_NAME, sha256(a)));
    const r1 = serializeRows(rows(1), ROWS_META);
    const r2 = serializeRows(rows(2), ROWS_META);
    expect(rowsFileName('geo/france', sha256(r1))).not.toBe(rowsFileName('geo/france', sha256(r2)));
  });

  it('refuses ids that would leave the rows folder or hold "@", and a hash that is not a sha256', () => {
    for (const id of ['../x', 'a/../../x', 'a/..', 'a//b', 'a/./b', '/abs', '', '.hidden', 'a\\b', 'a b', 'a@b']) {
      expect(() => rowsFileName(id, SHA), id).toThrow(EditError);
      expect(() => deltaPath('/m/models/default', id, SHA), id).toThrow(EditError);
    }
    for (const sha of ['', 'abc', SHA.toUpperCase(), `${SHA}0`, '../../../../x'.padEnd(64, '0')]) {
      expect(() => deltaFileName(SET_DELTA_NAME, sha), sha).toThrow(EditError);
      expect(() => rowsFileName('france', sha), sha).toThrow(EditError);
    }
  });
});

const ROWS_META = { id: 'geo/france', method: 'memit', specSha256: 'a'.repeat(64) };
/** memit-like rows: keys, target shifts and the positions they were taken at. */
function rows(seed: number): EditRows {
  return {
    tensors: {
      keys: { dtype: 'F32', shape: [2, 4], data: floats(8, seed) },
      shifts: { dtype: 'F32', shape: [2, 3], data: floats(6, seed + 1) },
      positions: { dtype: 'I32', shape: [2], data: new Int32Array([3, 4]) },
    },
  };
}

describe('rows files', () => {
  it('round-trip F32 and I32 tensors, deterministically, and count rows by their positions', () => {
    const bytes = serializeRows(rows(5), ROWS_META);
    const back = parseRows(bytes, 'r.safetensors', 'geo/france', 'memit');
    expect(back).toEqual(rows(5));
    expect(serializeRows(back, ROWS_META)).toEqual(bytes);
    expect(rowCount(back)).toBe(2);
    // ft keeps its own dense delta as rows: no positions, no rows in a joint solve
    expect(rowCount({ tensors: { 'h.3.mlp.c_proj.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } } })).toBe(0);
  });

  it('refuse rows of another edit, of another editor, without a tensor, or with NaN, naming the file', () => {
    const bytes = serializeRows(rows(5), ROWS_META);
    expect(editErrorOf(() => parseRows(bytes, 'r.safetensors', 'geo/spain', 'memit')).format()).toBe('r.safetensors: rows belong to edit "geo/france", expected "geo/spain"');
    expect(editErrorOf(() => parseRows(bytes, 'r.safetensors', 'geo/france', 'ft')).format()).toBe('r.safetensors: rows were computed by editor "memit", the model\'s editor is "ft": run `edit apply --refresh`');
    expect(editErrorOf(() => parseRows(serializeDelta(sample(), META), 'd.safetensors', 'set', 'memit')).message).toBe('not an editops rows file (metadata format is "editops-delta", expected "editops-rows")');
    expect(editErrorOf(() => serializeRows({ tensors: {} }, ROWS_META)).message).toBe('rows of edit "geo/france" hold no tensor');
    const nan = rows(5);
    (nan.tensors.keys.data as Float32Array)[3] = Number.NaN;
    expect(editErrorOf(() => serializeRows(nan, ROWS_META)).message).toBe('rows of edit "geo/france": "keys" contains NaN or infinite values');
  });
});

describe('delta arithmetic', () => {
  it('densify multiplies the factors out (A·B, Conv1D [in, out])', () => {
    const lr = lowRank(5, 7, 3, 42);
    const dense = densify({ layers: { 'h.0.mlp.c_fc.weight': lr } }).get('h.0.mlp.c_fc.weight')!;
    expect(dense.shape).toEqual([5, 7]);
    // Independently: entry (i, j) as a dot product of row i of A and column j of B, in doubles.
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 7; j++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += lr.a[i * 3 + k] * lr.b[k * 7 + j];
        expect(dense.data[i * 7 + j]).toBeCloseTo(s, 6);
      }
    }
    // A rank-1 case by hand: [1, 2]ᵀ · [3, 4, 5].
    const r1 = densify({ layers: { 'x.weight': { kind: 'lowrank', a: new Float32Array([1, 2]), b: new Float32Array([3, 4, 5]), in: 2, out: 3, rank: 1 } } });
    expect([...r1.get('x.weight')!.data]).toEqual([3, 4, 5, 6, 8, 10]);
  });

  it('sums deltas per parameter, low-rank and dense alike, without touching the inputs', () => {
    const d1: Delta = { layers: { 'x.weight': { kind: 'dense', shape: [2, 3], data: new Float32Array([1, 1, 1, 1, 1, 1]) }, 'x.bias': { kind: 'dense', shape: [3], data: new Float32Array([1, 2, 3]) } } };
    const d2: Delta = { layers: { 'x.weight': { kind: 'lowrank', a: new Float32Array([1, 2]), b: new Float32Array([3, 4, 5]), in: 2, out: 3, rank: 1 } } };
    const sum = sumDeltas([d1, d2]);
    expect([...sum.get('x.weight')!.data]).toEqual([4, 5, 6, 7, 9, 11]);
    expect([...sum.get('x.bias')!.data]).toEqual([1, 2, 3]);
    expect([...(d1.layers['x.weight'] as { data: Float32Array }).data]).toEqual([1, 1, 1, 1, 1, 1]);
    // Order does not matter.
    expect([...sumDeltas([d2, d1]).get('x.weight')!.data]).toEqual([4, 5, 6, 7, 9, 11]);
  });

  it('refuses to sum deltas of different shapes', () => {
    const a: Delta = { layers: { 'x.weight': { kind: 'dense', shape: [2, 2], data: new Float32Array(4) } } };
    const b: Delta = { layers: { 'x.weight': { kind: 'dense', shape: [1, 4], data: new Float32Array(4) } } };
    expect(() => sumDeltas([a, b])).toThrow(/disagree/);
  });

  it('reports norm, rank and relative change per parameter', () => {
    const lr = lowRank(6, 5, 2, 3);
    const delta: Delta = { layers: { 'x.weight': lr, 'y.weight': { kind: 'dense', shape: [1, 2], data: new Float32Array([3, 4]) } } };
    const dense = densify(delta).get('x.weight')!.data;
    const frob = Math.sqrt(dense.reduce((s, v) => s + v * v, 0));
    const base = new Map([['x.weight', new Float32Array(30).fill(2)]]);
    const stats = deltaStats(delta, base);
    expect(stats.map((s) => s.param)).toEqual(['x.weight', 'y.weight']);
    expect(stats[0].rank).toBe(2);
    expect(stats[0].norm).toBeCloseTo(frob, 5);
    expect(stats[0].relative).toBeCloseTo(frob / Math.sqrt(30 * 4), 5);
    expect(stats[1]).toEqual({ param: 'y.weight', kind: 'dense', shape: [1, 2], norm: 5, rank: null, relative: null });
    expect(deltaStats(delta)[0].relative).toBeNull();
  });
});

describe('keyWeightedRelative (edit diff, "on keys")', () => {
  // [in = 2, out = 2] matrices in Conv1D layout; keys with second moment C
  const base = Float32Array.from([1, 0, 0, 1]);
  it('is ‖ΔW‖/‖W‖ when every key direction is used alike (C = I)', () => {
    const d = Float32Array.from([0.3, 0, 0, 0.4]);
    expect(keyWeightedRelative(d, base, Float64Array.from([1, 0, 0, 1]), 2)).toBeCloseTo(0.5 / Math.SQRT2, 6); // float32 inputs
  });
  it('does not count change along a key direction the keys never take', () => {
    const c = Float64Array.from([1, 0, 0, 0]); // keys only ever along the first input
    expect(keyWeightedRelative(Float32Array.from([0, 0, 500, 500]), base, c, 2)).toBe(0);
    expect(keyWeightedRelative(Float32Array.from([0.1, 0, 500, 500]), base, c, 2)).toBeCloseTo(0.1, 6);
    // correlated keys: C = [[1, 1], [1, 1]] (k = (t, t)): kᵀΔW = t·(row 1 + row 2)
    expect(keyWeightedRelative(Float32Array.from([1, 0, -1, 0]), base, Float64Array.from([1, 1, 1, 1]), 2)).toBe(0);
  });
  it('refuses statistics that do not fit, and gives null for a base the keys do not move', () => {
    expect(() => keyWeightedRelative(Float32Array.from([1, 2, 3]), base, Float64Array.from([1, 0, 0, 1]), 2)).toThrow(/do not fit/);
    expect(keyWeightedRelative(Float32Array.from([1, 0, 0, 1]), Float32Array.from([0, 0, 0, 0]), Float64Array.from([1, 0, 0, 1]), 2)).toBeNull();
  });
});
