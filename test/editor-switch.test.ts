/**
 * Switching editors on an applied set (`apply --method`, or model.json's editor against what the
 * set was solved with): rows another editor computed cannot join a solve, so apply refuses before
 * computing anything — also with no change to make, when --method would otherwise be silently
 * ignored — and says how to recompute; `apply --refresh` recomputes them with the chosen editor;
 * plan names the edits whose rows the model's editor cannot reuse. Through the CLI on the shipped model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { edit, expectCode, gitInit, loopRefinement, tempDir, writeCapitalEdit } from './helpers/cli.js';

interface State {
  serial: number;
  edits: Record<string, { method: string }>;
  delta: { solver?: { method: string } } | null;
}

let repo: string;
const T = 180_000;
const stateOf = async () => JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')) as State;

beforeAll(async () => {
  repo = await tempDir('editor-switch');
  await gitInit(repo);
  expectCode(await edit(repo, 'init'), 0);
  await loopRefinement(join(repo, 'models/default'));
  await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Berlin');
  expectCode(await edit(repo, 'apply', '--auto-approve', '--method', 'ft'), 0);
}, T);

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe.sequential('an applied set and another editor', () => {
  it('apply --method <other> with nothing to change refuses instead of ignoring the flag, and names the fix', async () => {
    const before = await stateOf();
    expect(before.edits['capitals/italy'].method).toBe('ft');
    const r = await edit(repo, 'apply', '--auto-approve', '--method', 'memit');
    expectCode(r, 1);
    expect(r.stderr).toContain('applied edit capitals/italy was solved by the ft editor and --method asks for memit: its rows cannot join its solve; nothing was computed or written');
    expect(r.stderr).toContain('run `edit apply --method memit --refresh`');
    expect(r.stdout).not.toContain('No changes');
    expect((await stateOf()).serial).toBe(before.serial);
    // The editor that solved it: nothing to do.
    const same = await edit(repo, 'apply', '--auto-approve', '--method', 'ft');
    expectCode(same, 0);
    expect(same.stdout).toContain('No changes.');
  }, T);

  it("plan names the rows the model's editor cannot reuse; apply of a new edit with that editor refuses", async () => {
    const plan = await edit(repo, 'plan', '--structural');
    expectCode(plan, 0);
    expect(plan.stdout).toContain('Editor instructedit cannot reuse the rows of 1 applied edit: the ft editor computed them. `edit apply --refresh` recomputes it with instructedit and re-solves the set.');
    const json = await edit(repo, 'plan', '--structural', '--json');
    expect((JSON.parse(json.stdout) as { solve: { otherEditor?: unknown } }).solve.otherEditor).toEqual({ methods: ['ft'], edits: ['capitals/italy'] });

    await writeCapitalEdit(repo, 'capitals/spain', 'Spain', ' Tokyo');
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 1);
    expect(r.stderr).toContain("the model's editor is instructedit");
    expect(r.stderr).toContain('run `edit apply --refresh`');
    expect(Object.keys((await stateOf()).edits)).toEqual(['capitals/italy']);
  }, T);

  it('apply --refresh --target refuses when the refresh would recompute an edit the target leaves out', async () => {
    const before = await stateOf();
    const r = await edit(repo, 'apply', '--auto-approve', '--method', 'memit', '--refresh', '--target', 'capitals/spain');
    expectCode(r, 1);
    expect(r.stderr).toContain('--refresh must recompute capitals/italy, which --target leaves out; nothing was computed or written');
    expect(r.stderr).toContain('add --target capitals/italy');
    expect(await stateOf()).toEqual(before);
  }, T);

  it('apply --method <other> --refresh recomputes the applied rows with it and solves the whole set', async () => {
    const r = await edit(repo, 'apply', '--auto-approve', '--method', 'memit', '--refresh');
    expectCode(r, 0);
    expect(r.stderr).toContain('refresh: capitals/italy will be recomputed (its rows were computed by the ft editor; this apply solves with memit)');
    const state = await stateOf();
    expect(Object.fromEntries(Object.entries(state.edits).map(([id, e]) => [id, e.method]))).toEqual({ 'capitals/italy': 'memit', 'capitals/spain': 'memit' });
    expect(state.delta?.solver?.method).toBe('memit');
    // diff names the editor that solved the set, not model.json's (instructedit)
    const diff = await edit(repo, 'diff');
    expectCode(diff, 0);
    expect(diff.stdout).toContain("The applied set's solved change (memit; base + ΔW):");
    expect(JSON.parse((await edit(repo, 'diff', '--json')).stdout)).toMatchObject({ method: 'memit' });
    expectCode(await edit(repo, 'verify'), 0);
    const again = await edit(repo, 'apply', '--auto-approve', '--method', 'memit');
    expectCode(again, 0);
    expect(again.stdout).toContain('No changes.');
  }, T);
});
