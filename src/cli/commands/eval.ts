/** `edit eval`: the benchmark report (src/eval): per editor × task × batch size, EasyEdit's numbers and real generation. */
import { isAbsolute, join, relative } from 'node:path';
import { EditError } from '../../errors.js';
import { EDITOR_METHODS, editorSettings, needsStats, type EditorMethod } from '../../editor/registry.js';
import { readKeyStats } from '../../editor/stats.js';
import { BENCH_TASKS, SPLITS, readBench, type BenchTask, type InstructionChoice, type Split } from '../../eval/bench.js';
import { EVAL_FORMAT_VERSION, renderReport, type EvalReport } from '../../eval/report.js';
import { evalSettings, runEval, type EvalOptions, type EvalRow, type PromptView } from '../../eval/run-eval.js';
import { loadModelFolder } from '../../model/folder.js';
import { initBackend } from '../../tensor/backend.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { shellWord } from '../../util/format.js';
import type { Command, CommandContext } from '../command.js';
import { BENCH_OPTION, benchArgument, benchPath, choiceList, MODEL_OPTION, modelDir, networkFlag, numberFlag, projectRoot, relationList, stringFlag, WORKERS_OPTION, workersSetting } from '../flags.js';
import { JudgingThreads } from '../judging.js';

const DEFAULT_SIZES = [1, 10, 100];
const MAX_SIZE = 1000;

function sizeList(ctx: CommandContext): number[] {
  const v = stringFlag(ctx, 'sizes');
  if (v === undefined) return DEFAULT_SIZES;
  const sizes = v.split(',').map((s) => s.trim());
  const bad = sizes.filter((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > MAX_SIZE);
  if (sizes.length === 0 || bad.length > 0) throw new EditError(`--sizes ${JSON.stringify(v)}: batch sizes are whole numbers from 1 to ${MAX_SIZE}, comma-separated (e.g. 1,10,100)`);
  return [...new Set(sizes.map(Number))];
}

/** --settings lambda=20,preserveWeight=1 → numbers by name. */
function settingsFlag(ctx: CommandContext): Record<string, number> {
  const v = stringFlag(ctx, 'settings');
  const out: Record<string, number> = {};
  if (v === undefined) return out;
  for (const item of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([A-Za-z][A-Za-z0-9]*)=(-?[0-9.]+(?:e-?[0-9]+)?)$/.exec(item);
    if (m === null || !Number.isFinite(Number(m[2]))) throw new EditError(`--settings ${JSON.stringify(item)}: write <name>=<number>, comma-separated`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

export const evalCommand: Command = {
  name: 'eval',
  args: '',
  summary: 'benchmark editors: Reliability / Generalization / Locality / Portability per task and batch size, teacher-forced and on real generation',
  options: {
    ...MODEL_OPTION,
    editor: { type: 'string', value: '<list>', description: `editors to compare, comma-separated (${EDITOR_METHODS.join(', ')}; default: the model's editor)` },
    task: { type: 'string', value: '<list>', description: `benchmark tasks, comma-separated (${BENCH_TASKS.join(', ')}; default: all)` },
    sizes: { type: 'string', value: '<list>', description: `edits solved together per set, comma-separated, up to ${MAX_SIZE} (default ${DEFAULT_SIZES.join(',')})` },
    relation: { type: 'string', value: '<list>', description: 'only records of these relations (e.g. one a network never edited: `train-editor --exclude-relations`)' },
    split: { type: 'string', value: '<list>', description: 'benchmark splits the records come from (train, validation, test; default test)' },
    singles: { type: 'string', value: '<n>', description: 'single-edit sets averaged for batch size 1 (default 10)' },
    neighbours: { type: 'string', value: '<k>', description: 'locality neighbours per edit: facts of subjects the set does not edit (default 5)' },
    seed: { type: 'string', value: '<n>', description: 'seed of the record choice; every editor gets the same records (default 0)' },
    ...BENCH_OPTION,
    network: { type: 'string', value: '<m=file,…>', description: "hypernetwork files to use instead of model.json's, per method (e.g. mend=mend.safetensors,instructedit=ie.safetensors)" },
    settings: { type: 'string', value: '<k=v,…>', description: "numeric editor settings over model.json's for this run (e.g. lambda=20,preserveWeight=1)" },
    instruction: { type: 'string', value: '<which>', description: "the instruction edits carry: seen (the task's default, default), unseen (one meta-training never showed) or relation (the default, then what the edit's relation's new object is)" },
    view: { type: 'string', value: '<how>', description: "measure prompts as typed (default) or wrapped in InstructEdit's template (the paper's view)" },
    json: { type: 'boolean', description: 'print the report as versioned JSON instead of the table' },
    out: { type: 'string', value: '<file>', description: 'also write the JSON report to a file (rewritten after every result, so a long run keeps what it measured)' },
    ...WORKERS_OPTION,
  },
  examples: ['edit eval --editor memit,ft --task counterfact --sizes 1,10,100', 'edit eval --editor memit --task counterfact --sizes 300,1000 --split train,validation,test --out eval.json'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`eval takes no arguments (got ${JSON.stringify(ctx.args[0])}); choose with --task and --editor`);
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const benchFile = benchPath(ctx, root);
    const outFlag = stringFlag(ctx, 'out');
    const outPath = outFlag === undefined ? undefined : isAbsolute(outFlag) ? outFlag : join(ctx.cwd, outFlag);
    const tasks = choiceList<BenchTask>(ctx, 'task', BENCH_TASKS, [...BENCH_TASKS]);
    const splits = choiceList<Split>(ctx, 'split', SPLITS, ['test']);
    const sizes = sizeList(ctx);
    const seed = numberFlag(ctx, 'seed', 0, { integer: true, min: 0 });
    const singles = numberFlag(ctx, 'singles', 10, { integer: true, min: 1 });
    const neighbours = numberFlag(ctx, 'neighbours', 5, { integer: true, min: 0 });
    const instruction = choiceList<InstructionChoice>(ctx, 'instruction', ['seen', 'unseen', 'relation'], ['seen'])[0];
    const view = choiceList<PromptView>(ctx, 'view', ['typed', 'wrapped'], ['typed'])[0];
    const networks = Object.fromEntries(networkFlag(ctx, false)) as Partial<Record<EditorMethod, string>>;
    const overrides = settingsFlag(ctx);
    const workers = workersSetting(ctx);

    const { bench, sha256: benchSha } = await readBench(benchFile, ctx.cwd);
    const relations = relationList(ctx, 'relation', bench, tasks);

    const backend = await initBackend();
    const loaded = await loadModelFolder(join(root, dir));
    try {
      const editors = choiceList<EditorMethod>(ctx, 'editor', EDITOR_METHODS, [editorSettings(loaded.manifest).method]);
      const stats = editors.some(needsStats) ? await readKeyStats(join(root, dir), loaded.manifest) : undefined;
      // recorded relative to the project, as the command line beside them is: a result file names no machine path
      const recordedNetworks = Object.fromEntries(Object.entries(networks).map(([m, f]) => [m, relative(root, f)])) as Partial<Record<EditorMethod, string>>;
      const options: EvalOptions = { editors, tasks, ...(relations.length > 0 ? { relations } : {}), sizes, splits, seed, singles, neighbours, instruction, view, ...(Object.keys(networks).length > 0 ? { networks } : {}), ...(Object.keys(overrides).length > 0 ? { overrides } : {}) };
      const report: EvalReport = {
        formatVersion: EVAL_FORMAT_VERSION,
        backend,
        model: dir,
        command: `edit eval --model ${shellWord(dir)} --editor ${editors.join(',')} --task ${tasks.join(',')}${relations.length > 0 ? ` --relation ${shellWord(relations.join(','))}` : ''} --sizes ${sizes.join(',')} --split ${splits.join(',')} --seed ${seed} --singles ${singles} --neighbours ${neighbours}${instruction === 'seen' ? '' : ` --instruction ${instruction}`}${view === 'typed' ? '' : ` --view ${view}`}${Object.keys(overrides).length === 0 ? '' : ` --settings ${Object.entries(overrides).map(([k, v]) => `${k}=${v}`).join(',')}`}${Object.keys(networks).length === 0 ? '' : ` --network ${shellWord(Object.entries(recordedNetworks).map(([m, f]) => `${m}=${f}`).join(','))}`}${benchArgument(ctx, root, benchFile)}`,
        bench: { file: relative(root, benchFile) || benchFile, sha256: benchSha, seed: bench.seed },
        options: { ...options, ...(options.networks === undefined ? {} : { networks: recordedNetworks }) },
        editors: Object.fromEntries(editors.map((m) => [m, evalSettings(loaded.manifest, m, overrides)])),
        results: [],
      };
      const json = () => JSON.stringify(report, null, 2) + '\n';
      const onRow = async (row: EvalRow) => {
        report.results.push(row);
        if (ctx.flags.json !== true) ctx.io.err(`done: ${row.editor} ${row.task} N=${row.size} (rows ${row.seconds.rowsPerEdit.toFixed(2)} s/edit, solve ${row.seconds.solvePerSet.toFixed(2)} s, measured in ${row.seconds.measurePerSet.toFixed(1)} s per set)`);
        if (outPath !== undefined) await writeFileAtomic(outPath, json());
      };
      const progress = ctx.flags.json === true || !ctx.io.tty ? undefined : (m: string) => ctx.io.err(m);
      // about ten measured prompts per edit (its forms, neighbours, follow-ups), edited and base
      const edits = editors.length * tasks.length * sizes.reduce((n, k) => n + (k === 1 ? singles : k), 0);
      const threads = new JudgingThreads(ctx.io, workers, join(root, dir), loaded.model, ctx.flags.json === true);
      try {
        await runEval(loaded, stats, bench, options, onRow, progress, await threads.for(10 * edits));
      } finally {
        await threads.close();
      }
      ctx.io.out(ctx.flags.json === true ? json() : renderReport(report));
      return 0;
    } finally {
      loaded.model.dispose();
    }
  },
};
