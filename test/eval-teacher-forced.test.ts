/** Batched teacher forcing (src/eval/teacher-forced.ts) equals the Judge's one-forward-per-pair numbers, padding included. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ModelJudge } from '../src/assert/judge.js';
import { tokenAccuracy } from '../src/eval/metrics.js';
import { teacherForcedTokens } from '../src/eval/teacher-forced.js';
import type { GPT } from '../src/model/gpt2.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { initBackend } from '../src/tensor/backend.js';
import { TINY, loadFixtureModel } from './helpers/golden.js';

let model: GPT;
let tok: Tokenizer;

beforeAll(async () => {
  await initBackend('wasm');
  model = loadFixtureModel(TINY);
  tok = await Tokenizer.load(`${TINY}/tokenizer.json`);
});

afterAll(() => model.dispose());

describe('teacherForcedTokens', () => {
  const pairs = [
    { prompt: 'The capital of France is', completion: ' Paris' },
    { prompt: 'Hello', completion: ' world, and a much longer completion than the others' },
    { prompt: 'a b c d e f g h', completion: ' i' },
    { prompt: 'zzz', completion: ' New Zealand Dollar' },
  ];

  it('gives the same token accuracy as the Judge, in batches of any size, without leaking tensors', () => {
    const judge = new ModelJudge({ model, tokenizer: tok });
    const expected = pairs.map((p) => judge.tokenAccuracy(p.prompt, p.completion));
    const before = tf.memory().numTensors;
    for (const rows of [1, 3, 32]) {
      const got = teacherForcedTokens(model, tok, pairs, undefined, rows).map((f) => tokenAccuracy(f.argmax, f.target));
      expect(got).toEqual(expected);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('returns the completion tokens as targets', () => {
    const [f] = teacherForcedTokens(model, tok, [pairs[3]]);
    expect(tok.decode(f.target)).toBe(' New Zealand Dollar');
    expect(f.argmax).toHaveLength(f.target.length);
  });
});
