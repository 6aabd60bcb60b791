/**
 * The editors section: every registered editor on the same counterfactual edits, in this process on
 * one backend — milliseconds per edit of one set (rows + solve through solveSet, the path apply
 * takes), and meta-training steps per second of the hypernetwork editors (edit train-editor's loop).
 * The hypernetworks are the model folder's trained ones (editor-<method>.safetensors); a method
 * whose file is missing is reported as an error, not measured.
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { EditorContext } from '../src/editor/editor.js';
import { trainEditor } from '../src/eval/meta-train.js';
import { META_DEFAULTS } from '../src/editor/mend/train.js';
import { EDITOR_METHODS, editorSettings, loadNetwork, makeEditor, needsNetwork, type EditorMethod } from '../src/editor/registry.js';
import { editedLayers, MEMIT_DEFAULTS, withRefineSteps } from '../src/editor/settings.js';
import { solveSet } from '../src/editor/set.js';
import { readKeyStats } from '../src/editor/stats.js';
import { parseBench } from '../src/eval/bench.js';
import { loadModelFolder } from '../src/model/folder.js';
import type { BackendName } from '../src/tensor/backend.js';
import { packageRoot } from '../src/util/package-root.js';
import { pickModel } from './edits.js';
import { counterfactualEdits, timed } from './joint.js';
import { memoryNow, sig, stamp, type BenchRecord, type MemoryRecord } from './measure.js';

export interface EditorsSizes {
  /** Edits in the timed set (one solve). */
  edits: number;
  /** Meta-training steps timed (after one untimed step), and edits per step. */
  metaSteps: number;
  metaBatch: number;
  modelDir?: string;
  /** The hypernetwork editors' refinement cut to this many steps (BENCH_QUICK); undefined: the model's own. */
  refineSteps?: number;
}

export async function benchEditors(backend: BackendName, sizes: EditorsSizes, log: (line: string) => void): Promise<{ records: BenchRecord[]; memory: MemoryRecord; errors: string[] }> {
  const start = tf.memory().numTensors;
  const model = pickModel(sizes.modelDir);
  if (model === undefined) throw new Error('no model folder: neither models/default/model.json nor .tmp/mid-model/model.json exists');
  const loaded = await loadModelFolder(model.dir);
  const records: BenchRecord[] = [];
  const errors: string[] = [];
  const record = (metric: string, value: number, unit: string, detail: Record<string, unknown>): BenchRecord => ({ ...stamp(), section: 'editors', metric, backend, value: sig(value), unit, detail: { ...detail, model: model.dir, loadAvg1m: sig(loadavg()[0]) } });
  try {
    const stats = await readKeyStats(model.dir, loaded.manifest);
    if (stats === undefined) throw new Error(`${model.dir}/model.json names no key statistics`);
    const ctx: EditorContext = { model: loaded.model, tokenizer: loaded.tokenizer, layers: loaded.manifest.editableLayers, stats };
    const edits = counterfactualEdits(sizes.edits + 1);
    const warm = edits.pop()!;
    for (const method of EDITOR_METHODS as EditorMethod[]) {
      const file = join(model.dir, `editor-${method}.safetensors`);
      if (needsNetwork(method) && !existsSync(file)) {
        errors.push(`${method}: ${file} is missing (train it with \`edit train-editor --method ${method} --out ${file}\`)`);
        continue;
      }
      const settings = editorSettings(sizes.refineSteps === undefined ? loaded.manifest : withRefineSteps(loaded.manifest, sizes.refineSteps), method);
      const editor = makeEditor(settings, { network: needsNetwork(method) ? await loadNetwork(model.dir, loaded.manifest, method, file) : undefined });
      try {
        const instruction = 'Rewrite the stated fact so the model gives the new object.';
        await solveSet(ctx, editor, [{ ...warm, instruction }]); // compiles kernels, builds caches: not timed
        const r = await timed(() => solveSet(ctx, editor, edits.map((e) => ({ ...e, instruction }))));
        const ms = (r.s * 1000) / edits.length;
        log(`${method}: ${ms.toFixed(0)} ms/edit over a set of ${edits.length} (rows ${r.value.rowsSeconds.toFixed(2)} s, solve ${r.value.solveSeconds.toFixed(2)} s)`);
        records.push(record(`${method} ms/edit`, ms, 'ms/edit', { edits: edits.length, rowsS: sig(r.value.rowsSeconds), solveS: sig(r.value.solveSeconds), cpuS: sig(r.cpuS), joint: editor.joint }));
      } finally {
        editor.dispose?.();
      }
    }
    // meta-training throughput: the train-editor loop, validation off
    const bench = parseBench(JSON.parse(readFileSync(join(packageRoot(), 'data/bench.json'), 'utf8')), 'data/bench.json');
    const layers = editedLayers({ ...MEMIT_DEFAULTS }, loaded.manifest.editableLayers);
    const rates: Record<number, number> = {};
    for (const [method, threads] of [['mend', 1], ['instructedit', 1], ['instructedit', 2]] as const) {
      const seconds: number[] = [];
      const res = await trainEditor({ model: loaded.model, tokenizer: loaded.tokenizer, stats, modelDir: model.dir }, bench, {
        method,
        instruction: method === 'mend' ? 'none' : 'condition',
        tasks: ['counterfact', 'recent', 'convsent', 'zsre'],
        layers,
        steps: sizes.metaSteps + 1,
        batch: sizes.metaBatch,
        rephrase: 2,
        locality: 16,
        hidden: 128,
        seed: 1,
        validateEvery: 1_000_000,
        validationEdits: 0,
        meta: META_DEFAULTS,
      }, { onStep: (p) => seconds.push(p.seconds) }, threads);
      res.net.dispose();
      const timedS = seconds[seconds.length - 1] - seconds[0]; // the first step is the warm-up
      const rate = sizes.metaSteps / timedS;
      if (method === 'instructedit') rates[threads] = rate;
      const over = threads > 1 ? { threads, overOneThread: sig(rate / rates[1]) } : {};
      log(`meta-training ${method}${threads > 1 ? ` on ${threads} threads` : ''}: ${rate.toFixed(2)} steps/s (${sizes.metaBatch} edits per step)${threads > 1 ? `, ${(rate / rates[1]).toFixed(2)}× one thread` : ''}`);
      records.push(record(`meta-training ${method} steps/s${threads > 1 ? `, ${threads} threads` : ''}`, rate, 'steps/s', { steps: sizes.metaSteps, batch: sizes.metaBatch, seconds: sig(timedS), ...over }));
    }
  } finally {
    loaded.model.dispose();
  }
  const left = tf.memory().numTensors - start;
  return { records, errors, memory: { ...stamp(), after: 'editors', backend, ...memoryNow(), leak: left !== 0, leakDetail: `${left} tensors left after the model was disposed` } };
}
