/**
 * A new edit the model already satisfies ("= already satisfied") is recorded without rows: the plan
 * does not announce a re-solve for it, and apply leaves the set's delta byte for byte as it was.
 * Through the CLI on the shipped model.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { edit, expectCode, gitInit, loopRefinement, tempDir, writeCapitalEdit } from './helpers/cli.js';

interface State {
  edits: Record<string, { rows: unknown }>;
  delta: { sha256: string } | null;
}

let repo: string;
const T = 180_000;
const stateOf = async () => JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')) as State;

beforeAll(async () => {
  repo = await tempDir('plan-satisfied');
  await gitInit(repo);
  expectCode(await edit(repo, 'init'), 0);
  await loopRefinement(join(repo, 'models/default'));
  await writeCapitalEdit(repo, 'capitals/italy', 'Italy', ' Berlin');
  expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
}, T);

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

it('plan shows a satisfied new edit without a re-solve; apply records it and keeps the delta', async () => {
  const before = await stateOf();
  await writeCapitalEdit(repo, 'capitals/france', 'France', ' Paris');
  const plan = await edit(repo, 'plan', '--detailed-exitcode');
  expectCode(plan, 2);
  expect(plan.stdout).toMatch(/= capitals\/france\s+already satisfied/);
  expect(plan.stdout).not.toContain('re-solves');
  expect(plan.stdout).not.toContain('Capacity:');
  const json = JSON.parse((await edit(repo, 'plan', '--json')).stdout) as { solve: { resolves: boolean; edits: number } };
  expect(json.solve).toMatchObject({ resolves: false, edits: 1 });
  expectCode(await edit(repo, 'apply', '--auto-approve'), 0);
  const after = await stateOf();
  expect(after.edits['capitals/france'].rows).toBeNull();
  expect(after.delta?.sha256).toBe(before.delta?.sha256);
}, T);

it('after a model.json change, apply --refresh rechecks it: still satisfied, still without rows; the other edit is recomputed as an update', async () => {
  const manifestPath = join(repo, 'models/default/model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { thresholds: Record<string, number> };
  await writeFile(manifestPath, `${JSON.stringify({ ...manifest, thresholds: { ...manifest.thresholds, generalization: 0.4 } }, null, 2)}\n`);
  const r = await edit(repo, 'apply', '--auto-approve', '--refresh');
  expectCode(r, 0);
  expect(r.stdout).toMatch(/= capitals\/france\s+already satisfied/);
  expect(r.stdout).toMatch(/~ capitals\/italy\s+update\s+"The capital of Italy is" → " Berlin" \(recomputed: model\.json changed\)/);
  expect(r.stdout).not.toContain('stray');
  const after = await stateOf();
  expect(after.edits['capitals/france'].rows).toBeNull();
  expect(after.edits['capitals/italy'].rows).not.toBeNull();
}, T);
