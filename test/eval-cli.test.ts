/** `edit eval` through the real binary on the default model: one single-edit set, a few neighbours. */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, edit, expectCode } from './helpers/cli.js';

describe('edit eval', () => {
  it('measures one ft edit of counterfact and prints versioned JSON', async () => {
    const r = await edit(ROOT, 'eval', '--editor', 'ft', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '2', '--json');
    expectCode(r, 0);
    const report = JSON.parse(r.stdout);
    expect(report.formatVersion).toBe(1);
    expect(report.backend).toBe('wasm');
    expect(report.results).toHaveLength(1);
    const row = report.results[0];
    expect(row).toMatchObject({ editor: 'ft', task: 'counterfact', size: 1, sets: 1, edits: 1 });
    for (const view of [row.generation, row.teacherForced]) {
      for (const k of ['reliability', 'generalization', 'heldOut', 'locality']) expect(view[k]).toBeGreaterThanOrEqual(0);
      expect(view.portability).toBeNull();
    }
    expect(row.prompts.locality).toBe(2);
    expect(row.seconds.rowsPerEdit).toBeGreaterThan(0);
    // the prompts real generation missed: one record, so each kind's count is its prompts × (1 − score)
    const count = (kind: string) => row.misses.filter((m: { kind: string }) => m.kind === kind).length;
    expect(count('reliability')).toBe(Math.round(1 - row.generation.reliability));
    expect(count('generalization')).toBe(Math.round(row.prompts.rephrase * (1 - row.generation.generalization)));
    expect(count('heldOut')).toBe(Math.round(row.prompts.heldOut * (1 - row.generation.heldOut)));
    expect(count('locality')).toBe(Math.round(row.prompts.locality * (1 - row.generation.locality)));
    for (const m of row.misses) expect(m).toMatchObject({ record: expect.stringMatching(/^counterfact-\d+$/), prompt: expect.any(String) });
  }, 60_000);

  it('lists the prompts real generation missed: with no tuning steps, every edit prompt and none of the neighbours', async () => {
    const r = await edit(ROOT, 'eval', '--editor', 'ft', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '2', '--settings', 'steps=0', '--json');
    expectCode(r, 0);
    const row = JSON.parse(r.stdout).results[0];
    expect(row.generation).toMatchObject({ reliability: 0, generalization: 0, heldOut: 0, locality: 1 });
    const kinds = row.misses.map((m: { kind: string }) => m.kind);
    expect(kinds).toEqual(['reliability', ...new Array(row.prompts.rephrase).fill('generalization'), ...new Array(row.prompts.heldOut).fill('heldOut')]);
    expect(new Set(row.misses.map((m: { record: string }) => m.record)).size).toBe(1);
    expect(row.misses[0].prompt).toMatch(/ is$/);
  }, 60_000);

  it('--relation measures only records of that relation; an unknown one is refused, naming those there are', async () => {
    const r = await edit(ROOT, 'eval', '--editor', 'ft', '--task', 'counterfact', '--relation', 'state capital', '--sizes', '3', '--neighbours', '1', '--settings', 'steps=0', '--bench', 'data/bench.json', '--json');
    expectCode(r, 0);
    const report = JSON.parse(r.stdout);
    // the recorded command is one a shell runs again: a value with a space is quoted, a named benchmark kept
    expect(report.command).toContain("--task counterfact --relation 'state capital' --sizes 3");
    expect(report.command).toMatch(/ --bench data\/bench\.json$/);
    expect(report.options.relations).toEqual(['state capital']);
    const bench = JSON.parse(await readFile(join(ROOT, 'data/bench.json'), 'utf8')) as { records: Array<{ id: string; relation: string }> };
    const relationOf = new Map(bench.records.map((x) => [x.id, x.relation]));
    const measured = new Set(report.results[0].misses.map((m: { record: string }) => m.record));
    expect(measured.size).toBe(3); // no tuning steps: every record misses its prompt
    for (const id of measured) expect(relationOf.get(id as string)).toBe('state capital');
    const bad = await edit(ROOT, 'eval', '--task', 'counterfact', '--relation', 'curency');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--relation "curency": unknown "curency"; choose from capital, continent, country, currency, language, state capital');
  }, 60_000);

  it('refuses a set larger than the split holds, naming the way out', async () => {
    const r = await edit(ROOT, 'eval', '--editor', 'ft', '--task', 'convsent', '--sizes', '1000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: task convsent has \d+ distinct \(subject, relation\) records in split test; a set of 1000 does not fit/);
    expect(r.stderr).toContain('--split train,validation,test');
  });

  it('rejects an unknown task or size', async () => {
    const bad = await edit(ROOT, 'eval', '--task', 'counterfakt');
    expect(bad.stderr).toContain('unknown "counterfakt"');
    const big = await edit(ROOT, 'eval', '--sizes', '5000');
    expect(big.stderr).toContain('from 1 to 1000');
  });
});
