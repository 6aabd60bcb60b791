/**
 * Judging threads through the real binary: `verify`, `plan` and `apply` take --workers (or
 * EDIT_WORKERS) and give the same results on 2 threads as on 1; a bad count is a user error naming
 * where it came from. On a copy of the shipped model and example edits in a temporary project.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, rm, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ROOT, edit, expectCode, tempDir } from './helpers/cli.js';
import { judgedPrompts } from '../src/assert/check-edit.js';
import { judgeThreads, PROMPTS_PER_THREAD } from '../src/model/pool.js';
import type { EditSpec } from '../src/spec/types.js';

let project: string;

/** verify --json without its timing. */
function verdicts(stdout: string): unknown {
  const r = JSON.parse(stdout) as Record<string, unknown>;
  delete r.seconds;
  return r;
}

describe('judging threads: sizing', () => {
  it('an unset count starts workers only for enough prompts; a given one is used as is', () => {
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 30)).toBe(1);
    expect(judgeThreads('', 'EDIT_WORKERS', PROMPTS_PER_THREAD - 1)).toBe(1);
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 1e6)).toBe(Math.min(availableParallelism(), 1e6 / PROMPTS_PER_THREAD)); // every core
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 2 * PROMPTS_PER_THREAD)).toBe(Math.min(availableParallelism(), 2));
    expect(judgeThreads('3', '--workers', 1)).toBe(3);
    expect(() => judgeThreads('-1', '--workers', 1)).toThrow('--workers=-1 is not a whole number ≥ 1 or "auto"');
  });

  it('an unset count starts no more workers than free memory holds; a given count is not capped', () => {
    const gb = 1e9;
    // 4 GB free, 3.2 GB per worker: 0.75 × 4 / 3.2 < 1, so the calling thread judges alone
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 1e6, 3.2 * gb, 4 * gb)).toBe(1);
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 1e6, 3.2 * gb, 1e6 * gb)).toBe(judgeThreads(undefined, 'EDIT_WORKERS', 1e6));
    // 10 GB free: 1 + ⌊7.5 / 3.2⌋ = 3 threads at most
    expect(judgeThreads(undefined, 'EDIT_WORKERS', 1e6, 3.2 * gb, 10 * gb)).toBe(Math.min(availableParallelism(), 3));
    expect(judgeThreads('2', '--workers', 1, 3.2 * gb, 1 * gb)).toBe(2);
  });

  it('judgedPrompts counts what the checks generate for: listed forms, expectations, and unchanged checks twice', () => {
    const spec: EditSpec = {
      version: 1,
      task: 'counterfact',
      subject: 'France',
      relation: 'capital',
      prompt: 'The capital of France is',
      target: ' Lyon',
      rephrase: ['a', 'b'],
      locality: [{ prompt: 'c' }, { prompt: 'd', answer: ' e' }],
      neighbours: { count: 3 },
      portability: [{ prompt: 'f', answer: ' g' }],
      expect: [{ type: 'contains', prompt: 'h', value: 'i' }],
    };
    // 1 prompt + 2 rephrasings + 1 answered locality + 2 × (1 unanswered + 3 neighbours) + 1 portability + 1 expect
    expect(judgedPrompts([spec])).toBe(14);
    expect(judgedPrompts([{ ...spec, neighbours: false }, spec])).toBe(8 + 14);
    // no relation: no automatic neighbours (pickNeighbours picks none)
    expect(judgedPrompts([{ ...spec, relation: undefined }])).toBe(8);
  });
});

describe('--workers through the CLI on a copy of the default model', () => {
  beforeAll(async () => {
    project = await tempDir('workers');
    await cp(join(ROOT, 'models/default'), join(project, 'models/default'), { recursive: true });
    await cp(join(ROOT, 'edits'), join(project, 'edits'), { recursive: true });
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('verify on 2 threads gives the verdicts of 1; a bad EDIT_WORKERS or --workers is refused by name', async () => {
    const one = await edit(project, 'verify', '--json', '--workers', '1');
    expectCode(one, 0);
    const two = await edit(project, 'verify', '--json', '--workers', '2');
    expectCode(two, 0);
    expect(verdicts(two.stdout)).toEqual(verdicts(one.stdout));
    expect((JSON.parse(one.stdout) as { total: number }).total).toBeGreaterThan(20);
    const shown = await edit(project, 'verify', '--workers', '2');
    expectCode(shown, 0);
    expect(shown.stderr).toContain('judging on 2 threads');
    const alone = await edit(project, 'verify', '--workers', '1');
    expectCode(alone, 0);
    expect(alone.stderr).not.toContain('judging on');

    const badFlag = await edit(project, 'verify', '--workers', 'many');
    expectCode(badFlag, 1);
    expect(badFlag.stderr).toContain('--workers=many is not a whole number ≥ 1 or "auto"');
    expect(badFlag.stderr).not.toContain('backend:'); // refused before the model loads
    const structural = await edit(project, 'plan', '--structural', '--workers', '0');
    expectCode(structural, 1);
    expect(structural.stderr).toContain('--workers=0 is not a whole number ≥ 1 or "auto"');
    process.env.EDIT_WORKERS = '0';
    try {
      const badEnv = await edit(project, 'verify');
      expectCode(badEnv, 1);
      expect(badEnv.stderr).toContain('EDIT_WORKERS=0 is not a whole number ≥ 1 or "auto"');
    } finally {
      delete process.env.EDIT_WORKERS;
    }
  }, 180_000);

  it('plan on 2 threads finds an already true edit; apply on 2 threads re-solves and judges the set', async () => {
    // a new edit whose target the base model already gives: "= already satisfied" needs the model judged
    const known = {
      version: 1,
      task: 'counterfact',
      subject: 'Japan',
      relation: 'capital',
      prompt: 'The capital of Japan is',
      target: ' Tokyo',
    };
    await writeFile(join(project, 'edits/capitals/japan.json'), JSON.stringify(known, null, 2) + '\n');
    const plan = await edit(project, 'plan', '--json', '--workers', '2');
    expectCode(plan, 0);
    const changes = (JSON.parse(plan.stdout) as { changes: Array<{ id: string; action: string }> }).changes;
    expect(changes.find((c) => c.id === 'capitals/japan')?.action).toBe('='); // satisfied

    // destroying an example re-solves the set and judges every assertion of what stays, on 2 threads
    await unlink(join(project, 'edits/opinions/esperanto.json'));
    const apply = await edit(project, 'apply', '--auto-approve', '--no-commit', '--workers', '2');
    expectCode(apply, 0);
    expect(apply.stderr).toContain('judging on 2 threads');
    const after = await edit(project, 'verify', '--json', '--workers', '2');
    expectCode(after, 0);
    const one = await edit(project, 'verify', '--json', '--workers', '1');
    expect(verdicts(after.stdout)).toEqual(verdicts(one.stdout));
  }, 240_000);
});
