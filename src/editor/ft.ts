/**
 * FT-L: constrained fine-tuning of the editable layers on the edit prompt alone
 * (Zhu et al. 2020, "Modifying Memories in Transformer Models"; the FT-L baseline of ROME/EasyEdit):
 * minimise the target's NLL with Adam, projecting the weight change into an L∞ ball of radius ε.
 * Each edit is fitted on its own against the base weights. Like ROME's FT-L it tunes one matrix:
 * the last MLP output projection among the editable layers (measured on the default model, 12
 * counterfactual edits: tuning all four editable matrices kept locality 10/12 but 0/12 edits held
 * once summed; the last c_proj alone: 11/12 and 9/12).
 */
import { tf } from '../tensor/tf.js';
import { densify, sumDeltas, type Delta } from '../model/weight-change.js';
import type { Deltas } from '../model/gpt2.js';
import { Rng } from '../util/random.js';
import { makeBatch } from './batch.js';
import type { EditRequest, EditRows, EditorContext, LayerCapacity, SetEditor } from './editor.js';
import { FT_DEFAULTS, lastProjection, type FtSettings } from './settings.js';

export { FT_DEFAULTS, type FtSettings };

/** FT-L's settings without the method tag. */
export type FtOptions = Omit<FtSettings, 'method'>;

/** The FT-L baseline: per-edit deltas, summed (they collapse beyond a few edits: FACTS). */
export class FtEditor implements SetEditor {
  readonly method = 'ft';
  readonly joint = false;
  constructor(readonly options: FtOptions = FT_DEFAULTS) {}

  editedLayers(editable: string[]): string[] {
    return this.options.layers ?? lastProjection(editable);
  }

  /** An edit's rows are its own dense delta, one tensor per parameter. */
  async computeRows(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, EditRows>> {
    const out = new Map<string, EditRows>();
    for (const [id, delta] of await this.computeDeltas(ctx, edits)) {
      const tensors: EditRows['tensors'] = {};
      for (const [param, t] of densify(delta)) tensors[param] = { dtype: 'F32', shape: t.shape, data: t.data };
      out.set(id, { tensors });
    }
    return out;
  }

  async solve(_ctx: EditorContext, rows: Array<[string, EditRows]>): Promise<Delta> {
    const deltas = rows.map(([, r]): Delta => ({ layers: Object.fromEntries(Object.entries(r.tensors).map(([p, t]) => [p, { kind: 'dense' as const, shape: t.shape, data: t.data as Float32Array }])) }));
    const sum = sumDeltas(deltas);
    return { layers: Object.fromEntries([...sum].map(([p, t]) => [p, { kind: 'dense' as const, shape: t.shape, data: t.data }])) };
  }

  capacity(): LayerCapacity[] {
    return [];
  }

  async computeDeltas(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, Delta>> {
    const out = new Map<string, Delta>();
    for (const [i, edit] of edits.entries()) {
      out.set(edit.id, await this.fit(ctx, edit));
      ctx.onProgress?.(i + 1, edits.length, edit.id);
    }
    return out;
  }

  private async fit(ctx: EditorContext, edit: EditRequest): Promise<Delta> {
    const { model, tokenizer } = ctx;
    const layers = this.editedLayers(ctx.layers);
    const { steps, lr, epsilon, stopLoss, rank } = this.options;
    const batch = makeBatch(tokenizer, [{ prompt: edit.prompt, completion: edit.target }], model.config.nPositions);
    // Dense: one variable per matrix, projected into the L∞ ball. Low-rank: factors A [in, r]
    // (small random) and B [r, out] (zeros), so ΔW = A·B starts at zero.
    const vars: Record<string, tf.Variable> = {};
    const rng = new Rng(0x5eed);
    // tf.variable shares its initial tensor's data: dispose the initial tensor, or it outlives the edit
    const variable = (init: tf.Tensor) => {
      const v = tf.variable(init, true);
      init.dispose();
      return v;
    };
    for (const layer of layers) {
      const [nIn, nOut] = model.params[`${layer}.weight`].shape as [number, number];
      if (rank === undefined) {
        vars[`${layer}.weight`] = variable(tf.zeros([nIn, nOut]));
      } else {
        const a = Float32Array.from({ length: nIn * rank }, () => rng.normal() * 0.1);
        vars[`${layer}.A`] = variable(tf.tensor2d(a, [nIn, rank]));
        vars[`${layer}.B`] = variable(tf.zeros([rank, nOut]));
      }
    }
    const deltas = (): Deltas => {
      if (rank === undefined) return vars;
      const out: Deltas = {};
      for (const layer of layers) out[`${layer}.weight`] = tf.matMul(vars[`${layer}.A`], vars[`${layer}.B`]);
      return out;
    };
    const opt = tf.train.adam(lr);
    try {
      for (let s = 0; s < steps; s++) {
        const lossT = opt.minimize(() => model.loss(batch.ids, batch.targets, batch.weights, { deltas: deltas() }), true, Object.values(vars))!;
        const loss = (await lossT.data())[0];
        lossT.dispose();
        if (rank === undefined) {
          for (const v of Object.values(vars)) {
            const clipped = tf.clipByValue(v, -epsilon, epsilon);
            v.assign(clipped);
            clipped.dispose(); // assign shares the data: without this every step kept a copy of every layer's delta
          }
        }
        if (loss < stopLoss) break;
      }
      const layersOut: Delta['layers'] = {};
      for (const layer of layers) {
        if (rank === undefined) {
          const v = vars[`${layer}.weight`];
          layersOut[`${layer}.weight`] = { kind: 'dense', shape: v.shape as [number, number], data: (await v.data()) as Float32Array };
        } else {
          const a = vars[`${layer}.A`];
          const b = vars[`${layer}.B`];
          layersOut[`${layer}.weight`] = { kind: 'lowrank', a: (await a.data()) as Float32Array, b: (await b.data()) as Float32Array, in: a.shape[0] as number, out: b.shape[1] as number, rank };
        }
      }
      return { layers: layersOut };
    } finally {
      batch.dispose();
      opt.dispose();
      for (const v of Object.values(vars)) v.dispose();
    }
  }
}
