/** prob: the teacher-forced probability of the whole completion after the prompt lies in [min, max]. */
import type { AssertionHandler } from './types.js';
import { num, quote } from './format.js';

export const prob: AssertionHandler = ({ assertion: a, judge }) => {
  const { min, max } = a;
  const name = `P(${quote(a.value)})`;
  if (min === undefined && max === undefined) {
    return { pass: false, score: 0, reason: `prob assertion on ${quote(a.value)} needs min and/or max` };
  }
  const p = judge.prob(a.prompt, a.value);
  const bound = min !== undefined && max !== undefined ? `${num(min)} <= ${name} <= ${num(max)}` : min !== undefined ? `${name} >= ${num(min)}` : `${name} <= ${num(max!)}`;
  const actual = num(p);
  const low = min !== undefined && !(p >= min);
  const high = max !== undefined && !(p <= max);
  if (!low && !high) {
    const shown = min !== undefined && max !== undefined ? `${num(min)} <= ${name} = ${actual} <= ${num(max)}` : min !== undefined ? `${name} = ${actual} >= ${num(min)}` : `${name} = ${actual} <= ${num(max!)}`;
    return { pass: true, score: 1, reason: shown, actual };
  }
  // How close: the fraction of the bound reached (below min) or of the room left (above max).
  const score = low ? (min! > 0 ? p / min! : 0) : max! < 1 ? (1 - p) / (1 - max!) : 0;
  return { pass: false, score: clamp01(score), reason: `expected ${bound}, got ${actual}`, actual };
};

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
