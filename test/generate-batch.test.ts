/**
 * generateBatch against generate(): many prompts in one pass (left-padded with a margin check, or
 * grouped by length; KV cache, rows leaving as they stop) give exactly the token ids each prompt
 * gets alone — on the tiny fixture
 * (imported as a user would, through importHfFolder) and on the shipped default model — and leave
 * no tensors behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { importHfFolder } from '../src/model/hf.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { generate, generateBatch, type BatchGenerateOptions, type Deltas, type GPT } from '../src/model/gpt2.js';
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

  it('greedy rows of different lengths share padded passes; a close call goes the exact way; the ids never change', () => {
    const model = loaded.model;
    const calls = { n: 0 };
    const original = model.nextLogits.bind(model);
    model.nextLogits = (ids, o) => (calls.n++, original(ids, o));
    try {
      const count = (opts: BatchGenerateOptions): number => {
        const alone = oneByOne(model, prompts, opts);
        calls.n = 0;
        expect(generateBatch(model, prompts, opts)).toEqual(alone);
        return calls.n;
      };
      const lengths = new Set(prompts.map((p) => p.length)).size;
      // the fixture's random weights give small margins: the default 1e-3 sends some rows the exact way
      const padded = count({ maxNewTokens: 8, exactMargin: 1e-6 });
      const exact = count({ maxNewTokens: 8, exactMargin: 0 });
      const allClose = count({ maxNewTokens: 8, exactMargin: Infinity });
      expect(exact).toBeGreaterThanOrEqual(lengths * 2); // a batch per length
      expect(padded).toBeLessThan(exact / 2); // one padded batch of the rows that fit, the rest exact
      expect(allClose).toBe(exact + 1); // the first padded pass gives every row up
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

  it('a left-padded row\'s next-token logits are its logits alone within float rounding, with the same choice', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const prompts = (knownFacts ?? []).slice(0, 32).map((f) => tokenizer.encode(f.prompt));
    const width = Math.max(...prompts.map((p) => p.length));
    const pad = prompts.map((p) => width - p.length);
    expect(new Set(pad).size).toBeGreaterThan(2);
    const together = tf.tidy(() => model.nextLogits(tf.tensor2d(prompts.map((p, r) => [...new Array<number>(pad[r]).fill(0), ...p]), [prompts.length, width], 'int32'), { pad }).arraySync());
    prompts.forEach((p, r) => {
      const alone = tf.tidy(() => model.nextLogits(tf.tensor2d([p], [1, p.length], 'int32')).arraySync()[0]);
      const worst = alone.reduce((m, x, v) => Math.max(m, Math.abs(x - together[r][v])), 0);
      expect(worst).toBeLessThan(1e-4);
      expect(together[r].indexOf(Math.max(...together[r]))).toBe(alone.indexOf(Math.max(...alone)));
    });
    expect(() => model.nextLogits(tf.tensor2d([prompts[0]], [1, prompts[0].length], 'int32'), { pad: [0, 0] })).toThrow(/1 rows but 2 paddings/);
  });
});
