/**
 * End to end through the real binary (`node bin/edit.js`, built by `npx tsc -p tsconfig.json`):
 * model import → generate → export → re-import, and every kind of bad input ending in one
 * `error:` line that names the file, a non-zero exit and no stack trace.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, type ModelManifest } from '../src/model/folder.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { sha256 } from '../src/util/hash.js';
import { TINY, TINY_PREFIXED, expectClose, readGolden } from './helpers/golden.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `edit <args>`; EDIT_BACKEND is unset unless given. */
function edit(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  delete base.EDIT_BACKEND;
  return new Promise((done) => {
    execFile(process.execPath, ['bin/edit.js', ...args], { cwd: ROOT, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

/** Exit non-zero with exactly one `error:` line mentioning `mention`, and no stack trace. */
function expectUserError(run: Run, mention?: string): string {
  expect(run.code, run.stderr).not.toBe(0);
  expect(run.stderr, 'stack trace').not.toContain('    at ');
  expect(run.stderr).not.toContain('internal error');
  const lines = run.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(lines, run.stderr).toHaveLength(1);
  if (mention !== undefined) expect(lines[0]).toContain(mention);
  return lines[0];
}

/** The safetensors header and data section of a file. */
function splitSafetensors(bytes: Uint8Array): { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

function joinSafetensors(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

let tmp: string;
let imported: Run;
const model = () => join(tmp, 'm');

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  await initBackend();
  tmp = await mkdtemp(join(tmpdir(), 'editops-cli-model-'));
  imported = await edit(['model', 'import', TINY, '--out', model()]);
  return () => rm(tmp, { recursive: true, force: true });
});

describe('edit model import / generate / export', () => {
  it('imports the tiny HF folder: model.json, base.safetensors, tokenizer.json with their sha256s', async () => {
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('imported');
    const manifest = JSON.parse(await readFile(join(model(), 'model.json'), 'utf8')) as ModelManifest;
    expect(manifest).toMatchObject({ version: 1, name: 'tiny-gpt2', architecture: 'gpt2', config: { vocabSize: 457, nPositions: 32, nEmbd: 16, nLayer: 2, nHead: 2 } });
    expect(manifest.weights).toMatchObject({ file: 'base.safetensors', dtype: 'F32' });
    expect(manifest.tokenizer.file).toBe('tokenizer.json');
    const tok = await readFile(join(model(), 'tokenizer.json'));
    expect(manifest.tokenizer.sha256).toBe(sha256(tok));
    expect(tok.equals(await readFile(join(TINY, 'tokenizer.json')))).toBe(true);
    expect(manifest.weights.sha256).toBe(sha256(await readFile(join(model(), 'base.safetensors'))));
    expect(manifest.editableLayers).toEqual(['h.0.mlp.c_fc', 'h.0.mlp.c_proj', 'h.1.mlp.c_fc', 'h.1.mlp.c_proj']);
  });

  it('generate --json gives the golden greedy continuation', async () => {
    const golden = readGolden(TINY).prompts[0];
    const run = await edit(['generate', golden.text, '--model', model(), '--max-tokens', '8', '--no-stop', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { prompt: string; completion: string; tokens: number; promptTokens: number; backend: string };
    const tokenizer = await Tokenizer.load(join(TINY, 'tokenizer.json'));
    expect(out.prompt).toBe(golden.text);
    expect(out.promptTokens).toBe(golden.ids.length);
    expect(out.tokens).toBe(8);
    expect(out.completion).toBe(tokenizer.decode(golden.greedy_ids));
    expect(tokenizer.encode(golden.text + out.completion)).toEqual([...golden.ids, ...golden.greedy_ids]);
    expect(out.backend).toBe('wasm');
  });

  it('a tokenizer with add_prefix_space: imports, and reads a prompt as the same prompt after a space; export keeps the flag', async () => {
    const hf = join(tmp, 'hf-prefix-space');
    await cp(TINY, hf, { recursive: true });
    const json = JSON.parse(await readFile(join(hf, 'tokenizer.json'), 'utf8')) as { pre_tokenizer: Record<string, unknown> };
    json.pre_tokenizer.add_prefix_space = true;
    await writeFile(join(hf, 'tokenizer.json'), JSON.stringify(json));
    const flagged = join(tmp, 'prefix-space');
    const run = await edit(['model', 'import', hf, '--out', flagged]);
    expect(run.code, run.stderr).toBe(0);
    const text = readGolden(TINY).prompts[0].text;
    expect(text.startsWith(' ')).toBe(false);
    const [a, b] = await Promise.all([
      edit(['generate', text, '--model', flagged, '--max-tokens', '6', '--no-stop', '--json']),
      edit(['generate', ` ${text}`, '--model', model(), '--max-tokens', '6', '--no-stop', '--json']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [outA, outB] = [a, b].map((r) => JSON.parse(r.stdout) as { completion: string; promptTokens: number });
    expect(outA.promptTokens).toBe(outB.promptTokens);
    expect(outA.completion).toBe(outB.completion);
    expect(outA.promptTokens).not.toBe(readGolden(TINY).prompts[0].ids.length); // the text as typed is other ids: the space changed them
    const exported = join(tmp, 'prefix-space-export');
    const ex = await edit(['model', 'export', exported, '--model', flagged]);
    expect(ex.code, ex.stderr).toBe(0);
    expect((JSON.parse(await readFile(join(exported, 'tokenizer.json'), 'utf8')) as typeof json).pre_tokenizer.add_prefix_space).toBe(true);
  });

  it('prefixed F16 folder: import, export, re-import of the export gives the same logits', async () => {
    const first = join(tmp, 'prefixed');
    const exported = join(tmp, 'exported');
    const again = join(tmp, 'again');
    const runs = [
      await edit(['model', 'import', TINY_PREFIXED, '--out', first]),
      await edit(['model', 'export', exported, '--model', first]),
      await edit(['model', 'import', exported, '--out', again]),
    ];
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(await readFile(join(exported, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model_type: 'gpt2', n_layer: 2, n_embd: 16, n_head: 2, vocab_size: 457, n_positions: 32 });
    const header = splitSafetensors(await readFile(join(exported, 'model.safetensors'))).header;
    expect(Object.keys(header).some((k) => k.startsWith('transformer.') || k.startsWith('lm_head'))).toBe(false);
    const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__');
    expect(tensors).toHaveLength(2 + 2 * 12 + 2);
    expect(tensors.every(([, t]) => t.dtype === 'F32')).toBe(true);

    const golden = readGolden(TINY_PREFIXED);
    const a = await loadModelFolder(first);
    const b = await loadModelFolder(again);
    try {
      expect(b.manifest.weights.sha256).toBe(a.manifest.weights.sha256);
      for (const p of golden.prompts) {
        const [la, lb] = [a, b].map((m) => tf.tidy(() => m.model.logits(tf.tensor2d([p.ids], [1, p.ids.length], 'int32')).arraySync() as number[][]));
        expectClose(lb.flat(), la.flat(), { atol: 1e-6, rtol: 1e-6 });
        expectClose(lb[lb.length - 1], p.last_logits);
      }
    } finally {
      a.model.dispose();
      b.model.dispose();
    }
  });
});

describe('edit model export of an edited model', () => {
  it('writes the effective weights (base + the applied set\'s delta); --base the unedited ones', async () => {
    // The shipped model with its applied examples (France → " Lyon"), solved into one set delta.
    const shipped = join(ROOT, 'models/default');
    const state = JSON.parse(await readFile(join(shipped, 'state.json'), 'utf8')) as { delta: { file: string; layers: string[] } };
    const [effective, unedited] = [join(tmp, 'effective'), join(tmp, 'unedited')];
    const exports = await Promise.all([edit(['model', 'export', effective, '--model', 'models/default']), edit(['model', 'export', unedited, '--model', 'models/default', '--base'])]);
    for (const r of exports) expect(r.code, r.stderr).toBe(0);
    expect(exports[0].stdout).toMatch(/effective weights, 2 applied edits$/m);
    expect(exports[1].stdout).toMatch(/base weights \(--base\)$/m);

    // Exported tensors, against base.safetensors and the set delta: changed exactly where the delta is.
    const read = async (file: string) => {
      const { header, data } = splitSafetensors(await readFile(file));
      return (name: string) => {
        const [a, b] = header[name].data_offsets;
        return new Float32Array(Uint8Array.prototype.slice.call(data, a, b).buffer); // a copy: Buffer#slice would share the file's buffer
      };
    };
    const [eff, base, orig, delta] = await Promise.all([read(join(effective, 'model.safetensors')), read(join(unedited, 'model.safetensors')), read(join(shipped, 'base.safetensors')), read(join(shipped, state.delta.file))]);
    expect(state.delta.layers).toEqual(['h.2.mlp.c_proj', 'h.3.mlp.c_proj']);
    for (const layer of state.delta.layers) {
      const [e, b, o, d] = [eff(`${layer}.weight`), base(`${layer}.weight`), orig(`${layer}.weight`), delta(`${layer}.weight`)];
      expect(b).toEqual(o);
      let maxErr = 0;
      // within one float32 rounding of the exact sum
      for (let i = 0; i < e.length; i++) maxErr = Math.max(maxErr, Math.abs(e[i] - (o[i] + d[i])) / Math.max(1, Math.abs(o[i] + d[i])));
      expect(maxErr).toBeLessThan(2 ** -23);
      expect(e).not.toEqual(o);
    }
    expect(eff('h.1.mlp.c_proj.weight')).toEqual(orig('h.1.mlp.c_proj.weight'));

    // Re-imported, the export answers as the edited model does; the --base export as the base model.
    const [again, againBase] = [join(tmp, 'effective-model'), join(tmp, 'unedited-model')];
    for (const [from, to] of [[effective, again], [unedited, againBase]]) expect((await edit(['model', 'import', from, '--out', to])).code).toBe(0);
    const prompt = 'The capital of France is';
    const answer = async (...args: string[]) => {
      const r = await edit(['generate', prompt, '--json', ...args]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { completion: string }).completion;
    };
    const [edited, fromExport, baseAnswer, fromBaseExport] = await Promise.all([answer('--model', 'models/default'), answer('--model', again), answer('--model', 'models/default', '--base'), answer('--model', againBase)]);
    expect(edited.startsWith(' Lyon')).toBe(true);
    expect(fromExport).toBe(edited);
    expect(baseAnswer.startsWith(' Lyon')).toBe(false);
    expect(fromBaseExport).toBe(baseAnswer);
  });
});

describe.concurrent('bad input: one error line naming the file, non-zero exit, no stack trace', () => {
  /** A copy of the tiny HF folder to break. */
  async function hfCopy(name: string): Promise<string> {
    const dir = join(tmp, name);
    await cp(TINY, dir, { recursive: true });
    return dir;
  }
  /** A copy of the imported model folder to break. */
  async function modelCopy(name: string): Promise<string> {
    const dir = join(tmp, name);
    await cp(model(), dir, { recursive: true });
    return dir;
  }

  it('a truncated model.safetensors', async () => {
    const dir = await hfCopy('truncated');
    const file = join(dir, 'model.safetensors');
    await truncate(file, Math.floor((await readFile(file)).length / 2));
    const line = expectUserError(await edit(['model', 'import', dir, '--out', join(tmp, 'truncated-out')]), file);
    expect(line).toMatch(/beyond|truncated/);
    expect(existsSync(join(tmp, 'truncated-out', 'model.json'))).toBe(false);
  });

  it('a safetensors header that lies about offsets', async () => {
    const dir = await hfCopy('lying');
    const file = join(dir, 'model.safetensors');
    const { header, data } = splitSafetensors(await readFile(file));
    // Point wpe.weight at wte.weight's bytes: the header is valid JSON and in bounds, but the tensors overlap.
    header['wpe.weight'].data_offsets = [header['wte.weight'].data_offsets[0], header['wte.weight'].data_offsets[0] + 32 * 16 * 4];
    await writeFile(file, joinSafetensors(header, data));
    const line = expectUserError(await edit(['model', 'import', dir, '--out', join(tmp, 'lying-out')]), file);
    expect(line).toContain('overlapping data_offsets');
  });

  it('a tokenizer.json of WordPiece type', async () => {
    const dir = await hfCopy('wordpiece');
    const file = join(dir, 'tokenizer.json');
    const json = JSON.parse(await readFile(file, 'utf8')) as { model: Record<string, unknown> };
    json.model.type = 'WordPiece';
    await writeFile(file, JSON.stringify(json));
    const line = expectUserError(await edit(['model', 'import', dir, '--out', join(tmp, 'wordpiece-out')]), file);
    expect(line).toContain('/model/type');
  });

  it('a config.json with model_type "llama"', async () => {
    const dir = await hfCopy('llama');
    const file = join(dir, 'config.json');
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...json, model_type: 'llama' }));
    const line = expectUserError(await edit(['model', 'import', dir, '--out', join(tmp, 'llama-out')]), file);
    expect(line).toContain('/model_type');
    expect(line).toContain('llama');
  });

  it('a model folder with base.safetensors deleted', async () => {
    const dir = await modelCopy('no-weights');
    const file = join(dir, 'base.safetensors');
    await rm(file);
    const line = expectUserError(await edit(['generate', 'Hello', '--model', dir]), file);
    expect(line).toContain('missing');
  });

  it('a model folder whose base.safetensors was modified (sha256 mismatch)', async () => {
    const dir = await modelCopy('modified');
    const file = join(dir, 'base.safetensors');
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0x01;
    await writeFile(file, bytes);
    const line = expectUserError(await edit(['generate', 'Hello', '--model', dir]), file);
    expect(line).toContain('sha256');
  });

  it('EDIT_BACKEND=bogus on generate', async () => {
    const line = expectUserError(await edit(['generate', 'Hello', '--model', model()], { EDIT_BACKEND: 'bogus' }), 'EDIT_BACKEND=bogus');
    expect(line).toContain('wasm');
  });

  it('EDIT_BACKEND=node (not installed here) on generate', async () => {
    const line = expectUserError(await edit(['generate', 'Hello', '--model', model()], { EDIT_BACKEND: 'node' }), 'EDIT_BACKEND=node');
    expect(line).toContain('@tensorflow/tfjs-node is not installed');
  });

  it('an unknown command', async () => {
    expectUserError(await edit(['frobnicate']), '"frobnicate"');
  });

  it('an unknown flag', async () => {
    expectUserError(await edit(['generate', 'Hello', '--model', model(), '--bogus-flag']), '--bogus-flag');
  });

  it('--max-tokens abc', async () => {
    expectUserError(await edit(['generate', 'Hello', '--model', model(), '--max-tokens', 'abc']), '--max-tokens must be an integer');
  });
});
