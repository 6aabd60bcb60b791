/**
 * The hypernetwork editor core (src/editor/mend/) on the tiny 2-layer fixture (d 16, MLP 64, vocab
 * 457): δ capture against finite differences and the PyTorch golden capture, the differentiable
 * joint solve against an independent float64 solve, the meta-loss gradient against finite
 * differences, a short meta-training run that must help, the network file round trip, and rows
 * that do not depend on the edits computed alongside.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { importHfFolder } from '../src/model/hf.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { crossEntropy } from '../src/tensor/ops.js';
import { computeKeyStats, type KeyStats } from '../src/editor/stats.js';
import { serializeRows, parseRows } from '../src/state/rows.js';
import { parseSafetensors, serializeSafetensors } from '../src/model/safetensors.js';
import { solveSet } from '../src/editor/set.js';
import type { EditRequest, EditorContext } from '../src/editor/editor.js';
import { captureRows, instructionVector, rowSequence } from '../src/editor/mend/capture.js';
import { HyperNet, inputStats, type HyperNetShape } from '../src/editor/mend/network.js';
import { solveOperator, solveValues, weightChange } from '../src/editor/mend/solve.js';
import { HyperEditor, hyperRows, stackRows, MEND_DEFAULTS, INSTRUCTEDIT_DEFAULTS } from '../src/editor/mend/editor.js';
import { MetaTrainer, META_DEFAULTS, metaLoss, prepareMetaBatch, batchDeltas, type MetaSettings } from '../src/editor/mend/train.js';
import type { Deltas } from '../src/model/gpt2.js';
import { TINY, expectClose, readGolden } from './helpers/golden.js';

const ROOT = join(import.meta.dirname, '..');
const LAYERS = ['h.0.mlp.c_proj', 'h.1.mlp.c_proj'];
const LAMBDA = 30;

const EDITS: EditRequest[] = [
  { id: 'a', task: 'counterfact', instruction: 'Rewrite the stated fact.', prompt: 'The capital of France is', target: ' Lyon', rephrase: ["France's capital is", 'Q: What is the capital of France? A:'] },
  { id: 'b', task: 'counterfact', instruction: 'Rewrite the stated fact.', prompt: 'The currency of Japan is', target: ' Euro coins', rephrase: ["Japan's currency is"] },
  { id: 'c', task: 'convsent', instruction: 'Change the opinion about the topic.', prompt: 'I think Esperanto is', target: ' dull', rephrase: ['In my view Esperanto is'] },
  { id: 'd', task: 'counterfact', instruction: 'Rewrite the stated fact.', prompt: 'The capital of Greece is', target: ' Lyon', rephrase: ["Greece's capital is"] },
];
const LOCALITY = ['The capital of Italy is Rome.', 'Paris is in France.', 'The currency of Peru is the sol.', 'I think Latin is old.'];

/** Fact sentences enough for a full-rank key second moment at MLP width 64. */
function statTexts(): string[] {
  const subjects = ['France', 'Spain', 'Italy', 'Peru', 'Japan', 'Chile', 'Egypt', 'Kenya', 'Norway', 'Brazil'];
  const objects = ['Paris', 'Madrid', 'Rome', 'Lima', 'Tokyo', 'Santiago', 'Cairo', 'Nairobi', 'Oslo', 'Brasilia'];
  return subjects.flatMap((s, i) => [`The capital of ${s} is ${objects[i]}.`, `${objects[i]} is a city in ${s}, people say.`, `I think ${s} is lovely and old.`]);
}

describe('hypernetwork editor on the tiny fixture', () => {
  let dir: string;
  let loaded: LoadedModel;
  let stats: KeyStats;
  let ctx: EditorContext;
  let shape: HyperNetShape;
  let uStats: Record<string, { mean: Float32Array; std: Float32Array }>;

  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'editops-hyper-'));
    await importHfFolder(join(ROOT, TINY), dir, 'tiny');
    loaded = await loadModelFolder(dir);
    stats = computeKeyStats(loaded.model, loaded.tokenizer, LAYERS, { texts: statTexts(), prompts: ['The capital of Chile is', 'The currency of Peru is'], promptWeight: 10 });
    ctx = { model: loaded.model, tokenizer: loaded.tokenizer, layers: loaded.manifest.editableLayers, stats };
    const e = loaded.model.config.nEmbd;
    const rows = [...hyperRows(loaded.model, loaded.tokenizer, LAYERS, EDITS, 0)];
    uStats = {};
    for (const l of LAYERS) {
      const s = stackRows(rows, l, 0);
      uStats[l] = inputStats(s.u, s.n, 4 * e);
    }
    shape = { layers: LAYERS, keyDims: Object.fromEntries(LAYERS.map((l) => [l, 4 * e])), valueDim: e, hidden: 128, condDim: 0 };
  });
  afterAll(async () => {
    loaded.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** Summed NLL of a row sequence with probes added to layer outputs. */
  function sumNll(seq: { ids: number[]; positions: number[]; targets: number[] }, probes: Record<string, tf.Tensor2D>): number {
    const loss = tf.tidy(() => {
      const t = seq.ids.length;
      const tgt = new Int32Array(t);
      const w = new Float32Array(t);
      seq.positions.forEach((p, k) => {
        tgt[p] = seq.targets[k];
        w[p] = 1;
      });
      const logits = loaded.model.logits(tf.tensor2d([seq.ids], [1, t], 'int32'), { probes });
      return tf.mul(crossEntropy(logits, tf.tensor1d(tgt, 'int32'), tf.tensor1d(w)), seq.positions.length);
    });
    const x = loss.dataSync()[0];
    loss.dispose();
    return x;
  }

  it('(a) captures δ as the gradient of the summed NLL: finite differences and the PyTorch golden capture', () => {
    const { model, tokenizer } = loaded;
    const seq = rowSequence(tokenizer, model.config.nPositions, EDITS[1].prompt, EDITS[1].target);
    expect(seq.positions.length).toBeGreaterThan(1); // several target tokens: several rows
    const [got] = captureRows(model, [seq], LAYERS);
    const e = model.config.nEmbd;
    const t = seq.ids.length;
    let r = 12345;
    const rand = () => ((r = (r * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5);
    for (const l of LAYERS) {
      const { u, delta } = got[l];
      expect(u.length).toBe(seq.positions.length * 4 * e);
      expect(delta.length).toBe(seq.positions.length * e);
      // directional derivative along a random direction at the row positions: <δ, R>
      const dir = new Float32Array(t * e);
      let expected = 0;
      seq.positions.forEach((p, k) => {
        for (let j = 0; j < e; j++) {
          const x = rand();
          dir[p * e + j] = x;
          expected += x * delta[k * e + j];
        }
      });
      const eps = 1e-2;
      const probe = (s: number) => ({ [l]: tf.mul(tf.tensor2d(dir, [t, e]), s) as tf.Tensor2D });
      const plus = probe(eps);
      const minus = probe(-eps);
      const fd = (sumNll(seq, plus) - sumNll(seq, minus)) / (2 * eps);
      tf.dispose([...Object.values(plus), ...Object.values(minus)]);
      expect(Math.abs(fd - expected)).toBeLessThan(2e-3 + 1e-2 * Math.abs(expected));
      expect(Math.abs(expected)).toBeGreaterThan(1e-2); // the check has something to see
    }
    // the independent float64 PyTorch capture of h.1.mlp.c_fc on golden prompt 0, summed loss over all positions
    const golden = readGolden(join(ROOT, TINY));
    const ids = golden.prompts[0].ids;
    const all = { ids: ids.slice(0, -1), positions: ids.slice(0, -1).map((_, i) => i), targets: ids.slice(1) };
    const [fc] = captureRows(model, [all], ['h.1.mlp.c_fc']);
    expectClose(fc['h.1.mlp.c_fc'].u, golden['capture.h.1.mlp.c_fc.u'].slice(0, -1).flat(), { atol: 1e-4, rtol: 1e-3 });
    expectClose(fc['h.1.mlp.c_fc'].delta, golden['capture.h.1.mlp.c_fc.delta'].slice(0, -1).flat(), { atol: 1e-5, rtol: 1e-3 });
  });

  it('(b) ΔW = M·V equals (λC + KᵀK)⁻¹KᵀV solved independently in float64', () => {
    const rows = [...hyperRows(loaded.model, loaded.tokenizer, LAYERS, EDITS, 0)];
    const l = LAYERS[1];
    const s = stackRows(rows, l, 0);
    const dk = stats.layers[l].dim;
    const d = loaded.model.config.nEmbd;
    const v = Float32Array.from({ length: s.n * d }, (_, i) => Math.sin(i * 0.7) * 0.5);
    // independent: build A and KᵀV with plain loops, Gauss–Jordan with partial pivoting
    const a = Array.from({ length: dk }, (_, i) => Array.from({ length: dk }, (_, j) => LAMBDA * stats.layers[l].second[i * dk + j]));
    const b = Array.from({ length: dk }, () => new Array<number>(d).fill(0));
    for (let r = 0; r < s.n; r++) {
      for (let i = 0; i < dk; i++) {
        for (let j = 0; j < dk; j++) a[i][j] += s.u[r * dk + i] * s.u[r * dk + j];
        for (let j = 0; j < d; j++) b[i][j] += s.u[r * dk + i] * v[r * d + j];
      }
    }
    for (let c = 0; c < dk; c++) {
      let p = c;
      for (let i = c + 1; i < dk; i++) if (Math.abs(a[i][c]) > Math.abs(a[p][c])) p = i;
      [a[c], a[p]] = [a[p], a[c]];
      [b[c], b[p]] = [b[p], b[c]];
      for (let i = 0; i < dk; i++) {
        if (i === c) continue;
        const f = a[i][c] / a[c][c];
        for (let j = c; j < dk; j++) a[i][j] -= f * a[c][j];
        for (let j = 0; j < d; j++) b[i][j] -= f * b[c][j];
      }
    }
    const want = b.flatMap((row, i) => row.map((x) => x / a[i][i]));
    const scale = Math.max(...want.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    const m = solveOperator(s.u, s.n, dk, stats.layers[l].second, { lambda: LAMBDA });
    const dw = tf.tidy(() => weightChange(tf.tensor2d(m, [dk, s.n]), tf.tensor2d(v, [s.n, d])));
    expect(dw.shape).toEqual([dk, d]);
    expectClose(dw.dataSync(), want, { atol: 1e-5 * scale, rtol: 1e-4 });
    dw.dispose();
    expectClose(solveValues(s.u, v, s.n, dk, d, stats.layers[l].second, { lambda: LAMBDA }), want, { atol: 1e-6 * scale, rtol: 1e-5 });
  });

  it('(c) the meta-loss gradient w.r.t. single network weights matches central differences (instruction-conditioned)', () => {
    const start = tf.memory().numTensors;
    const net = HyperNet.init({ ...shape, condDim: loaded.model.config.nEmbd }, uStats, { seed: 7 });
    const s: MetaSettings = { ...META_DEFAULTS, lambda: LAMBDA };
    const batch = prepareMetaBatch({ model: loaded.model, tokenizer: loaded.tokenizer, stats }, net, EDITS.slice(0, 3), LOCALITY, s);
    // fc2 away from its zero init so every path carries gradient
    let k = 1;
    for (const l of LAYERS) {
      const w = net.tensor(`${l}.fc2.weight`) as tf.Variable;
      const data = Float32Array.from({ length: w.size }, () => Math.sin(k++) * 0.05);
      tf.tidy(() => w.assign(tf.tensor(data, w.shape)));
    }
    const loss = () => {
      const l = tf.tidy(() => metaLoss(loaded.model, net, batch, s).loss);
      const x = l.dataSync()[0];
      l.dispose();
      return x;
    };
    expect(batch.cond?.shape).toEqual([batch.rows, loaded.model.config.nEmbd]);
    for (const name of [`${LAYERS[0]}.fc1.weight`, `${LAYERS[1]}.fc2.weight`, `${LAYERS[1]}.log_scale`, `${LAYERS[0]}.fc1.bias`]) {
      const v = net.tensor(name) as tf.Variable;
      const g = tf.tidy(() => tf.variableGrads(() => metaLoss(loaded.model, net, batch, s).loss, [v]).grads[v.name].dataSync());
      let at = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[at])) at = i;
      const orig = Float32Array.from(v.dataSync());
      const eps = 1e-2;
      const set = (x: number) => {
        const data = Float32Array.from(orig);
        data[at] = x;
        tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
      };
      set(orig[at] + eps);
      const up = loss();
      set(orig[at] - eps);
      const down = loss();
      set(orig[at]);
      const fd = (up - down) / (2 * eps);
      expect(Math.abs(g[at]), name).toBeGreaterThan(1e-3);
      expect(Math.abs(fd - g[at]), `${name}[${at}]: autodiff ${g[at]} vs finite difference ${fd}`).toBeLessThan(5e-4 + 3e-2 * Math.abs(g[at]));
    }
    batch.dispose();
    net.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('(d) meta-training on a fixed batch lowers the meta-loss and the edited model prefers the targets', async () => {
    const start = tf.memory().numTensors;
    const net = HyperNet.init(shape, uStats, { seed: 1 });
    // the editor's key floor in the training path too, so its ΔW can be compared with the editor's solve below
    const s: MetaSettings = { ...META_DEFAULTS, lambda: LAMBDA, keyFloor: MEND_DEFAULTS.keyFloor };
    const batch = prepareMetaBatch({ model: loaded.model, tokenizer: loaded.tokenizer, stats }, net, EDITS, LOCALITY, s);
    const trainer = new MetaTrainer(net, s);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const steps = [];
    for (let i = 0; i < 50; i++) steps.push(trainer.step(loaded.model, batch));
    const ms = (performance.now() - t0) / steps.length;
    const first = steps[0];
    const last = steps[steps.length - 1];
    console.log(`meta-training: loss ${first.loss.toFixed(3)} (nll ${first.nll.toFixed(3)}, kl ${first.kl.toFixed(4)}) → ${last.loss.toFixed(3)} (nll ${last.nll.toFixed(3)}, kl ${last.kl.toFixed(4)}); ${ms.toFixed(0)} ms/step; scales ${JSON.stringify(net.scales())}`);
    expect(steps.every((x) => !x.skipped && Number.isFinite(x.loss))).toBe(true);
    expect(last.loss).toBeLessThan(0.75 * first.loss);
    // the trainer allocates its Adam moments on the first step; later steps must not grow the count
    const afterFirst = tf.memory().numTensors;
    trainer.step(loaded.model, batch);
    expect(tf.memory().numTensors).toBe(afterFirst);
    expect(afterFirst).toBeGreaterThanOrEqual(before);

    // through the editor's own (float64) solve: the targets' probability rises on the edit prompts
    const editor = new HyperEditor({ ...MEND_DEFAULTS, lambda: LAMBDA }, net);
    const sol = await solveSet(ctx, editor, EDITS);
    console.log(`editor: rows ${(sol.rowsSeconds * 1000).toFixed(0)} ms, solve ${(sol.solveSeconds * 1000).toFixed(0)} ms for ${EDITS.length} edits (${sol.capacity[0].rows} rows per layer, key dim ${sol.capacity[0].keyDim})`);
    const deltas: Deltas = {};
    for (const [name, t] of Object.entries(sol.delta.layers)) if (t.kind === 'dense') deltas[name] = tf.tensor(t.data, t.shape);
    const targetNll = (dl?: Deltas) =>
      EDITS.map((e) => {
        const seq = rowSequence(loaded.tokenizer, loaded.model.config.nPositions, e.prompt, e.target);
        const nll = tf.tidy(() => {
          const t = seq.ids.length;
          const tgt = new Int32Array(t);
          const w = new Float32Array(t);
          seq.positions.forEach((p, k) => ((tgt[p] = seq.targets[k]), (w[p] = 1)));
          return crossEntropy(loaded.model.logits(tf.tensor2d([seq.ids], [1, t], 'int32'), { deltas: dl }), tf.tensor1d(tgt, 'int32'), tf.tensor1d(w));
        });
        const x = nll.dataSync()[0];
        nll.dispose();
        return x;
      });
    const base = targetNll();
    const edited = targetNll(deltas);
    console.log(`target mean NLL per token, base → edited: ${base.map((x, i) => `${x.toFixed(2)}→${edited[i].toFixed(2)}`).join(', ')}`);
    for (let i = 0; i < EDITS.length; i++) expect(edited[i]).toBeLessThan(base[i] - 0.5);
    // the training path's ΔW (float32 M·V) is the editor's solve
    const trained = tf.tidy(() => batchDeltas(net, batch));
    for (const l of LAYERS) {
      const want = sol.delta.layers[`${l}.weight`];
      const scale = Math.max(...Array.from(want.kind === 'dense' ? want.data : [], Math.abs));
      expectClose(trained[`${l}.weight`].dataSync(), want.kind === 'dense' ? want.data : [], { atol: 1e-4 * scale, rtol: 1e-3 });
    }
    tf.dispose([...Object.values(deltas), ...Object.values(trained)]);

    // refinement: a few steps on the values through the same solve lower the targets' NLL further,
    // give the same bytes every time, and leave no tensor behind (KL weight 1: the fixture's small
    // vocabulary, 200 merges, splits each known fact's object into many tokens, all in the KL)
    const refinedEditor = new HyperEditor({ ...MEND_DEFAULTS, lambda: LAMBDA, refineSteps: 8, refineLr: 0.05, refineLocality: 1 }, net);
    const held = tf.memory().numTensors;
    const known = [{ prompt: 'The capital of Italy is', object: 'Rome' }, { prompt: 'The capital of Peru is', object: 'Lima' }];
    const r1 = await solveSet({ ...ctx, preserve: known }, refinedEditor, EDITS);
    const r2 = await solveSet({ ...ctx, preserve: known }, refinedEditor, EDITS);
    expect(tf.memory().numTensors).toBe(held);
    const refinedDeltas: Deltas = {};
    for (const [name, t] of Object.entries(r1.delta.layers)) {
      if (t.kind !== 'dense') throw new Error('dense deltas expected');
      expect(Buffer.from(t.data.buffer).equals(Buffer.from((r2.delta.layers[name] as typeof t).data.buffer))).toBe(true);
      refinedDeltas[name] = tf.tensor(t.data, t.shape);
    }
    const refined = targetNll(refinedDeltas);
    console.log(`target NLL, network → refined: ${edited.map((x, i) => `${x.toFixed(2)}→${refined[i].toFixed(2)}`).join(', ')}`);
    expect(refined.reduce((a, x) => a + x, 0)).toBeLessThan(edited.reduce((a, x) => a + x, 0) - 0.1);
    tf.dispose(Object.values(refinedDeltas));

    // refineBatch below the set's size: the edits take turns in chunks (2 of 4 per step) — a
    // different, still deterministic solve that also lowers the targets' NLL; at the set's size, the same bytes
    const chunked = (batch: number) => solveSet({ ...ctx, preserve: known }, new HyperEditor({ ...MEND_DEFAULTS, lambda: LAMBDA, refineSteps: 8, refineLr: 0.05, refineLocality: 1, refineBatch: batch }, net), EDITS);
    const [c1, c2, whole] = [await chunked(2), await chunked(2), await chunked(EDITS.length)];
    const bytes = (r: typeof r1, name: string) => Buffer.from((r.delta.layers[name] as { data: Float32Array }).data.buffer);
    const chunkedDeltas: Deltas = {};
    for (const name of Object.keys(r1.delta.layers)) {
      expect(bytes(c1, name).equals(bytes(c2, name))).toBe(true);
      expect(bytes(whole, name).equals(bytes(r1, name))).toBe(true);
      expect(bytes(c1, name).equals(bytes(r1, name))).toBe(false);
      const t = c1.delta.layers[name] as { data: Float32Array; shape: number[] };
      chunkedDeltas[name] = tf.tensor(t.data, t.shape);
    }
    // refineKnown bounds the known facts in the KL: none at 0, the same solve as no KL weight at all
    const variant = (extra: Partial<typeof MEND_DEFAULTS>) => solveSet({ ...ctx, preserve: known }, new HyperEditor({ ...MEND_DEFAULTS, lambda: LAMBDA, refineSteps: 8, refineLr: 0.05, refineLocality: 1, ...extra }, net), EDITS);
    const [noFacts, noWeight, oneFact] = [await variant({ refineKnown: 0 }), await variant({ refineLocality: 0 }), await variant({ refineKnown: 1 })];
    // refineKnownBatch below the facts kept: they take turns (one fact per step), a solve of its own
    // that is still deterministic; at the facts' number, the same bytes as every fact in every step
    const [turns1, turns2, allFacts] = [await variant({ refineKnownBatch: 1 }), await variant({ refineKnownBatch: 1 }), await variant({ refineKnownBatch: known.length })];
    for (const name of Object.keys(r1.delta.layers)) {
      expect(bytes(noFacts, name).equals(bytes(noWeight, name))).toBe(true);
      expect(bytes(noFacts, name).equals(bytes(r1, name))).toBe(false);
      expect(bytes(oneFact, name).equals(bytes(r1, name))).toBe(false); // r1's KL had both known facts
      expect(bytes(allFacts, name).equals(bytes(r1, name))).toBe(true);
      expect(bytes(turns1, name).equals(bytes(turns2, name))).toBe(true);
      expect(bytes(turns1, name).equals(bytes(r1, name))).toBe(false);
      expect(bytes(turns1, name).equals(bytes(oneFact, name))).toBe(false);
    }
    const byChunks = targetNll(chunkedDeltas);
    expect(byChunks.reduce((a, x) => a + x, 0)).toBeLessThan(edited.reduce((a, x) => a + x, 0) - 0.1);
    tf.dispose(Object.values(chunkedDeltas));
    trainer.dispose();
    batch.dispose();
    net.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('(e) serialize → parse round-trips the network byte for byte, and refuses another file', () => {
    const net = HyperNet.init({ ...shape, condDim: 16 }, uStats, { seed: 3, logScaleInit: 1.5 });
    tf.tidy(() => (net.tensor(`${LAYERS[0]}.fc2.weight`) as tf.Variable).assign(tf.randomNormal([128, 16], 0, 0.1, 'float32', 5)));
    const bytes = net.serialize({ trainedOn: 'test' });
    const back = HyperNet.parse(bytes, 'editor.safetensors');
    expect(back.shape).toEqual(net.shape);
    expect(back.serialize({ trainedOn: 'test' })).toEqual(bytes);
    expect(back.trainable().map((v) => v.name)).toEqual(net.trainable().map((v) => v.name));
    for (const { name, variable } of net.trainable()) expect(back.tensor(name).dataSync()).toEqual(variable.dataSync());
    back.dispose();
    net.dispose();
    expect(() => HyperNet.parse(serializeSafetensors({ x: { shape: [1], data: Float32Array.from([1]) } }, { format: 'pt' }), 'x.safetensors')).toThrow(/not an editops hypernetwork file/);
    // a tensor of the wrong shape is refused by name
    const bad = parseSafetensors(bytes, 'editor.safetensors');
    const tensors = Object.fromEntries([...bad.tensors].map(([k, t]) => [k, k === `${LAYERS[1]}.fc1.bias` ? { shape: [3], data: Float32Array.from([1, 2, 3]) } : { shape: t.shape, data: t.data }]));
    expect(() => HyperNet.parse(serializeSafetensors(tensors, bad.metadata), 'editor.safetensors')).toThrow(/"h.1.mlp.c_proj.fc1.bias" is missing or not F32 \[128\]/);
  });

  it('(f) rows do not depend on the edits computed alongside, and round-trip through a rows file', async () => {
    const { model, tokenizer } = loaded;
    const lengths = EDITS.map((e) => rowSequence(tokenizer, model.config.nPositions, e.prompt, e.target).ids.length);
    expect(lengths.filter((x) => x === lengths[0]).length).toBeGreaterThan(1); // 'a' is batched with another edit
    const net = HyperNet.init({ ...shape, condDim: model.config.nEmbd }, uStats, { seed: 2 });
    const editor = new HyperEditor(INSTRUCTEDIT_DEFAULTS, net);
    const before = tf.memory().numTensors;
    const alone = await editor.computeRows(ctx, [EDITS[0]]);
    const together = await editor.computeRows(ctx, [EDITS[3], EDITS[1], EDITS[0], EDITS[2]]);
    expect(tf.memory().numTensors).toBe(before);
    const bytes = (id: string, m: typeof alone) => serializeRows(m.get(id)!, { id, method: 'instructedit', specSha256: '0'.repeat(64) });
    expect(bytes('a', together)).toEqual(bytes('a', alone));
    for (const [id, rows] of together) {
      expect(parseRows(bytes(id, together), 'rows.safetensors', id, 'instructedit')).toEqual(rows);
      for (const t of Object.values(rows.tensors)) if (t.dtype === 'F32') expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
    // the instruction enters as a conditioning vector; keys are from the prompt as typed
    const a = together.get('a')!.tensors;
    expect(a.cond.data).toEqual(instructionVector(model, tokenizer, EDITS[0].instruction));
    const plain = hyperRows(model, tokenizer, LAYERS, [EDITS[0]], 0).get('a')!.tensors;
    expect(a[`${LAYERS[0]}.u`].data).toEqual(plain[`${LAYERS[0]}.u`].data);
    expect(plain.cond).toBeUndefined();
    expect(Array.from(instructionVector(model, tokenizer, '')).every((x) => x === 0)).toBe(true);
    // set semantics of the editor: any order gives the same change
    const sol1 = await solveSet(ctx, editor, EDITS);
    const sol2 = await solveSet(ctx, editor, [EDITS[2], EDITS[0], EDITS[3], EDITS[1]], sol1.rows);
    for (const k of Object.keys(sol1.delta.layers)) expect(sol2.delta.layers[k]).toEqual(sol1.delta.layers[k]);
    expect(sol1.capacity.map((c) => c.rows)).toEqual(LAYERS.map(() => [...together.values()].reduce((n, r) => n + r.tensors.positions.shape[0], 0)));
    expect(() => new HyperEditor(MEND_DEFAULTS, net)).toThrow(/trained without instructions/);
    net.dispose();
  });
});
