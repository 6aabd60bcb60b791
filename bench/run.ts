/**
 * `npm run bench`: matmul GFLOP/s, training tokens/s and generation ms/token on every backend
 * that loads, plus memory, in one process; then the edits section (bench/edits.ts): the `edit` CLI
 * as a child process — validate and plan over 10,000 edit files, apply with the ft editor; then the
 * joint section (bench/joint.ts): the set editor's rows per edit, solves at N = 1, 100, 1,000 and one
 * new edit applied into 1,000 vs into an empty set, on the fastest backend; then the judge section
 * (bench/judge.ts): judging prompts/s one at a time vs batched (generateBatch + prefetch), fastest backend;
 * the editors section (bench/editors.ts): ms per edit of every editor on one set of 10 edits, and
 * meta-training steps/s of the hypernetwork editors; and the threads section (bench/train-threads.ts):
 * data-parallel training tokens/s on 1 vs 2 threads.
 * Writes bench/results/latest.json and a dated copy, and prints a table. Ratios (wasm/cpu,
 * custom/plain, no-cache/cache) are the numbers to compare across runs: absolute speeds on these
 * shared machines move with whatever else is running.
 *
 *   npm run build && npm run bench # full run, ~6–8 min (the edits section's 100-edit apply and the joint section's 100 edits' rows are most of it)
 *   BENCH_QUICK=1 npm run bench    # small sizes, ~30–45 s; writes bench/results/quick.json only
 *   BENCH_OUT=dir                  # write results elsewhere
 *   BENCH_BACKENDS=wasm,cpu        # only these backends
 *   BENCH_SECTIONS=edits           # only these sections (matmul, train, threads, generate, edits, joint, editors, judge, scale); no latest.json
 *   BENCH_SECTIONS=scale           # opt-in (~30 min): a 124M-parameter model (import, stats, generate, apply, verify) and a 1,000-edit set on the default model
 *   BENCH_SCALE_PARTS=large|set|import  # one part of the scale section (import: the 124M import and one generate)
 *   BENCH_MODEL=models/x           # the model folder for generation, apply and joint (default models/default)
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync, mkdirSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { join } from 'node:path';
import type { GPTConfig } from '../src/model/gpt2.js';
import { BACKENDS, useBackend, type BackendName } from '../src/tensor/backend.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { benchEdits, pickModel, type EditsSizes } from './edits.js';
import { benchJoint, type JointSizes } from './joint.js';
import { benchEditors, type EditorsSizes } from './editors.js';
import { benchJudge, type JudgeSizes } from './judge.js';
import { benchTrainThreads, type TrainThreadsSizes } from './train-threads.js';
import { benchScale, GPT2_SMALL, type ScaleSizes } from './scale.js';
import { memoryNow, sig, stamp, type BenchRecord, type MemoryRecord, type RecordBackend } from './measure.js';
import { computeRatios, renderResults, type BenchResults } from './report.js';
import { benchGenerate, benchMatmul, benchTrain, type GenerateSizes, type MatmulShape, type TrainSizes } from './sections.js';

const QUICK = !['', '0', 'false', undefined].includes(process.env.BENCH_QUICK);
const OUT_DIR = process.env.BENCH_OUT ?? 'bench/results';
/** A model folder for the generation section; the full run looks for models/default. */
const MODEL = process.env.BENCH_MODEL;
const SECTIONS = ['matmul', 'train', 'threads', 'generate', 'edits', 'joint', 'editors', 'judge', 'scale'] as const;
/** BENCH_SCALE_PARTS=large, set or import (the large model's import and one generate): parts of the scale section (default large,set). */
const SCALE_PARTS = (process.env.BENCH_SCALE_PARTS ?? 'large,set').split(',').map((x) => x.trim()).filter((x): x is 'large' | 'set' | 'import' => x === 'large' || x === 'set' || x === 'import');
/** Sections a full run leaves out unless BENCH_SECTIONS names them (they take ~30 min). */
const OPT_IN: readonly string[] = ['scale'];
type SectionName = (typeof SECTIONS)[number];
/** BENCH_SECTIONS=a,b: only these sections; unset or empty: all. */
const ONLY_SECTIONS = process.env.BENCH_SECTIONS?.split(',').map((x) => x.trim()).filter((x) => x !== '');

/** The default model's shape (scripts/train-model.ts). */
const DEFAULT_CONFIG: GPTConfig = { vocabSize: 4096, nPositions: 64, nEmbd: 128, nLayer: 4, nHead: 4, layerNormEps: 1e-5 };
const TINY_CONFIG: GPTConfig = { vocabSize: 256, nPositions: 16, nEmbd: 32, nLayer: 2, nHead: 2, layerNormEps: 1e-5 };

interface Plan {
  matmul: { shapes: MatmulShape[]; minSeconds: number; minReps: number };
  /** Training sizes per backend; the pure-JS cpu backend gets 2 steps. */
  train: (b: BackendName) => TrainSizes;
  /** Plain-autodiff training runs only where it finishes in seconds. */
  plain: (b: BackendName) => TrainSizes | undefined;
  generate: GenerateSizes;
  edits: EditsSizes;
  joint: JointSizes;
  judge: JudgeSizes;
  editors: EditorsSizes;
  threads: TrainThreadsSizes;
  scale: ScaleSizes;
}

const FULL: Plan = {
  matmul: {
    shapes: [{ m: 256, k: 512, n: 512 }, { m: 1024, k: 128, n: 512 }, { m: 256, k: 512, n: 512, transposeB: true }],
    minSeconds: 0.5,
    minReps: 3,
  },
  train: (b) => ({ config: DEFAULT_CONFIG, batch: 16, ...(b === 'cpu' ? { warmupSteps: 0, steps: 2 } : { warmupSteps: 1, steps: 5 }) }),
  plain: (b) => (b === 'cpu' ? undefined : { config: DEFAULT_CONFIG, batch: 16, warmupSteps: 1, steps: 2 }),
  generate: { promptTokens: 32, newTokens: 32, reps: 3, config: DEFAULT_CONFIG, modelDir: MODEL ?? 'models/default' },
  edits: { files: 10_000, folders: 100, reps: 3, applies: [1, 100], modelDir: MODEL },
  joint: { edits: 100, solves: [1, 100, 1000], into: 1000, reps: 3, modelDir: MODEL },
  judge: { edits: 60, modelDir: MODEL ?? 'models/default', threads: 2 },
  editors: { edits: 10, metaSteps: 5, metaBatch: 32, modelDir: MODEL },
  threads: { config: DEFAULT_CONFIG, modelDir: MODEL ?? 'models/default', batch: 16, warmupSteps: 2, steps: 8, threads: [1, 2] },
  scale: { config: GPT2_SMALL, asserts: 1000, edits: 1000, assertionsPerEdit: 10, modelDir: MODEL ?? 'models/default', parts: SCALE_PARTS },
};

/** A quick run exercises the hypernetwork editors' refinement in a few steps, not the shipped number. */
const QUICK_REFINE_STEPS = 4;

const QUICK_PLAN: Plan = {
  matmul: {
    shapes: [{ m: 64, k: 128, n: 128 }, { m: 128, k: 32, n: 128 }, { m: 64, k: 128, n: 128, transposeB: true }],
    minSeconds: 0.02,
    minReps: 2,
  },
  train: () => ({ config: TINY_CONFIG, batch: 2, warmupSteps: 1, steps: 2 }),
  plain: () => ({ config: TINY_CONFIG, batch: 2, warmupSteps: 1, steps: 2 }),
  generate: { promptTokens: 4, newTokens: 4, reps: 1, config: TINY_CONFIG, modelDir: MODEL },
  edits: { files: 200, folders: 10, reps: 2, applies: [1, 5], modelDir: MODEL },
  joint: { edits: 5, solves: [1, 5, 50], into: 50, reps: 1, modelDir: MODEL, refineSteps: QUICK_REFINE_STEPS },
  judge: { edits: 3, modelDir: MODEL ?? 'models/default', threads: 2 },
  editors: { edits: 2, metaSteps: 1, metaBatch: 4, modelDir: MODEL, refineSteps: QUICK_REFINE_STEPS },
  threads: { config: TINY_CONFIG, batch: 4, warmupSteps: 1, steps: 2, threads: [1, 2] },
  scale: { config: { ...TINY_CONFIG, vocabSize: 4096, nPositions: 64 }, asserts: 20, edits: 5, assertionsPerEdit: 4, modelDir: MODEL ?? 'models/default', parts: SCALE_PARTS },
};

// ---------------------------------------------------------------- main

/** A section's progress lines on stderr, indented under its "bench: <section> … " line. */
function progressLog(): (line: string) => void {
  let first = true;
  return (line) => {
    process.stderr.write(`${first ? '\n' : ''}  ${line}\n`);
    first = false;
  };
}

async function main(): Promise<number> {
  const started = Date.now();
  const plan = QUICK ? QUICK_PLAN : FULL;
  if (MODEL !== undefined && !existsSync(join(MODEL, 'model.json'))) {
    console.error(`BENCH_MODEL=${MODEL}: no model.json there`);
    return 1;
  }
  const unknown = (ONLY_SECTIONS ?? []).filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) {
    console.error(`BENCH_SECTIONS: unknown section ${unknown.join(', ')} (choose from ${SECTIONS.join(', ')})`);
    return 1;
  }
  const run = (s: SectionName) => (ONLY_SECTIONS === undefined || ONLY_SECTIONS.length === 0 ? !OPT_IN.includes(s) : ONLY_SECTIONS.includes(s));
  const status: Record<string, string> = {};
  const available: BackendName[] = [];
  const only = process.env.BENCH_BACKENDS?.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const b of BACKENDS) {
    if (only !== undefined && only.length > 0 && !only.includes(b)) {
      status[b] = 'skipped (BENCH_BACKENDS)';
      continue;
    }
    // node-gpu and node both register tfjs's "tensorflow" backend: one process can hold only one.
    if (b === 'node' && available.includes('node-gpu')) {
      status[b] = 'skipped (node-gpu loaded)';
      continue;
    }
    const why = await useBackend(b);
    status[b] = why ?? 'ok';
    if (why === undefined) available.push(b);
  }
  const records: BenchRecord[] = [];
  const memory: MemoryRecord[] = [];
  const errors: BenchResults['errors'] = [];
  const step = async (section: string, backend: RecordBackend, measure: () => Promise<{ records: BenchRecord[]; memory: MemoryRecord }>) => {
    const t0 = Date.now();
    process.stderr.write(`bench: ${section}${backend === 'none' ? '' : ` on ${backend}`} … `);
    try {
      const r = await measure();
      records.push(...r.records);
      memory.push(r.memory);
      process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      const message = (err as Error).message.split('\n')[0];
      errors.push({ section, backend, message });
      process.stderr.write(`failed: ${message}\n`);
    }
  };
  for (const b of available) {
    const why = await useBackend(b);
    if (why !== undefined) {
      errors.push({ section: 'setup', backend: b, message: why });
      continue;
    }
    if (run('matmul')) await step('matmul', b, () => benchMatmul(b, plan.matmul.shapes, plan.matmul.minSeconds, plan.matmul.minReps));
    if (run('train')) await step('train', b, () => benchTrain(b, 'custom', plan.train(b)));
    const plain = plan.plain(b);
    if (run('train') && plain !== undefined) await step('train plain autodiff', b, () => benchTrain(b, 'plain', plain));
    if (run('generate') && (b !== 'cpu' || QUICK)) await step('generate', b, () => benchGenerate(b, plan.generate));
  }
  if (run('edits')) {
    const model = pickModel(plan.edits.modelDir);
    await step(`edits (apply on ${model?.dir ?? 'no model'})`, 'none', async () => {
      const before = tf.memory().numTensors;
      const recs = await benchEdits(plan.edits, progressLog());
      const left = tf.memory().numTensors - before;
      const memory: MemoryRecord = { ...stamp(), after: 'edits', backend: 'none', ...memoryNow(), leak: left !== 0, leakDetail: `${left} tensors left; the CLI's own peak RSS is in the edits records` };
      return { records: recs, memory };
    });
  }
  // the set editor on the fastest backend only: its rows take ~0.5 s per edit on wasm, minutes on cpu
  const fastest = available[0];
  if (run('joint') && fastest !== undefined) {
    const why = await useBackend(fastest);
    if (why !== undefined) errors.push({ section: 'joint', backend: fastest, message: why });
    else await step(`joint (${pickModel(plan.joint.modelDir)?.dir ?? 'no model'})`, fastest, () => benchJoint(fastest, plan.joint, progressLog()));
  }
  if (run('editors') && fastest !== undefined) {
    const why = await useBackend(fastest);
    if (why !== undefined) errors.push({ section: 'editors', backend: fastest, message: why });
    else
      await step('editors', fastest, async () => {
        const r = await benchEditors(fastest, plan.editors, progressLog());
        for (const message of r.errors) errors.push({ section: 'editors', backend: fastest, message });
        return r;
      });
  }
  if (run('threads') && fastest !== undefined) {
    const why = await useBackend(fastest);
    if (why !== undefined) errors.push({ section: 'train threads', backend: fastest, message: why });
    else await step('train threads', fastest, () => benchTrainThreads(fastest, plan.threads, progressLog()));
  }
  if (run('scale') && fastest !== undefined) await step('scale', fastest, () => benchScale(fastest, plan.scale, progressLog()));
  if (run('judge') && fastest !== undefined) {
    const why = await useBackend(fastest);
    if (why !== undefined) errors.push({ section: 'judge', backend: fastest, message: why });
    else await step(`judge (${plan.judge.modelDir})`, fastest, () => benchJudge(fastest, plan.judge, progressLog()));
  }

  const res: BenchResults = {
    format: 'editops-bench/1',
    ...stamp(),
    quick: QUICK,
    sections: SECTIONS.filter(run),
    cores: cpus().length,
    platform: `${platform()}-${arch()}`,
    tfjs: tf.version.tfjs,
    backends: status,
    seconds: sig((Date.now() - started) / 1000),
    records,
    ratios: computeRatios(records),
    memory,
    errors,
  };
  mkdirSync(OUT_DIR, { recursive: true });
  const json = JSON.stringify(res, null, 2) + '\n';
  const written: string[] = [];
  const partial = ONLY_SECTIONS !== undefined && ONLY_SECTIONS.length > 0;
  if (QUICK) {
    written.push(join(OUT_DIR, 'quick.json'));
  } else {
    const best = available[0] ?? 'none';
    const day = res.date.slice(0, 16).replace(':', ''); // 2025-06-01T1413
    // latest.json holds whole runs only; a BENCH_SECTIONS run gets a dated file named after its sections
    if (partial) written.push(join(OUT_DIR, `${day}-${best}-${ONLY_SECTIONS.join('+')}.json`));
    else written.push(join(OUT_DIR, 'latest.json'), join(OUT_DIR, `${day}-${best}.json`));
  }
  for (const path of written) await writeFileAtomic(path, json);
  console.log(renderResults(res));
  console.log(`\nwrote ${written.join(', ')} (peak RSS ${memoryNow().maxRssMB} MB)`);
  return errors.length > 0 || available.length === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
