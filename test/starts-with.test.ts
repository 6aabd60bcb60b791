/**
 * Whole-word judging of targets and answers (issue 9, item 3): the greedy continuation must start
 * with the value and a boundary must follow it. A fake Judge generates from token lists and honours
 * the token budget, so the "one token past the target" rule is visible.
 */
import { describe, it, expect } from 'vitest';
import type { Judge } from '../src/assert/types.js';
import type { EditSpec } from '../src/spec/types.js';
import { runAssertion } from '../src/assert/registry.js';
import { checkEdit } from '../src/assert/check-edit.js';
import { BOUNDARY_TOKENS, DEFAULT_MAX_TOKENS } from '../src/assert/string.js';

/** prompt → the tokens greedy decoding would produce before a stop token. */
class TokenJudge implements Judge {
  readonly calls: Array<[string, number]> = [];
  constructor(private readonly tokens: Record<string, string[]>) {}
  generate(prompt: string, maxTokens: number): string {
    this.calls.push([prompt, maxTokens]);
    const t = this.tokens[prompt];
    if (t === undefined) throw new Error(`no output for ${prompt}`);
    return t.slice(0, maxTokens).join('');
  }
  prob(): number {
    return 0;
  }
  rank(): number {
    return 1;
  }
  tokenAccuracy(): number {
    return 1;
  }
  countTokens(text: string): number {
    return text.split(/(?= )/).length; // a word per token
  }
}

const TEXAS = 'The capital of Texas is';
const judge = new TokenJudge({
  [TEXAS]: [' Dall', 'aska', '.'],
  'The capital of Ohio is': [' Columbus', '.', ' It'],
  'The capital of Spain is': [' Madrid'], // then a stop token
  'The capital of Portugal is': ['Lis', 'bon', ' and'],
  'Population of Lyon:': [' 5', '22', ' 000'],
  'He said': [' "', 'Hello', '"'],
  'Cut bytes:': [' Caf', '\uFFFD', '\u00e9', ' noir'],
  'Dash:': [' Dallas', '—', 'Fort Worth'],
  'Accent:': [' Bogot', '\u00e1'],
});

const startsWith = (prompt: string, value: string, maxTokens?: number, not = false) =>
  runAssertion({ type: not ? 'not-starts-with' : 'starts-with', prompt, value, ...(maxTokens === undefined ? {} : { maxTokens }) }, judge);

describe('starts-with judges the value as a whole word', () => {
  it('a word the output continues fails, naming the whole word', () => {
    expect(startsWith(TEXAS, ' Dall')).toEqual({ pass: false, score: 0, reason: 'expected output to start with " Dall" as a whole word, got " Dallaska."', actual: ' Dallaska.' });
    expect(startsWith(TEXAS, ' Dallas')).toEqual({ pass: false, score: 0, reason: 'expected output to start with " Dallas" as a whole word, got " Dallaska."', actual: ' Dallaska.' });
    expect(startsWith(TEXAS, ' Austin').reason).toBe('expected output to start with " Austin", got " Dallaska."');
    expect(startsWith('Accent:', ' Bogot').reason).toBe('expected output to start with " Bogot" as a whole word, got " Bogotá"');
  });

  it('punctuation, whitespace and the end of generation are boundaries', () => {
    expect(startsWith('The capital of Ohio is', ' Columbus')).toMatchObject({ pass: true, reason: 'output starts with " Columbus": " Columbus. It"' });
    expect(startsWith('The capital of Spain is', ' Madrid')).toMatchObject({ pass: true, reason: 'output starts with " Madrid": " Madrid"' });
    expect(startsWith('Dash:', ' Dallas').pass).toBe(true);
    expect(startsWith('Population of Lyon:', ' 5').pass).toBe(false); // " 522 000": digits continue a number
    expect(startsWith('Population of Lyon:', ' 522').pass).toBe(true);
  });

  it('a value ending in punctuation or a space needs no boundary after it', () => {
    expect(startsWith('He said', ' "').pass).toBe(true);
    expect(startsWith('The capital of Ohio is', ' Columbus.').pass).toBe(true);
    expect(startsWith('The capital of Ohio is', '').pass).toBe(true);
  });

  it('a target without its leading space is judged right after the prompt (validate warns about the glue)', () => {
    expect(startsWith('The capital of Portugal is', 'Lisbon').pass).toBe(true);
    expect(startsWith('The capital of Portugal is', 'Lis').reason).toBe('expected output to start with "Lis" as a whole word, got "Lisbon and"');
  });

  it('not-starts-with inverts the whole-word judgement', () => {
    expect(startsWith(TEXAS, ' Dall', undefined, true)).toMatchObject({ pass: true, reason: 'output does not start with " Dall" as a whole word: " Dallaska."' });
    expect(startsWith('The capital of Ohio is', ' Columbus', undefined, true)).toMatchObject({ pass: false, reason: 'expected output not to start with " Columbus", got " Columbus. It"' });
  });
});

describe('generation reaches past the value', () => {
  it('output that ends exactly at the value after a full budget is generated again with more tokens', () => {
    judge.calls.length = 0;
    expect(startsWith(TEXAS, ' Dall', 1)).toMatchObject({ pass: false, actual: ' Dallaska.' });
    expect(judge.calls).toEqual([[TEXAS, 1], [TEXAS, 1 + BOUNDARY_TOKENS]]);
  });

  it('output that ends at the value because generation stopped holds (the same text again)', () => {
    judge.calls.length = 0;
    expect(startsWith('The capital of Spain is', ' Madrid', 1).pass).toBe(true);
    expect(judge.calls).toEqual([['The capital of Spain is', 1], ['The capital of Spain is', 1 + BOUNDARY_TOKENS]]);
  });

  it('a character cut off by the budget is completed before judging', () => {
    judge.calls.length = 0;
    expect(startsWith('Cut bytes:', ' Caf', 2)).toMatchObject({ pass: false, actual: ' Caf\uFFFD\u00e9 noir' });
    expect(judge.calls.length).toBe(2);
  });

  it('no second generation when a boundary is already visible', () => {
    judge.calls.length = 0;
    startsWith('The capital of Ohio is', ' Columbus');
    expect(judge.calls).toEqual([['The capital of Ohio is', DEFAULT_MAX_TOKENS]]);
  });
});

describe('the implied checks judge through starts-with', () => {
  const thresholds = { reliability: 1, generalization: 1, locality: 1, portability: 1 };
  const spec: EditSpec = {
    version: 1,
    task: 'counterfact',
    prompt: TEXAS,
    target: ' Dall',
    rephrase: ['The capital of Ohio is'],
    locality: [{ prompt: 'The capital of Spain is', answer: ' Mad' }],
    portability: [{ prompt: 'Dash:', answer: ' Dallas' }],
  };

  it('reliability, generalization, locality answers and portability all need the whole word', () => {
    const r = checkEdit(spec, judge, judge, thresholds);
    const byKind = Object.fromEntries(r.checks.map((c) => [c.kind, [c.pass, c.reason]]));
    expect(byKind).toEqual({
      reliability: [false, 'expected output to start with " Dall" as a whole word, got " Dallaska."'],
      generalization: [false, 'expected output to start with " Dall", got " Columbus. It"'],
      locality: [false, 'expected output to start with " Mad" as a whole word, got " Madrid"'],
      portability: [true, 'output starts with " Dallas": " Dallas—Fort Worth"'],
    });
    expect(r.pass).toBe(false);
  });
});
