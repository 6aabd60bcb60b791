/** `edit init` keeps git from rewriting line endings in model folders (their bytes are hashed). */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { edit, expectCode, gitInit, tempDir } from './helpers/cli.js';

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe('edit init and .gitattributes', () => {
  it('adds "models/** -text" once, keeping what the file had', async () => {
    const repo = await tempDir('attrs');
    made.push(repo);
    await gitInit(repo);
    await writeFile(join(repo, '.gitattributes'), '*.png binary');
    const first = await edit(repo, 'init');
    expectCode(first, 0);
    expect(first.stdout).toContain('created  .gitattributes (models/** -text)');
    expect(await readFile(join(repo, '.gitattributes'), 'utf8')).toBe('*.png binary\nmodels/** -text\n');
    const again = await edit(repo, 'init', '--force');
    expectCode(again, 0);
    expect(again.stdout).not.toContain('.gitattributes');
    expect(await readFile(join(repo, '.gitattributes'), 'utf8')).toBe('*.png binary\nmodels/** -text\n');
  });
});

describe('edit init --name', () => {
  it('writes a workflow and next steps that name the model folder it made', async () => {
    const repo = await tempDir('init-name');
    made.push(repo);
    await gitInit(repo);
    const r = await edit(repo, 'init', '--name', 'bot');
    expectCode(r, 0);
    expect(r.stdout).toContain('npx editops plan --model models/bot');
    const wf = await readFile(join(repo, '.github/workflows/edits.yml'), 'utf8');
    for (const cmd of ['validate', 'plan', 'verify', 'apply']) expect(wf).toContain(`npx editops ${cmd} --model models/bot`);
    expect(wf).not.toMatch(/npx editops \w+\b(?! --model models\/bot)/);
    // The workflow's commands work as written on the folder init made.
    expectCode(await edit(repo, 'validate', '--model', 'models/bot'), 0);
    expectCode(await edit(repo, 'plan', '--model', 'models/bot', '--detailed-exitcode'), 0);
  });
});
