/**
 * Assertions on the model's greedy continuation (promptfoo's string checks). One handler per
 * type; `not-` forms pass the inverse flag. Pass and fail reasons both show the actual output.
 */
import { linearRegExp } from '../util/regex.js';
import type { AssertionHandler, AssertionResult, Judge } from './types.js';
import type { AssertionSpec } from '../spec/types.js';
import { quote } from './format.js';

/** Greedy tokens generated for a string check when the assertion does not say. */
export const DEFAULT_MAX_TOKENS = 16;

/** What a check says, e.g. verb "contain", third "contains", object '"Lyon"'. */
interface Phrase {
  verb: string;
  third: string;
  object: string;
}

/** One result from whether the check held (before inversion) and how it reads. */
function judged(ok: boolean, inverse: boolean, output: string, p: Phrase): AssertionResult {
  const pass = ok !== inverse;
  const reason = pass
    ? `output ${inverse ? `does not ${p.verb}` : p.third} ${p.object}: ${quote(output)}`
    : `expected output ${inverse ? 'not ' : ''}to ${p.verb} ${p.object}, got ${quote(output)}`;
  return { pass, score: pass ? 1 : 0, reason, actual: output };
}

function output(judge: Judge, a: AssertionSpec): string {
  return judge.generate(a.prompt, a.maxTokens ?? DEFAULT_MAX_TOKENS);
}

/** Surrounding whitespace is ignored on both sides: a continuation starts with a space and may end with one. */
export const equals: AssertionHandler = ({ assertion: a, judge, inverse }) => {
  const out = output(judge, a);
  return judged(out.trim() === a.value.trim(), inverse, out, { verb: 'equal', third: 'equals', object: quote(a.value) });
};

export const contains: AssertionHandler = ({ assertion: a, judge, inverse }) => {
  const out = output(judge, a);
  return judged(out.includes(a.value), inverse, out, { verb: 'contain', third: 'contains', object: quote(a.value) });
};

export const icontains: AssertionHandler = ({ assertion: a, judge, inverse }) => {
  const out = output(judge, a);
  const object = `${quote(a.value)} (ignoring case)`;
  return judged(out.toLowerCase().includes(a.value.toLowerCase()), inverse, out, { verb: 'contain', third: 'contains', object });
};

/** An invalid pattern fails (both forms) with the parser's message; the schema check reports it earlier. */
export const regex: AssertionHandler = ({ assertion: a, judge, inverse }) => {
  let re: RegExp;
  try {
    re = linearRegExp(a.value);
  } catch (err) {
    return { pass: false, score: 0, reason: `invalid regex ${quote(a.value)}: ${(err as Error).message}` };
  }
  const out = output(judge, a);
  return judged(re.test(out), inverse, out, { verb: 'match', third: 'matches', object: `/${a.value}/` });
};

/** Tokens generated past the budget to see what follows a value: a UTF-8 character is at most 4 byte-level tokens. */
export const BOUNDARY_TOKENS = 4;

/**
 * Word characters: letters, marks, digits, and U+FFFD (a character whose bytes the token budget cut
 * off: not a boundary). Whitespace, punctuation and symbols end a word; so does the end of the output.
 */
const WORD_START = /^[\p{L}\p{M}\p{N}\uFFFD]/u;
const WORD_END = /[\p{L}\p{M}\p{N}\uFFFD]$/u;

/** A value ending in a word character needs a boundary after it; " Lyon." or " 5 %" already ends in one. */
function needsBoundary(value: string): boolean {
  return WORD_END.test(value);
}

/** `output` starts with `value` as a whole word (nothing trimmed): " Lyon." and " Lyon" hold " Lyon", " Lyonnais" does not. */
export function startsWithWord(output: string, value: string): boolean {
  return output.startsWith(value) && !(needsBoundary(value) && WORD_START.test(output.slice(value.length)));
}

/**
 * The check every target and answer goes through (reliability, generalization, portability, locality
 * answers, and `starts-with` itself): the output starts with the value *as a whole word*. Nothing is
 * trimmed (targets carry their leading space, " Lyon"), and when the value ends in a letter, mark or
 * digit, what follows it must be a boundary: whitespace, punctuation, or the end of generation (a stop token,
 * end of text, the context). " Dallas" does not hold for " Dallaska".
 */
export const startsWith: AssertionHandler = ({ assertion: a, judge, inverse }) => {
  const budget = a.maxTokens ?? DEFAULT_MAX_TOKENS;
  let out = judge.generate(a.prompt, budget);
  // Output that ends at the value (or in the bytes of a cut-off character) may have hit the budget
  // mid-word: a few tokens more show the boundary. Greedy decoding is deterministic, so the same text
  // again means generation ended there.
  if (out.startsWith(a.value) && needsBoundary(a.value) && /^\uFFFD*$/.test(out.slice(a.value.length))) {
    out = judge.generate(a.prompt, budget + BOUNDARY_TOKENS);
  }
  const prefix = out.startsWith(a.value);
  const whole = startsWithWord(out, a.value);
  const object = prefix && !whole ? `${quote(a.value)} as a whole word` : quote(a.value);
  return judged(whole, inverse, out, { verb: 'start with', third: 'starts with', object });
};
