/**
 * The hypernetwork editors' solve with a floor under the key statistics (`keyFloor`): a key
 * direction the corpus never uses costs nothing in λC, so without a floor the solve can put an
 * arbitrarily large change there (on the shipped model: one never-firing neuron of block 2 carried
 * ‖ΔW‖ 65× the base matrix's for the two example edits); the floor bounds it and leaves a solve
 * whose keys lie along used directions as it was.
 */
import { describe, expect, it } from 'vitest';
import { solveValues, systemMatrix } from '../src/editor/mend/solve.js';

const norm = (x: Float32Array) => Math.sqrt(x.reduce((a, b) => a + b * b, 0));

describe('keyFloor', () => {
  // dk = 3, d = 1; the corpus's keys use the first two directions only
  const dead = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 0]);
  const key = Float32Array.from([1, 0, 1e-3]); // the edit's key: along a used direction, with a trace on the unused one
  const value = Float32Array.from([1]);

  it('adds λ·keyFloor·mean(diag C) to the diagonal, and nothing when 0 or absent', () => {
    const a0 = systemMatrix(key, 1, 3, dead, { lambda: 2 });
    const a = systemMatrix(key, 1, 3, dead, { lambda: 2, keyFloor: 0.01 });
    const add = 2 * 0.01 * (2 / 3);
    for (let i = 0; i < 9; i++) expect(a[i] - a0[i]).toBeCloseTo(i % 4 === 0 ? add : 0, 12);
    expect(systemMatrix(key, 1, 3, dead, { lambda: 2, keyFloor: 0 })).toEqual(a0);
  });

  it('bounds the change along a direction the keys never take; the edit is still mostly made', () => {
    const free = solveValues(key, value, 1, 3, 1, dead, { lambda: 1 });
    const floored = solveValues(key, value, 1, 3, 1, dead, { lambda: 1, keyFloor: 1e-3 });
    expect(Math.abs(free[2])).toBeGreaterThan(100); // the unused direction carries the whole edit, at no cost in λC
    expect(norm(floored)).toBeLessThan(Math.abs(free[2]) / 10);
    const fit = (w: Float32Array) => key.reduce((a, k, i) => a + k * w[i], 0);
    expect(fit(free)).toBeGreaterThan(0.9);
    expect(fit(floored)).toBeGreaterThan(0.4); // λC on the used direction takes its share, as without a dead one
  });

  it('leaves a solve whose keys use every direction almost unchanged', () => {
    const used = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const keys = Float32Array.from([1, 0.5, 0.2, 0.1, 1, 0.3]);
    const values = Float32Array.from([1, -1, 0.5, 2]);
    const a = solveValues(keys, values, 2, 3, 2, used, { lambda: 1 });
    const b = solveValues(keys, values, 2, 3, 2, used, { lambda: 1, keyFloor: 1e-3 });
    const diff = Float32Array.from(a.map((x, i) => x - b[i]));
    expect(norm(diff) / norm(a)).toBeLessThan(2e-3);
  });
});
