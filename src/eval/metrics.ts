/**
 * The numbers of `edit eval`, two ways (DESIGN §6):
 * - EasyEdit's (Yao et al. 2023, "Editing Large Language Models"): teacher-forced token accuracy of
 *   the target (Reliability, Generalization, Portability) and agreement of argmax tokens with the
 *   pre-edit model on neighbour prompts (Locality);
 * - real greedy generation, judged exactly as `edit apply` judges an edit (src/assert/check-edit.ts):
 *   the continuation starts with the target as a whole word; a neighbour's continuation up to the
 *   first newline equals the base model's. Teacher forcing leaks the target's content and length
 *   and overstates success (QAEdit/WILD, arXiv 2502.11177), so both are reported side by side.
 */
import { EXTRA_TOKENS } from '../assert/check-edit.js';
import { DEFAULT_MAX_TOKENS, startsWith } from '../assert/string.js';
import type { Judge } from '../assert/types.js';

/** Fraction of positions where the model's argmax is the target token. */
export function tokenAccuracy(argmax: readonly number[], target: readonly number[]): number {
  if (argmax.length !== target.length || target.length === 0) throw new RangeError(`token accuracy needs equal, non-empty lengths (got ${argmax.length} and ${target.length})`);
  let hits = 0;
  for (let i = 0; i < target.length; i++) if (argmax[i] === target[i]) hits++;
  return hits / target.length;
}

/** Fraction of positions where two models' argmax tokens agree (EasyEdit's locality). */
export function agreement(edited: readonly number[], base: readonly number[]): number {
  return tokenAccuracy(edited, base);
}

/** The mean of the defined values; null when there are none. */
export function mean(xs: ReadonlyArray<number | null>): number | null {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length === 0 ? null : ok.reduce((a, b) => a + b, 0) / ok.length;
}

/** Greedy output of `prompt` starts with `target` as a whole word: the check apply makes (target tokens + 2 of budget). */
export function generationHolds(judge: Judge, prompt: string, target: string): boolean {
  const budget = (judge.countTokens?.(target) ?? new TextEncoder().encode(target).length) + EXTRA_TOKENS;
  return startsWith({ assertion: { type: 'starts-with', prompt, value: target, maxTokens: budget }, judge, inverse: false }).pass;
}

/** The edited model's continuation (up to the first newline) equals the base model's: apply's locality check. */
export function continuationUnchanged(edited: Judge, base: Judge, prompt: string): boolean {
  return edited.generate(prompt, DEFAULT_MAX_TOKENS) === base.generate(prompt, DEFAULT_MAX_TOKENS);
}
