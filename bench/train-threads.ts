/**
 * The train-threads section: data-parallel training (src/model/train-pool.ts) on 1 vs `threads`
 * threads, the same batches, the model shape of the shipped default model (its config: the MLP
 * width included) from seeded initial weights. tokens/s per thread count, the losses of each run
 * (equal up to float summation order: the averaged gradient is the whole batch's) and peak RSS.
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT, initParams, type GPTConfig, type Params } from '../src/model/gpt2.js';
import { TrainPool } from '../src/model/train-pool.js';
import type { BackendName } from '../src/tensor/backend.js';
import { Rng } from '../src/util/random.js';
import { median, memoryNow, ms, now, sig, stamp, type BenchRecord } from './measure.js';
import type { SectionResult } from './sections.js';

export interface TrainThreadsSizes {
  /** Used when modelDir has no model.json. */
  config: GPTConfig;
  modelDir?: string;
  batch: number;
  warmupSteps: number;
  steps: number;
  threads: number[];
}

const ADAM = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8 };

async function run(config: GPTConfig, sizes: TrainThreadsSizes, threads: number): Promise<{ times: number[]; losses: number[]; startMs: number }> {
  const init = initParams(config, 7);
  const vars: Params = {};
  for (const [name, p] of Object.entries(init)) {
    vars[name] = tf.variable(p, true, `bench-threads-${threads}-${name}`);
    p.dispose();
  }
  const model = new GPT(config, vars);
  const varList = Object.values(vars) as tf.Variable[];
  const opt = tf.train.adam(1e-3, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  const t0 = now();
  const pool = await TrainPool.open(config, { names: Object.keys(vars), vars: varList, loss: (x, y) => model.loss(x, y), opt }, ADAM, threads);
  const startMs = ms(t0);
  const rng = new Rng(11);
  const t = config.nPositions;
  const times: number[] = [];
  const losses: number[] = [];
  try {
    for (let step = 0; step < sizes.warmupSteps + sizes.steps; step++) {
      const rows = Array.from({ length: sizes.batch }, () => Array.from({ length: t + 1 }, () => rng.int(config.vocabSize)));
      const s0 = now();
      losses.push(await pool.step(rows.map((r) => r.slice(0, t)), rows.map((r) => r.slice(1)), 1e-3, 1.0));
      if (step >= sizes.warmupSteps) times.push(ms(s0));
    }
  } finally {
    await pool.close();
    opt.dispose();
    model.dispose();
  }
  return { times, losses, startMs };
}

export async function benchTrainThreads(backend: BackendName, sizes: TrainThreadsSizes, log: (line: string) => void): Promise<SectionResult> {
  const manifest = sizes.modelDir !== undefined ? join(sizes.modelDir, 'model.json') : undefined;
  const config: GPTConfig = manifest !== undefined && existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { config: GPTConfig }).config : sizes.config;
  const before = tf.memory().numTensors;
  const records: BenchRecord[] = [];
  for (const threads of sizes.threads) {
    const r = await run(config, sizes, threads);
    const step = median(r.times);
    const value = sig((sizes.batch * config.nPositions) / (step / 1000));
    log(`${threads} thread${threads === 1 ? '' : 's'}: ${value} tokens/s (median step ${sig(step)} ms, start ${sig(r.startMs)} ms)`);
    records.push({
      ...stamp(), section: 'train threads', metric: `tokens/s ${threads} thread${threads === 1 ? '' : 's'}`, backend, value, unit: 'tokens/s',
      detail: { threads, batch: `${sizes.batch}x${config.nPositions}`, config, warmupSteps: sizes.warmupSteps, steps: sizes.steps, medianStepMs: sig(step), stepMs: r.times.map(sig), losses: r.losses.map(sig), startMs: sig(r.startMs), maxRssMB: memoryNow().maxRssMB },
    });
  }
  const live = memoryNow();
  const left = tf.memory().numTensors - before;
  return { records, memory: { ...stamp(), after: 'train threads', backend, ...live, leak: left !== 0, leakDetail: `${left} tensors left after closing the pools` } };
}
