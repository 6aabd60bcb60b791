/** edit eval's metric functions, record picking and report rendering (src/eval). */
import { describe, expect, it } from 'vitest';
import type { Judge } from '../src/assert/types.js';
import { instructionOf, neighboursOf, parseBench, pickRecords, type BenchRecord, type Neighbour } from '../src/eval/bench.js';
import { agreement, continuationUnchanged, generationHolds, mean, tokenAccuracy } from '../src/eval/metrics.js';
import { renderReport, type EvalReport } from '../src/eval/report.js';
import { Rng } from '../src/util/random.js';

/** A judge whose greedy output per prompt is fixed text, cut to maxTokens "tokens" of one character. */
function fakeJudge(outputs: Record<string, string>): Judge & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    generate: (prompt, maxTokens) => {
      asked.push(maxTokens);
      return (outputs[prompt] ?? '').slice(0, maxTokens);
    },
    prob: () => 0,
    rank: () => 1,
    tokenAccuracy: () => 0,
    countTokens: (text) => text.length,
  };
}

describe('teacher-forced metrics', () => {
  it('token accuracy is the fraction of positions whose argmax is the target token', () => {
    expect(tokenAccuracy([5, 7, 9], [5, 7, 9])).toBe(1);
    expect(tokenAccuracy([5, 8, 9, 1], [5, 7, 9, 2])).toBe(0.5);
    expect(tokenAccuracy([1], [2])).toBe(0);
  });

  it('refuses lengths that differ or are empty', () => {
    expect(() => tokenAccuracy([1, 2], [1])).toThrow(RangeError);
    expect(() => tokenAccuracy([], [])).toThrow(RangeError);
  });

  it('locality agreement compares the edited argmax with the base argmax', () => {
    expect(agreement([3, 4, 5], [3, 4, 6])).toBeCloseTo(2 / 3);
  });

  it('mean skips what does not apply and is null with nothing', () => {
    expect(mean([1, null, 0])).toBe(0.5);
    expect(mean([null])).toBeNull();
    expect(mean([])).toBeNull();
  });
});

describe('generation judged as apply judges', () => {
  it('holds when the target is followed by a boundary or the end', () => {
    const j = fakeJudge({ a: ' Lyon.', b: ' Lyon', c: ' Lyon is', d: ' New York City' });
    expect(generationHolds(j, 'a', ' Lyon')).toBe(true);
    expect(generationHolds(j, 'b', ' Lyon')).toBe(true);
    expect(generationHolds(j, 'c', ' Lyon')).toBe(true);
    expect(generationHolds(j, 'd', ' New York')).toBe(true);
  });

  it('fails on a longer word, another word or a missing leading space', () => {
    const j = fakeJudge({ a: ' Lyonnais.', b: ' Paris.', c: 'Lyon.' });
    expect(generationHolds(j, 'a', ' Lyon')).toBe(false);
    expect(generationHolds(j, 'b', ' Lyon')).toBe(false);
    expect(generationHolds(j, 'c', ' Lyon')).toBe(false);
  });

  it('generates the target tokens plus 2, and a few more to see a boundary', () => {
    const j = fakeJudge({ a: ' Lyonnais' });
    expect(generationHolds(j, 'a', ' Lyon')).toBe(false);
    expect(j.asked[0]).toBe(' Lyon'.length + 2);
  });

  it('locality: the whole continuation must equal the base model`s', () => {
    const base = fakeJudge({ p: ' Paris.', q: ' Euro.' });
    const edited = fakeJudge({ p: ' Paris.', q: ' Euro Euro.' });
    expect(continuationUnchanged(edited, base, 'p')).toBe(true);
    expect(continuationUnchanged(edited, base, 'q')).toBe(false);
  });
});

function record(id: string, subject: string, relation: string, locality: number[] = []): BenchRecord {
  return { id, task: 'counterfact', split: 'test', subject, relation, original: ' A', target: ' B', prompt: `The ${relation} of ${subject} is`, rephrase: [], heldOutRephrase: [], portability: [], locality };
}

describe('edit sets', () => {
  const records = [record('r1', 'France', 'capital'), record('r2', 'France', 'currency'), record('r3', 'Spain', 'capital'), record('r4', 'Peru', 'capital')];

  it('takes distinct subjects first, then other relations, never a fact twice', () => {
    const three = pickRecords(records, 3, new Rng(1));
    expect(new Set(three.map((r) => r.subject)).size).toBe(3);
    const all = pickRecords(records, 10, new Rng(1));
    expect(all.map((r) => r.id).sort()).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it('is seeded', () => {
    expect(pickRecords(records, 2, new Rng(9)).map((r) => r.id)).toEqual(pickRecords(records, 2, new Rng(9)).map((r) => r.id));
  });

  it('neighbours skip subjects the set edits', () => {
    const pool: Neighbour[] = ['Spain', 'Chile', 'Peru', 'Chad'].map((s) => ({ subject: s, relation: 'capital', prompt: `The capital of ${s} is`, answer: ' X' }));
    const r = record('r1', 'France', 'capital', [0, 1, 2, 3]);
    expect(neighboursOf(r, pool, new Set(['France', 'Spain', 'Peru']), 5).map((n) => n.subject)).toEqual(['Chile', 'Chad']);
    expect(neighboursOf(r, pool, new Set(['France']), 1).map((n) => n.subject)).toEqual(['Spain']);
  });

  it('a malformed benchmark file is named', () => {
    expect(() => parseBench({ format: 'x' }, 'b.json')).toThrow(/not an editops benchmark/);
    expect(() => parseBench({ format: 'editops-bench', version: 1, neighbours: [], records: [record('r', 'S', 'capital', [3])] }, 'b.json')).toThrow(/locality must be indices/);
    expect(() => parseBench({ format: 'editops-bench', version: 1, relations: { capital: '' }, neighbours: [], records: [] }, 'b.json')).toThrow('"relations" must map each relation to a non-empty description');
  });

  it('an edit carries its task\'s instruction, the unseen one, or the default followed by its relation\'s description', () => {
    const info = { instruction: 'Rewrite the fact.', instructions: ['Rewrite the fact.'], unseenInstruction: 'Fix the fact.', heldOut: false, records: { train: 1, validation: 0, test: 0 } };
    const bench = parseBench({ format: 'editops-bench', version: 1, tasks: { counterfact: info }, relations: { capital: 'The new object is a capital city.' }, neighbours: [], records: [] }, 'b.json');
    const r = { task: 'counterfact', relation: 'capital' } as const;
    expect(instructionOf(bench, r)).toBe('Rewrite the fact.');
    expect(instructionOf(bench, r, 'unseen')).toBe('Fix the fact.');
    expect(instructionOf(bench, r, 'relation')).toBe('Rewrite the fact. The new object is a capital city.');
    expect(() => instructionOf(bench, { ...r, relation: 'currency' }, 'relation')).toThrow('the benchmark describes no relation "currency": rebuild it with `npm run bench:data`');
    expect(() => instructionOf({ ...bench, relations: undefined }, r, 'relation')).toThrow('describes no relation "capital"');
  });
});

describe('report', () => {
  it('renders the table from the JSON rows', () => {
    const scores = { reliability: 1, generalization: 0.83, heldOut: null, locality: 0.975, portability: null };
    const report: EvalReport = {
      formatVersion: 1, backend: 'wasm', model: 'models/default', command: 'edit eval', bench: { file: 'data/bench.json', sha256: '0', seed: 1 },
      options: { editors: ['memit'], tasks: ['counterfact'], sizes: [100], splits: ['test'], seed: 0, singles: 10, neighbours: 5 },
      editors: {},
      results: [{ editor: 'memit', instruction: 'seen', view: 'typed', task: 'counterfact', size: 100, sets: 1, edits: 100, subjects: 100, generation: scores, teacherForced: scores, prompts: { rephrase: 300, heldOut: 100, locality: 500, portability: 0 }, seconds: { rowsPerEdit: 0.31, solvePerSet: 2.5, measurePerSet: 60 }, capacity: [], misses: [] }],
    };
    const text = renderReport(report);
    expect(text).toContain('(wasm)');
    expect(text.split('\n').at(-1)).toMatch(/^memit\s+counterfact\s+100\s+1\s+100%\s+83%\s+–\s+98%\s+–\s+\|/);
    const other = renderReport({ ...report, results: [{ ...report.results[0], editor: 'instructedit', instruction: 'unseen', view: 'wrapped' }] });
    expect(other.split('\n').at(-1)).toMatch(/^instructedit \(unseen instruction\) \(wrapped\)\s+counterfact/);
    const described = renderReport({ ...report, results: [{ ...report.results[0], editor: 'instructedit', instruction: 'relation' }] });
    expect(described.split('\n').at(-1)).toMatch(/^instructedit \(relation instruction\)\s+counterfact/);
  });
});
