/**
 * Meta-training runs (src/eval/meta-train.ts) on the tiny 2-layer fixture: the Woodbury batch
 * operator against the direct solve, a run resumed from its checkpoint against one that never
 * stopped (same bytes), a checkpoint of other options refused, wrapped rows (network inputs from
 * the wrapped prompt, solve keys from the prompt as typed), task-balanced sampling that never
 * edits one fact twice in a batch, and training with worker threads preparing the batches ahead:
 * the same bytes as on one thread, and a checkpoint resumed on another thread count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { importHfFolder } from '../src/model/hf.js';
import { loadModelFolder, type LoadedModel } from '../src/model/folder.js';
import { computeKeyStats, type KeyStats } from '../src/editor/stats.js';
import { hyperRows, rowName, stackRows, wrapPrompt } from '../src/editor/mend/editor.js';
import { captureRows, rowSequence } from '../src/editor/mend/capture.js';
import { BatchOperator, solveOperator } from '../src/editor/mend/solve.js';
import { sampleStep, trainEditor, trainPools, type TrainEditorOptions } from '../src/eval/meta-train.js';
import { META_DEFAULTS } from '../src/editor/mend/train.js';
import { BENCH_FORMAT, type BenchFile, type BenchRecord, type BenchTask } from '../src/eval/bench.js';
import type { EditRequest } from '../src/editor/editor.js';
import { Rng } from '../src/util/random.js';
import { TINY } from './helpers/golden.js';

const ROOT = join(import.meta.dirname, '..');
const LAYERS = ['h.0.mlp.c_proj', 'h.1.mlp.c_proj'];
const SUBJECTS = ['France', 'Spain', 'Italy', 'Peru', 'Japan', 'Chile', 'Egypt', 'Kenya', 'Norway', 'Brazil'];
const CAPITALS = ['Paris', 'Madrid', 'Rome', 'Lima', 'Tokyo', 'Santiago', 'Cairo', 'Nairobi', 'Oslo', 'Brasilia'];

/** A small benchmark over the fixture's vocabulary: counterfact and convsent records, train and validation. */
function tinyBench(): BenchFile {
  const neighbours = SUBJECTS.map((s, i) => ({ subject: s, relation: 'capital', prompt: `The capital of ${s} is`, answer: ` ${CAPITALS[i]}` }));
  const records: BenchRecord[] = [];
  SUBJECTS.forEach((s, i) => {
    const split = i < 7 ? 'train' : 'validation';
    const locality = neighbours.map((_, k) => k).filter((k) => k !== i);
    records.push({ id: `cf-${i}`, task: 'counterfact', split, subject: s, relation: 'capital', original: ` ${CAPITALS[i]}`, target: ` ${CAPITALS[(i + 1) % 10]}`, prompt: `The capital of ${s} is`, rephrase: [`${s}'s capital is`, `In ${s}, the capital is`], heldOutRephrase: [], portability: [], locality });
    records.push({ id: `cs-${i}`, task: 'convsent', split, subject: s, relation: 'opinion', original: ' nice', target: ' dull', prompt: `I think ${s} is`, rephrase: [`In my view ${s} is`], heldOutRephrase: [], portability: [], locality });
  });
  const info = (instruction: string) => ({ instruction, instructions: [instruction, `${instruction} Now.`], unseenInstruction: `${instruction} Please.`, heldOut: false, records: { train: 7, validation: 3, test: 0 } });
  return {
    format: BENCH_FORMAT,
    version: 1,
    seed: 0,
    notes: {},
    tasks: { counterfact: info('Rewrite the fact.'), convsent: info('Change the opinion.'), recent: info('Add a fact.'), zsre: { ...info('Answer anew.'), heldOut: true } } as Record<BenchTask, BenchFile['tasks'][BenchTask]>,
    neighbours,
    records,
  };
}

describe('meta-training runs on the tiny fixture', () => {
  let dir: string;
  let loaded: LoadedModel;
  let stats: KeyStats;
  const bench = tinyBench();
  const opts = (over: Partial<TrainEditorOptions> = {}): TrainEditorOptions => ({
    method: 'instructedit',
    instruction: 'condition',
    tasks: ['counterfact', 'convsent'],
    layers: LAYERS,
    steps: 4,
    batch: 4,
    rephrase: 2,
    locality: 4,
    hidden: 16,
    seed: 3,
    validateEvery: 2,
    validationEdits: 2,
    meta: META_DEFAULTS,
    ...over,
  });

  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'editops-train-editor-'));
    await importHfFolder(join(ROOT, TINY), join(dir, 'model'), 'tiny');
    loaded = await loadModelFolder(join(dir, 'model'));
    const texts = SUBJECTS.flatMap((s, i) => [`The capital of ${s} is ${CAPITALS[i]}.`, `${CAPITALS[i]} is a city in ${s}, people say.`, `I think ${s} is lovely and old.`]);
    stats = computeKeyStats(loaded.model, loaded.tokenizer, LAYERS, { texts, prompts: ['The capital of Chile is'], promptWeight: 10 });
  });
  afterAll(async () => {
    loaded.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('the batch operator (Woodbury, P = (λC)⁻¹ once) equals the direct solve A⁻¹Kᵀ, with and without the key floor', () => {
    const edits: EditRequest[] = bench.records.slice(0, 6).map((r) => ({ id: r.id, task: r.task, instruction: '', prompt: r.prompt, target: r.target, rephrase: [] }));
    const rows = [...hyperRows(loaded.model, loaded.tokenizer, LAYERS, edits, 0)];
    const relative = (a: Float32Array, b: Float32Array) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        num += (a[i] - b[i]) ** 2;
        den += a[i] ** 2;
      }
      expect(den).toBeGreaterThan(0);
      return Math.sqrt(num / den);
    };
    for (const l of LAYERS) {
      const s = stackRows(rows, l, 0);
      const dk = s.u.length / s.n;
      const direct = (keyFloor: number) => solveOperator(s.keys, s.n, dk, stats.layers[l].second, { lambda: 30, keyFloor });
      const fast = (keyFloor: number) => {
        const op = new BatchOperator(stats.layers[l].second, dk, 30, keyFloor);
        const m = op.operator(s.keys, s.n);
        op.dispose();
        return m;
      };
      for (const keyFloor of [0, 0.1]) expect(relative(direct(keyFloor), fast(keyFloor))).toBeLessThan(1e-3);
      expect(relative(direct(0), direct(0.1)), 'the floor changes the operator').toBeGreaterThan(1e-2);
    }
  });

  it('a run resumed from its checkpoint gives the same network bytes as one that never stopped', async () => {
    const ctx = { model: loaded.model, tokenizer: loaded.tokenizer, stats };
    const straight = await trainEditor(ctx, bench, opts());
    const once = straight.net.serialize();
    straight.net.dispose();
    expect(straight.steps).toBe(4);
    expect(straight.validation.map((v) => v.step)).toEqual([0, 0, 2, 2, 4, 4]);

    const ckpt = join(dir, 'ckpt');
    const first = await trainEditor(ctx, bench, opts({ steps: 2 }), { checkpoint: ckpt, checkpointEvery: 1 });
    first.net.dispose();
    const progress = JSON.parse(await readFile(join(ckpt, 'progress.json'), 'utf8'));
    expect(progress.step).toBe(2);
    const resumed = await trainEditor(ctx, bench, opts(), { checkpoint: ckpt });
    expect(resumed.resumedFrom).toBe(2);
    expect(resumed.steps).toBe(4);
    const twice = resumed.net.serialize();
    resumed.net.dispose();
    expect(Buffer.from(twice).equals(Buffer.from(once))).toBe(true);

    // other options than the checkpoint's: refused, naming the file
    await expect(trainEditor(ctx, bench, opts({ seed: 4 }), { checkpoint: ckpt })).rejects.toThrow(/started with other options/);
    // fewer steps than the checkpoint holds: refused, not passed off as a shorter run
    await expect(trainEditor(ctx, bench, opts({ steps: 3 }), { checkpoint: ckpt })).rejects.toThrow(/the checkpoint is at step 4, past --steps 3/);
  }, 120_000);

  it('on 2 and 3 threads (batches prepared ahead by workers): the bytes of one thread; a checkpoint resumes on any count', async () => {
    const ctx = { model: loaded.model, tokenizer: loaded.tokenizer, stats, modelDir: join(dir, 'model') };
    const run = async (threads: number, o: Partial<TrainEditorOptions> = {}, hooks = {}) => {
      const r = await trainEditor(ctx, bench, opts(o), hooks, threads);
      const bytes = Buffer.from(r.net.serialize());
      r.net.dispose();
      return { r, bytes };
    };
    const one = await run(1);
    const two = await run(2);
    const three = await run(3);
    expect(two.bytes.equals(one.bytes)).toBe(true);
    expect(three.bytes.equals(one.bytes)).toBe(true);
    expect(two.r.validation).toEqual(one.r.validation);
    const ckpt = join(dir, 'ckpt-threads');
    await run(2, { steps: 2 }, { checkpoint: ckpt, checkpointEvery: 1 });
    const resumed = await run(1, {}, { checkpoint: ckpt });
    expect(resumed.r.resumedFrom).toBe(2);
    expect(resumed.bytes.equals(one.bytes)).toBe(true);
    await expect(trainEditor({ ...ctx, modelDir: undefined }, bench, opts(), {}, 2)).rejects.toThrow(/needs the model folder/);
    // stopped after its first step with later steps asked for ahead: it returns, and the workers go quietly
    const stopped = await trainEditor(ctx, bench, opts(), { checkpoint: join(dir, 'ckpt-stop'), stop: () => true }, 3);
    expect(stopped.steps).toBe(1);
    stopped.net.dispose();
  }, 240_000);

  it('wrapped rows: the network reads the wrapped prompt, the solve keys are the prompt as typed', () => {
    const r = bench.records[0];
    const edit: EditRequest = { id: r.id, task: r.task, instruction: 'Rewrite the fact.', prompt: r.prompt, target: r.target, rephrase: [] };
    const plain = hyperRows(loaded.model, loaded.tokenizer, LAYERS, [edit], 0).get(r.id)!.tensors;
    const wrapped = hyperRows(loaded.model, loaded.tokenizer, LAYERS, [edit], 0, true).get(r.id)!.tensors;
    // the template is longer than the fixture's 32-token context: the wrapped sequence keeps its tail
    const seq = rowSequence(loaded.tokenizer, loaded.model.config.nPositions, wrapPrompt(edit.task, edit.instruction, edit.prompt), edit.target, 'x', { keepTail: true });
    expect(seq.ids.length).toBe(loaded.model.config.nPositions - 1);
    const [asWrapped] = captureRows(loaded.model, [seq], LAYERS);
    for (const l of LAYERS) {
      expect(Buffer.from(wrapped[rowName.key(l)].data.buffer).equals(Buffer.from(plain[rowName.u(l)].data.buffer))).toBe(true);
      expect(Buffer.from(wrapped[rowName.u(l)].data.buffer).equals(Buffer.from(asWrapped[l].u.buffer))).toBe(true);
      expect(Buffer.from(wrapped[rowName.u(l)].data.buffer).equals(Buffer.from(plain[rowName.u(l)].data.buffer))).toBe(false);
      const s = stackRows([[r.id, { tensors: wrapped }]], l, 0, true);
      expect(s.keys).toEqual(plain[rowName.u(l)].data);
    }
  });

  it('samples task-balanced batches that never edit one subject and relation twice', () => {
    const pools = new Map<BenchTask, BenchRecord[]>([
      ['counterfact', bench.records.filter((r) => r.task === 'counterfact' && r.split === 'train')],
      ['convsent', bench.records.filter((r) => r.task === 'convsent' && r.split === 'train')],
    ]);
    const tasks = { counterfact: 0, convsent: 0 } as Record<string, number>;
    for (let k = 0; k < 20; k++) {
      const { edits, locality } = sampleStep(bench, pools, { tasks: ['counterfact', 'convsent'], batch: 6, rephrase: 1, locality: 3, method: 'instructedit' }, new Rng(k));
      const facts = edits.map((e) => `${bench.records.find((r) => r.id === e.id)!.subject}/${e.task}`);
      expect(new Set(facts).size).toBe(facts.length);
      for (const e of edits) {
        tasks[e.task]++;
        expect(bench.tasks[e.task as BenchTask].instructions).toContain(e.instruction); // never the unseen one
        expect(e.rephrase.length).toBeLessThanOrEqual(1);
      }
      const edited = new Set(edits.map((e) => bench.records.find((r) => r.id === e.id)!.subject));
      for (const text of locality) expect([...edited].some((s) => text.includes(`of ${s} is`))).toBe(false);
    }
    expect(tasks.counterfact).toBeGreaterThan(30);
    expect(tasks.convsent).toBeGreaterThan(30);
  });

  it('an excluded relation is never edited: its records leave every task\'s pool; a task left empty is refused', () => {
    const all = trainPools(bench, { tasks: ['counterfact', 'convsent'] });
    const held = trainPools(bench, { tasks: ['counterfact'], excludeRelations: ['opinion'] });
    expect(all.get('convsent')!.length).toBe(7);
    expect(held.get('counterfact')).toEqual(all.get('counterfact'));
    expect(() => trainPools(bench, { tasks: ['convsent'], excludeRelations: ['opinion'] })).toThrow('the benchmark has no train records of task "convsent" outside the excluded relations (opinion)');
    const mixed: BenchFile = { ...bench, records: bench.records.map((r, i) => (r.task === 'counterfact' && i % 4 === 0 ? { ...r, relation: 'currency' } : r)) };
    const pools = trainPools(mixed, { tasks: ['counterfact'], excludeRelations: ['currency'] });
    expect(pools.get('counterfact')!.length).toBeGreaterThan(0);
    expect(pools.get('counterfact')!.every((r) => r.relation !== 'currency')).toBe(true);
    expect(mixed.records.some((r) => r.task === 'counterfact' && r.split === 'train' && r.relation === 'currency')).toBe(true);
  });

  it('relation instructions follow each edit\'s task instruction with its relation\'s description, on the same stream of edits', () => {
    const described: BenchFile = { ...bench, relations: { capital: 'The new object is a capital city.', opinion: 'The new object is an opinion.' } };
    const pools = trainPools(described, { tasks: ['counterfact', 'convsent'] });
    const step = { tasks: ['counterfact', 'convsent'] as BenchTask[], batch: 6, rephrase: 1, locality: 3, method: 'instructedit' as const };
    for (let k = 0; k < 5; k++) {
      const plain = sampleStep(described, pools, step, new Rng(k));
      const withRelations = sampleStep(described, pools, { ...step, relationInstructions: true }, new Rng(k));
      expect(withRelations.locality).toEqual(plain.locality);
      withRelations.edits.forEach((e, i) => {
        expect(e).toEqual({ ...plain.edits[i], instruction: `${plain.edits[i].instruction} ${described.relations![e.task === 'convsent' ? 'opinion' : 'capital']}` });
      });
    }
    expect(() => sampleStep(bench, pools, { ...step, relationInstructions: true }, new Rng(0))).toThrow(/the benchmark describes no relation "(capital|opinion)"/);
  });
});
