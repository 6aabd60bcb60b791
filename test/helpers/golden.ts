/**
 * The tiny GPT-2 fixtures (test/fixtures/tiny-gpt2*): their golden values from the independent
 * PyTorch float64 reference, a loader for the model, and a tolerance check for float32 results.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { GPT } from '../../src/model/gpt2.js';
import { parseSafetensors } from '../../src/model/safetensors.js';
import { configFromHf, paramsFromCheckpoint } from '../../src/model/weights.js';

export const TINY = 'test/fixtures/tiny-gpt2';
export const TINY_PREFIXED = 'test/fixtures/tiny-gpt2-prefixed';

export interface GoldenPrompt {
  text: string;
  ids: number[];
  last_logits: number[];
  greedy_ids: number[];
  greedy_top2_margins: number[];
  /** Prompt 0 only. */
  all_logits?: number[][];
  mean_loss?: number;
  sum_loss?: number;
}

export interface Golden {
  prompts: GoldenPrompt[];
  'capture.h.1.mlp.c_fc.u': number[][];
  /** Gradient of the SUMMED loss over positions 0..T-2; row T-1 is zero. */
  'capture.h.1.mlp.c_fc.delta': number[][];
}

export function readGolden(dir: string): Golden {
  return JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
}

/** A fixture folder (Hugging Face layout) as a GPT; the caller disposes it. */
export function loadFixtureModel(dir: string): GPT {
  const config = configFromHf(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), join(dir, 'config.json'));
  const file = join(dir, 'model.safetensors');
  return new GPT(config, paramsFromCheckpoint(parseSafetensors(readFileSync(file), file), config, file));
}

/** |actual − expected| <= atol + rtol·|expected| everywhere; the message names the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { atol?: number; rtol?: number } = {}): void {
  const atol = tol.atol ?? 1e-4;
  const rtol = tol.rtol ?? 1e-4;
  expect(actual.length, 'length').toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: ${actual[worst]} vs expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}
