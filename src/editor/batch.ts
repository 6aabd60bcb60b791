/**
 * Teacher-forced batches: prompt + completion token rows, with loss weight only on the
 * completion's tokens (the edit loss of FT-L and MEND).
 */
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';

export interface TfBatch {
  ids: tf.Tensor2D;
  targets: tf.Tensor2D;
  weights: tf.Tensor2D;
  /** Completion token count per row. */
  lengths: number[];
  dispose(): void;
}

/** Token ids of prompt+completion and where the completion starts. */
export function encodePair(tokenizer: Tokenizer, prompt: string, completion: string): { ids: number[]; start: number } {
  const p = tokenizer.encode(prompt);
  const joint = tokenizer.encode(prompt + completion);
  // Usually the joint tokenization extends the prompt's; if a merge crosses the boundary, keep them apart.
  const extends_ = joint.length > p.length && p.every((x, i) => joint[i] === x);
  return extends_ ? { ids: joint, start: p.length } : { ids: [...p, ...tokenizer.encode(completion)], start: p.length };
}

/** Rows padded on the right to the longest; each position t predicts token t+1. */
export function makeBatch(tokenizer: Tokenizer, pairs: Array<{ prompt: string; completion: string }>, contextLength: number): TfBatch {
  const rows = pairs.map((p) => encodePair(tokenizer, p.prompt, p.completion));
  for (const r of rows) {
    if (r.ids.length > contextLength) throw new RangeError(`prompt and completion are ${r.ids.length} tokens; the model's context is ${contextLength}`);
  }
  const t = Math.max(...rows.map((r) => r.ids.length)) - 1;
  const ids: number[][] = [];
  const targets: number[][] = [];
  const weights: number[][] = [];
  for (const r of rows) {
    const x = new Array<number>(t).fill(0);
    const y = new Array<number>(t).fill(0);
    const w = new Array<number>(t).fill(0);
    for (let i = 0; i < r.ids.length - 1; i++) {
      x[i] = r.ids[i];
      y[i] = r.ids[i + 1];
      if (i + 1 >= r.start) w[i] = 1;
    }
    ids.push(x);
    targets.push(y);
    weights.push(w);
  }
  const b = rows.length;
  const batch = {
    ids: tf.tensor2d(ids, [b, t], 'int32'),
    targets: tf.tensor2d(targets, [b, t], 'int32'),
    weights: tf.tensor2d(weights, [b, t]),
    lengths: rows.map((r) => r.ids.length - r.start),
    dispose() {
      tf.dispose([batch.ids, batch.targets, batch.weights]);
    },
  };
  return batch;
}

/** One edit's teacher-forced input and its rows: position `positions[r]` predicts `targets[r]` (memit's and the hypernetwork's rows). */
export interface RowSequence {
  /** Prompt + target tokens without the last target token (predicted, never read). */
  ids: number[];
  positions: number[];
  targets: number[];
}

/** The rows of an edit (prompt as the user types it, target), refusing what cannot be edited. */
export function rowSequence(tokenizer: Tokenizer, nPositions: number, prompt: string, target: string, file = 'edit', opts: { keepTail?: boolean } = {}): RowSequence {
  const pair = encodePair(tokenizer, prompt, target);
  // keepTail (a prompt wrapped in a long template): drop the front so the end fits the context
  const cut = opts.keepTail === true ? Math.max(0, Math.min(pair.ids.length - nPositions, pair.start - 1)) : 0;
  const ids = pair.ids.slice(cut);
  const start = pair.start - cut;
  if (ids.length > nPositions) throw new EditError(`prompt and target are ${ids.length} tokens; the model's context is ${nPositions}`, { file, pointer: '/prompt' });
  if (start === 0) throw new EditError('the prompt encodes to no token', { file, pointer: '/prompt' });
  if (ids.length === start) throw new EditError('the target encodes to no token', { file, pointer: '/target' });
  const positions: number[] = [];
  const targets: number[] = [];
  for (let p = start - 1; p < ids.length - 1; p++) {
    positions.push(p);
    targets.push(ids[p + 1]);
  }
  return { ids: ids.slice(0, -1), positions, targets };
}
