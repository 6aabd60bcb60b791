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
    for (const s of ['matmul', 'train', 'generate', 'edits']) expect(sections.has(s)).toBe(true);
  }, 300_000);
});
