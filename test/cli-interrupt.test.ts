/**
 * Ctrl-C (SIGINT) and SIGTERM during `edit apply`, through the real binary: a line saying what was
 * kept, exit 130 / 143, and the lock released. EDITOPS_TEST_PAUSE stops apply at a named point
 * (under the lock before any write; after the state is written, before the commit) so the signal
 * lands there every time. The ft editor: this test is about signals, not about which editor wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');

let repo: string;
const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });
const commits = () => Number(git('rev-list', '--count', 'HEAD').trim());

/** `edit apply --auto-approve` paused at `point`; `signal` is sent once it says so. */
function interruptedApply(point: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; lockWhilePaused: boolean }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, 'apply', '--auto-approve', '--method', 'ft'], { cwd: repo, env: { ...process.env, EDIT_BACKEND: 'wasm', EDITOPS_TEST_PAUSE: point }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let lockWhilePaused = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`apply never reached ${point}:\n${stderr}`));
    }, 100_000);
    child.stdout.resume();
    child.stderr.on('data', (b: Buffer) => {
      const was = stderr.includes(`paused at ${point}`);
      stderr += b.toString();
      if (!was && stderr.includes(`paused at ${point}`)) {
        lockWhilePaused = existsSync(join(repo, 'models/default/.lock'));
        child.kill(signal);
      }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      done({ code, signal: sig, stderr, lockWhilePaused });
    });
  });
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  repo = await mkdtemp(join(tmpdir(), 'editops-interrupt-'));
  git('init', '--quiet');
  git('config', 'user.name', 'Interrupt Test');
  git('config', 'user.email', 'interrupt@example.com');
  git('config', 'commit.gpgsign', 'false');
  execFileSync(process.execPath, [BIN, 'init'], { cwd: repo, encoding: 'utf8' });
  await mkdir(join(repo, 'edits/capitals'), { recursive: true });
  const edit = { version: 1, task: 'counterfact', prompt: 'The capital of Italy is', target: ' Berlin', thresholds: { locality: 0 } };
  await writeFile(join(repo, 'edits/capitals/italy.json'), `${JSON.stringify(edit, null, 2)}\n`);
  git('add', '-A');
  git('commit', '--quiet', '-m', 'scaffold and one edit');
});

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe.sequential('an interrupted apply', () => {
  it('Ctrl-C before any write: "nothing written", exit 130, the lock released', async () => {
    const before = commits();
    const r = await interruptedApply('apply:locked', 'SIGINT');
    expect(r.lockWhilePaused, r.stderr).toBe(true);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('\ninterrupted (SIGINT): nothing written; the model state is as before (the lock is released)\n');
    expect(existsSync(join(repo, 'models/default/.lock'))).toBe(false);
    expect(existsSync(join(repo, 'models/default/state.json'))).toBe(false);
    expect(commits()).toBe(before);
  }, 120_000);

  it('SIGTERM after the state is written: says it was not committed, exit 143, the lock released', async () => {
    const before = commits();
    const r = await interruptedApply('apply:written', 'SIGTERM');
    expect(r.lockWhilePaused, r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toContain('\ninterrupted (SIGTERM): the new state was written to models/default but not committed; review `git status` and commit models/default yourself\n');
    expect(existsSync(join(repo, 'models/default/.lock'))).toBe(false);
    expect(existsSync(join(repo, 'models/default/state.json'))).toBe(true);
    expect(commits()).toBe(before);
    expect(git('status', '--porcelain', '--', 'models/default')).toContain('state.json');
  }, 120_000);
});
