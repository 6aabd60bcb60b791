/**
 * `edit model stats`: an imported model has no key statistics, so the joint editor (the default)
 * refuses with a hint; the command computes them from a text file, names them in model.json, and
 * apply then solves with them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, edit, expectCode, gitInit, tempDir } from './helpers/cli.js';

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe('edit model stats', () => {
  it('computes the key statistics of an imported model, and apply then solves with them', async () => {
    const repo = await tempDir('stats');
    made.push(repo);
    await gitInit(repo);
    expectCode(await edit(repo, 'model', 'import', join(ROOT, 'test/fixtures/tiny-gpt2'), '--name', 'tiny', '--out', 'models/tiny'), 0);
    await mkdir(join(repo, 'edits'), { recursive: true });
    // the random tiny model cannot be taught much: this checks the path, not the edit's quality
    await writeFile(join(repo, 'edits/a.json'), JSON.stringify({ version: 1, task: 'counterfact', instruction: 'Rewrite the fact.', prompt: 'The capital of France is', target: ' Lyon', thresholds: { reliability: 0, generalization: 0, locality: 0, portability: 0 } }));
    const refused = await edit(repo, 'apply', '--model', 'models/tiny', '--auto-approve', '--no-commit');
    expectCode(refused, 1);
    expect(refused.stderr).toContain('the memit editor needs key statistics, and models/tiny/model.json names none');
    expect(refused.stderr).toContain('edit model stats --text <file>');

    expectCode(await edit(repo, 'model', 'stats', '--model', 'models/tiny'), 1);
    await writeFile(join(repo, 'text.txt'), 'The capital of Spain is Madrid.\nParis is in France.\n\nI think Latin is old.\n');
    const made_ = await edit(repo, 'model', 'stats', '--model', 'models/tiny', '--text', 'text.txt', '--prompts', 'text.txt');
    expectCode(made_, 0);
    expect(made_.stdout).toContain('key statistics of h.0.mlp.c_proj, h.1.mlp.c_proj from 3 lines of text + 3 prompts ×5 → models/tiny/stats.safetensors (named in model.json)');
    const manifest = JSON.parse(await readFile(join(repo, 'models/tiny/model.json'), 'utf8')) as { stats?: { file: string; sha256: string; layers: string[] } };
    expect(manifest.stats).toMatchObject({ file: 'stats.safetensors', layers: ['h.0.mlp.c_proj', 'h.1.mlp.c_proj'] });
    expect(existsSync(join(repo, 'models/tiny/stats.safetensors'))).toBe(true);

    const applied = await edit(repo, 'apply', '--model', 'models/tiny', '--auto-approve', '--no-commit');
    expectCode(applied, 0);
    const state = JSON.parse(await readFile(join(repo, 'models/tiny/state.json'), 'utf8')) as { stats: { sha256: string } | null; editor: { method: string } };
    expect(state.editor.method).toBe('memit');
    expect(state.stats?.sha256).toBe(manifest.stats!.sha256);
  });
});
