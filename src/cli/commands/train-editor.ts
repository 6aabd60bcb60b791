/**
 * `edit train-editor`: meta-trains the `instructedit` (or `mend`) hypernetwork for a model on the
 * benchmark's train split (src/eval/meta-train.ts), checkpointed and resumable. Without --out
 * the network goes into the model folder and model.json names it as the editor, with the task
 * catalogue it was trained on (a new editor is drift until `edit apply --refresh`).
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { EditError } from '../../errors.js';
import { MEMIT_DEFAULTS, editedLayers } from '../../editor/settings.js';
import { readKeyStats } from '../../editor/stats.js';
import { removeCheckpoint, seenInstructions, trainEditor, type TrainEditorOptions, type ValidationResult } from '../../eval/meta-train.js';
import { META_DEFAULTS } from '../../editor/mend/train.js';
import type { InstructionMode } from '../../editor/mend/network.js';
import { BENCH_TASKS, readBench, type BenchTask } from '../../eval/bench.js';
import { loadModelFolder, updateManifest, type TaskEntry } from '../../model/folder.js';
import { judgeThreads, workerBytes } from '../../model/pool.js';
import { initBackend } from '../../tensor/backend.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { shellWord } from '../../util/format.js';
import { sha256 } from '../../util/hash.js';
import type { Command } from '../command.js';
import { BENCH_OPTION, benchArgument, MODEL_OPTION, benchPath, choiceList, modelDir, numberFlag, projectRoot, relationList, stringFlag, workersSetting } from '../flags.js';
import { reportOnInterrupt } from '../interrupt.js';

const METHODS = ['instructedit', 'mend'] as const;
const MODES = ['condition', 'wrap'] as const;

interface Installed {
  method: (typeof METHODS)[number];
  file: string;
  sha256: string;
  /** The λ the network was meta-trained with. */
  lambda: number;
}

/**
 * model.json (raw) with a freshly trained network as its editor: the method's earlier settings
 * (λ, refinement and the like: tuned for apply, e.g. the shipped λ 60 over a network meta-trained
 * at 30) are kept; a method without settings yet solves with the λ it was meta-trained with. A
 * hypernetwork editor it replaces moves to `hypernetworks` so it stays usable with --method; the
 * method leaves `hypernetworks`.
 */
export function installNetwork(raw: Record<string, unknown>, net: Installed, catalogue: TaskEntry[]): void {
  const old = raw.editor as { method?: string; file?: string; sha256?: string; settings?: Record<string, unknown> } | undefined;
  const shelf = { ...((raw.hypernetworks ?? {}) as Record<string, { file: string; sha256: string; settings?: Record<string, unknown> }>) };
  const earlier = old?.method === net.method ? old.settings : shelf[net.method]?.settings;
  if (old?.method !== undefined && old.method !== net.method && old.file !== undefined && old.sha256 !== undefined) {
    shelf[old.method] = { file: old.file, sha256: old.sha256, ...(old.settings === undefined ? {} : { settings: old.settings }) };
  }
  delete shelf[net.method];
  raw.editor = { method: net.method, file: net.file, sha256: net.sha256, settings: { lambda: net.lambda, ...earlier } };
  if (Object.keys(shelf).length > 0) raw.hypernetworks = shelf;
  else delete raw.hypernetworks;
  raw.tasks = catalogue;
}

/** The network file a method gets inside the model folder. */
export function editorFile(method: string): string {
  return `editor-${method}.safetensors`;
}

/** Steps from which an unset worker count prefetches on every core (1.27× on 2 threads at 16 steps of 32 edits, the same network). */
const PREFETCH_FROM_STEPS = 32;

export const trainEditorCommand: Command = {
  name: 'train-editor',
  args: '',
  summary: 'meta-train the instructedit (or mend) hypernetwork editor on the benchmark, checkpointed and resumable',
  options: {
    ...MODEL_OPTION,
    method: { type: 'string', value: '<m>', description: 'instructedit (default) or mend (the same network without instructions)' },
    instruction: { type: 'string', value: '<how>', description: 'instructedit: "condition" (an instruction vector as network input, default) or "wrap" (rows captured on the wrapped prompt)' },
    tasks: { type: 'string', value: '<list>', description: `benchmark tasks to meta-train on, comma-separated (${BENCH_TASKS.join(', ')}; default: all)` },
    'exclude-relations': { type: 'string', value: '<list>', description: 'relations never edited in meta-training, in any task (a held-out relation for `edit eval --relation`)' },
    'relation-instructions': { type: 'boolean', description: "instructedit: each edit's instruction is followed by what its relation's new object is (the benchmark's relation descriptions; `edit eval --instruction relation`)" },
    steps: { type: 'string', value: '<n>', description: 'meta-training steps (default 600)' },
    batch: { type: 'string', value: '<n>', description: 'edits per step, solved jointly (default 32)' },
    seed: { type: 'string', value: '<n>', description: 'seed of the network and of every batch (default 1)' },
    'c-loc': { type: 'string', value: '<w>', description: `weight of KL(base ‖ edited) on locality text (default ${META_DEFAULTS.cLoc})` },
    ...BENCH_OPTION,
    out: { type: 'string', value: '<file>', description: "write the network here and leave model.json alone (default: the model folder's editor-<method>.safetensors, named in model.json)" },
    checkpoint: { type: 'string', value: '<dir>', description: 'checkpoint folder, resumed from when present (default: .ckpt/train-editor-<method> in the project)' },
    workers: { type: 'string', value: '<n|auto>', description: `threads: the others prepare the coming steps' batches, each with its own copy of the model (default: EDIT_WORKERS, else every core from ${PREFETCH_FROM_STEPS} steps on); the same network for any n` },
    json: { type: 'boolean', description: 'print the result (validation per task, timings) as JSON' },
  },
  examples: ['edit train-editor', 'edit train-editor --method mend --tasks counterfact,recent,convsent --out mend-no-zsre.safetensors', 'edit train-editor --steps 800   # resumes the checkpoint and trains on'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`train-editor takes no arguments (got ${JSON.stringify(ctx.args[0])})`);
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const method = choiceList(ctx, 'method', METHODS, ['instructedit'])[0];
    if (stringFlag(ctx, 'method')?.includes(',')) throw new EditError('--method takes one editor');
    const instruction: InstructionMode = method === 'mend' ? 'none' : choiceList(ctx, 'instruction', MODES, ['condition'])[0];
    if (method === 'mend' && stringFlag(ctx, 'instruction') !== undefined) throw new EditError('--instruction is for instructedit; mend trains without instructions');
    const tasks = choiceList<BenchTask>(ctx, 'tasks', BENCH_TASKS, [...BENCH_TASKS]);
    const benchFile = benchPath(ctx, root);
    const { bench, sha256: benchSha } = await readBench(benchFile, ctx.cwd);
    const excludeRelations = relationList(ctx, 'exclude-relations', bench, tasks);
    const relationInstructions = ctx.flags['relation-instructions'] === true;
    if (relationInstructions && method === 'mend') throw new EditError('--relation-instructions is for instructedit; mend trains without instructions');
    if (relationInstructions && bench.relations === undefined) throw new EditError('the benchmark describes no relations', { file: relative(ctx.cwd, benchFile) || benchFile, hint: 'rebuild it with `npm run bench:data`' });
    const outFlag = stringFlag(ctx, 'out');
    // a folder given on the command line is the user's path (from the current folder, as --out); the default lives in the project
    const checkpointFlag = stringFlag(ctx, 'checkpoint');
    const checkpoint = checkpointFlag === undefined ? join(root, '.ckpt', `train-editor-${method}`) : resolve(ctx.cwd, checkpointFlag);

    const { setting, source } = workersSetting(ctx);
    const steps = numberFlag(ctx, 'steps', 600, { integer: true, min: 1 });
    const backend = await initBackend();
    const loaded = await loadModelFolder(join(root, dir));
    // unset: every core once the run is long enough to pay for the workers' start (a model load
    // each), and no more workers than free memory holds
    const threads = judgeThreads(setting, source, steps >= PREFETCH_FROM_STEPS ? Infinity : 0, workerBytes(loaded.model));
    try {
      const stats = await readKeyStats(loaded.dir, loaded.manifest);
      if (stats === undefined) throw new EditError(`meta-training needs the model's key statistics, and ${dir}/model.json names none`, { hint: 'compute them with `edit model stats --text <file>`' });
      const layers = editedLayers({ ...MEMIT_DEFAULTS }, loaded.manifest.editableLayers);
      const opts: TrainEditorOptions = {
        method,
        instruction,
        tasks,
        ...(excludeRelations.length > 0 ? { excludeRelations } : {}),
        ...(relationInstructions ? { relationInstructions } : {}),
        layers,
        steps,
        batch: numberFlag(ctx, 'batch', 32, { integer: true, min: 1, max: 512 }),
        rephrase: 2,
        locality: 16,
        hidden: 128,
        seed: numberFlag(ctx, 'seed', 1, { integer: true, min: 0 }),
        validateEvery: 100,
        validationEdits: 16,
        meta: { ...META_DEFAULTS, cLoc: numberFlag(ctx, 'c-loc', META_DEFAULTS.cLoc, { min: 0 }) },
      };
      ctx.io.err(`backend: ${backend}; meta-training ${method}${method === 'instructedit' ? ` (instructions by ${instruction}${relationInstructions ? ', with relation descriptions' : ''})` : ''} on ${tasks.join(', ')}${excludeRelations.length > 0 ? ` without relation${excludeRelations.length === 1 ? '' : 's'} ${excludeRelations.join(', ')}` : ''}: ${opts.steps} steps of ${opts.batch} edits, layers ${layers.join(', ')}, ${threads} thread${threads === 1 ? '' : 's'}`);
      let saved = 0;
      reportOnInterrupt(() => `the checkpoint ${relative(ctx.cwd, checkpoint) || checkpoint} keeps step ${saved}; run the same command again to resume`);
      const table = (rows: ValidationResult[]) => rows.map((r) => `${r.task} nll ${r.nll.toFixed(2)} kl ${r.kl.toFixed(4)} acc ${(100 * r.accuracy).toFixed(0)}%`).join(' · ');
      const result = await trainEditor({ model: loaded.model, tokenizer: loaded.tokenizer, stats, modelDir: loaded.dir }, bench, opts, {
          checkpoint,
          checkpointEvery: 25,
          onStep: (p) => {
            if (p.step % 25 === 0) saved = p.step;
            if (ctx.flags.json === true) return;
            const line = `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(3)} (nll ${p.nll.toFixed(3)}, kl ${p.kl.toFixed(4)})${p.skipped ? ' skipped: not finite' : ''}  ${(p.seconds / p.step).toFixed(2)} s/step`;
            if (p.step % 25 === 0 || p.skipped || p.step === 1) ctx.io.err(line);
          },
          onValidation: (rows) => {
            if (ctx.flags.json !== true && rows.length > 0) ctx.io.err(`validation @${rows[0].step}: ${table(rows)}`);
          },
        }, threads);
      const provenance = {
        trainedBy: 'edit train-editor',
        command: `edit train-editor --model ${shellWord(dir)} --method ${method}${method === 'instructedit' ? ` --instruction ${instruction}` : ''} --tasks ${tasks.join(',')}${excludeRelations.length > 0 ? ` --exclude-relations ${shellWord(excludeRelations.join(','))}` : ''}${relationInstructions ? ' --relation-instructions' : ''} --steps ${opts.steps} --batch ${opts.batch} --seed ${opts.seed} --c-loc ${opts.meta.cLoc}${benchArgument(ctx, root, benchFile)}`,
        bench: { sha256: benchSha, seed: bench.seed },
        tasks,
        ...(excludeRelations.length > 0 ? { excludeRelations } : {}),
        ...(relationInstructions ? { relationInstructions } : {}),
        steps: opts.steps,
        batch: opts.batch,
        seed: opts.seed,
        threads,
        backend,
        seconds: Math.round(result.seconds),
        skipped: result.skipped,
      };
      const bytes = result.net.serialize({ provenance: JSON.stringify(provenance) });
      result.net.dispose();
      const digest = sha256(bytes);
      let wrote: string;
      if (outFlag !== undefined) {
        const out = isAbsolute(outFlag) ? outFlag : join(ctx.cwd, outFlag);
        await writeFileAtomic(out, bytes);
        wrote = relative(ctx.cwd, out) || out;
      } else {
        const file = editorFile(method);
        await writeFileAtomic(join(loaded.dir, file), bytes);
        const catalogue: TaskEntry[] = tasks.map((t) => ({ name: t, instructions: seenInstructions(bench, t) }));
        await updateManifest(loaded.dir, (raw) => installNetwork(raw, { method, file, sha256: digest, lambda: opts.meta.lambda }, catalogue));
        wrote = `${relative(ctx.cwd, join(loaded.dir, file))} (model.json now names it; run \`edit plan\` to see what changes)`;
      }
      await removeCheckpoint(checkpoint);
      const final = result.validation.filter((v) => v.step === result.steps);
      if (ctx.flags.json === true) ctx.io.out(JSON.stringify({ file: wrote, sha256: digest, provenance, last: result.last, validation: result.validation }, null, 2));
      else ctx.io.out(`trained ${method} in ${result.seconds.toFixed(0)} s (${(result.steps - result.resumedFrom) > 0 ? ((result.steps - result.resumedFrom) / result.seconds).toFixed(2) : '–'} steps/s${result.resumedFrom > 0 ? `, resumed from step ${result.resumedFrom}` : ''}${result.skipped > 0 ? `, ${result.skipped} steps skipped` : ''})\nvalidation: ${table(final)}\nwrote ${wrote}`);
      return 0;
    } finally {
      loaded.model.dispose();
    }
  },
};
