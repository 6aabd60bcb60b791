/**
 * GeneratePool (worker threads, each with its own backend and copy of the model): the same ids as
 * generateBatch on one thread, with and without deltas, for judges too; the setting's parsing.
 * The workers run the compiled dist/src/model/pool-worker.js (npm test builds first).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { decodeTree, generateBatch } from '../src/model/decode.js';
import type { Deltas } from '../src/model/gpt2.js';
import { GeneratePool, workerCount } from '../src/model/pool.js';
import { scorePairs } from '../src/model/score.js';
import { sentenceStopIds } from '../src/model/tokenizer.js';
import { ModelJudge } from '../src/assert/judge.js';
import { batchChecks } from '../src/assert/check-edit.js';
import { EditError } from '../src/errors.js';
import type { EditSpec } from '../src/spec/types.js';

const MODEL = 'models/default';
let loaded: LoadedModel;
let pool: GeneratePool;
let deltas: Deltas;

beforeAll(async () => {
  await initBackend();
  loaded = await loadModelFolder(MODEL);
  pool = await GeneratePool.open(MODEL, 2);
  deltas = tf.tidy(() => ({ 'h.3.mlp.c_proj.weight': tf.keep(tf.mul(tf.randomNormal(loaded.model.params['h.3.mlp.c_proj.weight'].shape, 0, 1, 'float32', 5), 0.05)) }));
});

afterAll(async () => {
  await pool?.close();
  tf.dispose(Object.values(deltas ?? {}));
  loaded?.model.dispose();
});

describe('workerCount (--workers / EDIT_WORKERS)', () => {
  it('unset is 1, a whole number is itself, auto is every core; anything else is a user error naming the setting', () => {
    expect(workerCount(undefined)).toBe(1);
    expect(workerCount('')).toBe(1);
    expect(workerCount('3')).toBe(3);
    expect(workerCount('auto')).toBeGreaterThanOrEqual(1);
    expect(() => workerCount('0')).toThrow(EditError);
    expect(() => workerCount('two', '--workers')).toThrow('--workers=two is not a whole number ≥ 1 or "auto"');
  });
});

describe('GeneratePool on the default model', () => {
  it('2 threads give the ids of one, with and without deltas (sent once, reused)', () => {
    const { model, tokenizer, knownFacts } = loaded;
    expect(pool.size).toBe(2);
    const prompts = (knownFacts ?? []).slice(0, 120).map((f) => tokenizer.encode(f.prompt));
    const budgets = prompts.map((_, i) => [2, 5, 16][i % 3]);
    const stopIds = sentenceStopIds(tokenizer, model.config.vocabSize);
    generateBatch(model, prompts.slice(0, 1), { maxNewTokens: 1 }); // the head table is made on first use
    for (const d of [undefined, deltas, deltas]) {
      const one = generateBatch(model, prompts, { maxNewTokens: budgets, stopIds, deltas: d });
      const start = tf.memory().numTensors;
      const two = pool.generateBatch(model, prompts, { maxNewTokens: budgets, stopIds, deltas: d });
      expect(tf.memory().numTensors).toBe(start);
      expect(two).toEqual(one);
    }
  });

  it('2 threads score teacher-forced pairs beside generations to the numbers and ids of one (scorePairs, generate), with and without deltas', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const facts = (knownFacts ?? []).slice(0, 90);
    // completions of 1-3 tokens after prompts of several lengths, and generations from the same prompts
    const pairs = facts.map((f, i) => ({ prompt: tokenizer.encode(f.prompt), completion: tokenizer.encode(` ${f.object}${['', '.', ' and'][i % 3]}`) }));
    const gens = facts.filter((_, i) => i % 2 === 0).map((f, i) => ({ prompt: tokenizer.encode(f.prompt), budget: [2, 6][i % 2] }));
    const stopIds = sentenceStopIds(tokenizer, model.config.vocabSize);
    for (const d of [undefined, deltas]) {
      const scores = scorePairs(model, pairs, d);
      const one = decodeTree(model, gens, pairs, { stopIds, deltas: d });
      expect(one.scores).toEqual(scores);
      const start = tf.memory().numTensors;
      const two = pool.decode(model, gens, pairs, { stopIds, deltas: d });
      expect(tf.memory().numTensors).toBe(start);
      expect(two).toEqual(one);
      expect(pool.decode(model, [], pairs, { deltas: d }).scores).toEqual(scores);
      // a budget past the context (even Infinity) generates up to it, on the pool as alone
      const endless = [{ prompt: gens[0].prompt, budget: Infinity }, ...gens.slice(1)];
      expect(pool.decode(model, endless, [], { stopIds, deltas: d }).ids).toEqual(decodeTree(model, endless, [], { stopIds, deltas: d }).ids);
      expect(scores.every((s) => s.prob > 0 && s.prob <= 1 && s.rank >= 1)).toBe(true);
    }
  });

  it('judges with the pool give the results of judges without it', () => {
    const { model, tokenizer, knownFacts } = loaded;
    const capitals = (knownFacts ?? []).filter((f) => f.relation === 'capital').slice(0, 8);
    const edits: Array<{ id: string; spec: EditSpec }> = capitals.map((f, i) => ({
      id: `c/${i}`,
      spec: { version: 1, task: 'counterfact', subject: f.subject, relation: 'capital', prompt: f.prompt, target: ` ${capitals[(i + 3) % capitals.length].object}`, rephrase: [`${f.subject}'s capital is`], locality: [{ prompt: capitals[(i + 1) % capitals.length].prompt }] },
    }));
    const thresholds = loaded.manifest.thresholds;
    const plain = batchChecks(edits, new ModelJudge({ model, tokenizer, deltas }), new ModelJudge({ model, tokenizer }), thresholds);
    const pooled = batchChecks(edits, new ModelJudge({ model, tokenizer, deltas, pool }), new ModelJudge({ model, tokenizer, pool }), thresholds);
    expect(pooled).toEqual(plain);
  });
});
