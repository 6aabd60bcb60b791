/**
 * The bad-input corpus (issue 8): every case of test/fixtures/bad-inputs/manifest.json through the
 * real binary, in a copy of one temporary git repository (the tiny fixture imported, the ft editor,
 * one edit applied and committed). A case puts fixture files in place, patches JSON files, or runs a
 * named recipe (symlinks, generated big or lying files: nothing big is committed), then runs its
 * commands; each must exit with the case's code, print its message fragment, print no stack trace,
 * and leave the repository — every file, HEAD and the index — exactly as it was. A case's commands
 * run at the same time (none may write, so none can disturb another).
 *
 * BAD_INPUTS_DISCOVER=1 prints what each command said instead of asserting (to write a new case).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, readlink, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT, expectCode, git, gitInit, tempDir, type Run } from './helpers/cli.js';

const BIN = join(ROOT, 'bin/edit.js');
const TINY = join(ROOT, 'test/fixtures/tiny-gpt2');
const CORPUS = join(ROOT, 'test/fixtures/bad-inputs');
const MODEL = 'models/default';
const DISCOVER = process.env.BAD_INPUTS_DISCOVER === '1';

interface Case {
  case: string;
  /** What is wrong, in words. */
  about: string;
  /** Fixture files (of the corpus folder) copied to repository paths: { "edits/bad.json": "json-truncated.json" }. */
  put?: Record<string, string>;
  /** JSON files of the repository to change: { "models/default/model.json": { "/tokenizer/file": "missing.json" } }. */
  patch?: Record<string, Record<string, unknown>>;
  /** Set model.json's tokenizer and weights sha256 to the files' hashes (so the case tests the file, not the hash). */
  rehash?: boolean;
  /** A setup written in this file (symlinks, generated files). */
  recipe?: string;
  /** Extra arguments for every command. */
  args?: string[];
  env?: Record<string, string>;
  /** validate, plan, apply (--auto-approve), verify, import (model import hf --out models/imported), generate. */
  commands: string[];
  exit: number;
  /** The fragment every command prints, or one per command. */
  message: string | Record<string, string>;
  /** Seconds every command must finish within (default 60). */
  seconds?: number;
}

const manifest = JSON.parse(await readFile(join(CORPUS, 'manifest.json'), 'utf8')) as { cases: Case[] };

function run(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run & { ms: number }> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, EDIT_BACKEND: 'wasm', ...env }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      done({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const COMMANDS: Record<string, string[]> = {
  validate: ['validate'],
  plan: ['plan'],
  apply: ['apply', '--auto-approve'],
  verify: ['verify'],
  generate: ['generate', 'The capital of France is', '--max-tokens', '2'],
  import: ['model', 'import', 'hf', '--out', 'models/imported'],
};

/** sha256 over every path, link target and file content of the repository (.git: HEAD's commit and the index), sorted. */
async function treeHash(repo: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (r === '.git') continue;
      const abs = join(dir, e.name);
      if (e.isSymbolicLink()) h.update(`L ${r} ${await readlink(abs)}\n`);
      else if (e.isDirectory()) {
        h.update(`D ${r}\n`);
        await walk(abs, r);
      } else h.update(`F ${r} ${createHash('sha256').update(await readFile(abs)).digest('hex')}\n`);
    }
  };
  await walk(repo, '');
  h.update(`HEAD ${(await git(repo, 'rev-parse', 'HEAD')).trim()}\n`);
  h.update(`INDEX ${createHash('sha256').update(await readFile(join(repo, '.git/index'))).digest('hex')}\n`);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Generated safetensors files for the header cases

/** A safetensors file from a header object and a data section of `dataBytes` zero bytes (or the given header length field). */
function safetensors(header: unknown, dataBytes: number, lengthField?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const F32 = (shape: number[], begin: number) => ({ dtype: 'F32', shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] });

/** Lying model.safetensors files for `edit model import` (an HF folder: config.json and tokenizer.json of the tiny fixture). */
const WEIGHTS: Record<string, () => Promise<Uint8Array>> = {
  'st-shorter-than-length': async () => new Uint8Array([1, 2, 3, 4, 5]),
  'st-header-beyond-file': async () => safetensors({ a: F32([2], 0) }, 8, 4096n),
  'st-header-length-multi-gb': async () => safetensors({ a: F32([2], 0) }, 8, 8n << 30n),
  'st-header-not-json': async () => {
    const b = safetensors({ a: F32([2], 0) }, 8);
    b[8] = 0x7b;
    b[9] = 0x7b;
    return b;
  },
  'st-header-not-utf8': async () => {
    const b = safetensors({ abc: F32([2], 0) }, 8);
    b[10] = 0xff;
    return b;
  },
  'st-header-array': async () => safetensors([1, 2, 3], 0),
  'st-offsets-beyond-data': async () => safetensors({ a: F32([4], 0) }, 8),
  'st-declared-multi-gb': async () => safetensors({ 'wte.weight': { dtype: 'F32', shape: [1_000_000, 4096], data_offsets: [0, 16_384_000_000] } }, 64),
  'st-offsets-overlap': async () => safetensors({ a: F32([2], 0), b: F32([2], 4) }, 16),
  'st-offsets-reversed': async () => safetensors({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8),
  'st-offsets-negative': async () => safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8),
  'st-dtype-unknown': async () => safetensors({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8),
  'st-shape-mismatch': async () => safetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
  'st-shape-not-integers': async () => safetensors({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8),
  'st-truncated-weights': async () => {
    const b = await readFile(join(TINY, 'model.safetensors'));
    return b.subarray(0, Math.floor(b.length / 2));
  },
  'st-missing-tensors': async () => safetensors({ 'wte.weight': F32([2, 2], 0) }, 16),
};

/** Setups that are not a file copy or a JSON patch. `outside` is a folder outside the repository. */
const RECIPES: Record<string, (repo: string, outside: string) => Promise<void>> = {
  async 'edit-file-over-1mb'(repo) {
    await writeFile(join(repo, 'edits/huge.json'), JSON.stringify({ version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon', metadata: { pad: 'x'.repeat(1_100_000) } }));
  },
  async 'symlink-file-outside'(repo, outside) {
    await writeFile(join(outside, 'secret.json'), JSON.stringify({ version: 1, task: 'counterfact', prompt: 'The capital of Spain is', target: ' Lyon' }));
    await symlink(join(outside, 'secret.json'), join(repo, 'edits/evil.json'));
  },
  async 'symlink-dir-outside'(repo, outside) {
    await mkdir(join(outside, 'more'), { recursive: true });
    await writeFile(join(outside, 'more/a.json'), JSON.stringify({ version: 1, task: 'counterfact', prompt: 'The capital of Spain is', target: ' Lyon' }));
    await symlink(join(outside, 'more'), join(repo, 'edits/more'));
  },
  async 'symlink-relative-escape'(repo, outside) {
    await writeFile(join(outside, 'secret.json'), '{}');
    await symlink(join('..', '..', '..', outside.split('/').pop()!, 'secret.json'), join(repo, 'edits/geo/escape.json'));
  },
  async 'edits-dir-outside'(_repo, outside) {
    await mkdir(join(outside, 'edits'), { recursive: true });
  },
  async 'model-dir-outside'(repo, outside) {
    await cp(join(repo, MODEL), join(outside, 'model'), { recursive: true });
  },
  async 'weights-truncated-rehashed'(repo) {
    const path = join(repo, MODEL, 'base.safetensors');
    const b = await readFile(path);
    await writeFile(path, b.subarray(0, b.length - 100));
  },
  async 'weights-truncated'(repo) {
    await truncate(join(repo, MODEL, 'base.safetensors'), 1000);
  },
  async 'weights-lying-header-rehashed'(repo) {
    await writeFile(join(repo, MODEL, 'base.safetensors'), await WEIGHTS['st-declared-multi-gb']());
  },
  async 'rows-tampered'(repo) {
    const state = JSON.parse(await readFile(join(repo, MODEL, 'state.json'), 'utf8')) as { edits: Record<string, { rows: { file: string } }> };
    const path = join(repo, MODEL, state.edits['geo/france'].rows.file);
    const b = await readFile(path);
    b[b.length - 1] ^= 0x01;
    await writeFile(path, b);
  },
  async 'delta-tampered'(repo) {
    const state = JSON.parse(await readFile(join(repo, MODEL, 'state.json'), 'utf8')) as { delta: { file: string } };
    const path = join(repo, MODEL, state.delta.file);
    const b = await readFile(path);
    b[b.length - 1] ^= 0x01;
    await writeFile(path, b);
  },
  async 'delta-deleted'(repo) {
    const state = JSON.parse(await readFile(join(repo, MODEL, 'state.json'), 'utf8')) as { delta: { file: string } };
    await rm(join(repo, MODEL, state.delta.file));
  },
  async 'weights-missing'(repo) {
    await rm(join(repo, MODEL, 'base.safetensors'));
  },
  ...Object.fromEntries(
    Object.entries(WEIGHTS).map(([name, make]) => [
      name,
      async (repo: string) => {
        await mkdir(join(repo, 'hf'), { recursive: true });
        await cp(join(TINY, 'config.json'), join(repo, 'hf/config.json'));
        await cp(join(TINY, 'tokenizer.json'), join(repo, 'hf/tokenizer.json'));
        await writeFile(join(repo, 'hf/model.safetensors'), await make());
      },
    ]),
  ),
};

/** Set the value at a JSON pointer (creating objects on the way); undefined deletes it. */
function setPointer(doc: Record<string, unknown>, pointer: string, value: unknown): void {
  const keys = pointer.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node = doc as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  if (value === undefined) delete node[keys[keys.length - 1]];
  else node[keys[keys.length - 1]] = value;
}

async function rehash(repo: string): Promise<void> {
  const path = join(repo, MODEL, 'model.json');
  const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, { file: string; sha256: string }>;
  for (const k of ['tokenizer', 'weights']) m[k].sha256 = createHash('sha256').update(await readFile(join(repo, MODEL, m[k].file))).digest('hex');
  await writeFile(path, `${JSON.stringify(m, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------

let template: string;
const scratch: string[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  template = await tempDir('bad-inputs');
  scratch.push(template);
  await gitInit(template);
  expectCode(await run(['model', 'import', TINY, '--out', MODEL], template), 0);
  const manifestPath = join(template, MODEL, 'model.json');
  const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  await writeFile(manifestPath, `${JSON.stringify({ ...m, editor: { method: 'ft' } }, null, 2)}\n`);
  await mkdir(join(template, 'edits/geo'), { recursive: true });
  const prompt = 'The capital of France is';
  const spec = { version: 1, task: 'counterfact', instruction: 'Rewrite the fact.', prompt, target: ' Lyon', thresholds: { reliability: 0, generalization: 0, locality: 0 }, expect: [{ type: 'not-contains', prompt, value: 'o'.repeat(16) }] };
  await writeFile(join(template, 'edits/geo/france.json'), `${JSON.stringify(spec, null, 2)}\n`);
  await git(template, 'add', '-A');
  await git(template, 'commit', '-qm', 'init');
  expectCode(await run(['apply', '--auto-approve'], template), 0);
}, 120_000);

afterAll(async () => {
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe('the bad-input corpus', () => {
  it('has at least 50 cases, each named once, each with a known setup', () => {
    expect(manifest.cases.length).toBeGreaterThanOrEqual(50);
    expect(new Set(manifest.cases.map((c) => c.case)).size).toBe(manifest.cases.length);
    for (const c of manifest.cases) {
      if (c.recipe !== undefined) expect(RECIPES, c.case).toHaveProperty([c.recipe]);
      for (const f of Object.values(c.put ?? {})) expect(existsSync(join(CORPUS, f)), `${c.case}: ${f}`).toBe(true);
      for (const cmd of c.commands) expect(COMMANDS, c.case).toHaveProperty([cmd]);
    }
  });

  it('a malformed edit file stops apply and verify before the model or TensorFlow.js loads (no backend line)', async () => {
    const box = await tempDir('bad-input');
    scratch.push(box);
    const repo = join(box, 'repo');
    await cp(template, repo, { recursive: true });
    await cp(join(CORPUS, 'json-trailing-comma.json'), join(repo, 'edits/bad.json'));
    for (const r of await Promise.all([run(COMMANDS.apply, repo), run(COMMANDS.verify, repo), run(COMMANDS.plan, repo)])) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('edits/bad.json');
      expect(r.stderr).not.toContain('backend:');
    }
  });

  it.each(manifest.cases.map((c) => [c.case, c] as const))('%s', async (_name, c) => {
    const box = await tempDir('bad-input');
    scratch.push(box);
    const repo = join(box, 'repo');
    const outside = join(box, 'outside');
    await mkdir(outside);
    await cp(template, repo, { recursive: true });
    for (const [dest, src] of Object.entries(c.put ?? {})) {
      await mkdir(dirname(join(repo, dest)), { recursive: true });
      await cp(join(CORPUS, src), join(repo, dest));
    }
    for (const [file, changes] of Object.entries(c.patch ?? {})) {
      const doc = JSON.parse(await readFile(join(repo, file), 'utf8')) as Record<string, unknown>;
      for (const [pointer, value] of Object.entries(changes)) setPointer(doc, pointer, value);
      await writeFile(join(repo, file), `${JSON.stringify(doc, null, 2)}\n`);
    }
    if (c.recipe !== undefined) await RECIPES[c.recipe](repo, outside);
    if (c.rehash === true) await rehash(repo);
    const args = (c.args ?? []).map((a) => a.replace('$OUTSIDE', outside));

    const before = await treeHash(repo);
    // The commands at once: each must refuse before writing anything, so they cannot disturb each other.
    const runs = await Promise.all(c.commands.map((cmd) => run([...COMMANDS[cmd], ...args], repo, c.env)));
    for (const [i, cmd] of c.commands.entries()) {
      const r = runs[i];
      const said = `${r.stdout}${r.stderr}`;
      if (DISCOVER) {
        // eslint-disable-next-line no-console
        console.log(`### ${c.case} ${cmd}: exit ${r.code} ${r.ms} ms\n${said.split('\n').filter((l) => !/^backend:/.test(l)).slice(0, 8).join('\n')}`);
        continue;
      }
      expect(r.code, `${c.case} / ${cmd}\n${said}`).toBe(c.exit);
      const message = typeof c.message === 'string' ? c.message : c.message[cmd];
      expect(message, `${c.case}: no message for ${cmd}`).toBeTypeOf('string');
      expect(said, `${c.case} / ${cmd}`).toContain(message.replace('$OUTSIDE', outside));
      expect(said, `${c.case} / ${cmd}: a stack trace`).not.toMatch(/^ {4}at /m);
      expect(r.ms, `${c.case} / ${cmd}: took ${r.ms} ms`).toBeLessThan((c.seconds ?? 60) * 1000);
    }
    expect(await treeHash(repo), `${c.case}: the repository changed`).toBe(before);
  }, 300_000);
});
