/**
 * The project root (src/util/project-root.ts) and a missing edits folder: commands run from a
 * subfolder act on the project above; from outside any project they refuse; a missing edits/ is
 * never "0 edit files valid", and apply refuses to destroy every applied edit because of it unless
 * asked (--allow-destroy-all, or an existing empty edits folder).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../src/errors.js';
import { findProjectRoot } from '../src/util/project-root.js';
import { editErrorOf } from './helpers/errors.js';
import { commitFiles, edit, expectCode, git, gitInit, tempDir, writeCapitalEdit } from './helpers/cli.js';

let scratch: string;
// The editor is pinned: what is tested here is where commands act, not which editor is the default.
const APPLY = ['apply', '--auto-approve', '--method', 'memit'];

beforeAll(async () => {
  scratch = await tempDir('project-root');
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('findProjectRoot', () => {
  it('walks up to the folder holding the model folder, the edits folder or .git, and stops there', async () => {
    const base = join(scratch, 'walk');
    await mkdir(join(base, 'repo/.git'), { recursive: true });
    await mkdir(join(base, 'repo/ml/models/default'), { recursive: true });
    await writeFile(join(base, 'repo/ml/models/default/model.json'), '{}');
    await mkdir(join(base, 'repo/ml/models/default/deltas/capitals'), { recursive: true });
    await mkdir(join(base, 'repo/other/edits/x'), { recursive: true });
    await mkdir(join(base, 'repo/docs/deep'), { recursive: true });
    expect(findProjectRoot(join(base, 'repo/ml'))).toBe(join(base, 'repo/ml'));
    expect(findProjectRoot(join(base, 'repo/ml/models/default/deltas/capitals'))).toBe(join(base, 'repo/ml'));
    expect(findProjectRoot(join(base, 'repo/other/edits/x'))).toBe(join(base, 'repo/other'));
    // An edits/ folder inside a project (docs, examples) does not make a second project: the model folder above wins.
    await mkdir(join(base, 'repo/ml/docs/edits'), { recursive: true });
    expect(findProjectRoot(join(base, 'repo/ml/docs'))).toBe(join(base, 'repo/ml'));
    // No project marker below the repository's top: the top (where .git is), never a folder above it.
    expect(findProjectRoot(join(base, 'repo/docs/deep'))).toBe(join(base, 'repo'));
    // --model and --dir name the markers.
    await mkdir(join(base, 'repo/ml/models/small'), { recursive: true });
    await writeFile(join(base, 'repo/ml/models/small/model.json'), '{}');
    expect(findProjectRoot(join(base, 'repo/ml/models/small'), { model: 'models/small' })).toBe(join(base, 'repo/ml'));
    expect(findProjectRoot(join(base, 'repo/other/edits/x'), { edits: 'x' })).toBe(join(base, 'repo/other/edits'));
  });

  it('outside any project and repository: an EditError naming the folder', async () => {
    const lonely = join(scratch, 'lonely/a/b');
    await mkdir(lonely, { recursive: true });
    // (Only meaningful when the temp folder is not itself inside a project or a git work tree.)
    if (existsSync(join(scratch, '..', '.git')) || existsSync(join(scratch, '..', 'edits'))) return;
    const err = editErrorOf(() => findProjectRoot(lonely));
    expect(err).toBeInstanceOf(EditError);
    expect(err.message).toBe('no editops project here: no models/default/model.json, no edits/ folder and no git repository in this folder or any folder above it');
    expect(err.options.file).toBe(lonely);
  });

  it('outside any project, an absolute model folder that exists is enough (generate, model stats)', async () => {
    const lonely = join(scratch, 'lonely2/a');
    const model = join(scratch, 'elsewhere/models/big');
    await mkdir(lonely, { recursive: true });
    await mkdir(model, { recursive: true });
    if (existsSync(join(scratch, '..', '.git')) || existsSync(join(scratch, '..', 'edits'))) return;
    expect(editErrorOf(() => findProjectRoot(lonely, { model })).message).toMatch(/no editops project here/);
    await writeFile(join(model, 'model.json'), '{}');
    expect(findProjectRoot(lonely, { model })).toBe(lonely);
  });
});

describe.sequential('commands find the project root; a missing edits folder destroys nothing by accident', () => {
  const T = 120_000;
  let repo: string;
  const ITALY = 'edits/capitals/italy.json';
  const head = async () => (await git(repo, 'rev-parse', 'HEAD')).trim();
  const stateOf = async () => JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')) as { serial: number; edits: Record<string, unknown> };

  beforeAll(async () => {
    // The project lives in a subfolder of its repository (a monorepo).
    const top = join(scratch, 'mono');
    await gitInit(top);
    repo = join(top, 'ml');
    await mkdir(repo);
    expectCode(await edit(repo, 'init'), 0);
    await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Berlin');
    expectCode(await edit(repo, ...APPLY), 0);
    expect(await commitFiles(top)).toContain(`A\tml/${ITALY}`);
  }, T);

  it('from a subfolder, validate, plan, show and verify act on the project', async () => {
    for (const sub of ['edits/capitals', 'models/default/deltas']) {
      const cwd = join(repo, sub);
      const [validate, plan, show] = await Promise.all([edit(cwd, 'validate'), edit(cwd, 'plan', '--detailed-exitcode'), edit(cwd, 'show')]);
      expectCode(validate, 0);
      expect(validate.stdout).toMatch(/^1 edit file valid\b/);
      expectCode(plan, 0);
      expect(plan.stdout).toContain('No changes. The model matches the edit files (1 applied).');
      expectCode(show, 0);
      expect(show.stdout).toContain('1 edit applied.');
    }
    const verify = await edit(join(repo, 'edits'), 'verify');
    expectCode(verify, 0);
  }, T);

  it('from a subfolder, apply of a new edit commits it at its place in the project', async () => {
    await writeCapitalEdit(repo, 'capitals/spain', 'Spain', ' Tokyo');
    const r = await edit(join(repo, 'edits/capitals'), ...APPLY);
    expectCode(r, 0);
    expect(r.stdout).toMatch(/\+ capitals\/spain\s+create/);
    // the plan's solve section names the editor --method chose, not the model's
    expect(r.stdout).toContain('Editor memit re-solves');
    expect(await commitFiles(repo)).toContain('A\tml/edits/capitals/spain.json');
    expect(Object.keys((await stateOf()).edits).sort()).toEqual(['capitals/italy', 'capitals/spain']);
  }, T);

  it('from a folder outside any project: validate and apply refuse, nothing changes', async () => {
    const outside = join(scratch, 'outside');
    await mkdir(outside, { recursive: true });
    if (existsSync(join(scratch, '..', '.git'))) return; // the temp folder is inside a repository: not "outside"
    const before = await head();
    for (const args of [['validate'], ['plan'], ['apply', '--auto-approve']]) {
      const r = await edit(outside, ...args);
      expectCode(r, 1);
      expect(r.stderr).toContain('no editops project here');
    }
    expect(await head()).toBe(before);
  }, T);

  it('in a repository without a project: validate does not call zero files valid', async () => {
    const other = join(scratch, 'other-repo');
    await gitInit(other);
    const r = await edit(other, 'validate');
    expectCode(r, 1);
    expect(r.stderr).toContain('there is no edits folder here');
    expect(r.stdout).not.toContain('valid');
  }, T);

  it('edits/ missing: validate fails, plan warns, apply refuses to destroy every applied edit', async () => {
    await rename(join(repo, 'edits'), join(repo, 'edits.moved'));
    const before = await head();
    const serial = (await stateOf()).serial;
    const validate = await edit(repo, 'validate');
    expectCode(validate, 1);
    expect(validate.stderr).toContain('there is no edits folder here');
    const plan = await edit(repo, 'plan', '--structural', '--detailed-exitcode');
    expectCode(plan, 2);
    expect(plan.stderr).toContain('warning: there is no edits folder');
    expect(plan.stderr).toContain('all 2 applied edits plan as destroys, which apply refuses without --allow-destroy-all');
    const apply = await edit(join(repo, 'models'), ...APPLY);
    expectCode(apply, 1);
    expect(apply.stderr).toContain('there is no edits folder, so this apply would destroy 2 applied edits (capitals/italy, capitals/spain); nothing was written');
    expect(apply.stderr).toContain('--allow-destroy-all');
    expect(await head()).toBe(before);
    expect((await stateOf()).serial).toBe(serial);
  }, T);

  it('--allow-destroy-all destroys them and commits the edit files\' removal', async () => {
    const r = await edit(repo, ...APPLY, '--allow-destroy-all');
    expectCode(r, 0);
    expect((await stateOf()).edits).toEqual({});
    const files = await commitFiles(repo);
    expect(files).toContain(`D\tml/${ITALY}`);
    expect(files).toContain('D\tml/edits/capitals/spain.json');
    await rename(join(repo, 'edits.moved'), join(repo, 'edits'));
  }, T);

  it('an existing, empty edits folder is an explicit wish: apply destroys without the flag', async () => {
    expectCode(await edit(repo, ...APPLY), 0);
    expect(Object.keys((await stateOf()).edits)).toHaveLength(2);
    await rm(join(repo, 'edits'), { recursive: true });
    await mkdir(join(repo, 'edits'));
    const plan = await edit(repo, 'plan', '--structural');
    expect(plan.stderr).not.toContain('warning: there is no edits folder');
    const r = await edit(repo, ...APPLY);
    expectCode(r, 0);
    expect((await stateOf()).edits).toEqual({});
  }, T);
});
