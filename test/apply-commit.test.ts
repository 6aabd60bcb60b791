/**
 * What `edit apply` commits, through the real binary: besides its deltas and state.json, the files
 * the new state depends on (an untracked model folder, the applied edit files in their applied
 * form, a destroyed edit's removal), so a clone plans "No changes" — and never any other change
 * of the user's, staged or not. See src/apply/commit-paths.ts.
 */
import { manifestFileRefs, type ModelManifest } from '../src/model/folder.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFiles, edit, expectCode, git, gitInit, tempDir, writeCapitalEdit } from './helpers/cli.js';

const MODEL = 'models/default';
let scratch: string;
let repo: string;

/** A fresh clone of the test repository plans no change. */
async function expectCloneClean(name: string): Promise<void> {
  const clone = join(scratch, name);
  await git(scratch, 'clone', '--quiet', repo, clone);
  const plan = await edit(clone, 'plan', '--detailed-exitcode');
  expectCode(plan, 0);
  expect(plan.stdout).toContain('No changes. The model matches the edit files');
}

/** model.json and every file it names (a top-level section with a `file`), as paths in the repository. */
async function modelFiles(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(repo, MODEL, 'model.json'), 'utf8')) as ModelManifest;
  return ['model.json', ...manifestFileRefs(manifest).map((r) => r.file)].map((f) => `${MODEL}/${f}`);
}

/** The commit's files outside the model folder, and whether it holds any of the model's own files. */
async function commitSplit(): Promise<{ outside: string[]; modelOwn: string[] }> {
  const files = await commitFiles(repo);
  const own = await modelFiles();
  return { outside: files.filter((f) => !f.split('\t')[1].startsWith(`${MODEL}/`)), modelOwn: files.filter((f) => own.includes(f.split('\t')[1])) };
}

// The editor is pinned: what is tested here is what apply commits, not which editor is the default.
const APPLY = ['apply', '--auto-approve', '--method', 'ft'];

beforeAll(async () => {
  scratch = await tempDir('apply-commit');
  repo = join(scratch, 'repo');
  await gitInit(repo);
  // The user's own history: a tracked file, changed but not staged; a staged new file; an untracked one.
  await writeFile(join(repo, 'README.md'), 'my project\n');
  await git(repo, 'add', 'README.md');
  await git(repo, 'commit', '--quiet', '-m', 'readme');
  expectCode(await edit(repo, 'init'), 0);
  await writeFile(join(repo, 'README.md'), 'my project, changed\n');
  await writeFile(join(repo, 'notes.txt'), 'staged\n');
  await git(repo, 'add', 'notes.txt');
  await writeFile(join(repo, 'scratch.txt'), 'untracked\n');
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.sequential('apply commits what the new state depends on', () => {
  const T = 120_000;
  let userStatus: string[];

  it('in a fresh project, commits the applied edit file and the untracked model folder, nothing else', async () => {
    const italy = await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Berlin');
    const statusOf = async () => (await git(repo, 'status', '--porcelain', '--untracked-files=all')).split('\n').filter(Boolean).sort();
    const before = await statusOf();
    expect(before).toContain(`?? ${MODEL}/model.json`);
    const r = await edit(repo, ...APPLY, '--json');
    expectCode(r, 0);
    const out = JSON.parse(r.stdout) as { applied: boolean; commit: string; touched: string[]; alsoCommitted: string[] };
    expect(out.applied).toBe(true);
    expect(out.alsoCommitted.sort()).toEqual([italy, ...(await modelFiles())].sort());
    expect(out.touched).toContain(`${MODEL}/state.json`);
    expect(await commitFiles(repo)).toEqual([...out.touched, ...out.alsoCommitted].map((f) => `A\t${f}`).sort());
    // Everything else is as the user left it: the unstaged change, the staged file, untracked files (init's included).
    userStatus = await statusOf();
    expect(userStatus).toEqual([' M README.md', '?? .gitattributes', '?? .github/workflows/edits.yml', '?? .gitignore', '?? edits/README.md', '?? scratch.txt', 'A  notes.txt']);
    expect(await git(repo, 'diff', '--cached', '--name-only')).toBe('notes.txt\n');
  }, T);

  it('a clone of that commit plans "No changes"', () => expectCloneClean('clone-1'), T);

  it('commits a changed, tracked edit file in its applied form; an edit left out by --target stays uncommitted', async () => {
    const italy = await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Madrid');
    const spain = await writeCapitalEdit(repo, 'capitals/spain', 'Spain', ' Tokyo');
    const r = await edit(repo, ...APPLY, '--target', 'capitals/italy');
    expectCode(r, 0);
    expect(r.stdout).toContain(`Committed with the new state (files it depends on): ${italy}\n`);
    expect(r.stdout).toMatch(/Apply complete: state serial 2, 3 files written, 2 removed, committed [0-9a-f]{10}\./); // new rows, set delta, state; the old rows and delta
    // The edit file in its applied form; not the edit left out; not the model's files (unchanged since the last commit).
    expect(await commitSplit()).toEqual({ outside: [`M\t${italy}`], modelOwn: [] });
    expect(await git(repo, 'show', `HEAD:${italy}`)).toContain('" Madrid"');
    expect(await git(repo, 'status', '--porcelain', '--', spain)).toBe(`?? ${spain}\n`);
    await unlink(join(repo, spain));
    expect((await git(repo, 'status', '--porcelain', '--untracked-files=all')).split('\n').filter(Boolean).sort()).toEqual(userStatus);
  }, T);

  it('a clone plans "No changes" again', () => expectCloneClean('clone-2'), T);

  it('a removed edit file: plan says what is true (not "not applied"); apply commits the removal', async () => {
    const italy = 'edits/capitals/italy.json';
    await unlink(join(repo, italy));
    const plan = await edit(repo, 'plan', '--detailed-exitcode', '--structural', '--markdown', join(scratch, 'plan.md'));
    expectCode(plan, 2);
    const said = 'The edit file of applied edit capitals/italy was removed: run `edit apply` to remove it from the model, or restore the file to keep it.';
    expect(plan.stdout).toContain(said);
    expect(plan.stdout).not.toMatch(/not applied|new or changed/);
    expect(await readFile(join(scratch, 'plan.md'), 'utf8')).toContain(said);
    // The workflow init wrote says nothing untrue about a pending destroy either.
    expect(await readFile(join(repo, '.github/workflows/edits.yml'), 'utf8')).not.toMatch(/not applied: run/);
    const r = await edit(repo, ...APPLY);
    expectCode(r, 0);
    expect(await commitSplit()).toEqual({ outside: [`D\t${italy}`], modelOwn: [] });
  }, T);

  it('a clone plans "No changes" after the destroy', () => expectCloneClean('clone-3'), T);
});
