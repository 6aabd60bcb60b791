/**
 * Refinement of a set's value shifts through the joint solve: the hypernetwork's values V (per
 * layer, one row per edit row) are the start of a few Adam steps on V itself, with the meta-loss's
 * objective on the set as applied — NLL of each target after its prompt as typed, plus c_loc ·
 * KL(base ‖ edited) on the model's known facts (each prompt with the object the base model gives, so
 * every object token counts: the facts the solve is asked to keep still) —
 * and ΔW = M·V, M = (λC + KᵀK)⁻¹Kᵀ fixed. The network's values generalise (they come from a
 * network meta-trained on rephrasings); the steps fix what a large set's interference took away.
 * Deterministic: no randomness, a fixed number of steps.
 */
import { tf } from '../../tensor/tf.js';
import { firstTouchedBlock, type Deltas, type ForwardOptions, type GPT } from '../../model/gpt2.js';
import type { Tokenizer } from '../../model/tokenizer.js';
import { crossEntropy } from '../../tensor/ops.js';
import { weightChange } from './solve.js';
import type { RowSequence } from '../batch.js';
import { localityBatch, localityKl, type MetaBatch } from './train.js';

export interface RefineSettings {
  steps: number;
  lr: number;
  /** Weight of the KL on known facts against the edits' NLL. */
  cLoc: number;
  /**
   * At most this many edits' sequences in one step's NLL: a larger set is split into that many
   * balanced chunks in set order and step k takes chunk k mod chunks, so a step costs the same at
   * 1,000 edits as at 100 (a set no larger than this: every edit in every step).
   */
  batch: number;
  /** At most this many of the known facts in the KL (evenly spaced over the list, so the choice is fixed). */
  known: number;
  /**
   * At most this many of those facts in one step's KL: more are split into chunks taken with a
   * stride (stridedChunks) and step k takes chunk k mod chunks (as `batch` does for the edits), so a step's KL costs
   * the same however many facts the refinement keeps (no more than this: every fact in every step).
   */
  knownBatch: number;
}

/** `items` in `ceil(n / size)` balanced chunks, in order (one chunk when size ≥ n). */
function balancedChunks<T>(items: readonly T[], size: number): T[][] {
  const chunks = Math.max(1, Math.ceil(items.length / Math.max(1, size)));
  return Array.from({ length: chunks }, (_, c) => items.slice(Math.floor((c * items.length) / chunks), Math.floor(((c + 1) * items.length) / chunks)));
}

/**
 * `items` in `ceil(n / size)` chunks taken with a stride (chunk c holds items c, c + chunks, …): a
 * list grouped by relation gives every chunk a share of every relation, so each step's KL keeps
 * all kinds of fact still rather than one relation per step.
 */
export function stridedChunks<T>(items: readonly T[], size: number): T[][] {
  const chunks = Math.max(1, Math.ceil(items.length / Math.max(1, size)));
  return Array.from({ length: chunks }, (_, c) => items.filter((_, i) => i % chunks === c));
}

export interface RefineLayer {
  layer: string;
  /** M [dk, n] (float32), rows of the set in order. */
  operator: Float32Array;
  dk: number;
  /** V [n, d] from the network. */
  values: Float32Array;
  d: number;
}

/** The edits' row sequences as one teacher-forced batch (right-padded; only the row positions count). */
function sequenceBatch(seqs: readonly RowSequence[]): { ids: tf.Tensor2D; rows: number[]; targets: tf.Tensor1D; weights: tf.Tensor1D } {
  const t = Math.max(...seqs.map((q) => q.ids.length));
  const rows: number[] = [];
  const targets: number[] = [];
  seqs.forEach((q, b) => q.positions.forEach((p, k) => (rows.push(b * t + p), targets.push(q.targets[k]))));
  return {
    ids: tf.tensor2d(seqs.map((q) => [...q.ids, ...new Array<number>(t - q.ids.length).fill(0)]), [seqs.length, t], 'int32'),
    rows,
    targets: tf.tensor1d(targets, 'int32'),
    weights: tf.ones([rows.length]) as tf.Tensor1D,
  };
}

/**
 * The residual stream entering block `layer` for ids (kept; the caller disposes it), or undefined at
 * block 0: the blocks before the first edited one are the same at every step, so each batch runs
 * them once and every step starts from there (the same bits as the whole forward).
 */
function prefixOf(model: GPT, ids: tf.Tensor2D, layer: number): ForwardOptions['start'] {
  if (layer <= 0) return undefined;
  const residuals = new Map<number, tf.Tensor2D | null>([[layer - 1, null]]);
  tf.tidy(() => {
    model.hidden(ids, { residuals });
  });
  return { layer, x: residuals.get(layer - 1)! };
}

/** Known facts as a locality batch, with the residual stream entering block `layer` (prefixOf) taken from the same forward. */
function knownBatch(model: GPT, tokenizer: Tokenizer, facts: readonly string[], layer: number): { loc: MetaBatch['loc']; start: ForwardOptions['start'] } {
  if (layer <= 0) return { loc: localityBatch(model, tokenizer, facts), start: undefined };
  const residuals = new Map<number, tf.Tensor2D | null>([[layer - 1, null]]);
  const loc = localityBatch(model, tokenizer, facts, residuals);
  return { loc, start: { layer, x: residuals.get(layer - 1)! } };
}

/** The refined V per layer (same shapes), after `s.steps` Adam steps; a step that turns non-finite is undone and ends the refinement. */
export function refineValues(model: GPT, tokenizer: Tokenizer, layers: RefineLayer[], seqs: readonly RowSequence[], known: readonly string[], s: RefineSettings): Float32Array[] {
  if (s.steps <= 0 || seqs.length === 0) return layers.map((l) => l.values);
  const n = layers[0].values.length / layers[0].d;
  const ms = layers.map((l) => tf.tensor2d(l.operator, [l.dk, n]));
  const vs = layers.map((l) => {
    const init = tf.tensor2d(l.values, [n, l.d]);
    const v = tf.variable(init, true);
    init.dispose(); // the variable keeps its own reference to the data
    return v;
  });
  const batches = balancedChunks(seqs, s.batch).map(sequenceBatch);
  const step = Math.max(1, known.length / Math.max(1, s.known));
  const picked = known.length === 0 || s.known <= 0 || s.cLoc === 0 ? [] : Array.from({ length: Math.min(s.known, known.length) }, (_, i) => known[Math.floor(i * step)]);
  const first = firstTouchedBlock(layers.map((l) => `${l.layer}.weight`), model.config.nLayer);
  const batchStarts = batches.map((b) => prefixOf(model, b.ids, first));
  // A chunk of known facts is prepared when a step first takes it (fewer steps than chunks never
  // pay for the rest); its base distributions and its prefix come from one forward.
  const factChunks = picked.length > 0 ? stridedChunks(picked, s.knownBatch) : [];
  const locs: Array<{ loc: MetaBatch['loc']; start: ForwardOptions['start'] }> = [];
  const knownChunk = (c: number) => (locs[c] ??= knownBatch(model, tokenizer, factChunks[c], first));
  const opt = tf.train.adam(s.lr);
  try {
    let kept = vs.map((v) => Float32Array.from(v.dataSync()));
    for (let k = 0; k < s.steps; k++) {
      const batch = batches[k % batches.length];
      const start = batchStarts[k % batches.length];
      const chunk = factChunks.length > 0 ? knownChunk(k % factChunks.length) : undefined;
      const loc = chunk?.loc;
      const locStart = chunk?.start;
      const cost = opt.minimize(() => {
        const deltas: Deltas = {};
        layers.forEach((l, i) => (deltas[`${l.layer}.weight`] = weightChange(ms[i], vs[i])));
        const nll = crossEntropy(model.logits(batch.ids, { deltas, rows: batch.rows, start }), batch.targets, batch.weights);
        return loc === undefined ? nll : (tf.add(nll, tf.mul(localityKl(model, loc, deltas, locStart), s.cLoc)) as tf.Scalar);
      }, true, vs);
      const value = cost?.dataSync()[0];
      cost?.dispose();
      const now = vs.map((v) => Float32Array.from(v.dataSync()));
      if (value === undefined || !Number.isFinite(value) || now.some((x) => x.some((y) => !Number.isFinite(y)))) break; // keep the last finite values
      kept = now;
    }
    return kept;
  } finally {
    opt.dispose();
    tf.dispose([...ms, ...vs, ...batches.flatMap((b) => [b.ids, b.targets, b.weights])]);
    tf.dispose(locs.flatMap(({ loc }) => [loc.ids, loc.baseLogProbs, loc.baseProbs]));
    tf.dispose([...batchStarts, ...locs.map((c) => c.start)].flatMap((p) => (p === undefined ? [] : [p.x])));
  }
}
