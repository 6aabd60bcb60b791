/**
 * Each hand-written op in src/tensor/ops.ts against a plain tfjs-autodiff reference on random
 * inputs: the value, and the gradient of Σ op(...)·R for a random R (so dy is not all ones).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { crossEntropy, embed, gelu, layerNorm, linear, logSoftmax, matMulConstT, rowSum } from '../src/tensor/ops.js';
import { Rng } from '../src/util/random.js';
import { expectClose } from './helpers/golden.js';

const rng = new Rng(1234);

function randn(shape: number[], scale = 1, offset = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = offset + scale * rng.normal();
  return tf.tensor(data, shape);
}

/** Value and input gradients of Σ f(inputs)·r, as plain arrays. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], r?: tf.Tensor): { value: Float32Array; grads: Float32Array[] } {
  return tf.tidy(() => {
    const value = f(...inputs).dataSync() as Float32Array;
    const g = tf.grads((...xs: tf.Tensor[]) => {
      const y = f(...xs);
      return tf.sum(r === undefined ? y : tf.mul(y, r)) as tf.Scalar;
    })(inputs);
    return { value, grads: g.map((t) => t.dataSync() as Float32Array) };
  });
}

function expectSameOp(
  ours: (...xs: tf.Tensor[]) => tf.Tensor,
  reference: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  r?: tf.Tensor,
  tol = { atol: 1e-5, rtol: 1e-4 },
): void {
  const a = valueAndGrads(ours, inputs, r);
  const b = valueAndGrads(reference, inputs, r);
  expectClose(a.value, b.value, tol);
  expect(a.grads.length).toBe(b.grads.length);
  a.grads.forEach((g, i) => expectClose(g, b.grads[i], tol));
}

/** numTensors is unchanged after running f (value + gradients) inside tf.tidy. */
function expectNoLeak(name: string, f: () => unknown): void {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    f(); // returns nothing, so tidy keeps nothing
  });
  expect(tf.memory().numTensors, name).toBe(before);
}

const tanhGelu = (x: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));

const oneHotF32 = (ids: tf.Tensor, n: number): tf.Tensor2D =>
  // tf.oneHot(x, n, 1, 0, 'float32') returns garbage on wasm 4.22: cast instead.
  tf.cast(tf.oneHot(ids as tf.Tensor1D, n), 'float32') as tf.Tensor2D;

describe('ops equal plain autodiff', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('linear with bias', () => {
    const [x, w, b, r] = [randn([7, 5]), randn([5, 3]), randn([3]), randn([7, 3])];
    expectSameOp(
      (xi, wi, bi) => linear(xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D),
      (xi, wi, bi) => tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi),
      [x, w, b],
      r,
    );
    tf.dispose([x, w, b, r]);
  });

  it('linear without bias', () => {
    const [x, w, r] = [randn([6, 4]), randn([4, 9]), randn([6, 9])];
    expectSameOp(
      (xi, wi) => linear(xi as tf.Tensor2D, wi as tf.Tensor2D),
      (xi, wi) => tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D),
      [x, w],
      r,
    );
    tf.dispose([x, w, r]);
  });

  it('matMulConstT (the tied head) equals x·Bᵀ with its gradient to x', () => {
    const [x, b, r] = [randn([6, 4]), randn([11, 4]), randn([6, 11])];
    const bT = tf.transpose(b) as tf.Tensor2D;
    expectSameOp(
      (xi) => matMulConstT(xi as tf.Tensor2D, b as tf.Tensor2D, bT),
      (xi) => tf.matMul(xi as tf.Tensor2D, b as tf.Tensor2D, false, true),
      [x],
      r,
    );
    tf.dispose([x, b, bT, r]);
  });

  it('embed with duplicate ids sums their gradients', () => {
    const table = randn([11, 4]);
    const ids = tf.tensor1d([3, 0, 3, 10, 7, 3, 0], 'int32');
    const r = randn([7, 4]);
    expectSameOp(
      (t) => embed(t as tf.Tensor2D, ids),
      (t) => tf.matMul(oneHotF32(ids, 11), t as tf.Tensor2D),
      [table],
      r,
    );
    // Rows never looked up get no gradient; id 3 (three uses) gets the sum of its three dy rows.
    const g = tf.tidy(() => tf.grads((t: tf.Tensor) => tf.sum(tf.mul(embed(t as tf.Tensor2D, ids), r)))([table])[0].arraySync() as number[][]);
    const dy = r.arraySync() as number[][];
    expect(g[1]).toEqual([0, 0, 0, 0]);
    expectClose(g[3], dy[0].map((_, j) => dy[0][j] + dy[2][j] + dy[5][j]), { atol: 1e-6, rtol: 1e-6 });
    tf.dispose([table, ids, r]);
  });

  it('layerNorm', () => {
    // Rows with different means and scales, so centring and scaling both matter.
    const x = tf.tidy(() => tf.add(tf.mul(randn([5, 8]), randn([5, 1], 2, 3)), randn([5, 1], 4)));
    const [g, b, r] = [randn([8], 0.5, 1), randn([8]), randn([5, 8])];
    const eps = 1e-5;
    expectSameOp(
      (xi, gi, bi) => layerNorm(xi as tf.Tensor2D, gi as tf.Tensor1D, bi as tf.Tensor1D, eps),
      (xi, gi, bi) => {
        const { mean, variance } = tf.moments(xi, 1, true);
        return tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, eps))), gi), bi);
      },
      [x, g, b],
      r,
      { atol: 1e-4, rtol: 1e-4 },
    );
    tf.dispose([x, g, b, r]);
  });

  it('gelu equals the tanh formula, including large |x|', () => {
    const x = tf.tidy(() => tf.concat([randn([40], 2), tf.tensor1d([-12, -6, -1e-3, 0, 1e-3, 6, 12])]));
    const r = randn([47]);
    expectSameOp((xi) => gelu(xi), tanhGelu, [x], r);
    tf.dispose([x, r]);
  });

  it('crossEntropy with masked rows equals tf.losses.softmaxCrossEntropy', () => {
    const n = 9;
    const v = 13;
    const logits = randn([n, v], 3);
    const targets = tf.tensor1d([0, 12, 5, 5, 7, 1, 12, 3, 8], 'int32');
    const mask = tf.tensor1d([1, 1, 0, 1, 1, 0, 1, 1, 0]);
    // dy = 2.5, so the gradient must scale with the upstream gradient.
    expectSameOp(
      (l) => tf.mul(crossEntropy(l as tf.Tensor2D, targets, mask), 2.5),
      (l) => tf.mul(tf.losses.softmaxCrossEntropy(oneHotF32(targets, v), l, mask), 2.5),
      [logits],
    );
    // Masked rows get exactly zero gradient.
    const g = tf.tidy(() => tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, targets, mask))(logits).arraySync() as number[][]);
    for (const row of [2, 5, 8]) expect(g[row].every((x) => x === 0)).toBe(true);
    tf.dispose([logits, targets, mask]);
  });

  it('crossEntropy with fractional weights is the weighted mean', () => {
    const n = 6;
    const v = 10;
    const logits = randn([n, v], 2);
    const targets = tf.tensor1d([9, 0, 4, 4, 2, 6], 'int32');
    const weights = tf.tensor1d([0.5, 2, 0, 1, 0.25, 3]);
    expectSameOp(
      (l) => crossEntropy(l as tf.Tensor2D, targets, weights),
      (l) => tf.div(tf.losses.softmaxCrossEntropy(oneHotF32(targets, v), l, weights, 0, tf.Reduction.SUM), tf.sum(weights)),
      [logits],
    );
    tf.dispose([logits, targets, weights]);
  });

  it('logSoftmax and rowSum', () => {
    const [x, r] = [randn([4, 17], 5), randn([4, 17])];
    expectSameOp((xi) => logSoftmax(xi as tf.Tensor2D), (xi) => tf.logSoftmax(xi), [x], r);
    expectSameOp((xi) => rowSum(xi as tf.Tensor2D), (xi) => tf.sum(xi, 1, true), [x], tf.ones([4, 1]));
    tf.dispose([x, r]);
  });

  it('no op leaks tensors (value and gradients inside tf.tidy)', () => {
    const x = randn([6, 5]) as tf.Tensor2D;
    const w = randn([5, 3]) as tf.Tensor2D;
    const b = randn([3]) as tf.Tensor1D;
    const g = randn([5]) as tf.Tensor1D;
    const bn = randn([5]) as tf.Tensor1D;
    const ids = tf.tensor1d([1, 1, 4, 0, 2, 3], 'int32');
    const table = randn([6, 5]) as tf.Tensor2D;
    const targets = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const mask = tf.tensor1d([1, 0, 1, 1, 1, 0]);
    const cases: Array<[string, () => unknown]> = [
      ['linear+b', () => tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.sum(linear(xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D)))([x, w, b])],
      ['linear', () => tf.grads((xi: tf.Tensor, wi: tf.Tensor) => tf.sum(linear(xi as tf.Tensor2D, wi as tf.Tensor2D)))([x, w])],
      ['embed', () => tf.grads((t: tf.Tensor) => tf.sum(embed(t as tf.Tensor2D, ids)))([table])],
      ['matMulConstT', () => tf.grads((xi: tf.Tensor) => tf.sum(matMulConstT(xi as tf.Tensor2D, table, tf.transpose(table) as tf.Tensor2D)))([x])],
      ['layerNorm', () => tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(layerNorm(xi as tf.Tensor2D, gi as tf.Tensor1D, bi as tf.Tensor1D, 1e-5)))([x, g, bn])],
      ['gelu', () => tf.grads((xi: tf.Tensor) => tf.sum(gelu(xi)))([x])],
      ['crossEntropy', () => tf.grads((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, targets, mask))([linear(x, w)])],
      ['forward only', () => [linear(x, w, b), embed(table, ids), layerNorm(x, g, bn, 1e-5), gelu(x), crossEntropy(linear(x, w), targets, mask), logSoftmax(x)]],
    ];
    for (const [name, f] of cases) expectNoLeak(name, f);
    // Outside any tidy, a forward call allocates exactly its result.
    const before = tf.memory().numTensors;
    const y = layerNorm(x, g, bn, 1e-5);
    expect(tf.memory().numTensors).toBe(before + 1);
    y.dispose();
    tf.dispose([x, w, b, g, bn, ids, table, targets, mask]);
  });
});
