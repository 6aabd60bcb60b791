/**
 * Prefetched judging on the default model: batchChecks with ModelJudges (generations prefetched in
 * batches) gives exactly the results of the same checks on judges that cannot prefetch (every
 * prompt generated one at a time), for edits with rephrasings, listed and automatic locality,
 * portability and every kind of expect assertion, including a starts-with whose boundary needs
 * more tokens, and the teacher-forced numbers; after prefetchChecks the checks run the model for
 * nothing; batched scores equal single ones bit for bit; nothing leaks.
 */
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import type { Deltas } from '../src/model/gpt2.js';
import { ModelJudge } from '../src/assert/judge.js';
import { batchChecks, checkEdit, prefetchChecks } from '../src/assert/check-edit.js';
import { pickNeighbours } from '../src/assert/neighbours.js';
import { canPrefetch, prefetchJudgements } from '../src/assert/prefetch.js';
import type { Judge } from '../src/assert/types.js';
import type { EditSpec } from '../src/spec/types.js';
import type { Thresholds } from '../src/model/folder.js';

const THRESHOLDS: Thresholds = { reliability: 1, generalization: 0.5, locality: 0.8, portability: 0 };

let loaded: LoadedModel;
let deltas: Deltas;

/** The judge's methods only: it cannot prefetch, so every generation runs one prompt at a time. */
function oneAtATime(j: ModelJudge): Judge {
  return {
    generate: (p, n) => j.generate(p, n),
    prob: (p, c) => j.prob(p, c),
    rank: (p, c) => j.rank(p, c),
    tokenAccuracy: (p, c) => j.tokenAccuracy(p, c),
    countTokens: (t) => j.countTokens(t),
  };
}

/** Edits over the model's known facts: capitals moved to another fact's object, with every kind of check. */
function edits(): Array<{ id: string; spec: EditSpec }> {
  const facts = loaded.knownFacts ?? [];
  const capitals = facts.filter((f) => f.relation === 'capital');
  const currencies = facts.filter((f) => f.relation === 'currency');
  const out: Array<{ id: string; spec: EditSpec }> = [];
  for (let i = 0; i < 12; i++) {
    const f = capitals[i];
    const other = capitals[(i + 5) % capitals.length];
    out.push({
      id: `capitals/${i}`,
      spec: {
        version: 1,
        task: 'counterfact',
        subject: f.subject,
        relation: 'capital',
        prompt: f.prompt,
        target: ` ${other.object}`,
        rephrase: [`${f.subject}'s capital is`, `Q: What is the capital of ${f.subject}? A:`],
        locality: [{ prompt: currencies[i].prompt }, { prompt: currencies[i + 1].prompt, answer: ` ${currencies[i + 1].object}` }],
        neighbours: { count: 3 },
        portability: [{ prompt: `The capital city of ${f.subject} is`, answer: ` ${other.object}` }],
        expect: [
          { type: 'not-contains', prompt: f.prompt, value: ` ${f.object}` },
          { type: 'icontains', prompt: `${f.subject}'s capital is`, value: other.object.toLowerCase(), maxTokens: 5 },
          { type: 'regex', prompt: f.prompt, value: '^ [A-Z]' },
          { type: 'equals', prompt: currencies[i].prompt, value: ` ${currencies[i].object}.` },
          { type: 'prob', prompt: f.prompt, value: ` ${other.object}`, min: 0.01 },
          { type: 'rank', prompt: f.prompt, value: ` ${other.object}`, k: 3 },
        ],
      },
    });
  }
  return out;
}

beforeAll(async () => {
  await initBackend();
  loaded = await loadModelFolder('models/default');
  // an "edit": a fixed perturbation of one MLP projection, so the edited judge differs from the base
  deltas = tf.tidy(() => {
    const w = loaded.model.params['h.3.mlp.c_proj.weight'];
    return { 'h.3.mlp.c_proj.weight': tf.keep(tf.mul(tf.randomNormal(w.shape, 0, 1, 'float32', 5), 0.05)) };
  });
});

afterAll(() => {
  tf.dispose(Object.values(deltas ?? {}));
  loaded?.model.dispose();
});

describe('prefetched judging', () => {
  it('batchChecks gives the same results as one-at-a-time judging (edited ≠ base, and edited = base)', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const set = edits();
    const source = { known: knownFacts ?? [] };
    for (const d of [deltas, undefined]) {
      const base = new ModelJudge({ model, tokenizer });
      const edited = d === undefined ? base : new ModelJudge({ model, tokenizer, deltas: d });
      const refBase = new ModelJudge({ model, tokenizer });
      const refEdited = d === undefined ? refBase : new ModelJudge({ model, tokenizer, deltas: d });
      const ref = batchChecks(set, oneAtATime(refEdited), oneAtATime(refBase), THRESHOLDS, source);
      const got = batchChecks(set, edited, base, THRESHOLDS, source);
      expect(got).toEqual(ref);
      // the checks are not all alike: some pass, some fail, automatic neighbours took part
      expect(got.passed).toBeGreaterThan(0);
      expect(got.passed).toBeLessThan(got.total);
      expect(got.edits.some((e) => e.result.checks.some((c) => c.neighbour !== undefined))).toBe(true);
    }
  });

  it('after prefetchChecks no check runs the model, not even a starts-with that needs boundary tokens', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const base = new ModelJudge({ model, tokenizer });
    const edited = new ModelJudge({ model, tokenizer, deltas });
    const set = edits();
    // a value that fills its budget exactly (one token ending in a letter): the check asks for 4 more tokens to see the word end
    const probe = new ModelJudge({ model, tokenizer, deltas });
    const f = (knownFacts ?? []).find((k) => /[A-Za-z]$/.test(probe.generate(k.prompt, 1)))!;
    const one = probe.generate(f.prompt, 1);
    set[0].spec.expect!.push({ type: 'starts-with', prompt: f.prompt, value: one, maxTokens: 1 });
    const withHoods = set.map((e) => ({ ...e, neighbours: pickNeighbours(e, knownFacts ?? []) }));
    const start = tf.memory().numTensors;
    prefetchChecks(withHoods, edited, base);
    expect(tf.memory().numTensors).toBe(start);
    const spies = [vi.spyOn(model, 'nextLogits'), vi.spyOn(model, 'logits'), vi.spyOn(model, 'hidden')];
    try {
      for (const e of withHoods) checkEdit(e.spec, edited, base, THRESHOLDS, e.neighbours);
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const boundary = checkEdit(set[0].spec, edited, base, THRESHOLDS).checks.at(-1)!;
    expect(boundary.expected).toContain(JSON.stringify(one));
    expect(edited.cachedOutput(f.prompt, 1 + 4)).toBe(probe.generate(f.prompt, 5));
  });

  it('judges that cannot prefetch are left alone; a run that throws stops the prefetch quietly', () => {
    const { model, tokenizer } = loaded;
    const j = new ModelJudge({ model, tokenizer });
    expect(canPrefetch(j)).toBe(true);
    const plain = oneAtATime(j);
    expect(canPrefetch(plain)).toBe(false);
    const calls: string[] = [];
    prefetchJudgements([plain, j], () => calls.push('ran'));
    expect(calls).toEqual([]);
    const spy = vi.spyOn(model, 'nextLogits');
    try {
      prefetchJudgements([j], (s) => {
        s.generate('The capital of France is', 3);
        throw new Error('boom');
      });
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('prefetch of scored pairs: the same numbers as one pair at a time, bit for bit; refused pairs are left for score() to report', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const pairs = (knownFacts ?? []).slice(0, 40).flatMap((f, i) => [
      { prompt: f.prompt, completion: ` ${f.object}` },
      { prompt: f.prompt, completion: ` ${(knownFacts ?? [])[i + 1].object}.` },
    ]);
    const long = 'word '.repeat(model.config.nPositions + 5);
    for (const d of [undefined, deltas]) {
      const batched = new ModelJudge({ model, tokenizer, deltas: d });
      const start = tf.memory().numTensors;
      batched.prefetch([], [...pairs, { prompt: long, completion: ' x' }, { prompt: 'The capital of France is', completion: '' }]);
      expect(tf.memory().numTensors).toBe(start);
      const single = new ModelJudge({ model, tokenizer, deltas: d });
      for (const p of pairs) {
        const want = { prob: single.prob(p.prompt, p.completion), rank: single.rank(p.prompt, p.completion), tokenAccuracy: single.tokenAccuracy(p.prompt, p.completion) };
        expect(batched.cachedScore(p.prompt, p.completion), `${p.prompt}|${p.completion}`).toEqual(want);
      }
      expect(batched.cachedScore(long, ' x')).toBeUndefined();
      expect(() => batched.prob(long, ' x')).toThrow(/the model's context is/);
      expect(() => batched.prob('The capital of France is', '')).toThrow(/empty completion/);
    }
  });

  it('a prompt longer than the context is not prefetched: generate still reports it', () => {
    const { model, tokenizer } = loaded;
    const j = new ModelJudge({ model, tokenizer });
    const long = 'word '.repeat(model.config.nPositions + 5);
    j.prefetch([{ prompt: long, maxTokens: 3 }, { prompt: 'The capital of France is', maxTokens: 3 }]);
    expect(j.cachedOutput(long, 3)).toBeUndefined();
    expect(j.cachedOutput('The capital of France is', 3)).toBe(new ModelJudge({ model, tokenizer }).generate('The capital of France is', 3));
    expect(() => j.generate(long, 3)).toThrow(/the model's context is/);
  });
});
