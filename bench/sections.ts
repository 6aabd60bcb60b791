/**
 * The three measured sections: matmul throughput, training throughput, generation latency.
 * Each runs on the current backend, disposes everything it made, and reports tensors left over.
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GPT, generate, initParams, type GPTConfig, type Params } from '../src/model/gpt2.js';
import { clippedStep } from '../src/model/train-step.js';
import { loadModelFolder } from '../src/model/folder.js';
import type { BackendName } from '../src/tensor/backend.js';
import { Rng } from '../src/util/random.js';
import { median, memoryNow, ms, now, sig, stamp, type BenchRecord, type MemoryRecord } from './measure.js';
import { plainLoss } from './plain-gpt.js';

export interface SectionResult {
  records: BenchRecord[];
  memory: MemoryRecord;
}

function memoryRecord(after: string, backend: BackendName, leak: boolean, leakDetail: string, live: ReturnType<typeof memoryNow>): MemoryRecord {
  return { ...stamp(), after, backend, ...live, leak, leakDetail };
}

// ---------------------------------------------------------------- matmul

export interface MatmulShape {
  m: number;
  k: number;
  n: number;
  /** Multiply by bᵀ with matMul's transposeB flag (b stored [n, k]), as autodiff's gradients do. */
  transposeB?: boolean;
}

export function shapeName(s: MatmulShape): string {
  return s.transposeB ? `${s.m}x${s.k}·(${s.n}x${s.k})ᵀ` : `${s.m}x${s.k}·${s.k}x${s.n}`;
}

/** GFLOP/s of a float32 matmul per shape: median over repetitions after one warm-up. */
export async function benchMatmul(backend: BackendName, shapes: MatmulShape[], minSeconds: number, minReps: number): Promise<SectionResult> {
  const before = tf.memory().numTensors;
  const records: BenchRecord[] = [];
  for (const s of shapes) {
    const a = tf.randomNormal([s.m, s.k]) as tf.Tensor2D;
    const b = tf.randomNormal(s.transposeB ? [s.n, s.k] : [s.k, s.n]) as tf.Tensor2D;
    const run = async () => {
      const c = tf.matMul(a, b, false, s.transposeB === true);
      await c.data(); // wasm and cpu compute eagerly; this also waits for async backends
      c.dispose();
    };
    await run();
    const times: number[] = [];
    const start = now();
    while (times.length < minReps || ms(start) < minSeconds * 1000) {
      const t0 = now();
      await run();
      times.push(ms(t0));
      if (times.length >= 1000) break;
    }
    const flops = 2 * s.m * s.k * s.n;
    const t = median(times);
    records.push({
      ...stamp(), section: 'matmul', metric: shapeName(s), backend, value: sig(flops / (t / 1000) / 1e9), unit: 'GFLOP/s',
      detail: { m: s.m, k: s.k, n: s.n, transposeB: s.transposeB === true, medianMs: sig(t), reps: times.length, flops },
    });
    a.dispose();
    b.dispose();
  }
  const live = memoryNow();
  const leaked = live.tfTensors - before;
  return { records, memory: memoryRecord('matmul', backend, leaked !== 0, `${leaked} tensors left after disposing inputs`, live) };
}

// ---------------------------------------------------------------- training

export interface TrainSizes {
  config: GPTConfig;
  batch: number;
  warmupSteps: number;
  steps: number;
}

type LossFn = (model: GPT, xs: tf.Tensor2D, ys: tf.Tensor2D) => tf.Scalar;

export const LOSSES: Record<'custom' | 'plain', LossFn> = {
  /** src/model/gpt2.ts with the hand-written gradients of src/tensor/ops.ts. */
  custom: (model, xs, ys) => model.loss(xs, ys),
  /** The same model with stock tfjs ops and autodiff (bench/plain-gpt.ts). */
  plain: (model, xs, ys) => plainLoss(model.config, model.params, xs, ys),
};

/**
 * Training throughput: random-init params as tf.variables, Adam, global-norm clipping, random token
 * batches; forward + backward + update per step as scripts/train-model.ts does.
 * Tokens/s from the median step after the warm-up steps; numTensors is read after every step.
 */
export async function benchTrain(backend: BackendName, variant: keyof typeof LOSSES, sizes: TrainSizes): Promise<SectionResult> {
  const { config, batch } = sizes;
  const t = config.nPositions;
  const before = tf.memory().numTensors;
  const init = initParams(config, 7);
  const vars: Params = {};
  for (const [name, p] of Object.entries(init)) {
    vars[name] = tf.variable(p, true); // unnamed: variable names are global and each backend gets its own copy
    p.dispose();
  }
  const model = new GPT(config, vars);
  const varList = Object.values(vars) as tf.Variable[];
  const opt = tf.train.adam(1e-3, 0.9, 0.95, 1e-8);
  const rng = new Rng(11);
  const randomBatch = () => Array.from({ length: batch }, () => Array.from({ length: t + 1 }, () => rng.int(config.vocabSize)));

  const times: number[] = [];
  const losses: number[] = [];
  const tensorsAfter: number[] = [];
  for (let step = 0; step < sizes.warmupSteps + sizes.steps; step++) {
    const rows = randomBatch();
    const t0 = now();
    const lossT = tf.tidy(() => {
      const xs = tf.tensor2d(rows.map((r) => r.slice(0, t)), [batch, t], 'int32');
      const ys = tf.tensor2d(rows.map((r) => r.slice(1)), [batch, t], 'int32');
      return clippedStep(opt, varList, () => LOSSES[variant](model, xs, ys), 1.0);
    });
    const loss = (await lossT.data())[0];
    lossT.dispose();
    const elapsed = ms(t0);
    losses.push(loss);
    tensorsAfter.push(tf.memory().numTensors);
    if (step >= sizes.warmupSteps) times.push(elapsed);
  }
  const live = memoryNow();
  opt.dispose();
  model.dispose();
  const left = tf.memory().numTensors - before;
  // Adam makes its moment variables on the first step; from then on every step must end where the last did.
  const growth = tensorsAfter[tensorsAfter.length - 1] - tensorsAfter[0];
  const leak = growth !== 0 || left !== 0;
  const tokens = batch * t;
  const step = median(times);
  const records: BenchRecord[] = [
    {
      ...stamp(), section: 'train', metric: variant === 'custom' ? 'tokens/s' : 'tokens/s plain autodiff', backend,
      value: sig(tokens / (step / 1000)), unit: 'tokens/s',
      detail: {
        variant, batch: `${batch}x${t}`, config, warmupSteps: sizes.warmupSteps, steps: sizes.steps,
        medianStepMs: sig(step), stepMs: times.map(sig), losses: losses.map(sig), tensorsAfterEachStep: tensorsAfter,
      },
    },
  ];
  const detail = `numTensors after each step ${tensorsAfter.join(', ')}; ${left} left after disposing model and optimizer`;
  return { records, memory: memoryRecord(`train ${variant}`, backend, leak, detail, live) };
}

// ---------------------------------------------------------------- generation

export interface GenerateSizes {
  promptTokens: number;
  newTokens: number;
  reps: number;
  /** Used when no trained model folder is given or found. */
  config: GPTConfig;
  /** models/default: load it if its model.json exists. */
  modelDir?: string;
}

const PROMPT_TEXT =
  'The capital of France is Paris. The currency of Japan is the yen. In Brazil, the language is Portuguese. ' +
  'Q: What is the continent of Kenya? A: Africa. The capital of Canada is';

/**
 * Latency per generated token, greedy, after a prompt: total time of `generate` divided by the
 * new tokens (the prompt's prefill included), with the KV cache and without it (noCache).
 */
export async function benchGenerate(backend: BackendName, sizes: GenerateSizes): Promise<SectionResult & { modelSource: string }> {
  const before = tf.memory().numTensors;
  let model: GPT;
  let prompt: number[];
  let modelSource: string;
  let decode: ((ids: number[]) => string) | undefined;
  if (sizes.modelDir !== undefined && existsSync(join(sizes.modelDir, 'model.json'))) {
    const loaded = await loadModelFolder(sizes.modelDir);
    model = loaded.model;
    const ids = loaded.tokenizer.encode(PROMPT_TEXT);
    prompt = Array.from({ length: sizes.promptTokens }, (_, i) => ids[i % ids.length]);
    modelSource = `${sizes.modelDir} (loaded)`;
    decode = (x) => loaded.tokenizer.decode(x);
  } else {
    model = new GPT(sizes.config, initParams(sizes.config, 7));
    const rng = new Rng(3);
    prompt = Array.from({ length: sizes.promptTokens }, () => rng.int(sizes.config.vocabSize));
    modelSource = 'random init (no trained model folder)';
  }
  const c = model.config;
  const newTokens = Math.min(sizes.newTokens, c.nPositions - prompt.length);
  generate(model, prompt, { maxNewTokens: 2 }); // warm-up: first use of each kernel
  generate(model, prompt, { maxNewTokens: 2, noCache: true });
  const tensorsStart = tf.memory().numTensors;

  const timeOne = (noCache: boolean, maxNewTokens: number) => {
    const t0 = now();
    const out = generate(model, prompt, { maxNewTokens, noCache });
    return { ms: ms(t0), out };
  };
  const records: BenchRecord[] = [];
  const outputs: Record<string, number[]> = {};
  for (const noCache of [false, true]) {
    const totals: number[] = [];
    const firsts: number[] = [];
    for (let r = 0; r < sizes.reps; r++) {
      const run = timeOne(noCache, newTokens);
      totals.push(run.ms);
      outputs[noCache ? 'noCache' : 'cache'] = run.out;
      firsts.push(timeOne(noCache, 1).ms);
    }
    const total = median(totals);
    records.push({
      ...stamp(), section: 'generate', metric: noCache ? 'ms/token no cache' : 'ms/token KV cache', backend,
      value: sig(total / newTokens), unit: 'ms/token',
      detail: {
        promptTokens: prompt.length, newTokens, reps: sizes.reps, medianTotalMs: sig(total), firstTokenMs: sig(median(firsts)),
        model: modelSource, config: c,
      },
    });
  }
  const same = outputs.cache.join(',') === outputs.noCache.join(',');
  for (const r of records) {
    r.detail.sameTokensWithAndWithoutCache = same;
    if (decode !== undefined) r.detail.continuation = decode(outputs.cache);
  }
  const grew = tf.memory().numTensors - tensorsStart;
  const live = memoryNow();
  model.dispose();
  const left = tf.memory().numTensors - before;
  const detail = `${grew} tensors gained over ${2 * sizes.reps * 2} generate calls; ${left} left after disposing the model`;
  return { records, memory: memoryRecord('generate', backend, grew !== 0 || left !== 0, detail, live), modelSource };
}
