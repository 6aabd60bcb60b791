/**
 * `edit apply` among other processes and in the git repositories teams have (issue 8, items 3-4),
 * through the real binary on the tiny fixture with the ft editor: two applies at once, plan and
 * verify while an apply holds the lock, then a dirty tree, a detached HEAD, a failing pre-commit
 * hook, core.autocrlf=true and a shallow clone — each as docs/plan-apply.md ("Git") says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFiles, edit, expectCode, git, gitInit, ROOT, tempDir, type Run } from './helpers/cli.js';

const BIN = join(ROOT, 'bin/edit.js');
const TINY = join(ROOT, 'test/fixtures/tiny-gpt2');
const MODEL = 'models/default';

function notOs(country: string): string {
  const prompt = `The capital of ${country} is`;
  const spec = { version: 1, task: 'counterfact', instruction: 'Rewrite the fact.', prompt, target: ' Lyon', thresholds: { reliability: 0, generalization: 0, locality: 0 }, expect: [{ type: 'not-contains', prompt, value: 'o'.repeat(16) }] };
  return `${JSON.stringify(spec, null, 2)}\n`;
}

/** `edit apply --auto-approve` as a child; `pause` stops it at a named point (src/util/test-hooks.ts) until signalled. */
function startApply(repo: string, pause?: string) {
  const child = spawn(process.execPath, [BIN, 'apply', '--auto-approve'], { cwd: repo, env: { ...process.env, EDIT_BACKEND: 'wasm', ...(pause ? { EDITOPS_TEST_PAUSE: pause } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  // Without a pause point nobody awaits it: it must not reject unhandled.
  const paused = pause === undefined ? Promise.resolve() : new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (stderr.includes(`paused at ${pause}`)) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    void done.then((r) => {
      clearInterval(timer);
      reject(new Error(`apply ended before ${pause}:\n${r.stderr}`));
    });
  });
  // A caller that never waits for a pause must not leave an unhandled rejection behind (awaiting callers still see it).
  paused.catch(() => undefined);
  return { child, done, paused };
}

let template: string;
const scratch: string[] = [];

async function copy(name: string): Promise<string> {
  const box = await tempDir(`hygiene-${name}`);
  scratch.push(box);
  const repo = join(box, 'repo');
  await cp(template, repo, { recursive: true });
  return repo;
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  template = await tempDir('hygiene');
  scratch.push(template);
  await gitInit(template);
  expectCode(await edit(template, 'model', 'import', TINY, '--out', MODEL), 0);
  const manifestPath = join(template, MODEL, 'model.json');
  const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  await writeFile(manifestPath, `${JSON.stringify({ ...m, editor: { method: 'ft' } }, null, 2)}\n`);
  await mkdir(join(template, 'edits/geo'), { recursive: true });
  await writeFile(join(template, 'edits/geo/france.json'), notOs('France'));
  await writeFile(join(template, 'README.md'), 'a project\n');
  await git(template, 'add', '-A');
  await git(template, 'commit', '-qm', 'init');
}, 120_000);

afterAll(async () => {
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe('two applies at once', () => {
  it('started together: exactly one wins; the other exits 1 and writes nothing of its own', async () => {
    const repo = await copy('race');
    const [a, b] = await Promise.all([startApply(repo).done, startApply(repo).done]);
    const codes = [a.code, b.code].sort();
    expect(codes, `${a.stderr}\n---\n${b.stderr}`).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(/model is locked by pid \d+ on host \S+ running "edit apply" since \S+|the model state changed while this apply was planning \(another apply finished\); nothing was written/);
    expect(loser.stderr).not.toMatch(/^ {4}at /m);
    expect(Number(await git(repo, 'rev-list', '--count', 'HEAD'))).toBe(2);
    expectCode(await edit(repo, 'plan', '--structural', '--detailed-exitcode'), 0);
  }, 180_000);

  it('one holds the lock: the other exits 1 naming the holder (pid, host, command, start time); plan and verify read the state as it was', async () => {
    const repo = await copy('held');
    const holder = startApply(repo, 'apply:files-written');
    await holder.paused;
    try {
      const lock = JSON.parse(await readFile(join(repo, MODEL, '.lock'), 'utf8')) as { pid: number; host: string; startedAt: string; id: string };
      const second = await edit(repo, 'apply', '--auto-approve');
      expectCode(second, 1);
      expect(second.stderr).toContain(`model is locked by pid ${lock.pid} on host ${lock.host} running "edit apply" since ${lock.startedAt}`);
      expect(second.stderr).toContain(`wait for it to finish; if you are sure it is gone: edit force-unlock ${lock.id}`);
      // The holder has written its new files but not state.json: readers see the old state (the new files as strays).
      const plan = await edit(repo, 'plan', '--detailed-exitcode');
      expectCode(plan, 2);
      expect(plan.stdout).toContain('+ geo/france');
      expect(plan.stderr).toContain(`pid ${lock.pid}`);
      const verify = await edit(repo, 'verify', '--json');
      expect(verify.stderr).toContain(`pid ${lock.pid}`);
      expect((JSON.parse(verify.stdout) as { edits: unknown[] }).edits).toHaveLength(1);
    } finally {
      holder.child.kill('SIGTERM');
    }
    const r = await holder.done;
    expect(r.code).toBe(143);
    expect(existsSync(join(repo, MODEL, '.lock'))).toBe(false);
    // The next apply removes the killed one's files and completes.
    expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
    expectCode(await edit(repo, 'plan', '--structural', '--detailed-exitcode'), 0);
  }, 180_000);
});

describe('git hygiene', () => {
  it('a dirty tree: apply commits only its own paths; staged and unstaged changes of yours stay as they were', async () => {
    const repo = await copy('dirty');
    await writeFile(join(repo, 'README.md'), 'a project, changed\n');
    await writeFile(join(repo, 'notes.txt'), 'staged\n');
    await git(repo, 'add', 'notes.txt');
    await writeFile(join(repo, 'scratch.txt'), 'untracked\n');
    expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
    const files = await commitFiles(repo);
    expect(files.every((f) => /\t(models\/default\/|edits\/geo\/france\.json)/.test(f)), files.join('\n')).toBe(true);
    expect((await git(repo, 'status', '--porcelain')).split('\n').filter(Boolean).sort()).toEqual([' M README.md', '?? scratch.txt', 'A  notes.txt']);
  }, 120_000);

  it('a detached HEAD: apply commits on it; no branch moves', async () => {
    const repo = await copy('detached');
    const branch = (await git(repo, 'rev-parse', '--abbrev-ref', 'HEAD')).trim();
    const before = (await git(repo, 'rev-parse', 'HEAD')).trim();
    await git(repo, 'checkout', '-q', '--detach');
    expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
    expect((await git(repo, 'rev-parse', 'HEAD~1')).trim()).toBe(before);
    expect((await git(repo, 'rev-parse', branch)).trim()).toBe(before);
    expectCode(await edit(repo, 'plan', '--structural', '--detailed-exitcode'), 0);
  }, 120_000);

  it('a failing pre-commit hook: the state is written, apply exits 1 saying it was not committed; the next apply commits it', async () => {
    const repo = await copy('hook');
    const hook = join(repo, '.git/hooks/pre-commit');
    await writeFile(hook, '#!/bin/sh\necho "lint: no" >&2\nexit 1\n');
    await chmod(hook, 0o755);
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 1);
    expect(r.stderr).toContain('the edits were applied (state serial 1 written) but not committed');
    expect(r.stderr).toContain('lint: no');
    expect(r.stderr).not.toMatch(/^ {4}at /m);
    expect(Number(await git(repo, 'rev-list', '--count', 'HEAD'))).toBe(1);
    expectCode(await edit(repo, 'plan', '--detailed-exitcode'), 0);
    await rm(hook);
    const again = await edit(repo, 'apply', '--auto-approve');
    expectCode(again, 0);
    expect(again.stdout).toContain('committed the state (serial 1) an earlier apply wrote but did not commit');
    expect(await git(repo, 'status', '--porcelain', '--', MODEL, 'edits')).toBe('');
  }, 120_000);

  it('core.autocrlf=true: apply commits; a clone converts tokenizer.json to CRLF (its hash fails) unless .gitattributes says models/** -text', async () => {
    const repo = await copy('crlf');
    await git(repo, 'config', 'core.autocrlf', 'true');
    expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
    expectCode(await edit(repo, 'plan', '--detailed-exitcode'), 0);
    const clone = async (name: string) => {
      const dir = join(repo, '..', name);
      await git(join(repo, '..'), 'clone', '-q', '-c', 'core.autocrlf=true', repo, dir);
      return dir;
    };
    // Without the attribute: a clear error naming the file, no stack trace (docs/plan-apply.md, "Git").
    const converted = await edit(await clone('converted'), 'plan', '--structural');
    expectCode(converted, 1);
    expect(converted.stderr).toMatch(/models\/default\/tokenizer\.json: sha256 [0-9a-f]{12}… does not match model\.json/);
    expect(converted.stderr).not.toMatch(/^ {4}at /m);
    // With it: byte for byte, and the clone plans "No changes" and verifies.
    await writeFile(join(repo, '.gitattributes'), 'models/** -text\n');
    await git(repo, 'add', '.gitattributes');
    await git(repo, 'commit', '-qm', 'models byte for byte');
    const kept = await clone('kept');
    expectCode(await edit(kept, 'plan', '--detailed-exitcode'), 0);
    expectCode(await edit(kept, 'verify'), 0);
  }, 120_000);

  it('a shallow clone: apply commits on top of it', async () => {
    const box = await tempDir('hygiene-shallow');
    scratch.push(box);
    const clone = join(box, 'clone');
    await git(box, 'clone', '-q', '--depth', '1', `file://${template}`, clone);
    await git(clone, 'config', 'user.name', 'Shallow');
    await git(clone, 'config', 'user.email', 'shallow@example.com');
    expect((await git(clone, 'rev-parse', '--is-shallow-repository')).trim()).toBe('true');
    expectCode(await edit(clone, 'apply', '--auto-approve'), 0);
    expect(Number(await git(clone, 'rev-list', '--count', 'HEAD'))).toBe(2);
    expectCode(await edit(clone, 'plan', '--structural', '--detailed-exitcode'), 0);
  }, 120_000);
});
