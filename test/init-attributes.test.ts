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
