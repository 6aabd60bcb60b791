/**
 * Automatic locality neighbours: which known facts an edit gets (pickNeighbours), how checkEdit
 * judges and counts them, and the probes file's checks.
 */
import { describe, it, expect } from 'vitest';
import type { Judge } from '../src/assert/types.js';
import type { EditSpec } from '../src/spec/types.js';
import type { Thresholds } from '../src/model/folder.js';
import { parseKnownFacts, type KnownFact } from '../src/model/known-facts.js';
import { DEFAULT_NEIGHBOURS, pickNeighbours } from '../src/assert/neighbours.js';
import { batchChecks, checkEdit } from '../src/assert/check-edit.js';
import { validateAgainst } from '../src/util/schemas.js';
import { editErrorOf } from './helpers/errors.js';

const COUNTRIES = ['France', 'Germany', 'Spain', 'Italy', 'Japan', 'China', 'India', 'Peru', 'Chile', 'Kenya', 'Ghana', 'Nepal', 'Laos', 'Cuba'];
const capitalOf = (s: string): KnownFact => ({ relation: 'capital', subject: s, prompt: `The capital of ${s} is`, object: `${s}-city` });
const KNOWN: KnownFact[] = [
  ...COUNTRIES.map(capitalOf),
  ...COUNTRIES.map((s) => ({ relation: 'currency', subject: s, prompt: `The currency of ${s} is`, object: `${s} coin` })),
];

const france = (extra: Partial<EditSpec> = {}): { id: string; spec: EditSpec } => ({
  id: 'capitals/france',
  spec: { version: 1, task: 'counterfact', subject: 'France', relation: 'capital', prompt: 'The capital of France is', target: ' Marseille', ...extra },
});

describe('pickNeighbours', () => {
  it('takes the edit relation\'s facts about other subjects, 8 by default', () => {
    const picked = pickNeighbours(france(), KNOWN);
    expect(picked).toHaveLength(DEFAULT_NEIGHBOURS);
    expect(picked.every((n) => n.relation === 'capital' && n.prompt === `The capital of ${n.subject} is`)).toBe(true);
    expect(picked.map((n) => n.subject)).not.toContain('France');
    expect(new Set(picked.map((n) => n.subject)).size).toBe(DEFAULT_NEIGHBOURS);
  });

  it('is deterministic: seeded by the edit id, independent of the probes file order', () => {
    const a = pickNeighbours(france(), KNOWN);
    expect(pickNeighbours(france(), [...KNOWN].reverse())).toEqual(a);
    expect(pickNeighbours(france(), KNOWN)).toEqual(a);
    // Another id draws another sample from the same facts.
    expect(pickNeighbours({ ...france(), id: 'capitals/france-2' }, KNOWN).map((n) => n.subject)).not.toEqual(a.map((n) => n.subject));
    // A fact leaving the pool only replaces itself: the others keep their place.
    const without = pickNeighbours(france(), KNOWN.filter((f) => f.subject !== a[0].subject));
    expect(without.slice(0, DEFAULT_NEIGHBOURS - 1)).toEqual(a.slice(1));
  });

  it('excludes the own subject whatever its case, and matches the relation ignoring case', () => {
    const picked = pickNeighbours(france({ subject: 'FRANCE ', relation: 'Capital', neighbours: { count: 64 } }), KNOWN);
    expect(picked.map((n) => n.subject).sort()).toEqual(COUNTRIES.filter((c) => c !== 'France').sort());
  });

  it('excludes facts and prompts other declared edits change, and prompts the edit already lists', () => {
    const germany = { id: 'capitals/germany', spec: { ...france().spec, subject: 'germany', prompt: 'Which city is the capital of Germany?' } };
    const spain = { id: 'other/spain', spec: { ...france().spec, subject: 'Spain', relation: 'currency', prompt: 'Q: Spain?', rephrase: ['The capital of Spain is'] } };
    const edit = france({ neighbours: { count: 64 }, locality: [{ prompt: 'The capital of Italy is' }] });
    const subjects = pickNeighbours(edit, KNOWN, [edit, germany, spain]).map((n) => n.subject);
    expect(subjects).not.toContain('Germany'); // same subject + relation edited elsewhere
    expect(subjects).not.toContain('Spain'); // its prompt is another edit's rephrase
    expect(subjects).not.toContain('Italy'); // already a listed locality prompt
    expect(subjects).toHaveLength(COUNTRIES.length - 4);
    // Another relation's edit of Germany does not remove Germany's capital.
    const germanyCurrency = { id: 'x', spec: { ...germany.spec, relation: 'currency' } };
    expect(pickNeighbours(edit, KNOWN, [edit, germanyCurrency]).map((n) => n.subject)).toContain('Germany');
  });

  it('gives none without subject or relation, with "neighbours": false or count 0, or without probes', () => {
    expect(pickNeighbours(france({ relation: undefined }), KNOWN)).toEqual([]);
    expect(pickNeighbours(france({ subject: undefined }), KNOWN)).toEqual([]);
    expect(pickNeighbours(france({ neighbours: false }), KNOWN)).toEqual([]);
    expect(pickNeighbours(france({ neighbours: { count: 0 } }), KNOWN)).toEqual([]);
    expect(pickNeighbours(france({ relation: 'opinion' }), KNOWN)).toEqual([]);
    expect(pickNeighbours(france(), [])).toEqual([]);
    expect(pickNeighbours(france({ neighbours: { count: 3 } }), KNOWN)).toEqual(pickNeighbours(france(), KNOWN).slice(0, 3));
  });
});

class TableJudge implements Judge {
  constructor(private readonly outputs: Record<string, string>) {}
  generate(prompt: string): string {
    const out = this.outputs[prompt];
    if (out === undefined) throw new Error(`no output for ${prompt}`);
    return out;
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
}

const THRESHOLDS: Thresholds = { reliability: 1, generalization: 0.5, locality: 0.8, portability: 0 };

describe('checkEdit with neighbours', () => {
  const P = 'The capital of France is';
  const L = 'The capital of Spain is';
  const G = 'The capital of Germany is';
  const I = 'The capital of India is';
  const base = new TableJudge({ [P]: ' Paris.', [L]: ' Madrid.', [G]: ' Berlin.', [I]: ' New Delhi.' });
  const edited = new TableJudge({ [P]: ' Marseille.', [L]: ' Madrid.', [G]: ' Marseille.', [I]: ' New Delhi.' });
  const spec = france({ locality: [{ prompt: L }] }).spec;
  const hood = [
    { subject: 'Germany', relation: 'capital', prompt: G },
    { subject: 'India', relation: 'capital', prompt: I },
  ];

  it('judges each neighbour unchanged against the base model, counted in locality and marked', () => {
    const r = checkEdit(spec, edited, base, THRESHOLDS, hood);
    const locality = r.checks.filter((c) => c.kind === 'locality');
    expect(locality.map((c) => [c.prompt, c.pass])).toEqual([[L, true], [G, false], [I, true]]);
    expect(locality[0].neighbour).toBeUndefined();
    expect(locality[1]).toMatchObject({
      neighbour: { subject: 'Germany', relation: 'capital' },
      expected: '= base output " Berlin."',
      actual: ' Marseille.',
      reason: 'automatic neighbour (capital of Germany): expected the base model\'s output " Berlin.", got " Marseille."',
    });
    expect(locality[2].reason).toBe('automatic neighbour (capital of India): output equals the base model\'s: " New Delhi."');
    expect(r.metrics.locality).toBeCloseTo(2 / 3);
    expect(r.kinds.locality.pass).toBe(false);
    expect(r.pass).toBe(false);
    // Without neighbours the listed prompt alone passes: what the edit reported before.
    expect(checkEdit(spec, edited, base, THRESHOLDS).pass).toBe(true);
  });

  it('batchChecks picks neighbours from the probes, minus what the declared edits change', () => {
    const known = [capitalOf('Germany'), capitalOf('India')].map((f) => ({ ...f, object: '' }));
    const one = batchChecks([{ id: 'capitals/france', spec }], edited, base, THRESHOLDS, { known });
    expect(one.pass).toBe(false);
    expect(one.edits[0].result.checks.filter((c) => c.neighbour).map((c) => c.prompt).sort()).toEqual([G, I]);
    const germany = { id: 'capitals/germany', spec: { ...spec, subject: 'Germany', prompt: G, target: ' Marseille', locality: [] } };
    const both = batchChecks([{ id: 'capitals/france', spec }], edited, base, THRESHOLDS, { known, declared: [{ id: 'capitals/france', spec }, germany] });
    expect(both.edits[0].result.checks.filter((c) => c.neighbour).map((c) => c.prompt)).toEqual([I]);
    expect(both.pass).toBe(true);
  });
});

describe('parseKnownFacts', () => {
  it('reads the facts and refuses a malformed file with its pointer', () => {
    expect(parseKnownFacts({ version: 1, seed: 3, facts: [capitalOf('Peru')] }, 'p.json')).toEqual([capitalOf('Peru')]);
    expect(editErrorOf(() => parseKnownFacts({ version: 2, facts: [] }, 'p.json')).format()).toBe('p.json: /version: unsupported probes version 2 (expected 1)');
    expect(editErrorOf(() => parseKnownFacts({ version: 1, facts: [{ ...capitalOf('Peru'), prompt: ' ' }] }, 'p.json')).format()).toBe('p.json: /facts/0/prompt: must be a non-empty string');
  });
});

describe('the edit schema\'s "neighbours"', () => {
  const problems = (neighbours: unknown) =>
    validateAgainst('edit', { ...france().spec, neighbours }).map((e) => `${e.pointer}: ${e.message}`);

  it('takes false or {count: 0..64}, and says what is wrong otherwise', () => {
    expect(problems(false)).toEqual([]);
    expect(problems({})).toEqual([]);
    expect(problems({ count: 30 })).toEqual([]);
    expect(problems(true)).toEqual(['/neighbours: must be false (got true)']);
    expect(problems({ count: -1 })).toEqual(['/neighbours/count: must be >= 0 (got -1)']);
    expect(problems({ count: 65 })).toEqual(['/neighbours/count: must be <= 64 (got 65)']);
    expect(problems({ cnt: 3 })).toEqual(["/neighbours/cnt: unknown property 'cnt' (allowed: count)"]);
    expect(problems('none')).toEqual(['/neighbours: must be an object, got a string']);
  });
});
