/**
 * Meta-training of the hypernetwork on jointly solved edit batches (MALMEN, Tan et al. 2024; loss
 * balance calibrated in FACTS, hypernetwork editors): for a batch of edits,
 *   loss = c_edit · NLL(targets | edit and rephrase prompts; base + ΔW) + c_loc · KL(base ‖ base + ΔW)
 * over the locality sequences' next-token distributions, where ΔW = M·V per layer is the set's
 * joint solve (solve.ts) of the network's value shifts V. Adam with global-norm clipping; the
 * log-scales get their own, larger learning rate. A non-finite loss or gradient skips the step.
 */
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import type { Deltas, ForwardOptions, GPT } from '../../model/gpt2.js';
import type { Tokenizer } from '../../model/tokenizer.js';
import { crossEntropy, logSoftmax } from '../../tensor/ops.js';
import type { TensorInput } from '../../model/safetensors.js';
import { makeBatch } from '../batch.js';
import type { EditRequest } from '../editor.js';
import type { KeyStats } from '../stats.js';
import { hyperRows, stackRows } from './editor.js';
import { instructionMode, type HyperNet } from './network.js';
import { BatchOperator, solveOperator, weightChange, type SolveWeights } from './solve.js';

export interface MetaSettings extends SolveWeights {
  /** Weight of the edit NLL (mean over target tokens of edit and rephrase prompts). */
  cEdit: number;
  /** Weight of KL(base ‖ edited) (mean over locality token positions). */
  cLoc: number;
  lr: number;
  /** Learning rate of the per-layer log edit scales. */
  scaleLr: number;
  /** Global L2 norm the gradients are clipped to. */
  clip: number;
}

/** FACTS: c_loc ≈ 10, Adam 1e-3 (1e-2 for the scales), clip 10, λ = 30. */
export const META_DEFAULTS: MetaSettings = { cEdit: 1, cLoc: 10, lr: 1e-3, scaleLr: 1e-2, clip: 10, lambda: 30 };

/** One meta-training batch: everything that does not depend on the network, as tensors. */
export interface MetaBatch {
  layers: string[];
  /** Per layer: the rows' u [n, dk] and δ [n, d], and the solve operator M = A⁻¹Kᵀ [dk, n]. */
  u: Record<string, tf.Tensor2D>;
  delta: Record<string, tf.Tensor2D>;
  operator: Record<string, tf.Tensor2D>;
  /** Instruction vectors per row [n, condDim] (conditioned networks). */
  cond?: tf.Tensor2D;
  /** Edit and rephrase prompts with their targets, teacher-forced: ids [B, T]; only the target rows (flat indices into B·T) go through the head, with their targets and weights (1). */
  edit: { ids: tf.Tensor2D; rows: number[]; targets: tf.Tensor1D; weights: tf.Tensor1D };
  /** Locality sequences (right-padded) and the base model's log-probs at `rows`, their real positions (row-major in B·T): padding never reaches the head. */
  loc: { ids: tf.Tensor2D; rows: number[]; baseLogProbs: tf.Tensor2D; baseProbs: tf.Tensor2D };
  rows: number;
  dispose(): void;
}

export interface MetaContext {
  model: GPT;
  tokenizer: Tokenizer;
  stats: KeyStats;
}

/**
 * Rows, solve operators, the edit batch and the base model's locality distributions for `edits`.
 * `operators` (per layer, preserveWeight 0 only) make the solve an n×n one (BatchOperator).
 */
export function prepareMetaBatch(ctx: MetaContext, net: HyperNet, edits: readonly EditRequest[], locality: readonly string[], w: SolveWeights, operators?: Record<string, BatchOperator>): MetaBatch {
  const { model, tokenizer, stats } = ctx;
  const { layers, condDim, valueDim } = net.shape;
  if (edits.length === 0) throw new EditError('a meta-training batch needs at least one edit');
  const wrap = instructionMode(net.shape) === 'wrap';
  const rows = [...hyperRows(model, tokenizer, layers, edits, condDim, wrap)];
  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  const u: Record<string, tf.Tensor2D> = {};
  const delta: Record<string, tf.Tensor2D> = {};
  const operator: Record<string, tf.Tensor2D> = {};
  let cond: tf.Tensor2D | undefined;
  let n = 0;
  for (const l of layers) {
    const st = stats.layers[l];
    if (st === undefined) throw new EditError(`meta-training needs key statistics for "${l}"`);
    const s = stackRows(rows, l, condDim, wrap);
    n = s.n;
    u[l] = keep(tf.tensor2d(s.u, [n, st.dim]));
    delta[l] = keep(tf.tensor2d(s.delta, [n, valueDim]));
    const fast = operators?.[l];
    if (fast !== undefined && (w.preserveWeight ?? 0) > 0) throw new EditError('a batch operator solves without preserved keys');
    operator[l] = keep(tf.tensor2d(fast === undefined ? solveOperator(s.keys, n, st.dim, st.second, w) : fast.operator(s.keys, n), [st.dim, n]));
    if (s.cond !== undefined && cond === undefined) cond = keep(tf.tensor2d(s.cond, [n, condDim]));
  }
  const pairs = edits.flatMap((e) => [e.prompt, ...e.rephrase].map((prompt) => ({ prompt, completion: e.target })));
  const edit = editBatch(tokenizer, pairs, model.config.nPositions);
  owned.push(edit.ids, edit.targets, edit.weights);
  const loc = localityBatch(model, tokenizer, locality);
  owned.push(loc.ids, loc.baseLogProbs, loc.baseProbs);
  return {
    layers: [...layers],
    u,
    delta,
    operator,
    cond,
    edit,
    loc,
    rows: n,
    dispose() {
      tf.dispose(owned);
      owned.length = 0;
    },
  };
}

type Arr2 = { shape: [number, number]; data: Float32Array };

/** A whole MetaBatch as plain arrays (what a prefetching thread sends; batchFromArrays makes the same tensors again). */
export interface BatchArrays {
  layers: string[];
  rows: number;
  u: Record<string, Arr2>;
  delta: Record<string, Arr2>;
  operator: Record<string, Arr2>;
  cond?: Arr2;
  edit: { ids: { shape: [number, number]; data: Int32Array }; rows: number[]; targets: Int32Array };
  loc: { ids: { shape: [number, number]; data: Int32Array }; rows: number[]; baseLogProbs: Arr2; baseProbs: Arr2 };
}

export function batchArrays(b: MetaBatch): BatchArrays {
  const f = (t: tf.Tensor2D): Arr2 => ({ shape: [t.shape[0], t.shape[1]], data: t.dataSync() as Float32Array });
  const i = (t: tf.Tensor2D) => ({ shape: [t.shape[0], t.shape[1]] as [number, number], data: t.dataSync() as Int32Array });
  const per = (r: Record<string, tf.Tensor2D>) => Object.fromEntries(b.layers.map((l) => [l, f(r[l])]));
  return {
    layers: b.layers,
    rows: b.rows,
    u: per(b.u),
    delta: per(b.delta),
    operator: per(b.operator),
    ...(b.cond === undefined ? {} : { cond: f(b.cond) }),
    edit: { ids: i(b.edit.ids), rows: b.edit.rows, targets: b.edit.targets.dataSync() as Int32Array },
    loc: { ids: i(b.loc.ids), rows: b.loc.rows, baseLogProbs: f(b.loc.baseLogProbs), baseProbs: f(b.loc.baseProbs) },
  };
}

/** The MetaBatch whose arrays these are (the same values, new tensors). */
export function batchFromArrays(a: BatchArrays): MetaBatch {
  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => (owned.push(t), t);
  const f = (x: Arr2) => keep(tf.tensor2d(x.data, x.shape));
  const per = (r: Record<string, Arr2>) => Object.fromEntries(a.layers.map((l) => [l, f(r[l])]));
  return {
    layers: a.layers,
    rows: a.rows,
    u: per(a.u),
    delta: per(a.delta),
    operator: per(a.operator),
    cond: a.cond === undefined ? undefined : f(a.cond),
    edit: { ids: keep(tf.tensor2d(a.edit.ids.data, a.edit.ids.shape, 'int32')), rows: a.edit.rows, targets: keep(tf.tensor1d(a.edit.targets, 'int32')), weights: keep(tf.ones([a.edit.rows.length]) as tf.Tensor1D) },
    loc: { ids: keep(tf.tensor2d(a.loc.ids.data, a.loc.ids.shape, 'int32')), rows: a.loc.rows, baseLogProbs: f(a.loc.baseLogProbs), baseProbs: f(a.loc.baseProbs) },
    dispose() {
      tf.dispose(owned);
      owned.length = 0;
    },
  };
}

/** Prompts with their completions teacher-forced; only the completion rows go through the head. */
export function editBatch(tokenizer: Tokenizer, pairs: Array<{ prompt: string; completion: string }>, nPositions: number): MetaBatch['edit'] {
  const eb = makeBatch(tokenizer, pairs, nPositions);
  const flatWeights = eb.weights.dataSync();
  const flatTargets = eb.targets.dataSync();
  const rows: number[] = [];
  flatWeights.forEach((w, i) => {
    if (w > 0) rows.push(i);
  });
  const out = { ids: eb.ids, rows, targets: tf.tensor1d(rows.map((i) => flatTargets[i]), 'int32'), weights: tf.ones([rows.length]) as tf.Tensor1D };
  tf.dispose([eb.targets, eb.weights]);
  return out;
}

/**
 * Locality sequences with the base model's next-token distributions at every real token. With
 * `residuals`, the same forward also fills them (ForwardOptions.residuals: kept; the caller disposes).
 */
export function localityBatch(model: GPT, tokenizer: Tokenizer, texts: readonly string[], residuals?: ForwardOptions['residuals']): MetaBatch['loc'] {
  const seqs = texts.map((t) => tokenizer.encode(t).slice(0, model.config.nPositions)).filter((s) => s.length > 0);
  if (seqs.length === 0) throw new EditError('a meta-training batch needs at least one non-empty locality sequence');
  const t = Math.max(...seqs.map((s) => s.length));
  const rows = seqs.flatMap((s, b) => s.map((_, p) => b * t + p));
  const ids = tf.tensor2d(seqs.map((s) => [...s, ...new Array<number>(t - s.length).fill(0)]), [seqs.length, t], 'int32');
  const [baseLogProbs, baseProbs] = tf.tidy(() => {
    const lp = logSoftmax(model.logits(ids, { rows, residuals }));
    return [lp, tf.exp(lp) as tf.Tensor2D];
  });
  return { ids, rows, baseLogProbs, baseProbs };
}

/** ΔW of the batch's edits under the network, per "<layer>.weight" (differentiable w.r.t. the network). */
export function batchDeltas(net: HyperNet, batch: MetaBatch): Deltas {
  const out: Deltas = {};
  for (const l of batch.layers) out[`${l}.weight`] = weightChange(batch.operator[l], net.shift(l, batch.u[l], batch.delta[l], batch.cond));
  return out;
}

/** The meta-loss and its parts (scalars; the caller disposes, or runs this inside a tidy/grad). */
export function metaLoss(model: GPT, net: HyperNet, batch: MetaBatch, s: Pick<MetaSettings, 'cEdit' | 'cLoc'>): { loss: tf.Scalar; nll: tf.Scalar; kl: tf.Scalar } {
  return tf.tidy(() => {
    const deltas = batchDeltas(net, batch);
    const nll = crossEntropy(model.logits(batch.edit.ids, { deltas, rows: batch.edit.rows }), batch.edit.targets, batch.edit.weights);
    const { loc } = batch;
    const kl = localityKl(model, loc, deltas);
    const loss = tf.add(tf.mul(nll, s.cEdit), tf.mul(kl, s.cLoc)) as tf.Scalar;
    return { loss, nll, kl };
  });
}

/** Teacher-forced accuracy of the targets on the batch's edit and rephrase prompts under the network's ΔW. */
export function editAccuracy(model: GPT, net: HyperNet, batch: MetaBatch): number {
  const acc = tf.tidy(() => {
    const deltas = batchDeltas(net, batch);
    const hit = tf.cast(tf.equal(tf.argMax(model.logits(batch.edit.ids, { deltas, rows: batch.edit.rows }), -1), batch.edit.targets), 'float32');
    return tf.div(tf.sum(tf.mul(hit, batch.edit.weights)), tf.sum(batch.edit.weights));
  });
  const v = acc.dataSync()[0];
  acc.dispose();
  return v;
}

/** Mean KL(base ‖ edited) over the locality batch's real tokens. */
export function localityKl(model: GPT, loc: MetaBatch['loc'], deltas: Deltas, start?: ForwardOptions['start']): tf.Scalar {
  return tf.tidy(() => {
    const lq = logSoftmax(model.logits(loc.ids, { deltas, start, rows: loc.rows })); // (rows, V)
    return tf.div(tf.sum(tf.mul(loc.baseProbs, tf.sub(loc.baseLogProbs, lq))), loc.rows.length) as tf.Scalar;
  });
}

export interface MetaStep {
  loss: number;
  nll: number;
  kl: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** true when the loss or a gradient was not finite: nothing was applied. */
  skipped: boolean;
}

/** Adam over the network's variables (log-scales at their own rate), one clipped step per batch. */
export class MetaTrainer {
  private readonly opt: tf.Optimizer;
  private readonly scaleOpt: tf.Optimizer;

  constructor(
    readonly net: HyperNet,
    readonly settings: MetaSettings = META_DEFAULTS,
  ) {
    this.opt = tf.train.adam(settings.lr);
    this.scaleOpt = tf.train.adam(settings.scaleLr);
  }

  step(model: GPT, batch: MetaBatch): MetaStep {
    const vars = this.net.trainable();
    let parts: { nll: tf.Scalar; kl: tf.Scalar } | undefined;
    const result = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const r = metaLoss(model, this.net, batch, this.settings);
        parts = { nll: tf.keep(r.nll), kl: tf.keep(r.kl) };
        return r.loss;
      }, vars.map((v) => v.variable));
      const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
      const loss = value.dataSync()[0];
      const gradNorm = norm.dataSync()[0];
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) return { loss, gradNorm, skipped: true };
      const scale = Math.min(1, this.settings.clip / (gradNorm + 1e-6));
      // fixed insertion order: tfjs's Adam keys its moments by the position of each gradient
      const main: Record<string, tf.Tensor> = {};
      const scales: Record<string, tf.Tensor> = {};
      for (const { name, variable } of vars) (name.endsWith('.log_scale') ? scales : main)[variable.name] = tf.mul(grads[variable.name], scale);
      this.opt.applyGradients(main as tf.NamedTensorMap);
      this.scaleOpt.applyGradients(scales as tf.NamedTensorMap);
      return { loss, gradNorm, skipped: false };
    });
    const nll = parts?.nll.dataSync()[0] ?? NaN;
    const kl = parts?.kl.dataSync()[0] ?? NaN;
    if (parts !== undefined) tf.dispose([parts.nll, parts.kl]);
    return { ...result, nll, kl };
  }

  /** Both optimizers' moments and step counts, as named F32 tensors (a resumable checkpoint). */
  async state(): Promise<Record<string, TensorInput>> {
    const out: Record<string, TensorInput> = {};
    for (const [prefix, opt] of [['main', this.opt], ['scale', this.scaleOpt]] as const) {
      const weights = await opt.getWeights();
      for (const [i, w] of weights.entries()) out[`${prefix}.${String(i).padStart(4, '0')}`] = { shape: w.tensor.shape, data: Float32Array.from(await w.tensor.data()) };
      weights[0]?.tensor.dispose(); // the step count is a fresh scalar; the moments are the optimizer's own
      // tfjs rebuilds β₁ᵗ, β₂ᵗ on restore with pow(), which can differ from the running product in the last bit
      const acc = opt as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
      out[`acc.${prefix}.beta1`] = { shape: [1], data: Float32Array.from(acc.accBeta1.dataSync()) };
      out[`acc.${prefix}.beta2`] = { shape: [1], data: Float32Array.from(acc.accBeta2.dataSync()) };
    }
    return out;
  }

  /** Restores what `state` saved (same network, same variable order). */
  async restore(tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array | Float64Array | Uint16Array | BigInt64Array }>): Promise<void> {
    for (const [prefix, opt] of [['main', this.opt], ['scale', this.scaleOpt]] as const) {
      const names = [...tensors.keys()].filter((n) => n.startsWith(`${prefix}.`)).sort();
      const weights = names.map((n, i) => {
        const t = tensors.get(n)!;
        // getWeights' order: the step count, then first moments, then second moments
        return { name: i === 0 ? 'iter' : n, tensor: tf.tensor(Float32Array.from(t.data as Float32Array), t.shape) };
      });
      await opt.setWeights(weights);
      tf.dispose(weights.map((w) => w.tensor));
      const acc = opt as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
      for (const k of ['beta1', 'beta2'] as const) {
        const t = tensors.get(`acc.${prefix}.${k}`);
        if (t !== undefined) (k === 'beta1' ? acc.accBeta1 : acc.accBeta2).assign(tf.scalar((t.data as Float32Array)[0]));
      }
    }
  }

  dispose(): void {
    this.opt.dispose();
    this.scaleOpt.dispose();
  }
}
