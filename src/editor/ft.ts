/**
 * FT-L: constrained fine-tuning of the editable layers on the edit prompt alone
 * (Zhu et al. 2020, "Modifying Memories in Transformer Models"; the FT-L baseline of ROME/EasyEdit):
 * minimise the target's NLL with Adam, projecting the weight change into an L∞ ball of radius ε.
 * Each edit is fitted on its own against the base weights.
 */
import * as tf from '@tensorflow/tfjs';
import type { Delta } from '../state/deltas.js';
import { makeBatch } from './batch.js';
import type { EditRequest, Editor, EditorContext } from './editor.js';

export interface FtOptions {
  steps: number;
  lr: number;
  /** L∞ bound on every weight change. */
  epsilon: number;
  /** Stop early once the target's mean NLL is below this. */
  stopLoss: number;
}

export const FT_DEFAULTS: FtOptions = { steps: 40, lr: 5e-3, epsilon: 0.02, stopLoss: 0.05 };

export class FtEditor implements Editor {
  readonly method = 'ft';
  constructor(readonly options: FtOptions = FT_DEFAULTS) {}

  async computeDeltas(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, Delta>> {
    const out = new Map<string, Delta>();
    for (const [i, edit] of edits.entries()) {
      out.set(edit.id, await this.fit(ctx, edit));
      ctx.onProgress?.(i + 1, edits.length, edit.id);
    }
    return out;
  }

  private async fit(ctx: EditorContext, edit: EditRequest): Promise<Delta> {
    const { model, tokenizer, layers } = ctx;
    const { steps, lr, epsilon, stopLoss } = this.options;
    const batch = makeBatch(tokenizer, [{ prompt: edit.prompt, completion: edit.target }], model.config.nPositions);
    const vars: Record<string, tf.Variable> = {};
    for (const layer of layers) {
      const w = model.params[`${layer}.weight`];
      vars[`${layer}.weight`] = tf.variable(tf.zerosLike(w), true);
    }
    const opt = tf.train.adam(lr);
    try {
      for (let s = 0; s < steps; s++) {
        const lossT = opt.minimize(() => model.loss(batch.ids, batch.targets, batch.weights, { deltas: vars }), true, Object.values(vars))!;
        const loss = (await lossT.data())[0];
        lossT.dispose();
        for (const v of Object.values(vars)) v.assign(tf.tidy(() => tf.clipByValue(v, -epsilon, epsilon)));
        if (loss < stopLoss) break;
      }
      const layersOut: Delta['layers'] = {};
      for (const layer of layers) {
        const v = vars[`${layer}.weight`];
        layersOut[`${layer}.weight`] = { kind: 'dense', shape: v.shape as [number, number], data: (await v.data()) as Float32Array };
      }
      return { layers: layersOut };
    } finally {
      batch.dispose();
      opt.dispose();
      for (const v of Object.values(vars)) v.dispose();
    }
  }
}
