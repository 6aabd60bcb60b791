/**
 * The table of assertion handlers (promptfoo's layout): one entry per base type, so a type without
 * a handler is a compile error; `not-<type>` runs the same handler with inverse = true.
 */
import { STRING_ASSERTIONS, type AssertionSpec, type AssertionType } from '../spec/types.js';
import type { AssertionHandler, AssertionResult, Judge } from './types.js';
import { contains, equals, icontains, regex, startsWith } from './string.js';
import { prob } from './prob.js';
import { rank } from './rank.js';
import { num, quote } from './format.js';

/** An assertion type without its `not-` prefix. */
export type BaseAssertionType = Exclude<AssertionType, `not-${string}`>;

export const HANDLERS: Record<BaseAssertionType, AssertionHandler> = {
  equals,
  contains,
  icontains,
  regex,
  'starts-with': startsWith,
  prob,
  rank,
};

export function parseAssertionType(type: AssertionType): { base: BaseAssertionType; inverse: boolean } {
  return type.startsWith('not-') ? { base: type.slice('not-'.length) as BaseAssertionType, inverse: true } : { base: type as BaseAssertionType, inverse: false };
}

/** Runs one assertion against a model. Never throws for a failed check; an unknown type is a failed result too. */
export function runAssertion(assertion: AssertionSpec, judge: Judge): AssertionResult {
  const { base, inverse } = parseAssertionType(assertion.type);
  const handler = Object.hasOwn(HANDLERS, base) ? HANDLERS[base] : undefined;
  // Only string checks have not- forms; prob and rank say the opposite with max / k.
  const invertible = (STRING_ASSERTIONS as readonly string[]).includes(base);
  if (handler === undefined || (inverse && !invertible)) return { pass: false, score: 0, reason: `unknown assertion type ${quote(assertion.type)}` };
  return handler({ assertion, judge, inverse });
}

/** The expectation in a few words, for reports: `not-contains "Paris"`, `P(" Lyon") >= 0.5`, `rank(" Lyon") <= 1`. */
export function describeAssertion(a: AssertionSpec): string {
  if (a.type === 'prob') {
    const name = `P(${quote(a.value)})`;
    if (a.min !== undefined && a.max !== undefined) return `${num(a.min)} <= ${name} <= ${num(a.max)}`;
    if (a.min !== undefined) return `${name} >= ${num(a.min)}`;
    if (a.max !== undefined) return `${name} <= ${num(a.max)}`;
    return name;
  }
  if (a.type === 'rank') return `rank(${quote(a.value)}) <= ${a.k ?? 1}`;
  if (a.type === 'regex' || a.type === 'not-regex') return `${a.type} /${a.value}/`;
  return `${a.type} ${quote(a.value)}`;
}
