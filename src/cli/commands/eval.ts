/** `edit eval`: the benchmark report (src/eval): per editor × task × batch size, EasyEdit's numbers and real generation. */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { EditError } from '../../errors.js';
import { EDITOR_METHODS, editorSettings, needsStats, type EditorMethod } from '../../editor/registry.js';
import { readKeyStats } from '../../editor/stats.js';
import { BENCH_TASKS, SPLITS, parseBench, type BenchTask, type Split } from '../../eval/bench.js';
import { EVAL_FORMAT_VERSION, renderReport, type EvalReport } from '../../eval/report.js';
import { runEval, type EvalOptions, type EvalRow } from '../../eval/run-eval.js';
import { loadModelFolder } from '../../model/folder.js';
import { initBackend } from '../../tensor/backend.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { sha256 } from '../../util/hash.js';
import type { Command, CommandContext } from '../command.js';
import { MODEL_OPTION, modelDir, numberFlag, projectRoot, stringFlag } from '../flags.js';

const DEFAULT_SIZES = [1, 10, 100];
const MAX_SIZE = 1000;

/** A comma list flag, each item one of `allowed`; the default when the flag is absent. */
function choiceList<T extends string>(ctx: CommandContext, name: string, allowed: readonly T[], fallback: T[]): T[] {
  const v = stringFlag(ctx, name);
  if (v === undefined) return fallback;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (items.length === 0 || bad.length > 0) throw new EditError(`--${name} ${JSON.stringify(v)}: ${bad.length > 0 ? `unknown ${bad.map((b) => `"${b}"`).join(', ')}; ` : ''}choose from ${allowed.join(', ')}`);
  return [...new Set(items)] as T[];
}

function sizeList(ctx: CommandContext): number[] {
  const v = stringFlag(ctx, 'sizes');
  if (v === undefined) return DEFAULT_SIZES;
  const sizes = v.split(',').map((s) => s.trim());
  const bad = sizes.filter((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > MAX_SIZE);
  if (sizes.length === 0 || bad.length > 0) throw new EditError(`--sizes ${JSON.stringify(v)}: batch sizes are whole numbers from 1 to ${MAX_SIZE}, comma-separated (e.g. 1,10,100)`);
  return [...new Set(sizes.map(Number))];
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
    split: { type: 'string', value: '<list>', description: 'benchmark splits the records come from (train, validation, test; default test)' },
    singles: { type: 'string', value: '<n>', description: 'single-edit sets averaged for batch size 1 (default 10)' },
    neighbours: { type: 'string', value: '<k>', description: 'locality neighbours per edit: facts of subjects the set does not edit (default 5)' },
    seed: { type: 'string', value: '<n>', description: 'seed of the record choice; every editor gets the same records (default 0)' },
    bench: { type: 'string', value: '<file>', description: 'the benchmark file (default data/bench.json; built by `npm run bench:data`)' },
    json: { type: 'boolean', description: 'print the report as versioned JSON instead of the table' },
    out: { type: 'string', value: '<file>', description: 'also write the JSON report to a file (rewritten after every result, so a long run keeps what it measured)' },
  },
  examples: ['edit eval --editor memit,ft --task counterfact --sizes 1,10,100', 'edit eval --editor memit --task counterfact --sizes 300,1000 --split train,validation,test --out eval.json'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`eval takes no arguments (got ${JSON.stringify(ctx.args[0])}); choose with --task and --editor`);
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const benchFlag = stringFlag(ctx, 'bench', 'data/bench.json');
    const benchPath = isAbsolute(benchFlag) ? benchFlag : join(root, benchFlag);
    const outFlag = stringFlag(ctx, 'out');
    const outPath = outFlag === undefined ? undefined : isAbsolute(outFlag) ? outFlag : join(ctx.cwd, outFlag);
    const tasks = choiceList<BenchTask>(ctx, 'task', BENCH_TASKS, [...BENCH_TASKS]);
    const splits = choiceList<Split>(ctx, 'split', SPLITS, ['test']);
    const sizes = sizeList(ctx);
    const seed = numberFlag(ctx, 'seed', 0, { integer: true, min: 0 });
    const singles = numberFlag(ctx, 'singles', 10, { integer: true, min: 1 });
    const neighbours = numberFlag(ctx, 'neighbours', 5, { integer: true, min: 0 });

    let benchBytes: Buffer;
    try {
      benchBytes = await readFile(benchPath);
    } catch (err) {
      throw new EditError(`cannot read the benchmark: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: relative(ctx.cwd, benchPath) || benchPath, hint: 'build it with `npm run bench:data`, or name one with --bench' });
    }
    let benchJson: unknown;
    try {
      benchJson = JSON.parse(benchBytes.toString('utf8'));
    } catch (err) {
      throw new EditError(`not valid JSON: ${(err as Error).message}`, { file: benchPath });
    }
    const bench = parseBench(benchJson, benchPath);

    const backend = await initBackend();
    const loaded = await loadModelFolder(join(root, dir));
    try {
      const editors = choiceList<EditorMethod>(ctx, 'editor', EDITOR_METHODS, [editorSettings(loaded.manifest).method]);
      const stats = editors.some(needsStats) ? await readKeyStats(join(root, dir), loaded.manifest) : undefined;
      const options: EvalOptions = { editors, tasks, sizes, splits, seed, singles, neighbours };
      const report: EvalReport = {
        formatVersion: EVAL_FORMAT_VERSION,
        backend,
        model: dir,
        command: `edit eval --model ${dir} --editor ${editors.join(',')} --task ${tasks.join(',')} --sizes ${sizes.join(',')} --split ${splits.join(',')} --seed ${seed} --singles ${singles} --neighbours ${neighbours}`,
        bench: { file: relative(root, benchPath) || benchPath, sha256: sha256(benchBytes), seed: bench.seed },
        options,
        editors: Object.fromEntries(editors.map((m) => [m, editorSettings(loaded.manifest, m)])),
        results: [],
      };
      const json = () => JSON.stringify(report, null, 2) + '\n';
      const onRow = async (row: EvalRow) => {
        report.results.push(row);
        if (ctx.flags.json !== true) ctx.io.err(`done: ${row.editor} ${row.task} N=${row.size} (rows ${row.seconds.rowsPerEdit.toFixed(2)} s/edit, solve ${row.seconds.solvePerSet.toFixed(2)} s, measured in ${row.seconds.measurePerSet.toFixed(1)} s per set)`);
        if (outPath !== undefined) await writeFileAtomic(outPath, json());
      };
      const progress = ctx.flags.json === true || !ctx.io.tty ? undefined : (m: string) => ctx.io.err(m);
      await runEval(loaded, stats, bench, options, onRow, progress);
      ctx.io.out(ctx.flags.json === true ? json() : renderReport(report));
      return 0;
    } finally {
      loaded.model.dispose();
    }
  },
};
