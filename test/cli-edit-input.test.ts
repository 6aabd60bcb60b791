/**
 * Issue 9, items 3, 6 and 7 through the real binary (bin/edit.js → dist/, built by
 * `npx tsc -p tsconfig.json`), in temporary git repositories: non-UTF-8 and NUL bytes, a BOM, a
 * 400 KB prompt, prompts longer than the model's context, targets glued to their prompt, and
 * whole-word judging of targets by `plan` on the shipped model.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { specSha256 } from '../src/spec/load.js';
import type { EditSpec } from '../src/spec/types.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');
const MODEL_SRC = join(ROOT, 'models/default');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function edit(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, EDIT_BACKEND: 'wasm' }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const made: string[] = [];
/** A git repository with the given files (objects are written as JSON, strings and bytes as they are). */
async function repo(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'editops-input-'));
  made.push(dir);
  await mkdir(join(dir, '.git'));
  await mkdir(join(dir, 'edits'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    const data = typeof content === 'string' || content instanceof Uint8Array ? content : `${JSON.stringify(content, null, 2)}\n`;
    await writeFile(join(dir, path), data);
  }
  return dir;
}

/** The shipped model folder without what apply wrote (state, deltas): the base model, nothing applied. */
async function withModel(dir: string, only?: string[]): Promise<void> {
  await cp(MODEL_SRC, join(dir, 'models/default'), {
    recursive: true,
    filter: (src) => {
      const rel = src.slice(MODEL_SRC.length + 1);
      if (rel === '') return true;
      if (only !== undefined) return only.includes(rel);
      return !/^(state\.json|deltas|rows)(\/|$)/.test(rel) && !rel.startsWith('.');
    },
  });
}

const edit1 = (prompt: string, target: string, extra: Record<string, unknown> = {}) => ({ version: 1, task: 'counterfact', prompt, target, ...extra });
const bytes = (...parts: Array<string | number[]>) => Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...new TextEncoder().encode(p)] : p)));

afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe('edit validate: bytes that are not UTF-8 text (item 7)', () => {
  it('a Latin-1 byte is refused with its byte offset and line; nothing becomes U+FFFD', async () => {
    const latin1 = bytes('{\n  "version": 1,\n  "task": "counterfact",\n  "prompt": "The capital of Fran', [0xe7], 'e is",\n  "target": " Lyon"\n}\n');
    const dir = await repo({ 'edits/france.json': latin1, 'edits/ok.json': edit1('The capital of Spain is', ' Seville') });
    const r = await edit(dir, 'validate');
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'edits/france.json: is not valid UTF-8: byte 0xE7 at byte offset 75 (line 4) does not start a complete UTF-8 character; save the file as UTF-8\n1 problem in 1 file\n',
    });
    const json = JSON.parse((await edit(dir, 'validate', '--json')).stdout);
    expect(json.problems).toEqual([{ file: 'edits/france.json', pointer: '', kind: 'encoding', message: expect.stringContaining('byte offset 75') }]);
    expect(json.edits.map((e: { id: string }) => e.id)).toEqual(['ok']);
  });

  it('a NUL byte is refused with its offset; a UTF-16 file is named as such', async () => {
    const dir = await repo({
      'edits/nul.json': bytes('{"version": 1, "task": "counterfact", "prompt": "a', [0], '", "target": " b"}'),
      'edits/utf16.json': bytes([0xff, 0xfe], ...[...'{"version":1}'].map((c) => [c.charCodeAt(0), 0])),
    });
    const r = await edit(dir, 'validate');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'edits/nul.json: has a NUL byte at byte offset 50 (line 1); an edit file is UTF-8 text\n' +
        'edits/utf16.json: is UTF-16 (byte-order mark 0xFF 0xFE); save it as UTF-8\n' +
        '2 problems in 2 files\n',
    );
  });

  it('an escaped NUL character is refused on its pointer', async () => {
    const dir = await repo({ 'edits/x.json': '{"version": 1, "task": "counterfact", "prompt": "The capital of Spain is", "target": " Sev\\u0000ille"}' });
    expect(await edit(dir, 'validate')).toMatchObject({ code: 1, stderr: 'edits/x.json: /target: has a NUL character (\\u0000) at character 4 (line 1)\n1 problem in 1 file\n' });
  });

  it('a UTF-8 byte-order mark is accepted and is not part of the edit (same hash as without)', async () => {
    const spec = edit1('The capital of Spain is', ' Seville');
    const dir = await repo({ 'edits/bom.json': bytes([0xef, 0xbb, 0xbf], JSON.stringify(spec)) });
    const r = await edit(dir, 'validate', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).edits).toEqual([{ id: 'bom', file: 'edits/bom.json', sha256: specSha256(spec as EditSpec) }]);
  });
});

describe('edit validate: sizes and context lengths (item 6)', () => {
  it('a 400 KB prompt is refused with its length, and the output stays short', async () => {
    const huge = 'The capital of France is '.repeat(16_400); // 410,000 characters
    const dir = await repo({ 'edits/huge.json': edit1(huge, ' Lyon', { rephrase: [huge] }) });
    const r = await edit(dir, 'validate');
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `edits/huge.json: /prompt: must be at most 4096 characters long (got ${huge.length}) (line 4)\nedits/huge.json: /rephrase/0: must be at most 4096 characters long (got ${huge.length}) (line 7)\n2 problems in 1 file\n`,
    });
    await withModel(dir);
    const plan = await edit(dir, 'plan', '--structural');
    expect(plan.code).toBe(1);
    expect(plan.stderr.length).toBeLessThan(1000);
    expect(plan.stderr).toContain(`/prompt: must be at most 4096 characters long (got ${huge.length})`);
  });

  it('with the model folder there, a prompt past the context names file, pointer, length and limit', async () => {
    const long = `In a long story about many things, ${'and then the story went on, '.repeat(12)}the capital of Portugal is`;
    const dir = await repo({
      'edits/long.json': edit1(long, ' Lisbon', { portability: [{ prompt: 'Lisbon lies on the river', answer: ' Tagus' }] }),
      'edits/ok.json': edit1('The capital of Spain is', ' Seville'),
    });
    await withModel(dir, ['model.json', 'tokenizer.json']); // validate reads the tokenizer, never the weights
    const r = await edit(dir, 'validate');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^edits\/long\.json: \/prompt: is (\d+) tokens \+ 1 of the target " Lisbon": (\d+) > 64, the context of models\/default; shorten it \(line 4\)\n1 problem in 1 file\n$/);
    const [, n, total] = /is (\d+) tokens \+ 1 .*: (\d+) >/.exec(r.stderr)!;
    expect(Number(n)).toBeGreaterThan(64);
    expect(Number(total)).toBe(Number(n) + 1);
    expect(r.stderr).not.toContain('and then the story');

    const json = JSON.parse((await edit(dir, 'validate', '--json')).stdout);
    expect(json.context).toEqual({ model: 'models/default', tokens: 64 });
    expect(json.problems).toEqual([{ file: 'edits/long.json', pointer: '/prompt', line: 4, kind: 'length', message: expect.stringContaining('> 64') }]);

    await writeFile(join(dir, 'edits/long.json'), JSON.stringify(edit1('The capital of Portugal is', ' Lisbon')));
    expect(await edit(dir, 'validate')).toEqual({ code: 0, stdout: '2 edit files valid (token lengths fit the 64-token context of models/default)\n', stderr: '' });
  });

  it('without a model folder token lengths and tasks are not checked, and validate says so; an explicit --model must exist', async () => {
    const dir = await repo({ 'edits/ok.json': edit1('The capital of Spain is', ' Seville') });
    expect(await edit(dir, 'validate')).toEqual({ code: 0, stdout: '1 edit file valid (no model folder at models/default: token lengths and tasks not checked; --model names one)\n', stderr: '' });
    expect(JSON.parse((await edit(dir, 'validate', '--json')).stdout).context).toBeNull();
    const r = await edit(dir, 'validate', '--model', 'models/nope');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('model folder does not exist');
  });
});

describe('edit validate: a target glued to its prompt (item 3)', () => {
  it('warns on /target and exits 0', async () => {
    const dir = await repo({ 'edits/portugal.json': edit1('The capital of Portugal is', 'Lisbon'), 'edits/ok.json': edit1('The capital of Spain is', ' Seville') });
    expect(await edit(dir, 'validate')).toEqual({
      code: 0,
      stdout: '2 edit files valid (no model folder at models/default: token lengths and tasks not checked; --model names one), 1 warning\n',
      stderr: 'warning: edits/portugal.json: /target: neither the prompt ends with a space nor the target starts with one, so the model is asked for "isLisbon"; start the target with a space (" Lisbon")\n',
    });
    const json = JSON.parse((await edit(dir, 'validate', '--json')).stdout);
    expect(json.valid).toBe(true);
    expect(json.warnings).toEqual([{ file: 'edits/portugal.json', pointer: '/target', kind: 'spacing', message: expect.stringContaining('"isLisbon"') }]);
  });
});

describe.skipIf(!existsSync(join(MODEL_SRC, 'model.json')))('whole-word judging on the shipped model (item 3)', () => {
  let dir: string;
  beforeAll(async () => {
    // The base model says " Madrid." for Spain and " Lisbon." for Portugal.
    dir = await repo({
      'edits/prefix.json': edit1('The capital of Spain is', ' Mad'),
      'edits/whole.json': edit1('The capital of Portugal is', ' Lisbon'),
      'edits/expect-prefix.json': edit1('The capital of Portugal is.', ' x', { thresholds: { reliability: 0 }, expect: [{ type: 'starts-with', prompt: 'The capital of Spain is', value: ' Madr' }] }),
      'edits/expect-whole.json': edit1('The capital of Portugal is!', ' x', { thresholds: { reliability: 0 }, expect: [{ type: 'starts-with', prompt: 'The capital of Spain is', value: ' Madrid' }] }),
    });
    await withModel(dir);
  });

  it('plan: a target the model only begins ("Madrid" for " Mad") is not already satisfied; the whole word is', async () => {
    const r = await edit(dir, 'plan', '--json');
    expect(r.code, r.stderr).toBe(0);
    const actions = Object.fromEntries(JSON.parse(r.stdout).changes.map((c: { id: string; action: string }) => [c.id, c.action]));
    expect(actions).toEqual({ 'expect-prefix': '+', 'expect-whole': '=', prefix: '+', whole: '=' });
  });
});
