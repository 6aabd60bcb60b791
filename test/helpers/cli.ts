/**
 * Running the real `edit` binary (bin/edit.js → dist/, built by `npx tsc -p tsconfig.json`) and git
 * in temporary folders, for CLI tests that need a project of their own.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

import { withRefineSteps } from '../../src/editor/settings.js';
import type { ModelManifest } from '../../src/model/folder.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/edit.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: { ...process.env, EDIT_BACKEND: 'wasm', ...env }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      done({ code, stdout, stderr });
    });
  });
}

/** `edit <args>` with `cwd` as the working directory. */
export function edit(cwd: string, ...args: string[]): Promise<Run> {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  return run(process.execPath, [BIN, ...args], cwd);
}

/** `edit <args>` in `cwd` with these environment variables set as well. */
export function editWithEnv(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<Run> {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  return run(process.execPath, [BIN, ...args], cwd, env);
}

/** `git <args>` in `cwd`; throws on a non-zero exit. Returns stdout. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('git', args, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Print the whole run when an expectation on its exit code fails. */
export function expectCode(r: Run, code: number): void {
  expect(r.code, `exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(code);
}

/** A new folder under the system's temp folder (the caller removes it). */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `editops-${prefix}-`));
}

/** `git init` with an identity, in `dir` (created if needed). */
export async function gitInit(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '--quiet');
  await git(dir, 'config', 'user.name', 'CLI Test');
  await git(dir, 'config', 'user.email', 'cli@example.com');
  await git(dir, 'config', 'commit.gpgsign', 'false');
}

/** An edit of a country's capital that the shipped ft editor can hold (locality not judged). */
export async function writeCapitalEdit(project: string, id: string, country: string, target: string): Promise<string> {
  const rel = `edits/${id}.json`;
  await mkdir(dirname(join(project, rel)), { recursive: true });
  const spec = { version: 1, task: 'counterfact', subject: country, relation: 'capital', prompt: `The capital of ${country} is`, target, thresholds: { locality: 0 } };
  await writeFile(join(project, rel), `${JSON.stringify(spec, null, 2)}\n`);
  return rel;
}

/** The files a commit added, changed or removed ("M\tpath"), sorted. */
export async function commitFiles(cwd: string, rev = 'HEAD'): Promise<string[]> {
  return (await git(cwd, 'show', '--name-status', '--no-renames', '--format=', rev)).split('\n').filter(Boolean).sort();
}

/** Refinement steps of the hypernetwork editors in tests that walk the loop (the shipped 80 cost ~25 s per apply). */
export const LOOP_REFINE_STEPS = 16;
/** Known facts in those tests' refinement KL (the shipped 1,200: each chunk of them costs a forward to prepare). */
export const LOOP_REFINE_KNOWN = 256;

/**
 * Cut the refinement of the model folder's hypernetwork editors to LOOP_REFINE_STEPS steps and LOOP_REFINE_KNOWN facts (withRefineSteps),
 * for a test about plan/apply/state rather than the editor's quality; a model without one is left as it is.
 */
export async function loopRefinement(modelDir: string): Promise<void> {
  const path = join(modelDir, 'model.json');
  const manifest = JSON.parse(await readFile(path, 'utf8')) as ModelManifest;
  await writeFile(path, `${JSON.stringify(withRefineSteps(manifest, LOOP_REFINE_STEPS, LOOP_REFINE_KNOWN), null, 2)}\n`);
}
