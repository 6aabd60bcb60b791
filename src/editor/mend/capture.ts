/**
 * What a hypernetwork editor reads of one edit, against the base weights: at each row position
 * (the last prompt token, then each target token but the last — the memit rows, FACTS batch
 * editing) and each edited linear layer, the layer's input u (the key) and the gradient δ of the
 * edit's summed NLL w.r.t. the layer's output (MEND, Mitchell et al. 2022: ∇W = Σ_t u_t δ_tᵀ).
 * Returned explicitly, as data (STYLE: no activations stashed on parameters).
 */
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import type { GPT } from '../../model/gpt2.js';
import type { Tokenizer } from '../../model/tokenizer.js';
import { crossEntropy } from '../../tensor/ops.js';
import { rowSequence, type RowSequence } from '../batch.js';

export { rowSequence, type RowSequence };

/** One edited layer's rows of one sequence: u [n, in] and δ [n, out], row-major. */
export interface LayerRows {
  u: Float32Array;
  delta: Float32Array;
}

/**
 * u and δ at every sequence's row positions for each layer, in sequence order. Sequences of one
 * length run together (no padding, so each row's numbers are the ones it gets alone); δ is the
 * gradient of the sequence's own summed NLL, so it does not depend on the batch either.
 */
export function captureRows(model: GPT, seqs: readonly RowSequence[], layers: readonly string[], maxBatch = 32): Array<Record<string, LayerRows>> {
  for (const l of layers) {
    const w = model.params[`${l}.weight`];
    if (w === undefined || w.rank !== 2) throw new EditError(`"${l}" is not a linear layer of this model`);
  }
  const out = new Array<Record<string, LayerRows>>(seqs.length);
  for (const group of byLength(seqs, maxBatch)) {
    const got = captureGroup(model, group.map((i) => seqs[i]), layers);
    group.forEach((i, j) => (out[i] = got[j]));
  }
  return out;
}

function captureGroup(model: GPT, seqs: RowSequence[], layers: readonly string[]): Array<Record<string, LayerRows>> {
  const b = seqs.length;
  const t = seqs[0].ids.length;
  const n = b * t;
  const flat: number[] = [];
  const tgt: number[] = [];
  seqs.forEach((s, r) => {
    s.positions.forEach((p, k) => {
      tgt.push(s.targets[k]);
      flat.push(r * t + p);
    });
  });
  const total = flat.length;
  const [us, ds] = tf.tidy(() => {
    const ids = tf.tensor2d(seqs.map((s) => s.ids), [b, t], 'int32');
    const targets = tf.tensor1d(tgt, 'int32');
    const weights = tf.ones([total]) as tf.Tensor1D;
    const captured: Record<string, tf.Tensor2D> = {};
    const zeros = layers.map((l) => tf.zeros([n, model.params[`${l}.weight`].shape[1] as number]) as tf.Tensor2D);
    const f = (...zs: tf.Tensor[]) => {
      const probes: Record<string, tf.Tensor2D> = {};
      layers.forEach((l, i) => (probes[l] = zs[i] as tf.Tensor2D));
      // only the row positions go through the head; crossEntropy is their mean, times the count the
      // sum, whose gradient per row is exactly (softmax − onehot): (1·total)/total rounds to 1
      return tf.mul(crossEntropy(model.logits(ids, { probes, captured, rows: flat }), targets, weights), total) as tf.Scalar;
    };
    const { grads } = tf.valueAndGrads(f)(zeros);
    const pos = tf.tensor1d(flat, 'int32');
    const u = layers.map((l) => tf.gather(captured[l], pos) as tf.Tensor2D); // (rows, in)
    const d = grads.map((g) => tf.gather(g, pos) as tf.Tensor2D); // (rows, out)
    tf.dispose(Object.values(captured)); // kept copies (gpt2.ts): not released by the tidy
    return [u, d];
  });
  const uData = us.map((x) => x.dataSync() as Float32Array);
  const dData = ds.map((x) => x.dataSync() as Float32Array);
  tf.dispose([...us, ...ds]);
  const out: Array<Record<string, LayerRows>> = [];
  let row = 0;
  for (const s of seqs) {
    const rec: Record<string, LayerRows> = {};
    layers.forEach((l, i) => {
      const din = us[i].shape[1];
      const dout = ds[i].shape[1];
      rec[l] = {
        u: uData[i].slice(row * din, (row + s.positions.length) * din),
        delta: dData[i].slice(row * dout, (row + s.positions.length) * dout),
      };
    });
    row += s.positions.length;
    out.push(rec);
  }
  return out;
}

/** Inputs of each layer at the given positions of each sequence, in order (keys a solve keeps still): [rows, in] per layer. */
export function sequenceKeys(model: GPT, seqs: ReadonlyArray<{ ids: number[]; positions: number[] }>, layers: readonly string[], maxBatch = 32): Record<string, Float32Array> {
  const dims = layers.map((l) => model.params[`${l}.weight`].shape[0] as number);
  const offsets: number[] = [];
  let total = 0;
  for (const q of seqs) {
    offsets.push(total);
    total += q.ids.length === 0 ? 0 : q.positions.length;
  }
  const out: Record<string, Float32Array> = Object.fromEntries(layers.map((l, i) => [l, new Float32Array(total * dims[i])]));
  const nonEmpty = seqs.map((q, i) => ({ ids: q.ids, positions: q.positions, i })).filter((q) => q.ids.length > 0 && q.positions.length > 0);
  for (const group of byLength(nonEmpty, maxBatch)) {
    const part = group.map((j) => nonEmpty[j]);
    const t = part[0].ids.length;
    const got = tf.tidy(() => {
      const probes: Record<string, tf.Tensor2D> = {};
      for (const l of layers) probes[l] = tf.zeros([part.length * t, model.params[`${l}.weight`].shape[1] as number]);
      const captured: Record<string, tf.Tensor2D> = {};
      model.hidden(tf.tensor2d(part.map((q) => q.ids), [part.length, t], 'int32'), { probes, captured });
      const pos = tf.tensor1d(part.flatMap((q, r) => q.positions.map((p) => r * t + p)), 'int32');
      const keys = layers.map((l) => tf.gather(captured[l], pos) as tf.Tensor2D);
      tf.dispose(Object.values(captured));
      return keys;
    });
    layers.forEach((l, i) => {
      const data = got[i].dataSync() as Float32Array;
      let row = 0;
      for (const q of part) {
        out[l].set(data.subarray(row * dims[i], (row + q.positions.length) * dims[i]), offsets[q.i] * dims[i]);
        row += q.positions.length;
      }
    });
    tf.dispose(got);
  }
  return out;
}

/**
 * The conditioning vector of an instruction (InstructEdit as hypernetwork conditioning): the base
 * model's mean final hidden state (after ln_f) over the instruction's tokens, scaled to unit RMS
 * so its size does not vary with the text. An empty instruction is the zero vector.
 */
export function instructionVector(model: GPT, tokenizer: Tokenizer, instruction: string): Float32Array {
  const e = model.config.nEmbd;
  const ids = tokenizer.encode(instruction).slice(-model.config.nPositions);
  if (ids.length === 0) return new Float32Array(e);
  const mean = tf.tidy(() => {
    const h = model.hidden(tf.tensor2d([ids], [1, ids.length], 'int32')); // (T, E)
    return tf.matMul(tf.fill([1, ids.length], 1 / ids.length) as tf.Tensor2D, h); // (1, E)
  });
  const v = Float32Array.from(mean.dataSync());
  mean.dispose();
  let ss = 0;
  for (const x of v) ss += x * x;
  const scale = ss > 0 ? Math.sqrt(e / ss) : 0;
  return v.map((x) => x * scale);
}

/** Indices of items grouped by ids length (first-seen order), in chunks of at most maxBatch. */
function byLength(items: ReadonlyArray<{ ids: number[] }>, maxBatch: number): number[][] {
  const groups = new Map<number, number[]>();
  items.forEach((s, i) => groups.set(s.ids.length, [...(groups.get(s.ids.length) ?? []), i]));
  const out: number[][] = [];
  for (const g of groups.values()) for (let at = 0; at < g.length; at += maxBatch) out.push(g.slice(at, at + maxBatch));
  return out;
}
