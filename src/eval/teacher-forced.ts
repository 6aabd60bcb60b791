/**
 * Teacher-forced argmax tokens of many (prompt, completion) pairs, a batch of rows per forward
 * (one forward per pair, as the Judge does, costs 20–40× more at benchmark scale on wasm).
 */
import { tf } from '../tensor/tf.js';
import { encodePair } from '../editor/batch.js';
import type { Deltas, GPT } from '../model/gpt2.js';
import type { Tokenizer } from '../model/tokenizer.js';

export interface ForcedTokens {
  /** The model's argmax at each completion position. */
  argmax: number[];
  /** The completion's tokens. */
  target: number[];
}

export function teacherForcedTokens(model: GPT, tokenizer: Tokenizer, pairs: ReadonlyArray<{ prompt: string; completion: string }>, deltas?: Deltas, rowsPerBatch = 32): ForcedTokens[] {
  const out: ForcedTokens[] = [];
  for (let s = 0; s < pairs.length; s += rowsPerBatch) {
    const rows = pairs.slice(s, s + rowsPerBatch).map((p) => {
      const e = encodePair(tokenizer, p.prompt, p.completion);
      // An empty prompt starts from end-of-text, as documents do in training.
      return e.start === 0 ? { ids: [tokenizer.eosId, ...e.ids], start: 1 } : e;
    });
    const t = Math.max(...rows.map((r) => r.ids.length)) - 1; // the last token is only a target
    const ids = rows.map((r) => [...r.ids.slice(0, -1), ...new Array<number>(t - (r.ids.length - 1)).fill(0)]);
    const best = tf.tidy(() => tf.argMax(model.logits(tf.tensor2d(ids, [rows.length, t], 'int32'), { deltas }), 1)); // (B·T)
    const flat = best.dataSync();
    best.dispose();
    rows.forEach((r, b) => {
      const argmax: number[] = [];
      const target: number[] = [];
      for (let p = r.start - 1; p < r.ids.length - 1; p++) {
        argmax.push(flat[b * t + p]);
        target.push(r.ids[p + 1]);
      }
      out.push({ argmax, target });
    });
  }
  return out;
}
