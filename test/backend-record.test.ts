/** apply records the backend it judged on; verify says when it judges on another (greedy ties can differ). */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { edit } from './helpers/cli.js';

const made: string[] = [];

afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe('the backend apply judged on', () => {
  it('is recorded in state.json, and verify warns when it runs on another', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'editops-backend-'));
    made.push(repo);
    expect((await edit(repo, 'init', '--force')).code).toBe(0);
    const file = join(repo, 'edits/capitals/france.json');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify({ version: 1, task: 'counterfact', subject: 'France', relation: 'capital', prompt: 'The capital of France is', target: ' Lyon' }));
    const applied = await edit(repo, 'apply', '--auto-approve', '--no-commit');
    expect(applied.code, applied.stderr).toBe(0);
    const statePath = join(repo, 'models/default/state.json');
    const state = JSON.parse(await readFile(statePath, 'utf8')) as { backend?: string };
    expect(state.backend).toBe('wasm');
    const same = await edit(repo, 'verify');
    expect(same.code).toBe(0);
    expect(same.stderr).not.toContain('warning: the edits were applied');
    // as if applied on a machine where tfjs-node installed
    await writeFile(statePath, JSON.stringify({ ...state, backend: 'node' }, null, 2));
    const other = await edit(repo, 'verify');
    expect(other.code).toBe(0);
    expect(other.stderr).toContain('warning: the edits were applied and judged on the node backend; verifying on wasm (set EDIT_BACKEND=node to judge on the same one)');
  });
});
