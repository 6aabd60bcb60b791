/**
 * Teacher-forced numbers of (prompt, completion) id pairs: one forward per group of equally long
 * sequences (prompt + completion minus its last token), so there is no padding and a row computes
 * the bits it computes alone (rows are independent). The judge's prob, rank and EasyEdit's token
 * accuracy; GeneratePool runs the same function on its threads.
 */
import { tf } from '../tensor/tf.js';
import { logSoftmax } from '../tensor/ops.js';
import type { Deltas, GPT } from './gpt2.js';

/** Teacher-forced numbers of one completion. */
export interface Scored {
  prob: number;
  rank: number;
  tokenAccuracy: number;
}

export interface ScorePair {
  prompt: number[];
  completion: number[];
}

/** Pairs per teacher-forced forward (bounds the [B·T, E] activations). */
const SCORE_BATCH = 64;

/** The sequence length a pair is scored at: the last completion token is only a target. */
export function scoredLength(pair: ScorePair): number {
  return pair.prompt.length + pair.completion.length - 1;
}

/** Scores of every pair (each with a non-empty completion), in order. */
export function scorePairs(model: GPT, pairs: readonly ScorePair[], deltas?: Deltas): Scored[] {
  const out = new Array<Scored>(pairs.length);
  const groups = new Map<number, number[]>();
  pairs.forEach((p, i) => {
    checkPair(p, i);
    groups.set(scoredLength(p), [...(groups.get(scoredLength(p)) ?? []), i]);
  });
  for (const group of groups.values()) {
    for (let at = 0; at < group.length; at += SCORE_BATCH) {
      const part = group.slice(at, at + SCORE_BATCH);
      forced(model, part.map((i) => pairs[i]), deltas).forEach((s, j) => (out[part[j]] = s));
    }
  }
  return out;
}

/** Prob, rank and token accuracy of pairs whose sequences are equally long: one forward. */
function forced(model: GPT, pairs: readonly ScorePair[], deltas?: Deltas): Scored[] {
  const t = scoredLength(pairs[0]);
  const seqs = pairs.map((p) => [...p.prompt, ...p.completion].slice(0, -1));
  // the positions predicting each completion token: c[i] from position |prompt| − 1 + i of its row
  const rowsAt = pairs.flatMap((p, b) => p.completion.map((_, i) => b * t + p.prompt.length - 1 + i));
  const rows = tf.tidy(() => logSoftmax(model.logits(tf.tensor2d(seqs, [pairs.length, t], 'int32'), { deltas, rows: rowsAt }))); // (Σn, V)
  const data = rows.dataSync() as Float32Array;
  const v = rows.shape[1];
  rows.dispose();
  let offset = 0;
  return pairs.map(({ completion: c }) => {
    const sum = newScore();
    for (let i = 0; i < c.length; i++) addScoredRow(sum, data.subarray((offset + i) * v, (offset + i + 1) * v), c[i], i === 0);
    offset += c.length;
    return scored(sum);
  });
}

/** Refuses a pair with nothing to score (an empty prompt or completion), naming its index. */
export function checkPair(p: ScorePair, i: number): void {
  if (p.prompt.length === 0 || p.completion.length === 0) throw new RangeError(`pair ${i} has an empty ${p.prompt.length === 0 ? 'prompt' : 'completion'}: nothing to score`);
}

/** A completion's numbers so far, one predicted token at a time. */
export interface ScoreSum {
  logp: number;
  hits: number;
  rank: number;
  n: number;
}

export function newScore(): ScoreSum {
  return { logp: 0, hits: 0, rank: 1, n: 0 };
}

/** The numbers of a completion whose every token was added. */
export function scored(sum: ScoreSum): Scored {
  return { prob: Math.exp(sum.logp), rank: sum.rank, tokenAccuracy: sum.hits / sum.n };
}

/** Adds the log-softmax row predicting `target` (the completion's first token: `first`, which sets the rank). */
export function addScoredRow(sum: ScoreSum, row: Float32Array, target: number, first: boolean): void {
  const t = row[target];
  sum.logp += t;
  sum.n++;
  let argmax = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[argmax]) argmax = j;
  if (argmax === target) sum.hits++;
  if (first) for (let j = 0; j < row.length; j++) if (row[j] > t) sum.rank++;
}
