/**
 * generateBatch and decodeTree against generate() and scorePairs(): many prompts walked as one
 * prefix tree (one token per row and step, KV caches gathered from the parents, rows leaving as
 * they stop) give exactly the token ids and teacher-forced numbers each gets alone — on the tiny
 * fixture (imported as a user would, through importHfFolder) and on the shipped default model —
 * compute each shared prefix once, and leave no tensors behind. And the property the tree rests
 * on: a prompt continued from a KV cache split anywhere gives the bits of its single forward.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { importHfFolder } from '../src/model/hf.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { decodeTree, generateBatch, type BatchGenerateOptions } from '../src/model/decode.js';
import { generate, type Deltas, type GPT, type KVCache } from '../src/model/gpt2.js';
import { scorePairs } from '../src/model/score.js';
import { sentenceStopIds } from '../src/model/tokenizer.js';
import { TINY } from './helpers/golden.js';

/** Each prompt alone through generate(), with the same options and its own budget. */
function oneByOne(model: GPT, prompts: number[][], opts: BatchGenerateOptions): number[][] {
  return prompts.map((p, i) => {
    const maxNewTokens = typeof opts.maxNewTokens === 'number' ? opts.maxNewTokens : opts.maxNewTokens[i];
    return generate(model, p, { ...opts, maxNewTokens, stopIds: opts.stopIds?.slice() });
  });
}

/** generateBatch equals one-by-one generation and returns numTensors to where it was. */
function expectSameAsAlone(model: GPT, prompts: number[][], opts: BatchGenerateOptions): number[][] {
  const alone = oneByOne(model, prompts, opts);
  const start = tf.memory().numTensors;
  const batched = generateBatch(model, prompts, opts);
  expect(tf.memory().numTensors, 'tensors after generateBatch').toBe(start);
  expect(batched).toEqual(alone);
  return batched;
}

describe('generateBatch on the tiny fixture (imported with importHfFolder)', () => {
  let dir: string;
  let loaded: LoadedModel;
  let prompts: number[][];

  beforeAll(async () => {
    await initBackend();
    dir = await mkdtemp(join(tmpdir(), 'editops-batch-'));
    await importHfFolder(TINY, join(dir, 'tiny'), 'tiny');
    loaded = await loadModelFolder(join(dir, 'tiny'));
    const { tokenizer } = loaded;
    const texts = ['The capital of France is', 'Hello world', 'a b c d e f', 'zzz', 'Hello there', 'The capital of Spain is', 'x', 'The quick brown fox jumps over the lazy dog and'];
    prompts = texts.map((t) => tokenizer.encode(t));
    // several prompts share a length (they decode together), others are alone in their group
    expect(new Set(prompts.map((p) => p.length)).size).toBeLessThan(prompts.length);
    generate(loaded.model, prompts[0], { maxNewTokens: 1 }); // the model's inference head table is made on first use
  });

  afterAll(async () => {
    loaded?.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('greedy, one budget for all: the same ids as one at a time', () => {
    expectSameAsAlone(loaded.model, prompts, { maxNewTokens: 8 });
  });

  it('a budget per prompt (0 included), sentence stop ids, batches of 2', () => {
    const stopIds = sentenceStopIds(loaded.tokenizer, loaded.model.config.vocabSize);
    const budgets = prompts.map((_, i) => [0, 1, 3, 8, 16][i % 5]);
    const out = expectSameAsAlone(loaded.model, prompts, { maxNewTokens: budgets, stopIds, maxBatch: 2 });
    expect(out[0]).toEqual([]);
    out.forEach((o, i) => expect(o.length).toBeLessThanOrEqual(budgets[i]));
  });

  it('rows stopping at different steps leave the batch (stop ids taken from the rows\' own outputs)', () => {
    const free = generateBatch(loaded.model, prompts, { maxNewTokens: 8 });
    // stop at tokens some rows produce early and others late or never
    const stopIds = [...new Set([free[0][2], free[1][0], free[3][5]])];
    const out = expectSameAsAlone(loaded.model, prompts, { maxNewTokens: 8, stopIds });
    expect(new Set(out.map((o) => o.length)).size).toBeGreaterThan(1);
  });

  it('with deltas, and sampling with a seed (each row its own generator, as alone)', () => {
    const deltas: Deltas = tf.tidy(() => ({ 'ln_f.bias': tf.keep(tf.mul(tf.reshape(tf.slice(loaded.model.params['wte.weight'], [7, 0], [1, -1]), [-1]), 3)) }));
    try {
      expectSameAsAlone(loaded.model, prompts, { maxNewTokens: 6, deltas });
      expectSameAsAlone(loaded.model, prompts, { maxNewTokens: 6, temperature: 1, topK: 20, seed: 11 });
    } finally {
      tf.dispose(Object.values(deltas));
    }
  });

  it('stops at the context: a prompt near or at the full context, beside short ones', () => {
    const n = loaded.model.config.nPositions;
    const long = Array.from({ length: n - 3 }, (_, i) => prompts[7][i % prompts[7].length]);
    const full = Array.from({ length: n }, (_, i) => prompts[1][i % prompts[1].length]);
    const out = expectSameAsAlone(loaded.model, [long, prompts[1], full, long.slice(1)], { maxNewTokens: 10 });
    expect(out[0]).toHaveLength(3);
    expect(out[2]).toEqual([]);
  });

  it('a shared prefix is computed once: the tokens fed are the prefix tree\'s nodes plus the generated tokens; a lone prompt is one forward; the ids never change', () => {
    const model = loaded.model;
    const fed = { rows: 0, calls: 0 };
    const original = model.nextLogits.bind(model);
    model.nextLogits = (ids, o) => ((fed.rows += ids.shape[0] * ids.shape[1]), fed.calls++, original(ids, o));
    try {
      const alone = oneByOne(model, prompts, { maxNewTokens: 8 });
      fed.rows = 0;
      const out = generateBatch(model, prompts, { maxNewTokens: 8 });
      expect(out).toEqual(alone);
      // no stop ids: each prompt runs its whole budget, and its last token is never fed back
      const nodes = new Set(prompts.flatMap((p) => p.map((_, i) => p.slice(0, i + 1).join(','))));
      expect(nodes.size).toBeLessThan(prompts.reduce((n, p) => n + p.length, 0)); // the prompts share beginnings ("The capital of", "Hello")
      expect(fed.rows).toBe(nodes.size + out.reduce((n, o) => n + o.length - 1, 0));
      // trees of 3 prompts each: more rows, the same ids
      fed.rows = 0;
      expect(generateBatch(model, prompts, { maxNewTokens: 8, maxBatch: 3 })).toEqual(alone);
      expect(fed.rows).toBeGreaterThan(nodes.size);
      // a lone prompt goes in one forward (an unbranched stretch moves at once), then a token per step
      fed.calls = 0;
      const [lone] = generateBatch(model, [prompts[0]], { maxNewTokens: 4 });
      expect(lone).toEqual(alone[0].slice(0, 4));
      expect(prompts[0].length).toBeGreaterThan(3);
      expect(lone).toHaveLength(4);
      expect(fed.calls).toBe(4);
    } finally {
      model.nextLogits = original;
    }
  });

  it('no prompts, and refuses an empty prompt or a missing budget', () => {
    expect(generateBatch(loaded.model, [], { maxNewTokens: 4 })).toEqual([]);
    expect(() => generateBatch(loaded.model, [[]], { maxNewTokens: 4 })).toThrow(/prompt 0 is empty/);
    expect(() => generateBatch(loaded.model, prompts, { maxNewTokens: [1, 2] })).toThrow(/token budgets/);
  });
});

describe('generateBatch on the default model', () => {
  let loaded: LoadedModel;

  beforeAll(async () => {
    await initBackend();
    loaded = await loadModelFolder('models/default');
  });

  afterAll(() => loaded?.model.dispose());

  it('48 probe prompts with the judge\'s stops and budgets: the same ids as one at a time', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const facts = knownFacts ?? [];
    expect(facts.length).toBeGreaterThan(48);
    // every relation, including each one's held-out-style prompts: a spread of lengths
    const step = Math.floor(facts.length / 48);
    const prompts = Array.from({ length: 48 }, (_, i) => tokenizer.encode(facts[i * step].prompt));
    const budgets = prompts.map((_, i) => [3, 4, 6, 16][i % 4]);
    generate(model, prompts[0], { maxNewTokens: 1 });
    const out = expectSameAsAlone(model, prompts, { maxNewTokens: budgets, stopIds: sentenceStopIds(tokenizer, model.config.vocabSize) });
    expect(out.filter((o) => o.length > 0).length).toBeGreaterThan(40);
  });

  it('a prompt continued from a KV cache split anywhere, or fed one token per step beside other rows, gives the bits of its single forward', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const prompts = (knownFacts ?? []).slice(0, 24).map((f) => tokenizer.encode(f.prompt));
    const last = (ids: number[][], cache?: KVCache) => tf.tidy(() => {
      const out = model.nextLogits(tf.tensor2d(ids, [ids.length, ids[0].length], 'int32'), { cache });
      if (cache !== undefined) for (const t of [...cache.k, ...cache.v]) tf.keep(t);
      return out.arraySync();
    });
    let compared = 0;
    for (const p of prompts) {
      const whole = last([p])[0];
      for (let cut = 1; cut < p.length; cut++) {
        const cache = model.newCache();
        last([p.slice(0, cut)], cache);
        expect(last([p.slice(cut)], cache)[0]).toEqual(whole);
        tf.dispose([...cache.k, ...cache.v]);
        compared++;
      }
      // one token per step, in a batch of two rows (the other a different prompt)
      const cache = model.newCache();
      let rows: number[][] = [];
      for (let i = 0; i < p.length; i++) rows = last([[p[i]], [prompts[0][i % prompts[0].length]]], cache);
      expect(rows[0]).toEqual(whole);
      tf.dispose([...cache.k, ...cache.v]);
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('decodeTree frees everything when a step fails midway (a forward, or copying the caches)', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const facts = (knownFacts ?? []).slice(0, 12);
    const gens = facts.map((f) => ({ prompt: tokenizer.encode(f.prompt), budget: 4 }));
    const pairs = facts.map((f) => ({ prompt: tokenizer.encode(f.prompt), completion: tokenizer.encode(` ${f.object}`) }));
    const engine = tf.engine() as unknown as { makeTensor: (...a: unknown[]) => tf.Tensor };
    const make = engine.makeTensor.bind(engine);
    const original = model.nextLogits.bind(model);
    const start = tf.memory().numTensors;
    try {
      for (const k of [1, 3, 6]) {
        // the k-th cache copy (a 4-D tensor made from JavaScript) fails
        let copies = 0;
        engine.makeTensor = (...a: unknown[]) => {
          if ((a[1] as number[]).length === 4 && ++copies === k) throw new Error('no memory for the copy');
          return make(...a);
        };
        expect(() => decodeTree(model, gens, pairs)).toThrow('no memory for the copy');
        expect(tf.memory().numTensors).toBe(start);
      }
      engine.makeTensor = make;
      let calls = 0;
      model.nextLogits = (ids, o) => {
        if (++calls === 3) throw new Error('the forward failed');
        return original(ids, o);
      };
      expect(() => decodeTree(model, gens, pairs)).toThrow('the forward failed');
      expect(tf.memory().numTensors).toBe(start);
    } finally {
      engine.makeTensor = make;
      model.nextLogits = original;
    }
  });

  it('decodeTree: teacher-forced numbers are scorePairs\' bit for bit, beside generations that share their prompts, in one tree or many', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const facts = (knownFacts ?? []).slice(0, 40);
    const pairs = facts.flatMap((f, i) => [
      { prompt: tokenizer.encode(f.prompt), completion: tokenizer.encode(` ${f.object}`) },
      { prompt: tokenizer.encode(f.prompt), completion: tokenizer.encode(` ${facts[(i + 1) % facts.length].object} and`) },
    ]);
    const gens = facts.map((f, i) => ({ prompt: tokenizer.encode(f.prompt), budget: [1, 4, 9][i % 3] }));
    const stopIds = sentenceStopIds(tokenizer, model.config.vocabSize);
    const deltas: Deltas = tf.tidy(() => ({ 'h.2.mlp.c_proj.weight': tf.keep(tf.mul(tf.randomNormal(model.params['h.2.mlp.c_proj.weight'].shape, 0, 1, 'float32', 3), 0.02)) }));
    try {
      for (const d of [undefined, deltas]) {
        const scores = scorePairs(model, pairs, d);
        const ids = gens.map((g) => generate(model, g.prompt, { maxNewTokens: g.budget, stopIds, deltas: d }));
        for (const maxBatch of [undefined, 7]) {
          const start = tf.memory().numTensors;
          const out = decodeTree(model, gens, pairs, { stopIds, deltas: d, maxBatch });
          expect(tf.memory().numTensors).toBe(start);
          expect(out.scores).toEqual(scores);
          expect(out.ids).toEqual(ids);
        }
        expect(scores.some((s) => s.tokenAccuracy === 1) && scores.some((s) => s.rank > 1)).toBe(true);
      }
    } finally {
      tf.dispose(Object.values(deltas));
    }
    expect(() => decodeTree(model, [], [{ prompt: [1], completion: [] }])).toThrow(/pair 0 has an empty completion/);
    const long = Array.from({ length: model.config.nPositions + 1 }, () => 5);
    expect(() => decodeTree(model, [], [{ prompt: long, completion: [6] }])).toThrow(/exceeds the model's context/);
  });
});
