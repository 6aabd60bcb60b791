/**
 * `edit train-editor`: meta-trains the hypernetwork of `mend` / `instructedit` (network.ts) on
 * mixed-task batches of benchmark edits (data/bench.json, train split; validation split for the
 * per-task validation), each step's loss seeing the batch's jointly solved ΔW (train.ts).
 * Every random choice of step k comes from Rng(seed, k), so a run resumed from a checkpoint takes
 * the same batches as one that never stopped; the checkpoint holds the network and both
 * optimizers' moments (F32, bit-exact).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import { withRelation, type BenchFile, type BenchRecord, type BenchTask } from './bench.js';
import { parseSafetensors, serializeSafetensors } from '../model/safetensors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Rng } from '../util/random.js';
import type { EditRequest } from '../editor/editor.js';
import { hyperRows, stackRows } from '../editor/mend/editor.js';
import { HyperNet, inputStats, type InputStats, type InstructionMode } from '../editor/mend/network.js';
import { BatchOperator } from '../editor/mend/solve.js';
import { MetaPrefetch } from './meta-prefetch.js';
import { batchFromArrays, editAccuracy, metaLoss, MetaTrainer, prepareMetaBatch, type MetaBatch, type MetaContext, type MetaSettings, type MetaStep } from '../editor/mend/train.js';

export interface TrainEditorOptions {
  method: 'mend' | 'instructedit';
  /** How instructions enter ('none' for mend). */
  instruction: InstructionMode;
  /** Benchmark tasks meta-training draws from (the others are held out). */
  tasks: BenchTask[];
  /** Relations whose records meta-training never edits, in any task (a held-out relation); absent or empty: none. */
  excludeRelations?: string[];
  /** instructedit: each edit's instruction is followed by what its relation's new object is (the benchmark's `relations`). */
  relationInstructions?: boolean;
  /** Edited layers in forward order. */
  layers: string[];
  steps: number;
  /** Edits per step (drawn task-balanced: a task, then one of its records). */
  batch: number;
  /** Rephrase prompts per edit in the edit loss. */
  rephrase: number;
  /** Locality sequences per step (facts of subjects the batch does not edit). */
  locality: number;
  hidden: number;
  seed: number;
  /** Validation every this many steps (and at the end). */
  validateEvery: number;
  /** Validation edits per task (a fixed batch from the validation split). */
  validationEdits: number;
  meta: MetaSettings;
}

export interface ValidationResult {
  step: number;
  task: BenchTask;
  nll: number;
  kl: number;
  /** Teacher-forced target accuracy on edit + rephrase prompts. */
  accuracy: number;
}

export interface TrainProgress extends MetaStep {
  step: number;
  steps: number;
  seconds: number;
}

export interface TrainHooks {
  /** Checkpoint folder: resumed from when it holds a run with the same options. */
  checkpoint?: string;
  checkpointEvery?: number;
  onStep?(p: TrainProgress): void;
  onValidation?(rows: ValidationResult[]): void;
  /** Asked between steps; true stops after a checkpoint (SIGINT). */
  stop?(): boolean;
}

export interface TrainResult {
  net: HyperNet;
  steps: number;
  resumedFrom: number;
  skipped: number;
  seconds: number;
  validation: ValidationResult[];
  /** Mean training loss parts over the last 50 steps. */
  last: { loss: number; nll: number; kl: number };
}

/** Instruction texts meta-training shows for a task (the unseen one never). */
export function seenInstructions(bench: BenchFile, task: BenchTask): string[] {
  const t = bench.tasks[task];
  return t.instructions !== undefined && t.instructions.length > 0 ? t.instructions : [t.instruction];
}

/**
 * A record as the editor sees it, with `instruction` (one of its task's; with `relations`, followed
 * by its relation's description) and `rephrase` of its rephrasings.
 */
function request(bench: BenchFile, r: BenchRecord, instruction: string, rephrase: string[], relations = false): EditRequest {
  return { id: r.id, task: r.task, instruction: relations ? withRelation(bench, instruction, r.relation) : instruction, prompt: r.prompt, target: r.target, rephrase };
}

/** One step's edits (task-balanced, never one subject and relation twice) and locality texts. */
export function sampleStep(bench: BenchFile, pools: Map<BenchTask, BenchRecord[]>, opts: Pick<TrainEditorOptions, 'tasks' | 'batch' | 'rephrase' | 'locality' | 'method' | 'relationInstructions'>, rng: Rng, instruction?: (task: BenchTask) => string): { edits: EditRequest[]; locality: string[] } {
  const seen = new Set<string>();
  const picked: BenchRecord[] = [];
  for (let tries = 0; picked.length < opts.batch && tries < opts.batch * 20; tries++) {
    const task = rng.pick(opts.tasks);
    const r = rng.pick(pools.get(task)!);
    const key = `${r.subject}\u0000${r.relation}`;
    if (seen.has(key)) continue;
    seen.add(key);
    picked.push(r);
  }
  const edits = picked.map((r) => {
    const drawn = rng.pick(seenInstructions(bench, r.task)); // drawn even when `instruction` decides: the same stream either way
    return request(bench, r, instruction?.(r.task) ?? drawn, rng.shuffle([...r.rephrase]).slice(0, opts.rephrase), opts.relationInstructions);
  });
  return { edits, locality: localityTexts(bench, picked, opts.locality, rng) };
}

function localityTexts(bench: BenchFile, records: readonly BenchRecord[], k: number, rng: Rng): string[] {
  const subjects = new Set(records.map((r) => r.subject));
  const candidates = [...new Set(records.flatMap((r) => r.locality))].filter((i) => !subjects.has(bench.neighbours[i].subject));
  return rng.shuffle(candidates).slice(0, k).map((i) => bench.neighbours[i].prompt + bench.neighbours[i].answer);
}

/** μ, σ of the network's inputs u per layer, over rows of up to `limit` train records (every task's, interleaved). */
function networkInputStats(ctx: MetaContext, bench: BenchFile, pools: Map<BenchTask, BenchRecord[]>, opts: TrainEditorOptions, limit = 256): Record<string, InputStats> {
  const lists = opts.tasks.map((t) => pools.get(t)!);
  const recs: BenchRecord[] = [];
  for (let i = 0; recs.length < limit && lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length && recs.length < limit) recs.push(l[i]);
  const edits = recs.map((r) => request(bench, r, seenInstructions(bench, r.task)[0], [], opts.relationInstructions));
  const wrap = opts.instruction === 'wrap';
  const rows: Array<[string, import('../editor/editor.js').EditRows]> = [];
  for (let at = 0; at < edits.length; at += 32) rows.push(...hyperRows(ctx.model, ctx.tokenizer, opts.layers, edits.slice(at, at + 32), 0, wrap));
  const out: Record<string, InputStats> = {};
  for (const l of opts.layers) {
    const s = stackRows(rows, l, 0, wrap);
    out[l] = inputStats(s.u, s.n, s.u.length / s.n);
  }
  return out;
}

const CHECKPOINT = { progress: 'progress.json', net: 'network.safetensors', optimizer: 'optimizer.safetensors' } as const;

interface CheckpointProgress {
  options: TrainEditorOptions;
  step: number;
  skipped: number;
  seconds: number;
  validation: ValidationResult[];
  recent: Array<{ loss: number; nll: number; kl: number }>;
}

/** Records of `task` in `split` that meta-training may edit (not of an excluded relation). */
function trainable(bench: BenchFile, task: BenchTask, split: BenchRecord['split'], opts: Pick<TrainEditorOptions, 'excludeRelations'>): BenchRecord[] {
  const excluded = new Set(opts.excludeRelations ?? []);
  return bench.records.filter((r) => r.task === task && r.split === split && !excluded.has(r.relation));
}

/** Train records per meta-training task. */
export function trainPools(bench: BenchFile, opts: Pick<TrainEditorOptions, 'tasks' | 'excludeRelations'>): Map<BenchTask, BenchRecord[]> {
  const pools = new Map<BenchTask, BenchRecord[]>();
  for (const t of opts.tasks) {
    const pool = trainable(bench, t, 'train', opts);
    if (pool.length === 0) throw new EditError(`the benchmark has no train records of task "${t}"${(opts.excludeRelations ?? []).length > 0 ? ` outside the excluded relations (${opts.excludeRelations!.join(', ')})` : ''}`);
    pools.set(t, pool);
  }
  return pools;
}

/** The batch solve operators of the edited layers (P = (λC)⁻¹ factored once per layer). */
export function trainOperators(ctx: MetaContext, opts: Pick<TrainEditorOptions, 'layers' | 'meta'>): Record<string, BatchOperator> {
  return Object.fromEntries(opts.layers.map((l) => [l, new BatchOperator(ctx.stats.layers[l].second, ctx.model.params[`${l}.weight`].shape[0] as number, opts.meta.lambda, opts.meta.keyFloor)]));
}

/** Step k's batch: its edits and locality texts from Rng(seed, k), prepared against the base model (the network gives only its shape). */
export function stepBatch(ctx: MetaContext, bench: BenchFile, pools: Map<BenchTask, BenchRecord[]>, net: HyperNet, opts: TrainEditorOptions, operators: Record<string, BatchOperator>, step: number): MetaBatch {
  const { edits, locality } = sampleStep(bench, pools, opts, new Rng(stepSeed(opts.seed, step)));
  return prepareMetaBatch(ctx, net, edits, locality, opts.meta, operators);
}

/**
 * Meta-trains a network (or resumes the checkpoint's); returns it trained for `opts.steps` steps.
 * With `threads` > 1 (and ctx.modelDir), worker threads prepare the coming steps' batches
 * (meta-prefetch.ts): the same bytes as on one thread.
 */
export async function trainEditor(ctx: MetaContext & { modelDir?: string }, bench: BenchFile, opts: TrainEditorOptions, hooks: TrainHooks = {}, threads = 1): Promise<TrainResult> {
  if (opts.tasks.length === 0) throw new EditError('meta-training needs at least one task');
  if (threads > 1 && ctx.modelDir === undefined) throw new EditError('training on several threads needs the model folder (each thread loads it)');
  if ((opts.method === 'mend') !== (opts.instruction === 'none')) throw new EditError('mend trains without instructions; instructedit with "condition" or "wrap"');
  const pools = trainPools(bench, opts);
  const condDim = opts.instruction === 'condition' ? ctx.model.config.nEmbd : 0;
  const keyDims = Object.fromEntries(opts.layers.map((l) => [l, ctx.model.params[`${l}.weight`].shape[0] as number]));
  const shape = { layers: opts.layers, keyDims, valueDim: ctx.model.params[`${opts.layers[0]}.weight`].shape[1] as number, hidden: opts.hidden, condDim, instruction: opts.instruction };

  let prior: CheckpointProgress | undefined;
  if (hooks.checkpoint !== undefined) prior = await readCheckpoint(hooks.checkpoint, opts);
  const net = prior !== undefined ? HyperNet.parse(new Uint8Array(await readFile(join(hooks.checkpoint!, CHECKPOINT.net))), join(hooks.checkpoint!, CHECKPOINT.net)) : HyperNet.init(shape, networkInputStats(ctx, bench, pools, opts), { seed: opts.seed });
  const trainer = new MetaTrainer(net, opts.meta);
  if (prior !== undefined && prior.step > 0) {
    const file = join(hooks.checkpoint!, CHECKPOINT.optimizer);
    await trainer.restore(parseSafetensors(new Uint8Array(await readFile(file)), file).tensors as Map<string, { shape: number[]; data: Float32Array }>);
  }
  const operators = trainOperators(ctx, opts);
  const validation = validationBatches(ctx, bench, net, opts, operators);
  const prefetch = threads > 1 ? await MetaPrefetch.open({ modelDir: ctx.modelDir!, bench, opts, network: net.serialize(), stats: ctx.stats }, threads) : undefined;
  const state: CheckpointProgress = prior ?? { options: opts, step: 0, skipped: 0, seconds: 0, validation: [], recent: [] };
  const resumedFrom = state.step;

  const validate = () => {
    const rows = [...validation].map(([task, b]) => {
      const parts = metaLoss(ctx.model, net, b, opts.meta);
      const row = { step: state.step, task, nll: parts.nll.dataSync()[0], kl: parts.kl.dataSync()[0], accuracy: editAccuracy(ctx.model, net, b) };
      tf.dispose([parts.loss, parts.nll, parts.kl]);
      return row;
    });
    state.validation.push(...rows);
    hooks.onValidation?.(rows);
  };
  const save = async () => {
    if (hooks.checkpoint === undefined) return;
    await mkdir(hooks.checkpoint, { recursive: true });
    await writeFileAtomic(join(hooks.checkpoint, CHECKPOINT.net), net.serialize());
    await writeFileAtomic(join(hooks.checkpoint, CHECKPOINT.optimizer), serializeSafetensors(await trainer.state()));
    await writeFileAtomic(join(hooks.checkpoint, CHECKPOINT.progress), JSON.stringify(state, null, 1) + '\n');
  };

  try {
    if (state.step === 0) validate();
    const every = hooks.checkpointEvery ?? 50;
    while (state.step < opts.steps) {
      const t0 = performance.now();
      let batch: MetaBatch;
      if (prefetch === undefined) batch = stepBatch(ctx, bench, pools, net, opts, operators, state.step);
      else {
        // the coming steps are prepared while this one trains
        for (let k = state.step; k < Math.min(opts.steps, state.step + prefetch.size); k++) prefetch.request(k);
        batch = batchFromArrays(await prefetch.take(state.step));
      }
      let r: MetaStep;
      try {
        r = trainer.step(ctx.model, batch);
      } finally {
        batch.dispose();
      }
      state.step++;
      state.seconds += (performance.now() - t0) / 1000;
      if (r.skipped) state.skipped++;
      else state.recent = [...state.recent, { loss: r.loss, nll: r.nll, kl: r.kl }].slice(-50);
      hooks.onStep?.({ ...r, step: state.step, steps: opts.steps, seconds: state.seconds });
      if (state.step % opts.validateEvery === 0 || state.step === opts.steps) validate();
      if (state.step % every === 0 || state.step === opts.steps) await save();
      if (hooks.stop?.() === true) {
        await save();
        break;
      }
      await Promise.resolve();
    }
  } finally {
    await prefetch?.close();
    trainer.dispose();
    for (const b of validation.values()) b.dispose();
    for (const o of Object.values(operators)) o.dispose();
  }
  const mean = (k: 'loss' | 'nll' | 'kl') => state.recent.reduce((a, x) => a + x[k], 0) / Math.max(state.recent.length, 1);
  return { net, steps: state.step, resumedFrom, skipped: state.skipped, seconds: state.seconds, validation: state.validation, last: { loss: mean('loss'), nll: mean('nll'), kl: mean('kl') } };
}

/** Step k's seed: independent streams per step, so resuming needs only the step count. */
function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;
}

/** Per task, a fixed batch of validation edits (seeded by the run's seed, first instruction). */
function validationBatches(ctx: MetaContext, bench: BenchFile, net: HyperNet, opts: TrainEditorOptions, operators: Record<string, BatchOperator>): Map<BenchTask, ReturnType<typeof prepareMetaBatch>> {
  const out = new Map<BenchTask, ReturnType<typeof prepareMetaBatch>>();
  if (opts.validationEdits === 0) return out;
  const rng = new Rng(opts.seed ^ 0x5eed);
  for (const task of opts.tasks) {
    const pool = trainable(bench, task, 'validation', opts);
    if (pool.length === 0) continue;
    const { edits, locality } = sampleStep(bench, new Map([[task, pool]]), { ...opts, tasks: [task], batch: Math.min(opts.validationEdits, pool.length) }, rng, (t) => seenInstructions(bench, t)[0]);
    out.set(task, prepareMetaBatch(ctx, net, edits, locality, opts.meta, operators));
  }
  return out;
}

async function readCheckpoint(dir: string, opts: TrainEditorOptions): Promise<CheckpointProgress | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, CHECKPOINT.progress), 'utf8');
  } catch {
    return undefined;
  }
  let prior: CheckpointProgress;
  try {
    prior = JSON.parse(text) as CheckpointProgress;
  } catch (err) {
    throw new EditError(`checkpoint progress is not valid JSON: ${(err as Error).message}`, { file: join(dir, CHECKPOINT.progress) });
  }
  const { steps: _a, ...want } = opts;
  const { steps: _b, ...had } = prior.options;
  if (stable(want) !== stable(had)) {
    throw new EditError('the checkpoint was started with other options (only --steps may change on resume)', { file: join(dir, CHECKPOINT.progress), hint: `remove ${dir} to start over, or resume with its options` });
  }
  if (prior.step > opts.steps) throw new EditError(`the checkpoint is at step ${prior.step}, past --steps ${opts.steps}`, { file: join(dir, CHECKPOINT.progress), hint: `resume with --steps ${prior.step} or more, or remove ${dir} to start over` });
  return prior;
}

/** JSON with object keys sorted (options read back from a checkpoint compare by content). */
function stable(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}

/** Removes a finished run's checkpoint. */
export async function removeCheckpoint(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
