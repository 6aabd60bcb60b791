/** rank: the completion's first token is among the model's top k next tokens (default k = 1: it is the argmax). */
import type { AssertionHandler } from './types.js';
import { quote } from './format.js';

export const DEFAULT_K = 1;

export const rank: AssertionHandler = ({ assertion: a, judge }) => {
  const k = a.k ?? DEFAULT_K;
  const r = judge.rank(a.prompt, a.value);
  const name = `rank(${quote(a.value)})`;
  const actual = String(r);
  if (r <= k) return { pass: true, score: 1, reason: `${name} = ${r} <= ${k}`, actual };
  return { pass: false, score: k / r, reason: `expected ${name} <= ${k}, got ${r}`, actual };
};
