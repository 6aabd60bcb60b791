/** `edit eval` through the real binary on the default model: one single-edit set, a few neighbours. */
import { describe, expect, it } from 'vitest';
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
