/**
 * Data-parallel training on several threads. tfjs-wasm runs on one thread, so each worker thread
 * holds its own copy of the parameters and of the Adam optimizer. A step: every thread computes the
 * gradient of the mean loss over its equal share of the batch's rows and writes it, flattened, into
 * its own shared buffer; the calling thread averages the shares (= the whole batch's gradient),
 * clips the average to a global norm, writes it into one shared buffer, and every thread applies
 * that same gradient with its own optimizer — so the copies stay identical without sending weights.
 * For a fixed thread count the run is reproducible (the average is summed in a fixed order).
 */
import { tf } from '../tensor/tf.js';
import { Worker } from 'node:worker_threads';
import { InternalError } from '../errors.js';
import { workerScript } from '../util/worker-script.js';
import type { GPTConfig } from './config.js';

/** What a model exposes to be trained: the loss of a batch, over named variables. */
export interface TrainTarget {
  names: string[];
  vars: tf.Variable[];
  loss: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Scalar;
  opt: tf.Optimizer;
}

export interface TrainWorkerData {
  config: GPTConfig;
  params: Array<{ name: string; shape: number[]; data: Float32Array }>;
  adam: { beta1: number; beta2: number; epsilon: number; state: Array<{ name: string; shape: number[]; dtype: string; data: Float32Array | Int32Array }> };
  grads: SharedArrayBuffer;
  average: SharedArrayBuffer;
}

export type TrainRequest = { kind: 'grad'; x: number[][]; y: number[][] } | { kind: 'apply'; lr: number };
export type TrainReply = { loss: number } | { applied: true } | { error: string };

/** Offsets of each variable in the flat gradient. */
export function layout(vars: tf.Variable[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const v of vars) {
    offsets.push(total);
    total += v.size;
  }
  return { offsets, total };
}

/** Gradient of the mean loss over (x, y) w.r.t. every variable, written flat into `out`; returns the loss. */
export function gradientInto(target: TrainTarget, x: number[][], y: number[][], out: Float32Array): number {
  const t = x[0].length;
  const xs = tf.tensor2d(x, [x.length, t], 'int32');
  const ys = tf.tensor2d(y, [y.length, t], 'int32');
  const { value, grads } = tf.variableGrads(() => target.loss(xs, ys), target.vars);
  const { offsets } = layout(target.vars);
  target.vars.forEach((v, i) => out.set(grads[v.name].dataSync() as Float32Array, offsets[i]));
  const loss = value.dataSync()[0];
  tf.dispose([xs, ys, value, ...Object.values(grads)]);
  return loss;
}

/** One optimizer step with the flat gradient `g` (already averaged and clipped). */
export function applyFlat(target: TrainTarget, g: Float32Array, lr: number): void {
  (target.opt as unknown as { learningRate: number }).learningRate = lr;
  const { offsets } = layout(target.vars);
  const named: Record<string, tf.Tensor> = {};
  target.vars.forEach((v, i) => (named[v.name] = tf.tensor(g.subarray(offsets[i], offsets[i] + v.size), v.shape)));
  target.opt.applyGradients(named as Parameters<tf.Optimizer['applyGradients']>[0]);
  tf.dispose(Object.values(named));
}


export class TrainPool {
  private constructor(
    private readonly target: TrainTarget,
    private readonly workers: Worker[],
    private readonly grads: Float32Array[],
    private readonly average: Float32Array,
    private readonly mine: Float32Array,
  ) {}

  /**
   * Starts `threads − 1` workers with copies of the target's current parameters and optimizer state
   * (Adam with the given moments; a resumed run's state is copied as it is).
   */
  static async open(config: GPTConfig, target: TrainTarget, adam: { beta1: number; beta2: number; epsilon: number }, threads: number): Promise<TrainPool> {
    const { total } = layout(target.vars);
    const params = await Promise.all(target.vars.map(async (v, i) => ({ name: target.names[i], shape: v.shape.slice(), data: (await v.data()) as Float32Array })));
    const weights = await target.opt.getWeights();
    const state = await Promise.all(weights.map(async (w) => ({ name: w.name, shape: w.tensor.shape.slice(), dtype: w.tensor.dtype, data: (await w.tensor.data()) as Float32Array | Int32Array })));
    if (weights.length > 0) weights[0].tensor.dispose(); // a fresh 'iter' scalar; the rest are the optimizer's own
    const average = new SharedArrayBuffer(total * 4);
    const script = workerScript(import.meta.url, 'train-worker.js', 'training worker');
    const bufs: SharedArrayBuffer[] = [];
    const workers = await Promise.all(
      Array.from({ length: Math.max(0, threads - 1) }, async () => {
        const grads = new SharedArrayBuffer(total * 4);
        bufs.push(grads);
        const data: TrainWorkerData = { config, params, adam: { ...adam, state }, grads, average };
        const worker = new Worker(script, { workerData: data });
        await new Promise<void>((resolve, reject) => {
          worker.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new InternalError(`training worker: ${m.error}`))));
          worker.once('error', reject);
        });
        return worker;
      }),
    );
    return new TrainPool(target, workers, bufs.map((b) => new Float32Array(b)), new Float32Array(average), new Float32Array(total));
  }

  /** Threads training, the calling one included. */
  get size(): number {
    return this.workers.length + 1;
  }

  /** One step on the batch (rows split evenly, the calling thread takes the last share); returns the batch's mean loss. */
  async step(x: number[][], y: number[][], lr: number, clip: number): Promise<number> {
    const n = this.size;
    if (x.length % n !== 0) throw new InternalError(`batch of ${x.length} rows does not split evenly over ${n} threads`);
    const per = x.length / n;
    const share = (rows: number[][], t: number) => rows.slice(t * per, (t + 1) * per);
    const replies = this.workers.map((w, t) => {
      const reply = this.request(w);
      w.postMessage({ kind: 'grad', x: share(x, t), y: share(y, t) } satisfies TrainRequest);
      return reply;
    });
    const losses = [gradientInto(this.target, share(x, n - 1), share(y, n - 1), this.mine)];
    for (const r of await Promise.all(replies)) losses.push((r as { loss: number }).loss);

    // Average in a fixed order, then clip to the global norm (as clippedStep does on one thread).
    const avg = this.average;
    const parts = [...this.grads, this.mine];
    avg.set(parts[0]);
    for (const p of parts.slice(1)) for (let i = 0; i < avg.length; i++) avg[i] += p[i];
    let norm2 = 0;
    for (let i = 0; i < avg.length; i++) {
      avg[i] /= n;
      norm2 += avg[i] * avg[i];
    }
    const scale = Math.min(1, clip / (Math.sqrt(norm2) + 1e-6));
    if (scale < 1) for (let i = 0; i < avg.length; i++) avg[i] *= scale;

    const applied = this.workers.map((w) => {
      const reply = this.request(w);
      w.postMessage({ kind: 'apply', lr } satisfies TrainRequest);
      return reply;
    });
    applyFlat(this.target, avg, lr);
    await Promise.all(applied);
    return losses.reduce((a, b) => a + b, 0) / n;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private request(w: Worker): Promise<TrainReply> {
    return new Promise((resolve, reject) => {
      w.once('message', (m: TrainReply) => ('error' in m ? reject(new InternalError(`training worker: ${m.error}`)) : resolve(m)));
    });
  }
}
