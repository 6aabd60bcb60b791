/**
 * `memit`: edits solved jointly by least squares (MEMIT, Meng et al. 2023, "Mass-Editing Memory in
 * a Transformer"), with the recipe calibrated on the default model (FACTS, batch editing):
 * - keys at the last prompt token and one row per teacher-forced target-token position (the last
 *   prompt token predicts target token 1, target token 1 predicts token 2, …);
 * - the target residual: δ added to the output of the last edited layer, found by a few dozen Adam
 *   steps per edit with a norm penalty (per edit, against the base: cached rows);
 * - spread over the edited layers in order: layer i solves its share of what is still missing, the
 *   next layer's keys and the missing part are recomputed under the changes solved so far;
 * - ΔW = (λ·C + μ·KpᵀKp + KᵀK)⁻¹ Kᵀ R in float64 (Cholesky), C the layer's key second moment
 *   (stats.ts), Kp the keys of the model's known facts the set does not edit (kept still; set.ts).
 * Calibration: scripts/sweep-memit.ts; the measured front is in docs/measurements.md, "Model v1: benchmark".
 */
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import type { GPT, Deltas } from '../model/gpt2.js';
import type { Delta } from '../model/weight-change.js';
import { rowSequence } from './batch.js';
import type { EditRequest, EditRows, SetEditor, EditorContext, LayerCapacity, PreservedFact } from './editor.js';
import { preservedSequences } from './set.js';
import { addGram, concat, crossProduct, solveSpd } from './linalg.js';
import { blockOf, editedLayers, MEMIT_DEFAULTS, type MemitSettings } from './settings.js';

export { MEMIT_DEFAULTS, type MemitSettings };

export class MemitEditor implements SetEditor {
  readonly method = 'memit';
  readonly joint = true;
  constructor(readonly settings: MemitSettings = MEMIT_DEFAULTS) {}

  editedLayers(editable: string[]): string[] {
    return editedLayers(this.settings, editable);
  }

  async computeRows(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, EditRows>> {
    const out = new Map<string, EditRows>();
    for (const [i, edit] of edits.entries()) {
      out.set(edit.id, this.rowsOf(ctx, edit));
      ctx.onProgress?.(i + 1, edits.length, edit.id);
      await Promise.resolve();
    }
    return out;
  }

  /** Keys of the first edited layer, the residual after the last edited block and its shift δ, at each row position. */
  private rowsOf(ctx: EditorContext, edit: EditRequest): EditRows {
    const { model } = ctx;
    const layers = this.editedLayers(ctx.layers);
    const first = layers[0];
    const last = layers[layers.length - 1];
    const lastBlock = blockOf(last);
    const { ids, positions, targets } = rowSequence(ctx.tokenizer, ctx.model.config.nPositions, edit.prompt, edit.target, `edits/${edit.id}.json`);
    const n = positions.length;
    const idsT = tf.tensor2d([ids], [1, ids.length], 'int32');
    const posT = tf.tensor1d(positions, 'int32');
    const { keys, residual } = captureAt(model, idsT, posT, first, lastBlock, undefined);
    let delta: Float32Array;
    try {
      delta = this.searchResidual(model, idsT, posT, targets, residual, last, lastBlock);
    } finally {
      tf.dispose([idsT, posT]);
    }
    const keyData = keys.dataSync() as Float32Array;
    const resData = residual.dataSync() as Float32Array;
    tf.dispose([keys, residual]);
    const e = model.config.nEmbd;
    return {
      tensors: {
        ids: { dtype: 'I32', shape: [ids.length], data: Int32Array.from(ids) },
        positions: { dtype: 'I32', shape: [n], data: Int32Array.from(positions) },
        keys: { dtype: 'F32', shape: [n, keyData.length / n], data: Float32Array.from(keyData) },
        residual: { dtype: 'F32', shape: [n, e], data: Float32Array.from(resData) },
        delta: { dtype: 'F32', shape: [n, e], data: delta },
      },
    };
  }

  /**
   * δ [n, E] such that the residual after the last edited block plus δ makes each row predict its
   * target token: Adam on mean NLL + penalty · mean ‖δ‖²/‖h‖². When the last edited block is the
   * model's last, the readout alone depends on δ (ln_f and the head); otherwise the forward runs on.
   */
  private searchResidual(model: GPT, ids: tf.Tensor2D, positions: tf.Tensor1D, targets: number[], residual: tf.Tensor2D, last: string, lastBlock: number): Float32Array {
    const { residualSteps, residualLr, normPenalty } = this.settings;
    const n = targets.length;
    const e = model.config.nEmbd;
    const t = ids.shape[1];
    const finalBlock = lastBlock === model.config.nLayer - 1;
    const y = tf.tensor1d(targets, 'int32');
    const yOneHot = tf.tidy(() => tf.cast(tf.oneHot(y, model.config.vocabSize), 'float32'));
    const hNorm2 = tf.tidy(() => tf.sum(tf.square(residual), 1));
    const zeros = tf.zeros([n, e]);
    const delta = tf.variable(zeros, true);
    zeros.dispose(); // the variable keeps its own reference to the data
    // scatter matrix [T, n]: puts row r's δ at its position (a matmul: gather's gradient is missing on wasm)
    const scatter = tf.tidy(() => tf.transpose(tf.cast(tf.oneHot(positions, t), 'float32')));
    const opt = tf.train.adam(residualLr);
    try {
      for (let s = 0; s < residualSteps; s++) {
        const loss = opt.minimize(
          () => {
            let logits: tf.Tensor2D;
            if (finalBlock) {
              logits = model.readout(tf.add(residual, delta) as tf.Tensor2D);
            } else {
              const probes: Record<string, tf.Tensor2D> = { [last]: tf.matMul(scatter, delta) };
              const all = model.logits(ids, { probes });
              logits = tf.matMul(tf.transpose(scatter), all); // (n, V): the rows at the positions
            }
            const nll = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), yOneHot), 1)));
            const penalty = tf.mean(tf.div(tf.sum(tf.square(delta), 1), hNorm2));
            return tf.add(nll, tf.mul(normPenalty, penalty)) as tf.Scalar;
          },
          false,
          [delta],
        );
        loss?.dispose();
      }
      return delta.dataSync() as Float32Array;
    } finally {
      tf.dispose([y, yOneHot, hNorm2, delta, scatter]);
      opt.dispose();
    }
  }

  async solve(ctx: EditorContext, rows: Array<[string, EditRows]>): Promise<Delta> {
    const layers = this.editedLayers(ctx.layers);
    const { model } = ctx;
    const e = model.config.nEmbd;
    if (rows.length === 0) return { layers: {} };
    const stats = ctx.stats;
    for (const l of layers) {
      if (stats?.layers[l] === undefined) throw new EditError(`the memit editor needs key statistics for "${l}": run \`edit model stats\``);
    }
    const lastBlock = blockOf(layers[layers.length - 1]);
    const n = rows.reduce((a, [, r]) => a + r.tensors.positions.shape[0], 0);
    // the target residual after the last edited block: base residual + δ, all rows in id order
    const target = new Float32Array(n * e);
    const deltaAll = new Float32Array(n * e);
    let off = 0;
    for (const [, r] of rows) {
      const res = r.tensors.residual.data as Float32Array;
      const d = r.tensors.delta.data as Float32Array;
      for (let i = 0; i < res.length; i++) target[off + i] = res[i] + d[i];
      deltaAll.set(d, off);
      off += res.length;
    }
    const solved: Record<string, Float32Array> = {};
    for (const [li, layer] of layers.entries()) {
      const dk = stats!.layers[layer].dim;
      let keys: Float32Array;
      let missing: Float32Array;
      if (li === 0) {
        keys = concatRows(rows, 'keys', dk);
        missing = deltaAll;
      } else {
        const cur = await this.forwardRows(ctx, rows, layer, lastBlock, solved);
        keys = cur.keys;
        missing = new Float32Array(n * e);
        for (let i = 0; i < missing.length; i++) missing[i] = target[i] - cur.residual[i];
      }
      // this layer's share of what is still missing: 1/(layers left)
      const share = 1 / (layers.length - li);
      const r = new Float64Array(n * e);
      for (let i = 0; i < r.length; i++) r[i] = missing[i] * share;
      const a = new Float64Array(dk * dk);
      const c = stats!.layers[layer].second;
      for (let i = 0; i < a.length; i++) a[i] = this.settings.lambda * c[i];
      addGram(a, keys, n, dk);
      const mu = this.settings.preserveWeight ?? 0;
      if (mu > 0 && (ctx.preserve?.length ?? 0) > 0) {
        const kp = await this.preservedKeys(ctx, ctx.preserve!, layer, solved);
        addGram(a, kp, kp.length / dk, dk, mu);
      }
      const w = solveRidged(a, crossProduct(keys, r, n, dk, e), dk, e);
      solved[layer] = Float32Array.from(w);
      await Promise.resolve();
    }
    const out: Delta = { layers: {} };
    for (const layer of layers) out.layers[`${layer}.weight`] = { kind: 'dense', shape: [stats!.layers[layer].dim, e], data: solved[layer] };
    return out;
  }

  /** Keys of `layer` at every object-predicting position of the kept facts, under the changes solved so far. */
  private async preservedKeys(ctx: EditorContext, facts: PreservedFact[], layer: string, solved: Record<string, Float32Array>): Promise<Float32Array> {
    const seqs = preservedSequences(ctx.tokenizer, ctx.model.config.nPositions, facts);
    return (await captureSequences(ctx.model, seqs, layer, blockOf(layer), solved)).keys;
  }

  /** Keys of `layer` and the residual after `lastBlock` at every row position, under the changes solved so far. */
  private async forwardRows(ctx: EditorContext, rows: Array<[string, EditRows]>, layer: string, lastBlock: number, solved: Record<string, Float32Array>): Promise<{ keys: Float32Array; residual: Float32Array }> {
    const seqs = rows.map(([, r]) => ({ ids: Array.from(r.tensors.ids.data), positions: Array.from(r.tensors.positions.data) }));
    return captureSequences(ctx.model, seqs, layer, lastBlock, solved);
  }

  capacity(ctx: { layers: string[]; keyDims: Record<string, number> }, rows: Array<[string, EditRows]>): LayerCapacity[] {
    const n = rows.reduce((a, [, r]) => a + (r.tensors.positions?.shape[0] ?? 0), 0);
    return this.editedLayers(ctx.layers).map((layer) => ({ layer, rows: n, keyDim: ctx.keyDims[layer] ?? 0 }));
  }
}

/**
 * captureAt over token sequences in batches of 64 (right-padded; causal attention keeps padding out
 * of the positions read), with the changes solved so far added to the weights: the keys and residuals
 * at each sequence's positions, in order.
 */
async function captureSequences(model: GPT, seqs: Array<{ ids: number[]; positions: number[] }>, layer: string, block: number, solved: Record<string, Float32Array>): Promise<{ keys: Float32Array; residual: Float32Array }> {
  const e = model.config.nEmbd;
  const deltas: Deltas = {};
  for (const [l, w] of Object.entries(solved)) deltas[`${l}.weight`] = tf.tensor2d(w, [w.length / e, e]);
  const keyParts: Float32Array[] = [];
  const resParts: Float32Array[] = [];
  const chunk = 64;
  try {
    for (let s = 0; s < seqs.length; s += chunk) {
      const part = seqs.slice(s, s + chunk);
      const t = Math.max(...part.map((q) => q.ids.length));
      const idsT = tf.tensor2d(part.map((q) => [...q.ids, ...new Array<number>(t - q.ids.length).fill(0)]), [part.length, t], 'int32');
      const posT = tf.tensor1d(part.flatMap((q, b) => q.positions.map((p) => b * t + p)), 'int32');
      const got = captureAt(model, idsT, posT, layer, block, deltas);
      keyParts.push(got.keys.dataSync() as Float32Array);
      resParts.push(got.residual.dataSync() as Float32Array);
      tf.dispose([idsT, posT, got.keys, got.residual]);
      await Promise.resolve();
    }
  } finally {
    tf.dispose(Object.values(deltas));
  }
  return { keys: concat(keyParts), residual: concat(resParts) };
}

/** Inputs of `layer` and the residual after block `block`, at flat positions (of [B·T]) of ids. */
function captureAt(model: GPT, ids: tf.Tensor2D, positions: tf.Tensor1D, layer: string, block: number, deltas: Deltas | undefined): { keys: tf.Tensor2D; residual: tf.Tensor2D } {
  return tf.tidy(() => {
    const nTok = ids.shape[0] * ids.shape[1];
    const probes = { [layer]: tf.zeros([nTok, model.params[`${layer}.weight`].shape[1] as number]) as tf.Tensor2D };
    const captured: Record<string, tf.Tensor2D> = {};
    const residuals = new Map<number, tf.Tensor2D | null>([[block, null]]);
    model.hidden(ids, { probes, captured, residuals, deltas });
    const k = captured[layer];
    const x = residuals.get(block)!;
    const out = { keys: tf.gather(k, positions) as tf.Tensor2D, residual: tf.gather(x, positions) as tf.Tensor2D };
    tf.dispose([k, x]);
    return out;
  });
}

/**
 * A⁻¹B with a small ridge on A's diagonal: directions that neither the statistics nor the keys span
 * get no change (else A is singular; C comes from a finite sample in float32). The ridge starts at
 * 1e-6 of A's mean diagonal and grows tenfold while the factorisation fails — deterministic.
 */
export function solveRidged(a: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < d; i++) trace += a[i * d + i];
  let ridge = Math.max(1e-6 * (trace / d), 1e-12);
  for (let attempt = 0; ; attempt++) {
    const ar = Float64Array.from(a);
    for (let i = 0; i < d; i++) ar[i * d + i] += ridge;
    try {
      return solveSpd(ar, b, d, m);
    } catch (err) {
      if (attempt >= 6) throw err;
      ridge *= 10;
    }
  }
}

function concatRows(rows: Array<[string, EditRows]>, name: string, dim: number): Float32Array {
  const parts = rows.map(([id, r]) => {
    const t = r.tensors[name];
    if (t === undefined || t.shape[1] !== dim) throw new EditError(`cached rows of edit "${id}" have no "${name}" of width ${dim}: recompute them with \`edit apply --refresh\``);
    return t.data as Float32Array;
  });
  return concat(parts);
}

