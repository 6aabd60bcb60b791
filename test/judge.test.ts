/**
 * ModelJudge on the tiny GPT-2 fixture: generation equals the model's own greedy decoding (stopping
 * at a newline), prob / rank / token accuracy equal values computed independently from model.logits,
 * results are cached, and nothing leaks tensors.
 */
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { generate, type Deltas, type GPT } from '../src/model/gpt2.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { ModelJudge } from '../src/assert/judge.js';
import { EditError } from '../src/errors.js';
import { TINY, loadFixtureModel, readGolden } from './helpers/golden.js';

const PROMPTS = ['The capital of France is', 'Hello world', 'a b c d e f', 'zzz'];

let model: GPT;
let tok: Tokenizer;
let newline: number;

/** Log-probabilities of `targets` after `prefix`, in float64 from the model's raw logits. */
function logProbs(prefix: number[], targets: number[], deltas?: Deltas): number[][] {
  const seq = [...prefix, ...targets];
  const rows = tf.tidy(() => model.logits(tf.tensor2d([seq], [1, seq.length], 'int32'), { deltas }).arraySync() as number[][]);
  return targets.map((_, i) => {
    const row = rows[prefix.length - 1 + i];
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    return row.map((x) => x - lse);
  });
}

function argmax(row: number[]): number {
  return row.reduce((best, x, i) => (x > row[best] ? i : best), 0);
}

/** Pushes every position's final hidden state toward the newline token's embedding: "\n" becomes the argmax. */
function newlineDeltas(): Deltas {
  return tf.tidy(() => ({ 'ln_f.bias': tf.keep(tf.mul(tf.reshape(tf.slice(model.params['wte.weight'], [newline, 0], [1, -1]), [-1]), 50)) }));
}

beforeAll(async () => {
  await initBackend();
  model = loadFixtureModel(TINY);
  tok = await Tokenizer.load(`${TINY}/tokenizer.json`);
  newline = tok.encode('\n')[0];
});

afterAll(() => model.dispose());

describe('ModelJudge.generate', () => {
  it('equals decoding the model\'s greedy ids (golden) and generate() with the same stops', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    const stopIds = [tok.eosId, newline];
    for (const p of PROMPTS) {
      const ids = tok.encode(p);
      expect(judge.generate(p, 8), p).toBe(tok.decode(generate(model, ids, { maxNewTokens: 8, stopIds })));
    }
    for (const g of readGolden(TINY).prompts) expect(judge.generate(g.text, 8), g.text).toBe(tok.decode(g.greedy_ids));
  });

  it('a shorter budget is a prefix of a longer one, from the cache or fresh', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    for (const p of PROMPTS) {
      const long = judge.generate(p, 8);
      expect(judge.generate(p, 3), p).toBe(new ModelJudge({ model, tokenizer: tok }).generate(p, 3));
      expect(judge.greedyIds(p, 3), p).toEqual(judge.greedyIds(p, 8).slice(0, 3));
      expect(judge.generate(p, 8)).toBe(long);
    }
  });

  it('stops at a token whose text holds a newline', () => {
    const deltas = newlineDeltas();
    const ids = tok.encode(PROMPTS[0]);
    expect(generate(model, ids, { maxNewTokens: 3, deltas })).toEqual([newline, newline, newline]);
    const judge = new ModelJudge({ model, tokenizer: tok, deltas });
    expect(judge.generate(PROMPTS[0], 8)).toBe('');
    expect(judge.rank(PROMPTS[0], '\n')).toBe(1);
    tf.dispose(Object.values(deltas));
  });

  it('uses the deltas: an edited judge generates with them, the base judge without', () => {
    const deltas = newlineDeltas();
    const base = new ModelJudge({ model, tokenizer: tok });
    const edited = new ModelJudge({ model, tokenizer: tok, deltas });
    expect(base.generate(PROMPTS[0], 4)).toBe('oooo');
    expect(edited.generate(PROMPTS[0], 4)).toBe('');
    const c = ' x';
    const [p, t] = [tok.encode(PROMPTS[0]), tok.encode(PROMPTS[0] + c).slice(tok.encode(PROMPTS[0]).length)];
    const want = Math.exp(logProbs(p, t, deltas).reduce((a, row, i) => a + row[t[i]], 0));
    expect(edited.prob(PROMPTS[0], c)).toBeCloseTo(want, 6);
    expect(edited.prob(PROMPTS[0], c)).not.toBeCloseTo(base.prob(PROMPTS[0], c), 6);
    tf.dispose(Object.values(deltas));
  });

  it('an empty prompt starts from end-of-text; a prompt longer than the context is an EditError', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    expect(judge.generate('', 5)).toBe(tok.decode(generate(model, [tok.eosId], { maxNewTokens: 5, stopIds: [tok.eosId, newline] })));
    const long = 'a '.repeat(40);
    const n = tok.encode(long).length;
    expect(n).toBeGreaterThan(32);
    expect(() => judge.generate(long, 4)).toThrow(EditError);
    expect(() => judge.generate(long, 4)).toThrow(`prompt ${JSON.stringify(long)} is ${n} tokens; the model's context is 32`);
    const [p, c] = ['a b c d e f '.repeat(4), ' b'.repeat(10)];
    const [np, nc] = [tok.encode(p).length, tok.encode(c).length];
    expect(np + nc - 1).toBeGreaterThan(32);
    expect(() => judge.prob(p, c)).toThrow(`prompt ${JSON.stringify(p)} is ${np} tokens (+${nc} of completion); the model's context is 32`);
    expect(() => judge.prob('Hello', '')).toThrow('empty completion after "Hello": nothing to score');
  });
});

describe('ModelJudge teacher-forced numbers', () => {
  const completions = [' Lyon', ' Paris is big', 'oo', 'ld'];

  it('prob = exp(Σ log-softmax) at the completion positions, computed independently', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    for (const p of PROMPTS) {
      for (const c of completions) {
        const pid = tok.encode(p);
        const joint = tok.encode(p + c);
        expect(joint.slice(0, pid.length), `${p}|${c}`).toEqual(pid);
        const t = joint.slice(pid.length);
        const logp = logProbs(pid, t).reduce((a, row, i) => a + row[t[i]], 0);
        const got = judge.prob(p, c);
        expect(Math.abs(Math.log(got) - logp), `${p}|${c}: ${got} vs ${Math.exp(logp)}`).toBeLessThan(1e-4);
      }
    }
  });

  it('when the joint tokenization crosses the prompt boundary, the completion is encoded alone', () => {
    // The prompt's last word and the completion merge into other tokens: encode(prompt + completion) does not start with encode(prompt).
    const [p, c] = findBoundaryMerge();
    const judge = new ModelJudge({ model, tokenizer: tok });
    const pid = tok.encode(p);
    const t = tok.encode(c);
    const logp = logProbs(pid, t).reduce((a, row, i) => a + row[t[i]], 0);
    expect(Math.abs(Math.log(judge.prob(p, c)) - logp)).toBeLessThan(1e-4);
  });

  it('rank is 1 for the greedy next token and counts the tokens above otherwise', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    let checked = 0;
    let firsts = 0;
    for (const p of PROMPTS) {
      const pid = tok.encode(p);
      const row = logProbs(pid, [0])[0];
      const order = row.map((x, i) => [x, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
      expect(order[0]).toBe(judge.greedyIds(p, 1)[0]);
      // Tokens whose text re-encodes to themselves after the prompt (not a partial UTF-8 byte), at ranks 1, 2 and 10.
      for (const want of [1, 2, 10]) {
        const id = order[want - 1];
        const c = tok.decode([id]);
        if (tok.encode(p + c).slice(pid.length).join() !== String(id)) continue;
        expect(judge.rank(p, c), `${p}|${JSON.stringify(c)}`).toBe(want);
        checked++;
        if (want === 1) firsts++;
      }
    }
    expect(firsts).toBeGreaterThanOrEqual(3);
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it('tokenAccuracy is 1 for the model\'s own greedy continuation and matches argmax agreement otherwise', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    for (const p of ['The capital of France is', 'Hello world', 'a b c d e f']) {
      const own = judge.generate(p, 6);
      expect(judge.tokenAccuracy(p, own), `${p}|${own}`).toBe(1);
      const c = ' Paris is big';
      const pid = tok.encode(p);
      const t = tok.encode(p + c).slice(pid.length);
      const hits = logProbs(pid, t).filter((row, i) => argmax(row) === t[i]).length;
      expect(judge.tokenAccuracy(p, c)).toBe(hits / t.length);
    }
  });

  it('one forward per (prompt, completion): prob, rank and tokenAccuracy share it, generation is cached too', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    const spy = vi.spyOn(model, 'logits');
    try {
      judge.prob(PROMPTS[1], ' Lyon');
      expect(spy).toHaveBeenCalledTimes(1);
      judge.rank(PROMPTS[1], ' Lyon');
      judge.tokenAccuracy(PROMPTS[1], ' Lyon');
      judge.prob(PROMPTS[1], ' Lyon');
      expect(spy).toHaveBeenCalledTimes(1);
      judge.generate(PROMPTS[1], 4);
      const afterGen = spy.mock.calls.length;
      judge.generate(PROMPTS[1], 4);
      judge.generate(PROMPTS[1], 2);
      expect(spy).toHaveBeenCalledTimes(afterGen);
      judge.clearCache();
      judge.prob(PROMPTS[1], ' Lyon');
      expect(spy).toHaveBeenCalledTimes(afterGen + 1);
    } finally {
      spy.mockRestore();
    }
  });

  it('countTokens is the tokenizer\'s count', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    expect(judge.countTokens(' Paris is big')).toBe(tok.encode(' Paris is big').length);
  });
});

describe('ModelJudge memory', () => {
  it('does not leak tensors (generate, prob, rank, tokenAccuracy; with and without deltas)', () => {
    const deltas = newlineDeltas();
    const start = tf.memory().numTensors;
    for (const d of [undefined, deltas]) {
      const judge = new ModelJudge({ model, tokenizer: tok, deltas: d });
      for (let round = 0; round < 2; round++) {
        for (const p of PROMPTS) {
          judge.generate(p, 8);
          judge.prob(p, ' Lyon');
          judge.rank(p, ' Paris is big');
          judge.tokenAccuracy(p, 'oo');
          expect(tf.memory().numTensors, p).toBe(start);
        }
        judge.clearCache();
      }
    }
    tf.dispose(Object.values(deltas));
    expect(tf.memory().numTensors).toBe(start - 1);
  });
});

/** A (prompt, completion) whose joint encoding does not start with the prompt's own. */
function findBoundaryMerge(): [string, string] {
  for (const p of PROMPTS) {
    const pid = tok.encode(p);
    for (let id = 0; id < tok.vocabSize; id++) {
      const c = tok.decode([id]);
      if (!/^[a-z]+$/.test(c)) continue;
      const joint = tok.encode(p + c);
      if (joint.slice(0, pid.length).join() !== pid.join()) return [p, c];
    }
  }
  throw new Error('no boundary merge found in the fixture tokenizer');
}
