import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EditError } from '../src/errors.js';
import { commitPaths, headCommit, isClean, isRepo, repoRoot, uncommittedPaths } from '../src/state/git.js';

let root: string;
let repo: string;
/** A HOME with no git identity: git then has none at all (no system config either). */
let home: string;

/** git with our own environment: no identity, nothing from the machine's config. */
function gitEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1' };
}

function git(...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: repo, env: gitEnv(), encoding: 'utf8' }).trimEnd();
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'editops-git-'));
  home = join(root, 'home');
  repo = join(root, 'repo');
  await mkdir(home);
  await mkdir(repo);
  git('init', '--quiet', '-b', 'main');
  await mkdir(join(repo, 'models/default/deltas'), { recursive: true });
  await writeFile(join(repo, 'models/default/state.json'), '{"serial":0}\n');
  await writeFile(join(repo, 'models/default/deltas/old.safetensors'), 'old');
  await writeFile(join(repo, 'README.md'), 'hello\n');
  git('add', '-A');
  git('commit', '--quiet', '-m', 'initial');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function changedIn(commit: string): string[] {
  return git('show', '--name-status', '--format=', commit).split('\n').filter(Boolean);
}

describe('git', () => {
  it('knows a repository, its root and HEAD', async () => {
    expect(await isRepo(repo)).toBe(true);
    expect(await isRepo(join(repo, 'models/default'))).toBe(true);
    expect(await isRepo(home)).toBe(false);
    expect(await repoRoot(join(repo, 'models/default'))).toBe(repo);
    expect(await headCommit(repo)).toBe(git('rev-parse', 'HEAD'));
  });

  it('commits only the given paths, leaving other changes (even staged ones) alone', async () => {
    await writeFile(join(repo, 'models/default/state.json'), '{"serial":1}\n');
    await writeFile(join(repo, 'models/default/deltas/new.safetensors'), 'new');
    await writeFile(join(repo, 'README.md'), 'changed by the user\n');
    await writeFile(join(repo, 'notes.txt'), 'user file\n');
    git('add', 'notes.txt');
    const before = git('rev-parse', 'HEAD');
    const sha = await commitPaths(join(repo, 'models/default'), ['state.json', 'deltas'], 'edit apply: +new');
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(sha).toBe(git('rev-parse', 'HEAD'));
    expect(git('rev-parse', 'HEAD~1')).toBe(before);
    expect(changedIn(sha!).sort()).toEqual(['A\tmodels/default/deltas/new.safetensors', 'M\tmodels/default/state.json']);
    expect(git('log', '-1', '--format=%s')).toBe('edit apply: +new');
    // The user's own work is as they left it: notes.txt still staged, README.md still modified.
    expect(git('status', '--porcelain').split('\n').sort()).toEqual([' M README.md', 'A  notes.txt']);
    expect(await isClean(repo, ['models/default'])).toBe(true);
    expect(await isClean(repo, ['README.md'])).toBe(false);
  });

  it('returns null when the paths hold no change', async () => {
    await writeFile(join(repo, 'README.md'), 'changed\n');
    expect(await commitPaths(repo, ['models/default/state.json', 'models/default/deltas'], 'nothing')).toBeNull();
    // A path that neither exists nor was ever tracked is not a change either.
    expect(await commitPaths(repo, ['models/default/deltas/never.safetensors'], 'nothing')).toBeNull();
    expect(await commitPaths(repo, [], 'nothing')).toBeNull();
    expect(git('rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('commits deletions, of a file named directly or inside a named folder', async () => {
    await unlink(join(repo, 'models/default/deltas/old.safetensors'));
    const sha = await commitPaths(repo, ['models/default/deltas/old.safetensors'], 'edit apply: -old');
    expect(changedIn(sha!)).toEqual(['D\tmodels/default/deltas/old.safetensors']);

    await writeFile(join(repo, 'models/default/deltas/a.safetensors'), 'a');
    await commitPaths(repo, ['models/default/deltas'], 'add a');
    await unlink(join(repo, 'models/default/deltas/a.safetensors'));
    await writeFile(join(repo, 'models/default/state.json'), '{"serial":2}\n');
    const sha2 = await commitPaths(repo, ['models/default/deltas', 'models/default/state.json'], 'edit apply: -a');
    expect(changedIn(sha2!).sort()).toEqual(['D\tmodels/default/deltas/a.safetensors', 'M\tmodels/default/state.json']);
    // The deltas folder is gone from disk entirely: still fine.
    await rm(join(repo, 'models/default/deltas'), { recursive: true });
    expect(await commitPaths(repo, ['models/default/deltas'], 'nothing')).toBeNull();
  });

  it('sets the author when asked', async () => {
    await writeFile(join(repo, 'models/default/state.json'), '{"serial":3}\n');
    await commitPaths(repo, ['models/default/state.json'], 'msg', { author: 'Ada <ada@example.com>' });
    expect(git('log', '-1', '--format=%an <%ae>')).toBe('Ada <ada@example.com>');
  });

  it('commits with a fallback identity when git has none configured', async () => {
    // simple-git passes HOME through and drops ambient GIT_* variables, so an empty HOME means no identity.
    const saved = { HOME: process.env.HOME, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
    process.env.HOME = home;
    process.env.XDG_CONFIG_HOME = join(home, '.config');
    try {
      expect(() => execFileSync('git', ['config', 'user.name'], { cwd: repo, env: gitEnv() })).toThrow(); // really none
      await writeFile(join(repo, 'models/default/state.json'), '{"serial":4}\n');
      const sha = await commitPaths(repo, ['models/default/state.json'], 'edit apply');
      expect(sha).not.toBeNull();
      expect(git('log', '-1', '--format=%an <%ae>|%cn <%ce>')).toBe('editops <editops@localhost>|editops <editops@localhost>');
      // With an identity in the repository's config, that one is used.
      execFileSync('git', ['config', 'user.name', 'Repo User'], { cwd: repo, env: gitEnv() });
      execFileSync('git', ['config', 'user.email', 'repo@example.com'], { cwd: repo, env: gitEnv() });
      await writeFile(join(repo, 'models/default/state.json'), '{"serial":5}\n');
      await commitPaths(repo, ['models/default/state.json'], 'edit apply');
      expect(git('log', '-1', '--format=%an <%ae>')).toBe('Repo User <repo@example.com>');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('works in a repository without commits', async () => {
    const fresh = join(root, 'fresh');
    await mkdir(fresh);
    execFileSync('git', ['init', '--quiet'], { cwd: fresh, env: gitEnv() });
    expect(await headCommit(fresh)).toBeNull();
    await writeFile(join(fresh, 'state.json'), '{}\n');
    await writeFile(join(fresh, 'other.txt'), 'x\n');
    const sha = await commitPaths(fresh, ['state.json'], 'first');
    expect(sha).toBe(await headCommit(fresh));
    expect(execFileSync('git', ['show', '--name-only', '--format=', 'HEAD'], { cwd: fresh, encoding: 'utf8' }).trim()).toBe('state.json');
  });

  it('refuses paths outside the repository', async () => {
    const err = await commitPaths(repo, ['../home/x'], 'm').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EditError);
    expect((err as EditError).message).toContain('outside the git repository');
  });

  it('outside a repository: an EditError with a hint', async () => {
    for (const call of [() => commitPaths(home, ['x'], 'm'), () => repoRoot(home), () => headCommit(home), () => isClean(home, ['x'])]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EditError);
      expect((err as EditError).message).toBe('not inside a git repository');
      expect((err as EditError).options.hint).toContain('git init');
      expect((err as EditError).options.hint).toContain('--no-commit');
    }
    const missing = await repoRoot(join(root, 'nope')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(EditError);
  });
});

describe('uncommittedPaths', () => {
  it('lists the given paths that differ from HEAD (untracked, changed, staged, deleted), as given', async () => {
    await writeFile(join(repo, 'README.md'), 'changed\n');
    await writeFile(join(repo, 'new.txt'), 'new\n');
    await writeFile(join(repo, 'staged.txt'), 'staged\n');
    git('add', 'staged.txt');
    await unlink(join(repo, 'models/default/deltas/old.safetensors'));
    await writeFile(join(repo, '.gitignore'), '*.bin\n');
    await writeFile(join(repo, 'w.bin'), 'x');
    const asked = ['README.md', 'new.txt', join(repo, 'staged.txt'), 'models/default/deltas/old.safetensors', 'models/default/state.json', 'w.bin', 'never-existed.txt'];
    expect(await uncommittedPaths(repo, asked)).toEqual(['README.md', 'new.txt', join(repo, 'staged.txt'), 'models/default/deltas/old.safetensors']);
    // Relative to a subfolder of the repository, too.
    expect(await uncommittedPaths(join(repo, 'models'), ['default/deltas/old.safetensors', 'default/state.json'])).toEqual(['default/deltas/old.safetensors']);
    expect(await uncommittedPaths(repo, [])).toEqual([]);
  });
});

describe('git and .gitignore', () => {
  it('says which paths .gitignore keeps out', async () => {
    await writeFile(join(repo, '.gitignore'), '*.bin\n');
    await writeFile(join(repo, 'models/default/w.bin'), 'x');
    const err = await commitPaths(repo, ['models/default/w.bin'], 'm').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EditError);
    expect((err as EditError).message).toBe('cannot commit models/default/w.bin: ignored by .gitignore');
    expect((err as EditError).options.hint).toContain('--no-commit');
  });
});
