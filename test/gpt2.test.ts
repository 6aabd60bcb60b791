/**
 * GPT-2 in tfjs against golden values from an independent PyTorch float64 implementation
 * (golden.json in test/fixtures/tiny-gpt2 and tiny-gpt2-prefixed): logits, loss, greedy generation with and without the
 * KV cache, the editor's gradient capture; and that none of it leaks tensors.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { GPT, captureLayerGrads, firstTouchedBlock, generate, type KVCache } from '../src/model/gpt2.js';
import { TINY, TINY_PREFIXED, expectClose, loadFixtureModel, readGolden, type Golden } from './helpers/golden.js';

const LAYER = 'h.1.mlp.c_fc';

function idsTensor(ids: number[]): tf.Tensor2D {
  return tf.tensor2d([ids], [1, ids.length], 'int32');
}

/** Logits [T, V] of one sequence as rows of numbers. */
function logitsRows(model: GPT, ids: number[], deltas?: Record<string, tf.Tensor>): number[][] {
  return tf.tidy(() => model.logits(idsTensor(ids), { deltas }).arraySync() as number[][]);
}

/** Next-token targets for ids: position t predicts ids[t+1]; the last position is masked. */
function shifted(ids: number[]): { targets: tf.Tensor2D; weights: tf.Tensor2D } {
  const t = ids.length;
  return {
    targets: tf.tensor2d([[...ids.slice(1), 0]], [1, t], 'int32'),
    weights: tf.tensor2d([[...new Array<number>(t - 1).fill(1), 0]], [1, t]),
  };
}

function meanLoss(model: GPT, ids: number[]): number {
  return tf.tidy(() => {
    const { targets, weights } = shifted(ids);
    return model.loss(idsTensor(ids), targets, weights).dataSync()[0];
  });
}

/** Golden checks every fixture folder must pass. */
function checkAgainstGolden(model: GPT, golden: Golden): void {
  for (const p of golden.prompts) {
    const rows = logitsRows(model, p.ids);
    expectClose(rows[rows.length - 1], p.last_logits);
    expect(generate(model, p.ids, { maxNewTokens: 8 }), `greedy "${p.text}"`).toEqual(p.greedy_ids);
  }
  const p0 = golden.prompts[0];
  expectClose([meanLoss(model, p0.ids)], [p0.mean_loss!]);
  const cap = capture(model, p0.ids);
  expectClose(cap.u.flat(), golden[`capture.${LAYER}.u`].flat());
  expectClose(cap.delta.flat(), golden[`capture.${LAYER}.delta`].flat());
}

/** u and the delta of the SUMMED loss (ours is of the mean: × (T−1)) for LAYER, as arrays; tensors disposed. */
function capture(model: GPT, ids: number[]): { u: number[][]; delta: number[][]; loss: number } {
  const x = idsTensor(ids);
  const { targets, weights } = shifted(ids);
  const res = captureLayerGrads(model, x, targets, weights, [LAYER]);
  const { u, delta } = res.layers[LAYER];
  const out = {
    u: u.arraySync() as number[][],
    delta: (delta.arraySync() as number[][]).map((row) => row.map((d) => d * (ids.length - 1))),
    loss: res.loss,
  };
  tf.dispose([x, targets, weights, u, delta]);
  return out;
}

describe('GPT-2 on the tiny fixture (F32, bare HF keys)', () => {
  let model: GPT;
  let golden: Golden;

  beforeAll(async () => {
    await initBackend();
    model = loadFixtureModel(TINY);
    golden = readGolden(TINY);
  });

  it('last-position logits of all three prompts', () => {
    expect(golden.prompts).toHaveLength(3);
    for (const p of golden.prompts) {
      const rows = logitsRows(model, p.ids);
      expect(rows).toHaveLength(p.ids.length);
      expectClose(rows[rows.length - 1], p.last_logits);
    }
  });

  it('all-position logits of prompt 0', () => {
    const p = golden.prompts[0];
    const rows = logitsRows(model, p.ids);
    expect(rows).toHaveLength(p.all_logits!.length);
    rows.forEach((row, t) => expectClose(row, p.all_logits![t]));
  });

  it('mean loss of prompt 0, with a masked last position and with truncated inputs', () => {
    const p = golden.prompts[0];
    expectClose([meanLoss(model, p.ids)], [p.mean_loss!]);
    // Causal: feeding ids[0..T-2] with targets ids[1..T-1] and no mask is the same loss.
    const t = p.ids.length;
    const loss = tf.tidy(() => model.loss(idsTensor(p.ids.slice(0, -1)), tf.tensor2d([p.ids.slice(1)], [1, t - 1], 'int32')).dataSync()[0]);
    expectClose([loss], [p.mean_loss!]);
    expectClose([loss * (t - 1)], [p.sum_loss!]);
  });

  it('greedy continuation (8 tokens) with the KV cache and with noCache', () => {
    for (const p of golden.prompts) {
      expect(generate(model, p.ids, { maxNewTokens: 8 }), `cache, "${p.text}"`).toEqual(p.greedy_ids);
      expect(generate(model, p.ids, { maxNewTokens: 8, noCache: true }), `noCache, "${p.text}"`).toEqual(p.greedy_ids);
    }
  });

  it('KV-cache logits equal full-recompute logits at every step', () => {
    const p = golden.prompts[1];
    const seq = [...p.ids, ...p.greedy_ids];
    const cache: KVCache = model.newCache();
    const held = new Set<tf.Tensor>();
    try {
      let fed = 0;
      for (let end = p.ids.length; end <= seq.length; end++) {
        const feed = seq.slice(fed, end);
        const last = tf.tidy(() => {
          const logits = model.logits(idsTensor(feed), { cache });
          for (const t of [...cache.k, ...cache.v]) held.add(tf.keep(t));
          return logits.arraySync() as number[][];
        });
        fed = end;
        expect(cache.length).toBe(end);
        expect(last).toHaveLength(feed.length);
        const full = logitsRows(model, seq.slice(0, end));
        expectClose(last[last.length - 1], full[full.length - 1], { atol: 1e-5, rtol: 1e-5 });
      }
    } finally {
      tf.dispose([...held]);
    }
  });

  it('captureLayerGrads: u and delta equal the golden capture', () => {
    const p = golden.prompts[0];
    const cap = capture(model, p.ids);
    expectClose([cap.loss], [p.mean_loss!]);
    expectClose(cap.u.flat(), golden[`capture.${LAYER}.u`].flat());
    expectClose(cap.delta.flat(), golden[`capture.${LAYER}.delta`].flat());
    // The masked last position has no gradient.
    expect(cap.delta[p.ids.length - 1].every((d) => d === 0)).toBe(true);
  });

  it('captureLayerGrads allocates exactly u and delta per layer, and nothing after they are disposed', () => {
    const p = golden.prompts[0];
    const x = idsTensor(p.ids);
    const { targets, weights } = shifted(p.ids);
    const cases: Array<[string, tf.Tensor2D | undefined, string[], Record<string, tf.Tensor> | undefined]> = [
      ['one layer', weights, [LAYER], undefined],
      ['no weights', undefined, [LAYER], undefined],
      ['two layers', weights, [LAYER, 'h.0.attn.c_attn'], undefined],
      ['with deltas', weights, [LAYER], { [`${LAYER}.weight`]: tf.zeros([16, 64]) }],
    ];
    for (const [name, w, layers, deltas] of cases) {
      const start = tf.memory().numTensors;
      const res = captureLayerGrads(model, x, targets, w, layers, deltas);
      expect(tf.memory().numTensors - start, name).toBe(2 * layers.length);
      for (const l of layers) {
        expect(res.layers[l].u.isDisposed, name).toBe(false);
        expect(res.layers[l].delta.isDisposed, name).toBe(false);
      }
      for (const c of Object.values(res.layers)) tf.dispose([c.u, c.delta]);
      expect(tf.memory().numTensors, name).toBe(start);
      tf.dispose(Object.values(deltas ?? {}));
    }
    tf.dispose([x, targets, weights]);
  });

  it('generate does not leak tensors (cache, noCache, stopping early at a stop id)', () => {
    const p = golden.prompts[1]; // greedy: 335, 335, 78, …
    const runs: Array<[string, Parameters<typeof generate>[2], number[]]> = [
      ['cache', { maxNewTokens: 8 }, p.greedy_ids],
      ['noCache', { maxNewTokens: 8, noCache: true }, p.greedy_ids],
      ['stop at step 0', { maxNewTokens: 8, stopIds: [335] }, []],
      ['stop at step 2', { maxNewTokens: 8, stopIds: [78] }, [335, 335]],
      ['stop at step 2, noCache', { maxNewTokens: 8, stopIds: [78], noCache: true }, [335, 335]],
      ['sampling', { maxNewTokens: 5, temperature: 1, topK: 5, seed: 7 }, []],
    ];
    for (const [name, opts, want] of runs) {
      const start = tf.memory().numTensors;
      const out = generate(model, p.ids, opts);
      if (name !== 'sampling') expect(out, name).toEqual(want);
      else expect(out, name).toHaveLength(5);
      expect(tf.memory().numTensors, name).toBe(start);
    }
  });

  it('generate stops at the context length', () => {
    const ids = golden.prompts[0].ids;
    const room = model.config.nPositions - ids.length;
    expect(generate(model, ids, { maxNewTokens: room + 10 })).toHaveLength(room);
  });

  it('deltas: zeros change nothing; a bias delta equals editing the parameter', () => {
    const p = golden.prompts[2];
    const name = 'h.1.mlp.c_proj.bias';
    const base = logitsRows(model, p.ids);
    const zeros = { [name]: tf.zerosLike(model.params[name]), 'h.0.attn.c_attn.weight': tf.zerosLike(model.params['h.0.attn.c_attn.weight']) };
    expect(logitsRows(model, p.ids, zeros)).toEqual(base);
    expect(generate(model, p.ids, { maxNewTokens: 8, deltas: zeros })).toEqual(p.greedy_ids);

    const d = tf.tidy(() => tf.mul(tf.range(0, 16, 1, 'float32'), 0.05));
    const viaDelta = logitsRows(model, p.ids, { [name]: d });
    const edited = new GPT(model.config, { ...model.params, [name]: tf.add(model.params[name], d) });
    const viaParam = logitsRows(edited, p.ids);
    expectClose(viaDelta.flat(), viaParam.flat(), { atol: 1e-6, rtol: 1e-6 });
    expect(Math.max(...viaDelta.flat().map((x, i) => Math.abs(x - base.flat()[i])))).toBeGreaterThan(1e-2);
    tf.dispose([...Object.values(zeros), d, edited.params[name]]);
  });

  it('a forward from block 1 (start) gives the same bits as the whole forward under a block-1 delta, values and gradient', () => {
    const ids = tf.tensor2d([golden.prompts[0].ids, golden.prompts[0].ids.map((_, i) => golden.prompts[1].ids[i % golden.prompts[1].ids.length])], [2, golden.prompts[0].ids.length], 'int32');
    const name = 'h.1.mlp.c_proj.weight';
    const v = tf.variable(tf.mul(tf.randomNormal(model.params[name].shape, 0, 1, 'float32', 3), 0.05));
    const residuals = new Map<number, tf.Tensor2D | null>([[0, null]]);
    tf.tidy(() => {
      model.hidden(ids, { residuals });
    });
    const start = { layer: 1, x: residuals.get(0)! };
    const run = (from?: typeof start) => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.logits(ids, { deltas: { [name]: v }, rows: [1, 5], start: from }))) as tf.Scalar, [v]);
      const out = { value: value.dataSync()[0], grad: Array.from(grads[v.name].dataSync()) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const whole = run();
    const before = tf.memory().numTensors;
    const skipped = run(start);
    expect(tf.memory().numTensors).toBe(before);
    expect(skipped.value).toBe(whole.value);
    expect(skipped.grad).toEqual(whole.grad);
    // the blocks before `start` are really not run: another residual gives another result
    const other = { layer: 1, x: tf.zerosLike(start.x) as tf.Tensor2D };
    expect(run(other).value).not.toBe(whole.value);
    other.x.dispose();
    expect(firstTouchedBlock([name, 'h.1.attn.c_attn.bias'], 2)).toBe(1);
    expect(firstTouchedBlock(['h.0.ln_1.weight', name], 2)).toBe(0);
    expect(firstTouchedBlock([name, 'wte.weight'], 2)).toBe(0);
    expect(firstTouchedBlock([], 2)).toBe(2);
    expect(() => model.hidden(ids, { start, cache: { k: [], v: [], length: 0 } as KVCache })).toThrow(/cannot extend a cache/);
    tf.dispose([ids, v, start.x]);
  });
});

describe('GPT-2 on the prefixed fixture (F16, transformer. prefix, explicit lm_head)', () => {
  it('matches its own golden values', async () => {
    await initBackend();
    const model = loadFixtureModel(TINY_PREFIXED);
    try {
      expect(Object.keys(model.params).some((n) => n.startsWith('transformer.') || n.startsWith('lm_head'))).toBe(false);
      checkAgainstGolden(model, readGolden(TINY_PREFIXED));
    } finally {
      model.dispose();
    }
  });
});
