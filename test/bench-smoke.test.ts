/** `npm run bench` works end to end (quick sizes): every section records results and no leak. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..');
let out = '';

afterAll(async () => {
  if (out !== '') await rm(out, { recursive: true, force: true });
});

describe('npm run bench (BENCH_QUICK=1)', () => {
  it('runs every section and writes a JSON record', async () => {
    out = await mkdtemp(join(tmpdir(), 'editops-bench-'));
    const { stdout } = await run(process.execPath, ['dist/bench/run.js'], {
      cwd: repo,
      env: { ...process.env, BENCH_QUICK: '1', BENCH_OUT: out, BENCH_BACKENDS: 'wasm' },
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toMatch(/matmul/);
    const files = await readdir(out);
    expect(files.length).toBeGreaterThan(0);
    const json = JSON.parse(await readFile(join(out, files.find((f) => f.endsWith('.json'))!), 'utf8'));
    expect(json.errors ?? []).toEqual([]);
    const sections = new Set((json.records as Array<{ section: string }>).map((r) => r.section));
    for (const s of ['matmul', 'train', 'generate', 'edits', 'joint']) expect(sections.has(s)).toBe(true);
    // joint: one new edit into the cached set computes that edit's rows only
    const joint = (json.records as Array<{ section: string; metric: string; backend: string; detail: { computed?: number; cached?: number } }>).filter((r) => r.section === 'joint');
    expect(joint.map((r) => r.metric)).toEqual(['rows s/edit', 'solve N=1', 'solve N=5', 'solve N=50', 'apply 1 into empty', 'apply 1 into 50', 'peak RSS MB']);
    expect(joint.every((r) => r.backend === 'wasm')).toBe(true);
    expect(joint.filter((r) => r.metric.startsWith('apply')).map((r) => [r.detail.cached, r.detail.computed])).toEqual([[0, 1], [50, 1]]);
    expect((json.ratios as Array<{ name: string }>).map((r) => r.name)).toContain('joint apply 1 into 50/into empty (rows of 1 new edit + solve) wasm');
    // editors: every registered editor's ms/edit on one set, and the hypernetworks' meta-training rate (instructedit's on 1 and 2 threads)
    const editors = (json.records as Array<{ section: string; metric: string; value: number }>).filter((r) => r.section === 'editors');
    expect(editors.map((r) => r.metric)).toEqual(['ft ms/edit', 'memit ms/edit', 'mend ms/edit', 'instructedit ms/edit', 'meta-training mend steps/s', 'meta-training instructedit steps/s', 'meta-training instructedit steps/s, 2 threads']);
    for (const r of editors) expect(r.value).toBeGreaterThan(0);
  }, 600_000); // ~3 min on an idle 2-core machine (the joint section runs apply's refinement with its KL)
});
