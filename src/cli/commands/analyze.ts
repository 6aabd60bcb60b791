/**
 * `edit analyze`: where the editing directions of each task point — InstructEdit's PCA figure on
 * our benchmark. For test edits of every task: the gradient δ at the edit (what MEND reads), and
 * each hypernetwork's value shift v at the same row, with the edit's instruction and without it.
 * One panel per view, a colour per task, and a separation score (between-task share of the
 * plane's variance); SVG for people, JSON for scripts.
 */
import { isAbsolute, join, relative } from 'node:path';
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import type { EditRequest, EditRows } from '../../editor/editor.js';
import { hyperRows, stackRows } from '../../editor/mend/editor.js';
import { instructionMode, type HyperNet } from '../../editor/mend/network.js';
import { loadNetwork } from '../../editor/registry.js';
import { needsNetwork, type EditorMethod } from '../../editor/settings.js';
import { BENCH_TASKS, instructionOf, readBench, pickRecords, type BenchTask, type Split } from '../../eval/bench.js';
import { pca2, renderPcaSvg, separation, type PcaPanel } from '../../eval/pca.js';
import { loadModelFolder, type LoadedModel } from '../../model/folder.js';
import { initBackend } from '../../tensor/backend.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { Rng } from '../../util/random.js';
import type { Command } from '../command.js';
import { BENCH_OPTION, MODEL_OPTION, benchPath, choiceList, modelDir, networkFlag, numberFlag, projectRoot, stringFlag } from '../flags.js';

/** Unit rows of the last prompt token: one direction per edit. */
function directions(values: Float32Array, firstRow: number[], d: number): Float64Array {
  const out = new Float64Array(firstRow.length * d);
  firstRow.forEach((row, i) => {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += values[row * d + j] ** 2;
    const s = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = values[row * d + j] * s;
  });
  return out;
}

/** Index of each edit's first stacked row (its prompt's last token), for rows stacked in order. */
function firstRows(rows: ReadonlyArray<[string, EditRows]>): number[] {
  const out: number[] = [];
  let at = 0;
  for (const [, r] of rows) {
    out.push(at);
    at += r.tensors.positions.shape[0];
  }
  return out;
}

/** Value shifts of `net` at the last prompt token of each edit, on its last layer; `instructed` false: the instruction left out. */
function shifts(loaded: LoadedModel, net: HyperNet, edits: EditRequest[], instructed: boolean): { v: Float64Array; d: number } {
  const mode = instructionMode(net.shape);
  const layer = net.shape.layers[net.shape.layers.length - 1];
  const { condDim, valueDim } = net.shape;
  const wrap = mode === 'wrap' && instructed;
  const rows = [...hyperRows(loaded.model, loaded.tokenizer, net.shape.layers, edits, condDim, wrap)];
  const s = stackRows(rows, layer, condDim, wrap);
  const first = firstRows(rows);
  const v = tf.tidy(() => {
    const cond = condDim === 0 ? undefined : instructed ? tf.tensor2d(s.cond!, [s.n, condDim]) : (tf.zeros([s.n, condDim]) as tf.Tensor2D);
    return net.shift(layer, tf.tensor2d(s.u, [s.n, s.u.length / s.n]), tf.tensor2d(s.delta, [s.n, valueDim]), cond);
  });
  const data = v.dataSync() as Float32Array;
  const out = directions(data, first, valueDim);
  v.dispose();
  return { v: out, d: valueDim };
}

export const analyzeCommand: Command = {
  name: 'analyze',
  args: '',
  summary: "PCA of the editing directions per task (gradients, and each hypernetwork's value shifts with and without the instruction), as SVG and JSON",
  options: {
    ...MODEL_OPTION,
    network: { type: 'string', value: '<m[=file],…>', description: "hypernetworks to draw (default: the model's own editor); a method without =file takes model.json's" },
    task: { type: 'string', value: '<list>', description: `tasks, comma-separated (${BENCH_TASKS.join(', ')}; default: all)` },
    'per-task': { type: 'string', value: '<n>', description: 'edits per task (default 40)' },
    split: { type: 'string', value: '<split>', description: 'benchmark split the edits come from (default test)' },
    seed: { type: 'string', value: '<n>', description: 'seed of the record choice (default 0)' },
    ...BENCH_OPTION,
    out: { type: 'string', value: '<file>', description: 'the SVG to write (default analyze.svg); the data goes beside it as .json' },
  },
  examples: ['edit analyze', 'edit analyze --network instructedit,mend=mend.safetensors --per-task 60 --out pca.svg'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`analyze takes no arguments (got ${JSON.stringify(ctx.args[0])})`);
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const tasks = choiceList<BenchTask>(ctx, 'task', BENCH_TASKS, [...BENCH_TASKS]);
    const split = choiceList<Split>(ctx, 'split', ['train', 'validation', 'test'], ['test'])[0];
    const perTask = numberFlag(ctx, 'per-task', 40, { integer: true, min: 2, max: 500 });
    const seed = numberFlag(ctx, 'seed', 0, { integer: true, min: 0 });
    const { bench } = await readBench(benchPath(ctx, root), ctx.cwd);
    const outFlag = stringFlag(ctx, 'out', 'analyze.svg');
    const svgPath = isAbsolute(outFlag) ? outFlag : join(ctx.cwd, outFlag);
    const jsonPath = svgPath.replace(/\.svg$/i, '') + '.json';

    const backend = await initBackend();
    const loaded = await loadModelFolder(join(root, dir));
    const nets: Array<[EditorMethod, HyperNet]> = [];
    try {
      let wanted = networkFlag(ctx, true);
      if (wanted.length === 0) {
        const own = loaded.manifest.editor?.method as EditorMethod | undefined;
        if (own === undefined || !needsNetwork(own)) throw new EditError(`the model's editor (${own ?? 'memit'}) has no network to analyze`, { hint: 'name one with --network instructedit=<file>, or train one with `edit train-editor`' });
        wanted = [[own, undefined]];
      }
      for (const [method, file] of wanted) nets.push([method, (await loadNetwork(loaded.dir, loaded.manifest, method, file))!]);

      const edits: EditRequest[] = [];
      const groups: string[] = [];
      for (const task of tasks) {
        const pool = bench.records.filter((r) => r.task === task && r.split === split);
        const picked = pickRecords(pool, perTask, new Rng(seed * 1_000_003 + perTask));
        for (const r of picked) {
          edits.push({ id: r.id, task, instruction: instructionOf(bench, r), prompt: r.prompt, target: r.target, rephrase: [] });
          groups.push(task);
        }
      }
      if (edits.length < 3) throw new EditError(`only ${edits.length} edits in split ${split}: nothing to project`);
      const panels: PcaPanel[] = [];
      const panel = (title: string, x: Float64Array, d: number) => {
        const result = pca2(x, edits.length, d);
        panels.push({ title, result, groups, separation: separation(result.points, groups) });
      };
      // the gradient at the edit: what every hypernetwork reads (its last layer, the prompt's last token)
      const layer = nets[0][1].shape.layers[nets[0][1].shape.layers.length - 1];
      const rows = [...hyperRows(loaded.model, loaded.tokenizer, [layer], edits, 0)];
      const s = stackRows(rows, layer, 0);
      const first = firstRows(rows);
      const d = s.delta.length / s.n;
      panel(`gradient δ at the edit (${layer})`, directions(s.delta, first, d), d);
      for (const [method, net] of nets) {
        const mode = instructionMode(net.shape);
        const withIt = shifts(loaded, net, edits, true);
        panel(mode === 'none' ? `${method}: value shift` : `${method}: value shift with instruction`, withIt.v, withIt.d);
        if (mode !== 'none') {
          const without = shifts(loaded, net, edits, false);
          panel(`${method}: without instruction (${mode === 'wrap' ? 'prompt not wrapped' : 'zero vector'})`, without.v, without.d);
        }
      }
      const title = `Editing directions per task: ${edits.length} ${split} edits of ${dir}`;
      await writeFileAtomic(svgPath, renderPcaSvg(title, panels));
      const data = {
        formatVersion: 1,
        backend,
        model: dir,
        split,
        seed,
        edits: edits.map((e, i) => ({ id: e.id, task: groups[i] })),
        panels: panels.map((p) => ({ title: p.title, explained: p.result.explained, separation: p.separation, points: p.result.points })),
      };
      await writeFileAtomic(jsonPath, JSON.stringify(data, null, 1) + '\n');
      for (const p of panels) ctx.io.out(`${p.title}: task separation ${p.separation.toFixed(2)} (PC1 ${(100 * p.result.explained[0]).toFixed(1)}%, PC2 ${(100 * p.result.explained[1]).toFixed(1)}%)`);
      ctx.io.out(`wrote ${relative(ctx.cwd, svgPath) || svgPath} and ${relative(ctx.cwd, jsonPath) || jsonPath}`);
      return 0;
    } finally {
      for (const [, n] of nets) n.dispose();
      loaded.model.dispose();
    }
  },
};
