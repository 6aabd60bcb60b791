/**
 * Assertion regexes run on V8's linear-time engine (the `l` flag: no backtracking), so a pattern
 * such as `(o+)+x` cannot hang an apply or a verify on a long output. The engine refuses what it
 * cannot run in linear time — backreferences and lookaround — so those patterns are refused too.
 */
import { setFlagsFromString } from 'node:v8';

let enabled = false;

/** `s` as a pattern that matches exactly it. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `new RegExp(pattern)` on the linear-time engine; throws a SyntaxError saying what is wrong. */
export function linearRegExp(pattern: string): RegExp {
  if (!enabled) {
    setFlagsFromString('--enable-experimental-regexp-engine');
    enabled = true;
  }
  new RegExp(pattern); // the ordinary parser's message for a malformed pattern
  try {
    return new RegExp(pattern, 'l');
  } catch {
    throw new SyntaxError('backreferences and lookaround cannot be matched in bounded time; write the pattern without them (or use a not-regex assertion)');
  }
}
