/**
 * Hugging Face GPT2Config ↔ our config: n_inner (the MLP width, c_proj's key dimension) survives a
 * round trip; null or 4·n_embd means the default width; a bad value names its pointer.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { configFromHf, configToHf } from '../src/model/weights.js';
import type { EditError } from '../src/errors.js';
import { generateBatch } from '../src/model/decode.js';
import { generate, GPT, initParams, innerDim, paramShapes, type GPTConfig } from '../src/model/gpt2.js';
import { initBackend } from '../src/tensor/backend.js';

const BASE = { model_type: 'gpt2', vocab_size: 64, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2 };

describe('HF config n_inner', () => {
  it('keeps a width other than 4·n_embd and writes it back', () => {
    const c = configFromHf({ ...BASE, n_inner: 256 }, 'config.json');
    expect(c.nInner).toBe(256);
    expect(innerDim(c)).toBe(256);
    expect(paramShapes(c).find(([n]) => n === 'h.0.mlp.c_proj.weight')![1]).toEqual([256, 32]);
    expect(configToHf(c, 0).n_inner).toBe(256);
    expect(configFromHf(configToHf(c, 0), 'config.json')).toEqual(c);
  });

  it('null, absent or 4·n_embd is the default width', () => {
    for (const extra of [{}, { n_inner: null }, { n_inner: 128 }]) {
      const c: GPTConfig = configFromHf({ ...BASE, ...extra }, 'config.json');
      expect(c.nInner).toBeUndefined();
      expect(innerDim(c)).toBe(128);
      expect(configToHf(c, 0).n_inner).toBeNull();
    }
  });

  it('a bad n_inner names its pointer', () => {
    expect(() => configFromHf({ ...BASE, n_inner: 0 }, 'config.json')).toThrow(/n_inner must be a positive integer/);
    let caught: unknown;
    try {
      configFromHf({ ...BASE, n_inner: 'wide' }, 'config.json');
    } catch (err) {
      caught = err;
    }
    expect((caught as EditError).options).toMatchObject({ file: 'config.json', pointer: '/n_inner' });
  });
});

describe('an embedding padded beyond the tokenizer', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('generation never picks a row the tokenizer cannot decode', () => {
    const config: GPTConfig = { vocabSize: 64, nPositions: 16, nEmbd: 16, nLayer: 1, nHead: 2, layerNormEps: 1e-5 };
    const model = new GPT(config, initParams(config, 3));
    const prompts = [[1, 2, 3], [4, 5], [6, 7, 8]];
    const free = generateBatch(model, prompts, { maxNewTokens: 12 }).flat();
    expect(free.some((id) => id >= 8)).toBe(true); // unmasked, this seed picks high rows
    model.outputVocab = 8;
    for (const ids of [...generateBatch(model, prompts, { maxNewTokens: 12 }), generate(model, [1, 2, 3], { maxNewTokens: 12 })]) {
      expect(ids.length).toBe(12);
      expect(ids.every((id) => id < 8)).toBe(true);
    }
    model.dispose();
  });
});
