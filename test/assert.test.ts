/**
 * Assertion handlers, their not- forms and checkEdit's aggregation, against a fake Judge whose
 * answers come from tables: every reason string is asserted exactly.
 */
import { describe, it, expect } from 'vitest';
import type { Judge } from '../src/assert/types.js';
import type { AssertionSpec, AssertionType, EditSpec } from '../src/spec/types.js';
import type { Thresholds } from '../src/model/folder.js';
import { HANDLERS, describeAssertion, parseAssertionType, runAssertion } from '../src/assert/registry.js';
import { batchChecks, checkEdit } from '../src/assert/check-edit.js';
import { GENERALIZATION_HINT, renderChecks, renderJunit, renderMarkdown } from '../src/cli/report.js';

/** A Judge from tables: prompt → output; "prompt|completion" → probability, rank, token accuracy. Records generate calls. */
class FakeJudge implements Judge {
  readonly calls: Array<[string, number]> = [];
  constructor(
    private readonly outputs: Record<string, string>,
    private readonly probs: Record<string, number> = {},
    private readonly ranks: Record<string, number> = {},
    private readonly accuracies: Record<string, number> = {},
    readonly countTokens?: (text: string) => number,
  ) {}
  generate(prompt: string, maxTokens: number): string {
    this.calls.push([prompt, maxTokens]);
    const out = this.outputs[prompt];
    if (out === undefined) throw new Error(`no output for ${prompt}`);
    return out;
  }
  prob(prompt: string, completion: string): number {
    return this.probs[`${prompt}|${completion}`] ?? 0;
  }
  rank(prompt: string, completion: string): number {
    return this.ranks[`${prompt}|${completion}`] ?? 100;
  }
  tokenAccuracy(prompt: string, completion: string): number {
    return this.accuracies[`${prompt}|${completion}`] ?? 0;
  }
}

const P = 'The capital of France is';
const judge = new FakeJudge({ [P]: ' Paris. It is big' }, { [`${P}| Lyon`]: 0.0312, [`${P}| Paris`]: 0.62 }, { [`${P}| Lyon`]: 3, [`${P}| Paris`]: 1 });

function run(type: AssertionType, value: string, extra: Partial<AssertionSpec> = {}) {
  return runAssertion({ type, prompt: P, value, ...extra }, judge);
}

describe('string assertions', () => {
  const cases: Array<[AssertionType, string, boolean, string]> = [
    ['contains', 'Lyon', false, 'expected output to contain "Lyon", got " Paris. It is big"'],
    ['contains', 'Paris', true, 'output contains "Paris": " Paris. It is big"'],
    ['not-contains', 'Paris', false, 'expected output not to contain "Paris", got " Paris. It is big"'],
    ['not-contains', 'Lyon', true, 'output does not contain "Lyon": " Paris. It is big"'],
    ['icontains', 'paris', true, 'output contains "paris" (ignoring case): " Paris. It is big"'],
    ['icontains', 'lyon', false, 'expected output to contain "lyon" (ignoring case), got " Paris. It is big"'],
    ['not-icontains', 'PARIS', false, 'expected output not to contain "PARIS" (ignoring case), got " Paris. It is big"'],
    ['not-icontains', 'LYON', true, 'output does not contain "LYON" (ignoring case): " Paris. It is big"'],
    ['equals', 'Paris. It is big ', true, 'output equals "Paris. It is big ": " Paris. It is big"'],
    ['equals', ' Paris.', false, 'expected output to equal " Paris.", got " Paris. It is big"'],
    ['not-equals', ' Paris.', true, 'output does not equal " Paris.": " Paris. It is big"'],
    ['not-equals', ' Paris. It is big', false, 'expected output not to equal " Paris. It is big", got " Paris. It is big"'],
    ['regex', '^ P\\w+\\.', true, 'output matches /^ P\\w+\\./: " Paris. It is big"'],
    ['regex', 'Ly(on|ons)', false, 'expected output to match /Ly(on|ons)/, got " Paris. It is big"'],
    ['not-regex', 'Paris', false, 'expected output not to match /Paris/, got " Paris. It is big"'],
    ['not-regex', 'Lyon', true, 'output does not match /Lyon/: " Paris. It is big"'],
    ['starts-with', ' Paris', true, 'output starts with " Paris": " Paris. It is big"'],
    ['starts-with', 'Paris', false, 'expected output to start with "Paris", got " Paris. It is big"'],
    ['starts-with', ' Lyon', false, 'expected output to start with " Lyon", got " Paris. It is big"'],
    ['not-starts-with', ' Paris', false, 'expected output not to start with " Paris", got " Paris. It is big"'],
    ['not-starts-with', ' Lyon', true, 'output does not start with " Lyon": " Paris. It is big"'],
  ];
  for (const [type, value, pass, reason] of cases) {
    it(`${type} ${JSON.stringify(value)} → ${pass ? 'pass' : 'fail'}`, () => {
      expect(run(type, value)).toEqual({ pass, score: pass ? 1 : 0, reason, actual: ' Paris. It is big' });
    });
  }

  it('generates maxTokens tokens, 16 by default', () => {
    const j = new FakeJudge({ [P]: ' x' });
    runAssertion({ type: 'contains', prompt: P, value: 'x' }, j);
    runAssertion({ type: 'contains', prompt: P, value: 'x', maxTokens: 4 }, j);
    expect(j.calls).toEqual([[P, 16], [P, 4]]);
  });

  it('an invalid regex fails with the parser message in both forms, without generating', () => {
    const j = new FakeJudge({});
    for (const type of ['regex', 'not-regex'] as const) {
      expect(runAssertion({ type, prompt: P, value: '(' }, j)).toEqual({
        pass: false,
        score: 0,
        reason: 'invalid regex "(": Invalid regular expression: /(/: Unterminated group',
      });
    }
    expect(j.calls).toEqual([]);
  });

  it('newlines and quotes in the output are shown escaped', () => {
    const j = new FakeJudge({ q: ' say "hi"\n' });
    expect(runAssertion({ type: 'contains', prompt: 'q', value: 'bye' }, j).reason).toBe('expected output to contain "bye", got " say \\"hi\\"\\n"');
  });
});

describe('prob and rank', () => {
  it('prob with min', () => {
    expect(run('prob', ' Lyon', { min: 0.5 })).toEqual({ pass: false, score: 0.0624, reason: 'expected P(" Lyon") >= 0.5, got 0.0312', actual: '0.0312' });
    expect(run('prob', ' Paris', { min: 0.5 })).toEqual({ pass: true, score: 1, reason: 'P(" Paris") = 0.62 >= 0.5', actual: '0.62' });
  });

  it('prob with max', () => {
    expect(run('prob', ' Lyon', { max: 0.1 })).toEqual({ pass: true, score: 1, reason: 'P(" Lyon") = 0.0312 <= 0.1', actual: '0.0312' });
    const r = run('prob', ' Paris', { max: 0.1 });
    expect(r).toMatchObject({ pass: false, reason: 'expected P(" Paris") <= 0.1, got 0.62', actual: '0.62' });
    expect(r.score).toBeCloseTo(0.38 / 0.9, 10);
  });

  it('prob with min and max', () => {
    expect(run('prob', ' Lyon', { min: 0.01, max: 0.05 })).toMatchObject({ pass: true, reason: '0.01 <= P(" Lyon") = 0.0312 <= 0.05' });
    expect(run('prob', ' Paris', { min: 0.01, max: 0.05 })).toMatchObject({ pass: false, reason: 'expected 0.01 <= P(" Paris") <= 0.05, got 0.62' });
    expect(run('prob', ' Lyon', { min: 0.1, max: 0.9 })).toMatchObject({ pass: false, reason: 'expected 0.1 <= P(" Lyon") <= 0.9, got 0.0312' });
  });

  it('prob without a bound fails clearly', () => {
    expect(run('prob', ' Lyon')).toEqual({ pass: false, score: 0, reason: 'prob assertion on " Lyon" needs min and/or max' });
  });

  it('rank: default k = 1, and a given k', () => {
    expect(run('rank', ' Paris')).toEqual({ pass: true, score: 1, reason: 'rank(" Paris") = 1 <= 1', actual: '1' });
    expect(run('rank', ' Lyon')).toEqual({ pass: false, score: 1 / 3, reason: 'expected rank(" Lyon") <= 1, got 3', actual: '3' });
    expect(run('rank', ' Lyon', { k: 5 })).toEqual({ pass: true, score: 1, reason: 'rank(" Lyon") = 3 <= 5', actual: '3' });
  });
});

describe('registry', () => {
  it('has one handler per base type, and not- forms map to them inverted', () => {
    expect(Object.keys(HANDLERS).sort()).toEqual(['contains', 'equals', 'icontains', 'prob', 'rank', 'regex', 'starts-with']);
    expect(parseAssertionType('not-starts-with')).toEqual({ base: 'starts-with', inverse: true });
    expect(parseAssertionType('rank')).toEqual({ base: 'rank', inverse: false });
  });

  it('an unknown type (bypassing the schema) is a failed result, not a throw', () => {
    expect(runAssertion({ type: 'not-prob' as AssertionType, prompt: P, value: 'x' }, judge)).toEqual({ pass: false, score: 0, reason: 'unknown assertion type "not-prob"' });
  });

  it('describes assertions for reports', () => {
    expect(describeAssertion({ type: 'not-contains', prompt: P, value: 'Paris' })).toBe('not-contains "Paris"');
    expect(describeAssertion({ type: 'regex', prompt: P, value: 'L.on' })).toBe('regex /L.on/');
    expect(describeAssertion({ type: 'prob', prompt: P, value: ' Lyon', min: 0.5 })).toBe('P(" Lyon") >= 0.5');
    expect(describeAssertion({ type: 'prob', prompt: P, value: ' Lyon', max: 0.5 })).toBe('P(" Lyon") <= 0.5');
    expect(describeAssertion({ type: 'prob', prompt: P, value: ' Lyon', min: 0.1, max: 0.5 })).toBe('0.1 <= P(" Lyon") <= 0.5');
    expect(describeAssertion({ type: 'rank', prompt: P, value: ' Lyon', k: 3 })).toBe('rank(" Lyon") <= 3');
  });
});

describe('checkEdit', () => {
  const thresholds: Thresholds = { reliability: 1, generalization: 1, locality: 1, portability: 0 };
  const R1 = "France's capital city is";
  const R2 = 'The French capital is';
  const L1 = 'The capital of Spain is';
  const L2 = 'The capital of Italy is';
  const PORT = 'The capital of France lies on the river';
  /** Words as tokens, for the generation budget. */
  const words = (s: string) => s.trim().split(/\s+/).length;

  const spec: EditSpec = {
    version: 1,
    task: 'counterfact',
    prompt: P,
    target: ' Lyon',
    rephrase: [R1, R2],
    locality: [{ prompt: L1 }, { prompt: L2, answer: ' Rome' }],
    portability: [{ prompt: PORT, answer: ' Rhône' }],
    expect: [{ type: 'not-contains', prompt: P, value: 'Paris' }],
  };
  const edited = () =>
    new FakeJudge(
      { [P]: ' Lyon.', [R1]: ' Lyon.', [R2]: ' Paris.', [L1]: ' Madrid.', [L2]: ' Rome.', [PORT]: ' Seine.' },
      {},
      {},
      { [`${P}| Lyon`]: 1, [`${R1}| Lyon`]: 1, [`${R2}| Lyon`]: 0.5, [`${PORT}| Rhône`]: 0 },
      words,
    );
  const base = () => new FakeJudge({ [L1]: ' Madrid.', [L2]: ' Rome.' });

  it('runs every implied check and expect, with exact reasons', () => {
    const ed = edited();
    const b = base();
    const r = checkEdit(spec, ed, b, thresholds);
    expect(r.checks).toEqual([
      { kind: 'reliability', prompt: P, expected: ' Lyon', pass: true, score: 1, reason: 'output starts with " Lyon": " Lyon."', actual: ' Lyon.' },
      { kind: 'generalization', prompt: R1, expected: ' Lyon', pass: true, score: 1, reason: 'output starts with " Lyon": " Lyon."', actual: ' Lyon.' },
      { kind: 'generalization', prompt: R2, expected: ' Lyon', pass: false, score: 0, reason: 'expected output to start with " Lyon", got " Paris."', actual: ' Paris.' },
      { kind: 'locality', prompt: L1, expected: '= base output " Madrid."', pass: true, score: 1, reason: 'output equals the base model\'s: " Madrid."', actual: ' Madrid.' },
      { kind: 'locality', prompt: L2, expected: ' Rome', pass: true, score: 1, reason: 'output starts with " Rome": " Rome."', actual: ' Rome.' },
      { kind: 'portability', prompt: PORT, expected: ' Rhône', pass: false, score: 0, reason: 'expected output to start with " Rhône", got " Seine."', actual: ' Seine.' },
      { kind: 'expect', prompt: P, expected: 'not-contains "Paris"', pass: true, score: 1, reason: 'output does not contain "Paris": " Lyon."', actual: ' Lyon.' },
    ]);
    expect(r.metrics).toEqual({
      reliability: 1,
      generalization: 0.5,
      locality: 1,
      portability: 0,
      passed: 5,
      total: 7,
      teacherForced: { reliability: 1, generalization: 0.75, portability: 0 },
    });
    // generalization 0.5 < 1
    expect(r.kinds.generalization).toEqual({ score: 0.5, threshold: 1, pass: false });
    expect(r.pass).toBe(false);
    // Budgets: target/answer tokens + 2; unanswered locality 16 tokens on both models; expect's default 16.
    expect(ed.calls).toEqual([[P, 3], [R1, 3], [R2, 3], [L1, 16], [L2, 3], [PORT, 3], [P, 16]]);
    expect(b.calls).toEqual([[L1, 16]]);
  });

  it('1 of 2 rephrases passes with a generalization threshold of 0.5 (manifest or per edit), fails with 1.0', () => {
    expect(checkEdit(spec, edited(), base(), { ...thresholds, generalization: 0.5 }).pass).toBe(true);
    expect(checkEdit({ ...spec, thresholds: { generalization: 0.5 } }, edited(), base(), thresholds).pass).toBe(true);
    const strict = checkEdit({ ...spec, thresholds: { generalization: 1 } }, edited(), base(), { ...thresholds, generalization: 0.5 });
    expect(strict.pass).toBe(false);
    expect(strict.kinds.generalization).toEqual({ score: 0.5, threshold: 1, pass: false });
  });

  it('the markdown report (job summaries, PR comments) quotes the hint when some rephrasings fall short', () => {
    const md = (t: Thresholds) => renderMarkdown(batchChecks([{ id: 'a', spec }], edited(), base(), t), 'editops verify');
    expect(md(thresholds)).toContain(`\n> ${GENERALIZATION_HINT}\n`);
    expect(md({ ...thresholds, generalization: 0.5 })).not.toContain(GENERALIZATION_HINT);
  });

  it('an empty set renders as its summary line alone', () => {
    expect(renderChecks(batchChecks([], edited(), base(), thresholds))).toBe('0 of 0 edits hold; 0/0 checks passed.');
  });

  it('gives no rephrasing hint when the prompt itself failed: the hint is about rephrasings an edit does not reach', () => {
    const missed = new FakeJudge({ [P]: ' Marseillehamt.', [R1]: ' Paris.', [R2]: ' Paris.', [L1]: ' Madrid.', [L2]: ' Rome.', [PORT]: ' Seine.' }, {}, {}, {}, words);
    const check = batchChecks([{ id: 'a', spec }], missed, base(), thresholds);
    expect(check.edits[0].result.kinds.reliability.pass).toBe(false);
    expect(check.edits[0].result.kinds.generalization.pass).toBe(false);
    expect(renderChecks(check)).not.toContain(GENERALIZATION_HINT);
    expect(renderMarkdown(check, 'editops verify')).not.toContain(GENERALIZATION_HINT);
  });

  it("shows an expect assertion's description beside its prompt: in the result, text, JUnit and markdown", () => {
    const described: EditSpec = { ...spec, expect: [{ type: 'contains', prompt: P, value: 'Bonn', description: 'the old capital | stays' }] };
    const check = batchChecks([{ id: 'a', spec: described }], edited(), base(), thresholds);
    const failed = check.edits[0].result.checks.find((c) => c.kind === 'expect')!;
    expect(failed).toMatchObject({ pass: false, description: 'the old capital | stays' });
    expect(renderChecks(check)).toContain(`FAIL expect         "${P}" (the old capital | stays): expected output to contain "Bonn"`);
    expect(renderJunit(check, 1)).toContain(`name="expect #7: ${P} (the old capital | stays)"`);
    expect(renderMarkdown(check, 'editops verify')).toContain(`\`${P}\` (the old capital \\| stays): expected output to contain`);
    // checks without one are shown as before
    expect(check.edits[0].result.checks.filter((c) => c.kind !== 'expect').every((c) => !('description' in c))).toBe(true);
  });

  it('an unset override keeps the manifest threshold', () => {
    const r = checkEdit({ ...spec, thresholds: { generalization: undefined } }, edited(), base(), { ...thresholds, generalization: 0.5 });
    expect(r.kinds.generalization.threshold).toBe(0.5);
  });

  it('locality without an answer fails when the edited output differs from the base model\'s', () => {
    const b = new FakeJudge({ [L1]: ' Madrid, the largest city', [L2]: ' Rome.' });
    const r = checkEdit(spec, edited(), b, { ...thresholds, generalization: 0.5 });
    expect(r.checks[3]).toEqual({
      kind: 'locality',
      prompt: L1,
      expected: '= base output " Madrid, the largest city"',
      pass: false,
      score: 0,
      reason: 'expected the base model\'s output " Madrid, the largest city", got " Madrid."',
      actual: ' Madrid.',
    });
    expect(r.metrics.locality).toBe(0.5);
    expect(r.pass).toBe(false);
    expect(checkEdit(spec, edited(), b, { ...thresholds, generalization: 0.5, locality: 0.5 }).pass).toBe(true);
  });

  it('a failing expect fails the edit whatever the thresholds', () => {
    const withExpect: EditSpec = { ...spec, expect: [{ type: 'contains', prompt: R2, value: 'Lyon' }] };
    const r = checkEdit(withExpect, edited(), base(), { reliability: 0, generalization: 0, locality: 0, portability: 0 });
    expect(r.checks.at(-1)).toMatchObject({ kind: 'expect', pass: false, reason: 'expected output to contain "Lyon", got " Paris."' });
    expect(Object.values(r.kinds).every((k) => k.pass)).toBe(true);
    expect(r.pass).toBe(false);
  });

  it('kinds without prompts have null metrics and pass; without countTokens the budget is the byte length + 2', () => {
    const j = new FakeJudge({ [P]: ' Lyon' }, {}, {}, { [`${P}| Lyon`]: 1 });
    const r = checkEdit({ version: 1, task: 'counterfact', prompt: P, target: ' Lyon' }, j, j, { reliability: 1, generalization: 1, locality: 1, portability: 1 });
    expect(r.pass).toBe(true);
    expect(r.metrics).toEqual({
      reliability: 1, generalization: null, locality: null, portability: null, passed: 1, total: 1,
      teacherForced: { reliability: 1, generalization: null, portability: null },
    });
    expect(r.kinds.portability).toEqual({ score: null, threshold: 1, pass: true });
    // The output ends exactly at the target: generated again with 4 more tokens to see the word end (same text: generation stopped).
    expect(j.calls).toEqual([[P, 7], [P, 11]]);
  });

  it('reliability below its threshold fails', () => {
    const j = new FakeJudge({ [P]: ' Paris' });
    const r = checkEdit({ version: 1, task: 'counterfact', prompt: P, target: ' Lyon' }, j, j, thresholds);
    expect(r.checks[0].reason).toBe('expected output to start with " Lyon", got " Paris"');
    expect(r.kinds.reliability).toEqual({ score: 0, threshold: 1, pass: false });
    expect(r.pass).toBe(false);
  });

  it('batchChecks sums over edits', () => {
    const j = new FakeJudge({ [P]: ' Lyon', [R1]: ' Paris' });
    const b = batchChecks(
      [
        { id: 'a', spec: { version: 1, task: 'counterfact', prompt: P, target: ' Lyon' } },
        { id: 'b', spec: { version: 1, task: 'counterfact', prompt: R1, target: ' Lyon' } },
      ],
      j, j, thresholds,
    );
    expect(b.edits.map((e) => [e.id, e.result.pass])).toEqual([['a', true], ['b', false]]);
    expect({ pass: b.pass, passed: b.passed, total: b.total }).toEqual({ pass: false, passed: 1, total: 2 });
  });
});

describe('set interference in the checks', () => {
  const FR = 'The capital of France is';
  const ES = 'The capital of Spain is';
  const IT = 'The capital of Italy is';
  const DE = 'The capital of Germany is';
  const AT = 'The capital of Austria is';
  const edits: Array<{ id: string; spec: EditSpec }> = [
    { id: 'a', spec: { version: 1, task: 'counterfact', prompt: FR, target: ' Lyon' } },
    { id: 'b', spec: { version: 1, task: 'counterfact', prompt: ES, target: ' Lisbon', locality: [{ prompt: FR }, { prompt: IT }] } },
    { id: 'c', spec: { version: 1, task: 'counterfact', prompt: DE, target: ' Bonn', locality: [{ prompt: AT }, { prompt: FR }] } },
  ];
  // Italy moved to " Lyonnais": a word that only starts like a target is no target
  const edited = new FakeJudge({ [FR]: ' Lyon.', [ES]: ' Lisbon.', [IT]: ' Lyonnais.', [DE]: ' Bonn.', [AT]: ' Bonn.' });
  const base = new FakeJudge({ [FR]: ' Paris.', [IT]: ' Rome.', [AT]: ' Vienna.' });
  const thresholds: Thresholds = { reliability: 1, generalization: 1, locality: 1, portability: 0 };

  it('names the edit whose target a failed locality check now gives, and sums the moved facts up once', () => {
    const check = batchChecks(edits, edited, base, thresholds);
    const failed = (id: string) => check.edits.find((e) => e.id === id)!.result.checks.filter((c) => !c.pass);
    expect(failed('a')).toEqual([]);
    expect(failed('b').map((c) => [c.prompt, c.movedTo, c.reason])).toEqual([
      [FR, ['a'], 'expected the base model\'s output " Paris.", got " Lyon." — the target of a'],
      [IT, undefined, 'expected the base model\'s output " Rome.", got " Lyonnais."'],
    ]);
    expect(failed('c').map((c) => [c.prompt, c.movedTo, c.reason])).toEqual([
      [AT, ['c'], 'expected the base model\'s output " Vienna.", got " Bonn." — this edit\'s target'],
      [FR, ['a'], 'expected the base model\'s output " Paris.", got " Lyon." — the target of a'],
    ]);
    const text = renderChecks(check);
    expect(text).toContain(['', 'Facts the set moved onto its own targets (2):', `  "${FR}" → " Lyon.", the target of a (a failed locality check of 2 edits)`, `  "${AT}" → " Bonn.", the target of c (a failed locality check of c)`, ''].join('\n'));
    expect(text.split('\n').at(-1)).toBe('1 of 3 edits hold; 3/7 checks passed.');
    const md = renderMarkdown(check, 'editops verify');
    expect(md).not.toContain(GENERALIZATION_HINT); // only locality failed
    expect(md).toContain(['**Facts the set moved onto its own targets (2):**', '', `- "${FR}" → " Lyon.", the target of a (a failed locality check of 2 edits)`, `- "${AT}" → " Bonn.", the target of c (a failed locality check of c)`, ''].join('\n'));
  });
});
