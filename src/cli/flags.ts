import { existsSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { workerCount } from '../util/threads.js';
import { EditError } from '../errors.js';
import { EDITOR_METHODS, needsNetwork, type EditorMethod } from '../editor/settings.js';
import type { BenchFile, BenchTask } from '../eval/bench.js';
import { shellWord } from '../util/format.js';
import { packageRoot } from '../util/package-root.js';
import { findProjectRoot } from '../util/project-root.js';
import type { CommandContext, Flags } from './command.js';

export function stringFlag(ctx: CommandContext, name: string, fallback: string): string;
export function stringFlag(ctx: CommandContext, name: string): string | undefined;
export function stringFlag(ctx: CommandContext, name: string, fallback?: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : fallback;
}

export function numberFlag(ctx: CommandContext, name: string, fallback: number, check: { min?: number; max?: number; integer?: boolean } = {}): number {
  const v = ctx.flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || (check.integer && !Number.isInteger(n)) || (check.min !== undefined && n < check.min) || (check.max !== undefined && n > check.max)) {
    const range = [check.min !== undefined ? `>= ${check.min}` : '', check.max !== undefined ? `<= ${check.max}` : ''].filter(Boolean).join(' and ');
    throw new EditError(`--${name} must be ${check.integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got ${JSON.stringify(v)}`);
  }
  return n;
}

export const MODEL_OPTION: Flags = { model: { type: 'string', short: 'm', value: '<dir>', description: 'the model folder (default: models/default)' } };

/** Read with `stringFlag(ctx, 'dir', 'edits')`. */
export const EDITS_DIR_OPTION: Flags = { dir: { type: 'string', value: '<dir>', description: "the edit files' folder (default: edits)" } };

/** Read with `workersSetting(ctx)`; judging commands size an unset count by their work (model/pool.ts judgeThreads). */
export const WORKERS_OPTION: Flags = {
  workers: { type: 'string', value: '<n|auto>', description: 'threads judging, each with its own copy of the model (default: EDIT_WORKERS, else every core once there are enough prompts); the same results for any n' },
};

export interface WorkersSetting {
  setting: string | undefined;
  /** The name to blame in an error: --workers or EDIT_WORKERS. */
  source: string;
}

/** --workers, else EDIT_WORKERS; a value that is not a thread count is refused here, before anything loads. */
export function workersSetting(ctx: CommandContext): WorkersSetting {
  const flag = stringFlag(ctx, 'workers');
  const w = flag !== undefined ? { setting: flag, source: '--workers' } : { setting: process.env.EDIT_WORKERS, source: 'EDIT_WORKERS' };
  workerCount(w.setting, w.source);
  return w;
}

/** The project root for this command's --model and --dir: the working directory or the nearest folder above it (util/project-root.ts). */
export function projectRoot(ctx: CommandContext): string {
  return findProjectRoot(ctx.cwd, { model: stringFlag(ctx, 'model'), edits: stringFlag(ctx, 'dir') });
}

/**
 * The model folder: --model, else models/default, relative to the project root (commands join it
 * to the root and show it in plans, so an absolute --model is made relative here).
 */
export function modelDir(ctx: CommandContext, root: string): string {
  const dir = stringFlag(ctx, 'model', 'models/default');
  return isAbsolute(dir) ? relative(root, dir) || '.' : dir;
}

/** A repeatable string flag (`--target a --target b`). */
export function listFlag(ctx: CommandContext, name: string): string[] {
  const v = ctx.flags[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** A comma list flag, each item one of `allowed`; the default when the flag is absent. */
export function choiceList<T extends string>(ctx: CommandContext, name: string, allowed: readonly T[], fallback: T[]): T[] {
  const v = stringFlag(ctx, name);
  if (v === undefined) return fallback;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (items.length === 0 || bad.length > 0) throw new EditError(`--${name} ${JSON.stringify(v)}: ${bad.length > 0 ? `unknown ${bad.map((b) => `"${b}"`).join(', ')}; ` : ''}choose from ${allowed.join(', ')}`);
  return [...new Set(items)] as T[];
}

/** Where the benchmark lives in a project (the editops repository builds it with `npm run bench:data`) and in the package. */
export const BENCH_FILE = 'data/bench.json';

/** `--bench` of eval, train-editor and analyze. */
export const BENCH_OPTION = { bench: { type: 'string', value: '<file>', description: `the benchmark file (default: the project's ${BENCH_FILE}, else the one editops ships)` } } as const;

/**
 * The benchmark file: --bench (relative to the project root), else the project's data/bench.json,
 * else the one the package ships, so `edit eval` reproduces the README's numbers in any project.
 */
export function benchPath(ctx: CommandContext, root: string): string {
  const flag = stringFlag(ctx, 'bench');
  if (flag !== undefined) return isAbsolute(flag) ? flag : join(root, flag);
  const own = join(root, BENCH_FILE);
  return existsSync(own) ? own : join(packageRoot(), BENCH_FILE);
}

/** The ` --bench <file>` a recorded command needs to run again: the file named by --bench (from the project root), else nothing. */
export function benchArgument(ctx: CommandContext, root: string, file: string): string {
  return stringFlag(ctx, 'bench') === undefined ? '' : ` --bench ${shellWord(relative(root, file) || file)}`;
}

/** --<name> a,b: relations the benchmark's records of `tasks` have ([] without the flag; an unknown one is refused, naming the known). */
export function relationList(ctx: CommandContext, name: string, bench: BenchFile, tasks: readonly BenchTask[]): string[] {
  if (stringFlag(ctx, name) === undefined) return [];
  const known = [...new Set(bench.records.filter((r) => tasks.includes(r.task)).map((r) => r.relation))].sort();
  return choiceList(ctx, name, known, []);
}

/**
 * --network mend=a.safetensors,instructedit=b.safetensors → [method, absolute path] pairs (eval,
 * analyze). With `bare`, a method alone is allowed (path undefined: model.json's network for it).
 */
export function networkFlag(ctx: CommandContext, bare: boolean): Array<[EditorMethod, string | undefined]> {
  const v = stringFlag(ctx, 'network');
  if (v === undefined) return [];
  const methods = EDITOR_METHODS.filter(needsNetwork);
  return v.split(',').map((x) => x.trim()).filter(Boolean).map((item) => {
    const at = item.indexOf('=');
    const method = (at < 0 ? item : item.slice(0, at)).trim() as EditorMethod;
    if ((at < 0 && !bare) || !methods.includes(method)) throw new EditError(`--network ${JSON.stringify(item)}: write <method>${bare ? '[=<file>]' : '=<file>'} with a hypernetwork method (${methods.join(', ')})`);
    const file = at < 0 ? undefined : item.slice(at + 1).trim();
    return [method, file === undefined ? undefined : isAbsolute(file) ? file : join(ctx.cwd, file)];
  });
}
