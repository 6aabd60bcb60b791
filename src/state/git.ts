/**
 * The only caller of simple-git. Commits exactly the files apply names (what it wrote, and the
 * files the new state depends on: apply/commit-paths.ts), never anything else the user has staged.
 * simple-git drops ambient GIT_* variables unless allowed; the identity ones are allowed so CI can
 * set the author the usual way.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { EditError } from '../errors.js';
import { testKill } from '../util/test-hooks.js';

/** Used only when git has no identity configured (a fresh CI runner, a container). */
export const FALLBACK_IDENTITY = { name: 'editops', email: 'editops@localhost' };

const IDENTITY_ENV = ['GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_AUTHOR_DATE', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL', 'GIT_COMMITTER_DATE'];
const NO_COMMIT_HINT = 'run `git init` (and commit your edits) first, or pass --no-commit and commit yourself';

function git(dir: string, config: string[] = []): SimpleGit {
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new EditError('folder does not exist', { file: dir });
  return simpleGit({ baseDir: dir, config, allowEnvironment: IDENTITY_ENV });
}

function gitError(dir: string, err: unknown, doing: string): EditError {
  const text = (err as Error).message ?? String(err);
  if (/not a git repository/i.test(text)) {
    return new EditError('not inside a git repository', { file: dir, hint: NO_COMMIT_HINT });
  }
  if (/paths are ignored by one of your \.gitignore files/.test(text)) {
    const paths = text.split('\n').slice(1).filter((l) => l !== '' && !l.startsWith('hint:'));
    return new EditError(`cannot commit ${paths.join(', ')}: ignored by .gitignore`, { file: dir, hint: 'editops commits its deltas and state.json: un-ignore them, or pass --no-commit' });
  }
  return new EditError(`git ${doing} failed: ${text.trim().split('\n')[0]}`, { file: dir });
}

export async function isRepo(dir: string): Promise<boolean> {
  try {
    return await git(dir).checkIsRepo();
  } catch {
    return false;
  }
}

/** Top folder of the work tree containing `dir`; EditError with a hint when there is none. */
export async function repoRoot(dir: string): Promise<string> {
  try {
    return (await git(dir).revparse(['--show-toplevel'])).trim();
  } catch (err) {
    if (err instanceof EditError) throw err;
    throw gitError(dir, err, 'rev-parse');
  }
}

/** HEAD's commit sha, or null in a repository without commits. */
export async function headCommit(dir: string): Promise<string | null> {
  await repoRoot(dir);
  try {
    return (await git(dir).revparse(['--verify', '--quiet', 'HEAD'])).trim() || null;
  } catch {
    return null;
  }
}

/** No uncommitted change (staged, unstaged or untracked) under `paths`. */
export async function isClean(dir: string, paths: string[]): Promise<boolean> {
  const root = await repoRoot(dir);
  const specs = paths.map((p) => pathspec(root, dir, p));
  try {
    const out = await git(root).raw(['--literal-pathspecs', 'status', '--porcelain', '--untracked-files=all', '--', ...specs]);
    return out.trim() === '';
  } catch (err) {
    throw gitError(dir, err, 'status');
  }
}

/**
 * Those of `paths` (files, relative to `dir` or absolute) that differ from HEAD — untracked, staged,
 * changed or deleted — returned as given. Files .gitignore keeps out are never listed (git status
 * does not show them), nor are paths that exist neither on disk nor in git.
 */
export async function uncommittedPaths(dir: string, paths: string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const root = await repoRoot(dir);
  const specs = paths.map((p) => pathspec(root, dir, p));
  const listed = new Set<string>();
  // In chunks: an apply over thousands of edit files must not exceed the command-line limit.
  for (let i = 0; i < specs.length; i += 1000) {
    let out: string;
    try {
      out = await git(root).raw(['--literal-pathspecs', 'status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames', '--', ...specs.slice(i, i + 1000)]);
    } catch (err) {
      throw gitError(dir, err, 'status');
    }
    // Entries are "XY <path>\0" (no second path with --no-renames).
    for (const entry of out.split('\0')) if (entry.length > 3) listed.add(entry.slice(3));
  }
  return paths.filter((_, i) => listed.has(specs[i]));
}

/**
 * Fail before apply writes anything if `paths` (files it will write, existing or not) could not be
 * committed afterwards: no repository, a path outside it, or a path .gitignore keeps out.
 */
export async function checkCommittable(repoDir: string, paths: string[]): Promise<void> {
  const root = await repoRoot(repoDir);
  const specs = paths.map((p) => pathspec(root, repoDir, p));
  if (specs.length === 0) return;
  let out: string;
  try {
    // --verbose --non-matching prints every path ("::\t<path>" when not ignored); check-ignore takes plain paths, not pathspec magic.
    out = await git(root).raw(['check-ignore', '--verbose', '--non-matching', '--', ...specs]);
  } catch (err) {
    throw gitError(repoDir, err, 'check-ignore');
  }
  const ignored = out.split('\n').filter((l) => l !== '' && !l.startsWith('::')).map((l) => l.slice(l.indexOf('\t') + 1));
  if (ignored.length > 0) {
    throw new EditError(`cannot commit ${ignored.join(', ')}: ignored by .gitignore`, { file: repoDir, hint: 'editops commits its deltas and state.json: un-ignore them, or pass --no-commit' });
  }
}

/**
 * Stage exactly `paths` (files or folders; additions, changes and deletions) and commit them
 * alone, leaving anything else the user staged as it was. Returns the new commit's sha, or null
 * when those paths hold no change. `author` is "Name <email>".
 */
export async function commitPaths(repoDir: string, paths: string[], message: string, opts: { author?: string } = {}): Promise<string | null> {
  if (paths.length === 0) return null;
  const root = await repoRoot(repoDir);
  const g = git(root);
  const specs = paths.map((p) => pathspec(root, repoDir, p));
  const present = specs.filter((s) => existsSync(resolve(root, s)));
  const absent = specs.filter((s) => !existsSync(resolve(root, s)));
  try {
    if (present.length > 0) await g.raw(['--literal-pathspecs', 'add', '--all', '--', ...present]);
    if (absent.length > 0) await g.raw(['--literal-pathspecs', 'rm', '--cached', '-r', '--quiet', '--ignore-unmatch', '--', ...absent]);
  } catch (err) {
    throw gitError(repoDir, err, 'add');
  }
  testKill('git:staged');

  // Paths git never knew and that do not exist drop out; the rest must differ from HEAD.
  let changed: string;
  try {
    changed = await g.raw(['--literal-pathspecs', 'diff', '--cached', '--name-only', '-z', '--no-renames', '--', ...specs]);
  } catch (err) {
    throw gitError(repoDir, err, 'diff');
  }
  const files = changed.split('\0').filter((l) => l !== '');
  if (files.length === 0) return null;

  const config: string[] = [];
  if (!(await configured(g, 'user.name'))) config.push(`user.name=${FALLBACK_IDENTITY.name}`);
  if (!(await configured(g, 'user.email'))) config.push(`user.email=${FALLBACK_IDENTITY.email}`);
  // `commit -- <files>` (--only): just these, whatever else is in the index.
  const args = ['--literal-pathspecs', 'commit', '--quiet', '-m', message];
  if (opts.author !== undefined) args.push(`--author=${opts.author}`);
  try {
    await git(root, config).raw([...args, '--', ...files]);
    return (await g.revparse(['HEAD'])).trim();
  } catch (err) {
    throw gitError(repoDir, err, 'commit');
  }
}

async function configured(g: SimpleGit, key: string): Promise<boolean> {
  try {
    const v = await g.getConfig(key);
    return typeof v.value === 'string' && v.value.trim() !== '';
  } catch {
    return false;
  }
}

/** A path relative to the repository root ("/"-separated); paths outside the repository are refused. */
function pathspec(root: string, base: string, p: string): string {
  const full = realish(isAbsolute(p) ? p : resolve(base, p));
  const rel = relative(realish(root), full);
  if (rel === '') return '.';
  if (rel.startsWith('..') || isAbsolute(rel)) throw new EditError(`path "${p}" is outside the git repository ${root}`);
  return rel.split('\\').join('/');
}

/** realpath of the nearest existing ancestor, plus the rest: git reports roots with symlinks resolved. */
function realish(path: string): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = dirname(head);
      if (parent === head) return resolve(path);
      tail.push(basename(head));
      head = parent;
    }
  }
}
