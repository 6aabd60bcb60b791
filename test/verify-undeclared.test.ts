/**
 * `edit verify` checks the declared edits; an applied edit whose file is gone is still in the
 * weights, so verify says so (and plan shows it as a destroy) instead of passing silently; an edit
 * file changed since applied, or not applied yet, is judged as written, and verify says why it fails.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { edit, expectCode, gitInit, tempDir, writeCapitalEdit } from './helpers/cli.js';

let repo: string;
const T = 180_000;

beforeAll(async () => {
  repo = await tempDir('verify-undeclared');
  await gitInit(repo);
  expectCode(await edit(repo, 'init'), 0);
  await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Berlin');
  await writeCapitalEdit(repo, 'capitals/spain', 'Spain', ' Tokyo');
  expectCode(await edit(repo, 'apply', '--auto-approve', '--method', 'memit'), 0);
}, T);

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

it('verify warns about an applied edit with no edit file; with every file there it does not', async () => {
  const clean = await edit(repo, 'verify');
  expectCode(clean, 0);
  expect(clean.stderr).not.toContain('no edit file');
  await rm(join(repo, 'edits/capitals/spain.json'));
  const r = await edit(repo, 'verify');
  expect(r.stderr).toContain('warning: an applied edit has no edit file (capitals/spain): it is still in the weights and not checked here; `edit plan` shows it as destroyed, `edit apply` removes it');
  expectCode(r, 0);
  const plan = await edit(repo, 'plan', '--detailed-exitcode');
  expectCode(plan, 2);
  expect(plan.stdout).toMatch(/- capitals\/spain\s+destroy/);
}, T);

it('verify says which edit files changed since applied or are not applied yet: their failures are pending changes', async () => {
  const clean = await edit(repo, 'verify');
  expect(clean.stderr).not.toContain('since applied');
  const italy = await readFile(join(repo, 'edits/capitals/italy.json'), 'utf8');
  await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Madrid');
  await writeCapitalEdit(repo, 'capitals/france', 'France', ' Oslo');
  try {
    const r = await edit(repo, 'verify');
    expectCode(r, 1);
    expect(r.stderr).toContain('warning: an edit file has changed since applied (capitals/italy) and an edit is not applied yet (capitals/france): verify judges the files as written on weights that do not carry them; `edit plan` shows the changes, `edit apply` makes them');
    expect(r.stdout).toMatch(/✗ capitals\/italy/);
  } finally {
    await rm(join(repo, 'edits/capitals/france.json'));
    await writeFile(join(repo, 'edits/capitals/italy.json'), italy);
  }
  const back = await edit(repo, 'verify');
  expect(back.stderr).not.toContain('since applied');
}, T);
