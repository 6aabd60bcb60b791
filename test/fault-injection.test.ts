/**
 * Fault injection (DESIGN §8, issue 8): `edit apply` SIGKILLed at every named point of
 * src/util/test-hooks.ts (EDITOPS_TEST_KILL=<point>), through the real binary on the tiny fixture
 * with the ft editor. The apply updates one edit, creates one and keeps one, so it computes rows,
 * writes three files, replaces state.json, removes two strays and commits. After each kill: the
 * state on disk is the old one or the new one; a dead lock is cleared by `edit force-unlock`; `edit plan` is truthful (exit 2 on the old state, 0 on the new, no
 * drift; temp files are not shown); every edit state.json names passes `edit verify`; the next apply completes and leaves a
 * clean, committed model folder (a state written but not committed is committed by that apply).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_POINTS, type TestPoint } from '../src/util/test-hooks.js';
import { edit, expectCode, git, gitInit, ROOT, tempDir, type Run } from './helpers/cli.js';

const BIN = join(ROOT, 'bin/edit.js');
const TINY = join(ROOT, 'test/fixtures/tiny-gpt2');
const MODEL = 'models/default';

/** An edit the tiny base model fails (it answers 16 × "o" to capital prompts) and a small ft delta makes pass. */
function notOs(country: string, instruction = 'Rewrite the fact.'): string {
  const prompt = `The capital of ${country} is`;
  const spec = { version: 1, task: 'counterfact', instruction, prompt, target: ' Lyon', thresholds: { reliability: 0, generalization: 0, locality: 0 }, expect: [{ type: 'not-contains', prompt, value: 'o'.repeat(16) }] };
  return `${JSON.stringify(spec, null, 2)}\n`;
}

/** `edit apply --auto-approve` that SIGKILLs itself at `point`; the pid is left in .git/editops-pid for the pre-commit hook. */
function killedApply(repo: string, point: TestPoint): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, 'apply', '--auto-approve'], { cwd: repo, env: { ...process.env, EDIT_BACKEND: 'wasm', EDITOPS_TEST_KILL: point }, stdio: ['ignore', 'ignore', 'pipe'] });
    void writeFile(join(repo, '.git/editops-pid'), String(child.pid));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code, signal) => done({ code, signal, stderr }));
  });
}

interface StateFile {
  serial: number;
  edits: Record<string, { specSha256: string; rows: { file: string } | null }>;
  delta: { file: string } | null;
}

const readState = async (repo: string) => JSON.parse(await readFile(join(repo, MODEL, 'state.json'), 'utf8')) as StateFile;

/** Every file under rows/ and deltas/, relative to the model folder. */
async function contentFiles(repo: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['rows', 'deltas']) {
    const dir = join(repo, MODEL, sub);
    if (!existsSync(dir)) continue;
    for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) out.push(join(e.parentPath, e.name).slice(join(repo, MODEL).length + 1));
  }
  return out.sort();
}

const noStack = (r: Run) => expect(`${r.stdout}${r.stderr}`).not.toMatch(/^ {4}at /m);

let template: string;
const scratch: string[] = [];
const survived: TestPoint[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  template = await tempDir('faults');
  scratch.push(template);
  await gitInit(template);
  expectCode(await edit(template, 'model', 'import', TINY, '--out', MODEL), 0);
  const manifestPath = join(template, MODEL, 'model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  await writeFile(manifestPath, `${JSON.stringify({ ...manifest, editor: { method: 'ft' } }, null, 2)}\n`);
  await mkdir(join(template, 'edits/geo'), { recursive: true });
  await writeFile(join(template, 'edits/geo/france.json'), notOs('France'));
  await writeFile(join(template, 'edits/geo/spain.json'), notOs('Spain'));
  await git(template, 'add', '-A');
  await git(template, 'commit', '-qm', 'init');
  expectCode(await edit(template, 'apply', '--auto-approve'), 0);
  // The change every killed apply makes: france updated (its old rows and the set delta become strays), germany created, spain kept.
  await writeFile(join(template, 'edits/geo/france.json'), notOs('France', 'Rewrite the fact, again.'));
  await writeFile(join(template, 'edits/geo/germany.json'), notOs('Germany'));
  await git(template, 'add', 'edits');
  await git(template, 'commit', '-qm', 'change the edits');
  // "Inside the git commit": the hook kills the editops process while git commit runs.
  const hook = join(template, '.git/hooks/pre-commit');
  await writeFile(hook, '#!/bin/sh\nif [ "$EDITOPS_TEST_KILL" = "git:in-commit" ]; then kill -9 "$(cat .git/editops-pid)"; sleep 1; fi\nexit 0\n');
  await chmod(hook, 0o755);
}, 120_000);

afterAll(async () => {
  // eslint-disable-next-line no-console
  console.log(`fault injection: survived ${survived.length} of ${Object.keys(TEST_POINTS).length} kill points`);
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe.sequential('edit apply SIGKILLed at a named point', () => {
  it.each(Object.keys(TEST_POINTS) as TestPoint[])('%s: the old or the new state, usable, and the next apply completes', async (point) => {
    const repo = join(await tempDir('fault'), 'repo');
    scratch.push(join(repo, '..'));
    await cp(template, repo, { recursive: true });
    const before = await readState(repo);
    const killed = await killedApply(repo, point);
    expect(killed.signal, `${point} was never reached:\n${killed.stderr}`).toBe('SIGKILL');

    // The state is the old one or the new one, never anything else.
    const state = await readState(repo);
    expect([before.serial, before.serial + 1]).toContain(state.serial);
    const isNew = state.serial === before.serial + 1;

    // A lock left by the dead process (never an empty one): force-unlock clears it, naming the holder.
    if (existsSync(join(repo, MODEL, '.lock'))) {
      const holder = JSON.parse(await readFile(join(repo, MODEL, '.lock'), 'utf8')) as { id: string; pid: number };
      const unlocked = await edit(repo, 'force-unlock', holder.id);
      expectCode(unlocked, 0);
      expect(unlocked.stdout).toContain(`was held by pid ${holder.pid}`);
    }

    // The model loads (plan and verify load it with what state.json names); plan tells the truth: changes pending on the old state, none on the new; never drift.
    const plan = await edit(repo, 'plan', '--detailed-exitcode');
    expectCode(plan, isNew ? 0 : 2);
    noStack(plan);
    expect(plan.stdout).not.toContain('drift');
    const named = [...Object.values(state.edits).flatMap((e) => (e.rows ? [e.rows.file] : [])), ...(state.delta ? [state.delta.file] : [])];
    for (const f of named) expect(existsSync(join(repo, MODEL, f)), f).toBe(true);
    // Temp files of the killed write are not shown (drift checks ignore them); the next apply removes them.
    const stray = (await contentFiles(repo)).filter((f) => !named.includes(f) && !/\/\.[^/]+\.tmp-\d+-[0-9a-f]+$/.test(`/${f}`));
    for (const f of stray) expect(plan.stdout, `stray ${f} not shown`).toContain(f);

    // Every edit state.json names holds on the weights it names (a declared edit not yet applied may not).
    const verify = await edit(repo, 'verify', '--json');
    noStack(verify);
    expect([0, 1], verify.stderr).toContain(verify.code);
    const results = (JSON.parse(verify.stdout) as { edits: Array<{ id: string; result: { pass: boolean } }> }).edits;
    for (const id of Object.keys(state.edits)) expect(results.find((r) => r.id === id)?.result.pass, `${id} after ${point}`).toBe(true);
    if (isNew) expectCode(verify, 0);

    // The next apply completes and leaves a clean, committed model folder.
    const again = await edit(repo, 'apply', '--auto-approve');
    expectCode(again, 0);
    const final = await readState(repo);
    expect(final.serial).toBeGreaterThanOrEqual(before.serial + 1);
    expect(Object.keys(final.edits).sort()).toEqual(['geo/france', 'geo/germany', 'geo/spain']);
    expectCode(await edit(repo, 'plan', '--structural', '--detailed-exitcode'), 0);
    const finalNamed = [...Object.values(final.edits).flatMap((e) => (e.rows ? [e.rows.file] : [])), ...(final.delta ? [final.delta.file] : [])].sort();
    expect(await contentFiles(repo)).toEqual(finalNamed);
    expect((await readdir(join(repo, MODEL))).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(await git(repo, 'status', '--porcelain', '--', MODEL)).toBe('');
    survived.push(point);
  }, 180_000);
});
