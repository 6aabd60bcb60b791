/**
 * A weight change as run-time tensors: the one path from a stored or solved change to the `Deltas`
 * the forward pass adds to the base weights (apply, verify, generate, export, eval).
 */
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import type { LoadedModel } from './folder.js';
import type { Deltas } from './gpt2.js';
import { deltaShape, densify, type Delta } from './weight-change.js';

/** A weight change as run-time tensors for the model's forward pass (the caller disposes them); checked against the model's shapes. */
export function toDeltaTensors(delta: Delta | null, loaded: LoadedModel): Deltas {
  const out: Deltas = {};
  if (delta === null) return out;
  // a delta read from a file carries its path (state/deltas.ts parseDelta): errors name it
  const file = (delta as { file?: string }).file;
  const where = file === undefined ? {} : { file };
  // a wrong shape would broadcast silently in W + Δ
  for (const [param, t] of Object.entries(delta.layers)) {
    const base = loaded.model.params[param];
    if (base === undefined) throw new EditError(`the delta changes "${param}", which this model does not have`, where);
    const shape = deltaShape(t);
    if (shape.length !== base.shape.length || shape.some((n, i) => n !== base.shape[i])) {
      throw new EditError(`the delta of "${param}" has shape ${JSON.stringify(shape)}, the model's parameter ${JSON.stringify(base.shape)}`, where);
    }
  }
  for (const [param, t] of densify(delta)) out[param] = tf.tensor(t.data, t.shape);
  return out;
}
