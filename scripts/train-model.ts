/**
 * Trains the default model: a byte-level BPE tokenizer and a small GPT-2 on data/corpus.txt
 * (made by `npm run data`). Seeded, checkpointed every few hundred steps to .ckpt/model/
 * (a crash or a killed session resumes from the last checkpoint: run the same command again),
 * and written to models/default/ at the end.
 *
 *   npm run train:model            # TRAIN_STEPS, TRAIN_SEED, TRAIN_OUT, TRAIN_CKPT, TRAIN_DATA, TRAIN_WORKERS override the defaults
 *
 * TRAIN_INIT=<model folder> continues a trained model instead (its weights and tokenizer, a fresh
 * optimizer, TRAIN_LR as the peak rate; its shape, not TRAIN_EMBD/LAYERS/INNER); model.json records the
 * starting weights and their provenance.
 * The shipped model v3 is model v2 continued on corpus v3 (README, "The default model").
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { initBackend } from '../src/tensor/backend.js';
import { GPT, initParams, paramShapes, type GPTConfig, type Params } from '../src/model/gpt2.js';
import { trainBpe, Tokenizer, type TokenizerJson } from '../src/model/tokenizer.js';
import { readSafetensors, writeSafetensors } from '../src/model/safetensors.js';
import { clippedStep } from '../src/model/train-step.js';
import { TrainPool } from '../src/model/train-pool.js';
import { workerCount } from '../src/model/pool.js';
import { Rng } from '../src/util/random.js';
import { sha256, sha256File } from '../src/util/hash.js';
import { MANIFEST, type ModelManifest } from '../src/model/folder.js';
import { DEFAULT_THRESHOLDS, defaultEditableLayers } from '../src/model/hf.js';
import { basename } from 'node:path';

const SEED = Number(process.env.TRAIN_SEED ?? 7);
const STEPS = Number(process.env.TRAIN_STEPS ?? 6000);
const OUT = process.env.TRAIN_OUT ?? 'models/default';
const CKPT = process.env.TRAIN_CKPT ?? '.ckpt/model';
const DATA = process.env.TRAIN_DATA ?? 'data';
/** Continue from a trained model folder (its weights and tokenizer; a fresh optimizer) instead of from scratch. */
const INIT = process.env.TRAIN_INIT;
/** TRAIN_PREFIX_SPACE=1|0 sets the tokenizer's add_prefix_space (unset: as the tokenizer has it). */
const PREFIX_SPACE = process.env.TRAIN_PREFIX_SPACE === undefined ? undefined : process.env.TRAIN_PREFIX_SPACE === '1';
const BATCH = 16;
/** The variables that change what a run computes (recorded in the provenance's command; not TRAIN_OUT/TRAIN_CKPT). */
const TRAIN_ENV = ['TRAIN_SEED', 'TRAIN_STEPS', 'TRAIN_DATA', 'TRAIN_INIT', 'TRAIN_LR', 'TRAIN_EMBD', 'TRAIN_LAYERS', 'TRAIN_INNER', 'TRAIN_WORKERS', 'TRAIN_PREFIX_SPACE'];
/**
 * The shape: d = 128, 4 layers, and an MLP twice GPT-2's usual 4·d wide (1,024): the MLP width is the
 * key dimension of the c_proj layers the joint editor solves, so it bounds how many edit rows a set
 * holds (README, "The default model"). TRAIN_EMBD, TRAIN_LAYERS, TRAIN_INNER override it.
 */
const CONFIG: GPTConfig = {
  vocabSize: 4096, nPositions: 64, nEmbd: Number(process.env.TRAIN_EMBD ?? 128), nLayer: Number(process.env.TRAIN_LAYERS ?? 4), nHead: 4, layerNormEps: 1e-5,
  nInner: Number(process.env.TRAIN_INNER ?? 1024),
};
const LR = { max: Number(process.env.TRAIN_LR ?? 2e-3), min: 1e-4, warmup: 200 };
const CLIP = 1.0;
const CKPT_EVERY = 250;
/** Threads training data-parallel (TRAIN_WORKERS, else EDIT_WORKERS; default every core). Reproducible for a fixed count. */
const WORKERS = workerCount(process.env.TRAIN_WORKERS ?? process.env.EDIT_WORKERS ?? 'auto', process.env.TRAIN_WORKERS !== undefined ? 'TRAIN_WORKERS' : 'EDIT_WORKERS');
const ADAM = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8 };

function lrAt(step: number): number {
  if (step < LR.warmup) return (LR.max * (step + 1)) / LR.warmup;
  const p = (step - LR.warmup) / Math.max(1, STEPS - LR.warmup);
  return LR.min + 0.5 * (LR.max - LR.min) * (1 + Math.cos(Math.PI * Math.min(1, p)));
}

/** The model's parameters from a safetensors file (a checkpoint, or the weights a continued run starts from). */
async function readParams(file: string, config: GPTConfig): Promise<Params> {
  const { tensors } = await readSafetensors(file);
  return Object.fromEntries(paramShapes(config).map(([name, shape]) => [name, tf.tensor(tensors.get(name)!.data as Float32Array, shape)]));
}

/** A batch row: whole sentences from a random start, joined by newlines, cut to T+1 tokens. */
function makeBatch(sentences: number[][], nl: number, step: number): { x: number[][]; y: number[][] } {
  const rng = new Rng(SEED * 1_000_003 + step);
  const t = CONFIG.nPositions;
  const x: number[][] = [];
  const y: number[][] = [];
  for (let b = 0; b < BATCH; b++) {
    const row: number[] = [];
    while (row.length < t + 1) {
      row.push(...sentences[rng.int(sentences.length)], nl);
    }
    x.push(row.slice(0, t));
    y.push(row.slice(1, t + 1));
  }
  return { x, y };
}

async function main(): Promise<void> {
  const backend = await initBackend();
  console.log(`backend: ${backend}`);
  const corpus = readFileSync(DATA + '/corpus.txt', 'utf8');
  const corpusSha = sha256(corpus);
  // What a continued run starts from, read before anything is written (TRAIN_OUT may be the same folder).
  const initManifest = INIT === undefined ? undefined : (JSON.parse(readFileSync(`${INIT}/${MANIFEST}`, 'utf8')) as ModelManifest);
  mkdirSync(CKPT, { recursive: true });

  // 1. tokenizer (deterministic; cached in the checkpoint folder)
  const tokPath = `${CKPT}/tokenizer.json`;
  if (!existsSync(tokPath) && initManifest !== undefined) writeFileSync(tokPath, readFileSync(`${INIT}/${initManifest.tokenizer.file}`));
  if (!existsSync(tokPath)) {
    const t0 = Date.now();
    const json = trainBpe(corpus.split('\n'), { vocabSize: CONFIG.vocabSize });
    writeFileSync(tokPath, JSON.stringify(json));
    console.log(`tokenizer trained in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  // TRAIN_PREFIX_SPACE=1: the tokenizer's add_prefix_space is set, so every sentence, and later every
  // prompt, starts with a space (" Qinhuangdao's country is"): a subject at the start of a sentence
  // is the same tokens as inside one.
  if (PREFIX_SPACE !== undefined) {
    const json = JSON.parse(readFileSync(tokPath, 'utf8')) as TokenizerJson;
    if (json.pre_tokenizer.add_prefix_space !== PREFIX_SPACE) writeFileSync(tokPath, JSON.stringify({ ...json, pre_tokenizer: { ...json.pre_tokenizer, add_prefix_space: PREFIX_SPACE } }));
  }
  const tokenizer = Tokenizer.fromJson(JSON.parse(readFileSync(tokPath, 'utf8')), tokPath);
  const config = { ...(initManifest?.config ?? CONFIG), vocabSize: tokenizer.vocabSize };
  const lines = corpus.split('\n').filter((s) => s.length > 0);
  const sentences = lines.map((s) => tokenizer.encode(s));
  const nl = tokenizer.encode('\n').at(-1)!; // the newline byte (with add_prefix_space the encoding is " " then "\n")
  const nTokens = sentences.reduce((a, s) => a + s.length + 1, 0);
  console.log(`corpus: ${lines.length} sentences, ${nTokens} tokens/epoch, vocab ${tokenizer.vocabSize}`);

  // 2. parameters and optimizer, resumed from the last checkpoint if there is one
  let start = 0;
  let init: Params;
  // Which corpus each stretch of steps saw (a resumed run may continue on a corrected corpus).
  type Segment = { from: number; to: number; corpusSha256: string };
  let segments: Segment[] = [];
  const segmentsUpTo = (step: number): Segment[] => {
    const last = segments[segments.length - 1];
    if (last !== undefined && last.corpusSha256 === corpusSha) return [...segments.slice(0, -1), { ...last, to: step }];
    return [...segments, { from: last?.to ?? 0, to: step, corpusSha256: corpusSha }];
  };
  const statePath = `${CKPT}/progress.json`;
  const opt = tf.train.adam(LR.max, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  if (existsSync(statePath)) {
    const progress = JSON.parse(readFileSync(statePath, 'utf8')) as { step: number; segments?: Segment[] };
    segments = progress.segments ?? [];
    init = await readParams(`${CKPT}/params.safetensors`, config);
    const adam = await readSafetensors(`${CKPT}/adam.safetensors`);
    const names = JSON.parse(adam.metadata.order) as string[];
    const restored = names.map((name) => ({ name, tensor: tf.tensor(adam.tensors.get(name)!.data as Float32Array | Int32Array, adam.tensors.get(name)!.shape) }));
    await opt.setWeights(restored);
    for (const r of restored) r.tensor.dispose(); // the optimizer's variables hold their own references
    start = progress.step;
    console.log(`resuming at step ${start}`);
  } else if (initManifest !== undefined) {
    init = await readParams(`${INIT}/${initManifest.weights.file}`, config);
    console.log(`continuing from ${INIT}`);
  } else {
    init = initParams(config, SEED);
  }
  const vars: Params = {};
  for (const [name, t] of Object.entries(init)) {
    vars[name] = tf.variable(t, true, name);
    t.dispose();
  }
  const model = new GPT(config, vars);
  const varList = Object.values(vars) as tf.Variable[];

  const save = async (step: number) => {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of Object.entries(vars)) tensors[name] = { shape: v.shape, data: (await v.data()) as Float32Array };
    await writeSafetensors(`${CKPT}/params.safetensors`, tensors);
    const w = await opt.getWeights(); // w[0] is a fresh 'iter' scalar; the rest are the optimizer's own variables
    const adam: Record<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }> = {};
    for (const { name, tensor } of w) {
      adam[name] = { dtype: tensor.dtype === 'int32' ? 'I32' : 'F32', shape: tensor.shape, data: (await tensor.data()) as Float32Array | Int32Array };
    }
    await writeSafetensors(`${CKPT}/adam.safetensors`, adam, { order: JSON.stringify(w.map((x) => x.name)) });
    w[0].tensor.dispose();
    writeFileSync(statePath, JSON.stringify({ step, segments: segmentsUpTo(step) }));
  };

  // 3. training loop (on WORKERS threads when more than one)
  const pool = WORKERS > 1
    ? await TrainPool.open(config, { names: Object.keys(vars), vars: varList, loss: (x, y) => model.loss(x, y), opt }, ADAM, WORKERS)
    : undefined;
  console.log(`threads: ${pool?.size ?? 1}`);
  const t0 = Date.now();
  let ema = 0;
  const log: Array<{ step: number; loss: number }> = existsSync(`${CKPT}/log.json`) ? JSON.parse(readFileSync(`${CKPT}/log.json`, 'utf8')) : [];
  for (let step = start; step < STEPS; step++) {
    const { x, y } = makeBatch(sentences, nl, step);
    let loss: number;
    if (pool !== undefined) loss = await pool.step(x, y, lrAt(step), CLIP);
    else {
      (opt as unknown as { learningRate: number }).learningRate = lrAt(step);
      const xs = tf.tensor2d(x, [BATCH, config.nPositions], 'int32');
      const ys = tf.tensor2d(y, [BATCH, config.nPositions], 'int32');
      const lossT = clippedStep(opt, varList, () => model.loss(xs, ys), CLIP);
      tf.dispose([xs, ys]);
      loss = (await lossT.data())[0];
      lossT.dispose();
    }
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${step}; resume from the last checkpoint with a lower learning rate`);
    ema = step === start ? loss : 0.98 * ema + 0.02 * loss;
    if (step % 25 === 0 || step === STEPS - 1) {
      const done = step + 1 - start;
      const rate = (done * BATCH * config.nPositions) / ((Date.now() - t0) / 1000);
      const eta = ((STEPS - step - 1) * BATCH * config.nPositions) / rate / 60;
      log.push({ step, loss: Number(ema.toFixed(4)) });
      console.log(`step ${step + 1}/${STEPS} loss ${ema.toFixed(3)} lr ${lrAt(step).toExponential(2)} ${rate.toFixed(0)} tok/s eta ${eta.toFixed(1)} min tensors ${tf.memory().numTensors}`);
    }
    if ((step + 1) % CKPT_EVERY === 0 || step === STEPS - 1) {
      await save(step + 1);
      writeFileSync(`${CKPT}/log.json`, JSON.stringify(log));
    }
  }

  await pool?.close();

  // 4. the shipped files: weights, tokenizer, manifest (a resumed finished run only rewrites these)
  mkdirSync(OUT, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, v] of Object.entries(vars)) tensors[name] = { shape: v.shape, data: (await v.data()) as Float32Array };
  await writeSafetensors(`${OUT}/base.safetensors`, tensors, { format: 'pt' });
  writeFileSync(`${OUT}/tokenizer.json`, readFileSync(tokPath));
  const finalLoss = log.length > 0 ? log[log.length - 1].loss : null;
  const provenance = {
    trainedBy: 'scripts/train-model.ts',
    command: `npm run data && ${Object.entries(process.env).filter(([k]) => TRAIN_ENV.includes(k)).sort().map(([k, v]) => `${k}=${v} `).join('')}npm run train:model`,
    note: process.env.TRAIN_NOTE,
    seed: SEED, steps: STEPS, batch: BATCH, contextTokens: config.nPositions, tokensSeen: STEPS * BATCH * config.nPositions,
    lr: LR, clip: CLIP, optimizer: 'adam(0.9, 0.95, 1e-8)', backend, threads: WORKERS,
    corpus: { file: 'data/corpus.txt', sha256: corpusSha, sentences: lines.length, tokensPerEpoch: nTokens, dataSeed: JSON.parse(readFileSync(DATA + '/facts.json', 'utf8')).seed },
    corpusSegments: segmentsUpTo(STEPS),
    ...(initManifest === undefined ? {} : { continuedFrom: { weightsSha256: initManifest.weights.sha256, provenance: initManifest.provenance } }),
    finalLoss,
    lossCurve: log.filter((_, i) => i % 4 === 0 || i === log.length - 1),
  };
  const manifest: ModelManifest = {
    $schema: '../../schemas/model.schema.json',
    version: 1,
    name: basename(OUT),
    architecture: 'gpt2',
    config,
    tokenizer: { file: 'tokenizer.json', sha256: await sha256File(`${OUT}/tokenizer.json`) },
    weights: { file: 'base.safetensors', sha256: await sha256File(`${OUT}/base.safetensors`), dtype: 'F32' },
    editableLayers: defaultEditableLayers(config.nLayer),
    editor: null,
    thresholds: DEFAULT_THRESHOLDS,
    provenance,
  };
  writeFileSync(`${OUT}/${MANIFEST}`, JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${OUT}/base.safetensors, tokenizer.json, model.json (final loss ${finalLoss})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
