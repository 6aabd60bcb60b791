/**
 * Data-parallel training (src/model/train-pool.ts): the averaged gradient of equal shares is the
 * whole batch's, so 2 threads follow 1 thread's trajectory (up to float summation order), a fixed
 * thread count reproduces itself exactly, and the pool matches clippedStep on one thread.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { GPT, initParams, type GPTConfig, type Params } from '../src/model/gpt2.js';
import { TrainPool } from '../src/model/train-pool.js';
import { clippedStep } from '../src/model/train-step.js';
import { Rng } from '../src/util/random.js';

const CONFIG: GPTConfig = { vocabSize: 64, nPositions: 8, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEps: 1e-5, nInner: 48 };
const ADAM = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8 };
let runId = 0;

/** n steps over the same seeded batch of `rows` rows (so the loss must fall). */
function batches(n: number, rows: number): Array<{ x: number[][]; y: number[][] }> {
  return Array.from({ length: n }, () => {
    const rng = new Rng(3);
    const r = Array.from({ length: rows }, () => Array.from({ length: CONFIG.nPositions + 1 }, () => rng.int(CONFIG.vocabSize)));
    return { x: r.map((a) => a.slice(0, -1)), y: r.map((a) => a.slice(1)) };
  });
}

function fresh(): { model: GPT; vars: Params; varList: tf.Variable[]; opt: tf.Optimizer } {
  const id = runId++;
  const vars: Params = {};
  for (const [name, p] of Object.entries(initParams(CONFIG, 5))) {
    vars[name] = tf.variable(p, true, `pool-test-${id}-${name}`);
    p.dispose();
  }
  return { model: new GPT(CONFIG, vars), vars, varList: Object.values(vars) as tf.Variable[], opt: tf.train.adam(1e-2, ADAM.beta1, ADAM.beta2, ADAM.epsilon) };
}

/** Trains 4 steps (clip 0.5, so clipping acts) on `threads` threads; losses and final weights. */
async function train(threads: number | 'clippedStep'): Promise<{ losses: number[]; weights: Float32Array }> {
  const { model, vars, varList, opt } = fresh();
  const losses: number[] = [];
  if (threads === 'clippedStep') {
    for (const b of batches(4, 4)) {
      const xs = tf.tensor2d(b.x, undefined, 'int32');
      const ys = tf.tensor2d(b.y, undefined, 'int32');
      (opt as unknown as { learningRate: number }).learningRate = 1e-2;
      const l = clippedStep(opt, varList, () => model.loss(xs, ys), 0.5);
      losses.push(l.dataSync()[0]);
      tf.dispose([l, xs, ys]);
    }
  } else {
    const pool = await TrainPool.open(CONFIG, { names: Object.keys(vars), vars: varList, loss: (x, y) => model.loss(x, y), opt }, ADAM, threads);
    expect(pool.size).toBe(threads);
    for (const b of batches(4, 4)) losses.push(await pool.step(b.x, b.y, 1e-2, 0.5));
    await pool.close();
  }
  const weights = Float32Array.from(varList.flatMap((v) => Array.from(v.dataSync() as Float32Array)));
  opt.dispose();
  model.dispose();
  return { losses, weights };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('TrainPool', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('two threads follow one thread, and a fixed count reproduces itself exactly', async () => {
    const one = await train(1);
    const two = await train(2);
    const again = await train(2);
    const reference = await train('clippedStep');
    expect(one.losses[3]).toBeLessThan(one.losses[0]); // it trains
    expect(again.losses).toEqual(two.losses);
    expect(Array.from(again.weights)).toEqual(Array.from(two.weights));
    for (let i = 0; i < 4; i++) {
      expect(two.losses[i]).toBeCloseTo(one.losses[i], 4);
      expect(reference.losses[i]).toBeCloseTo(one.losses[i], 4);
    }
    expect(maxDiff(one.weights, two.weights)).toBeLessThan(1e-4);
    expect(maxDiff(one.weights, reference.weights)).toBeLessThan(1e-4);
    // the weights moved far more than the threads disagree
    const start = fresh();
    const init = Float32Array.from(start.varList.flatMap((v) => Array.from(v.dataSync() as Float32Array)));
    start.model.dispose();
    expect(maxDiff(init, one.weights)).toBeGreaterThan(1e-3);
  }, 60_000);

  it('refuses a batch that does not split evenly over its threads', async () => {
    const { model, vars, varList, opt } = fresh();
    const pool = await TrainPool.open(CONFIG, { names: Object.keys(vars), vars: varList, loss: (x, y) => model.loss(x, y), opt }, ADAM, 2);
    const b = batches(1, 3)[0];
    await expect(pool.step(b.x, b.y, 1e-2, 1)).rejects.toThrow(/does not split evenly over 2 threads/);
    await pool.close();
    model.dispose();
  }, 30_000);
});
