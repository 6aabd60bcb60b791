/**
 * Backend selection (src/tensor/backend.ts). In-process: forced names that cannot load are
 * errors, and the automatic choice here is wasm because tfjs-node(-gpu) is not installed.
 * In child processes (the built dist/): EDIT_BACKEND=cpu runs without tfjs' tfjs-node banner.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { EditError } from '../src/errors.js';
import { BACKENDS, currentBackend, initBackend } from '../src/tensor/backend.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}
const NODE_INSTALLED = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

/** Child script: init the backend from EDIT_BACKEND, run one op, print what ran. */
const CHILD = `
import { initBackend } from './dist/src/tensor/backend.js';
import * as tf from '@tensorflow/tfjs';
try {
  const name = await initBackend();
  const sum = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync();
  console.log(JSON.stringify({ name, tf: tf.getBackend(), sum: Array.from(sum) }));
} catch (err) {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
}
`;

function child(backend: string | undefined): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.EDIT_BACKEND;
  if (backend !== undefined) env.EDIT_BACKEND = backend;
  return new Promise((done) => {
    execFile(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('initBackend in this process', () => {
  it('a name that is not a backend is an EditError listing the choices', async () => {
    const err = await initBackend('bogus').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EditError);
    expect((err as EditError).message).toBe(`EDIT_BACKEND=bogus is not a backend; choose one of ${BACKENDS.join(', ')}`);
    expect(currentBackend()).toBeUndefined();
  });

  it.skipIf(NODE_INSTALLED)('a forced backend whose package is absent is an error, not a fallback', async () => {
    for (const name of ['node', 'node-gpu']) {
      const err = await initBackend(name).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EditError);
      expect((err as EditError).message).toMatch(new RegExp(`^EDIT_BACKEND=${name} is not available: @tensorflow/tfjs-${name} is not installed$`));
    }
    expect(currentBackend()).toBeUndefined();
  });

  it.skipIf(NODE_INSTALLED)('picks wasm when not forced (tfjs-node packages absent), once per process', async () => {
    expect(await initBackend('')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(currentBackend()).toBe('wasm');
    // Chosen once: a later call, even a forced one, returns the same backend.
    expect(await initBackend('cpu')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('initBackend in a child process (dist/)', () => {
  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/src/tensor/backend.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  });

  it('EDIT_BACKEND=cpu works and prints no tfjs-node banner', async () => {
    const run = await child('cpu');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ name: 'cpu', tf: 'cpu', sum: [4, 6] });
    expect(run.stdout + run.stderr).not.toMatch(/tfjs-node|looks like you are running/);
    expect(run.stderr).toBe('');
  });

  it.skipIf(NODE_INSTALLED)('without EDIT_BACKEND it runs on wasm', async () => {
    const run = await child(undefined);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ name: 'wasm', tf: 'wasm', sum: [4, 6] });
    expect(run.stderr).toBe('');
  });
});
