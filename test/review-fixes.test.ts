/**
 * Regression tests for the review of plan / apply / verify / generate / init (one `describe` per
 * finding). Unit-level where the code allows; the rest end to end through the real binary
 * (`node bin/edit.js`, built by `npx tsc -p tsconfig.json`) on the tiny GPT-2 fixture, whose
 * outputs are random-ish but deterministic: "The capital of France is" → 16 × "o" on the base
 * model, so an edit expecting `not-contains` those 16 o's needs a weight change. The fixture has no
 * key statistics, so its model.json pins the ft editor (rows = the edit's own delta, summed): these
 * tests are about the files apply writes and removes, not about which editor wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { EditError } from '../src/errors.js';
import { main } from '../src/cli/main.js';
import { applyPlan } from '../src/apply/apply-plan.js';
import { toDeltaTensors } from '../src/model/delta-tensors.js';
import { refreshWorkspace } from '../src/apply/refresh.js';
import { openWorkspace, structuralPlan, type Workspace } from '../src/apply/workspace.js';
import type { EditRows, SetEditor } from '../src/editor/editor.js';
import { loadModelFolder, type LoadedModel, type ModelManifest } from '../src/model/folder.js';
import { initBackend } from '../src/tensor/backend.js';
import { serializeDelta, SET_DELTA_NAME, type ParsedDelta } from '../src/state/deltas.js';
import { densify } from '../src/model/weight-change.js';
import { editorSettings, makeEditor } from '../src/editor/registry.js';
import { serializeRows } from '../src/state/rows.js';
import { checkCommittable } from '../src/state/git.js';
import { effectiveSha, manifestSha } from '../src/state/state.js';
import type { ModelState } from '../src/state/types.js';
import { isTempFile, removeStaleTempFiles } from '../src/util/atomic.js';
import { sha256 } from '../src/util/hash.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');
const TINY = join(ROOT, 'test/fixtures/tiny-gpt2');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: { ...process.env, EDIT_BACKEND: 'cpu', ...env }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      done({ code, stdout, stderr });
    });
  });
}

const edit = (cwd: string, ...args: string[]) => run(process.execPath, [BIN, ...args], cwd);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('git', args, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function expectCode(r: Run, code: number): void {
  expect(r.code, `exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(code);
}

/** An edit the base model fails (it answers 16 × "o") and a small delta makes pass. */
function notOs(prompt: string): Record<string, unknown> {
  return {
    version: 1,
    task: 'counterfact',
    instruction: 'Rewrite the fact.',
    prompt,
    target: ' Lyon',
    thresholds: { reliability: 0, generalization: 0, locality: 0 },
    expect: [{ type: 'not-contains', prompt, value: 'o'.repeat(16) }],
  };
}

async function writeEdit(repo: string, id: string, spec: Record<string, unknown>): Promise<void> {
  const file = join(repo, 'edits', `${id}.json`);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(spec, null, 2)}\n`);
}

/** A pid that certainly is not running: a child that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

async function readModelState(repo: string): Promise<ModelState> {
  return JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')) as ModelState;
}

/** The rows file state.json names for `id`, relative to the repository (rows/<id>@<hash>.safetensors). */
async function rowsOf(repo: string, id: string): Promise<string> {
  return join('models/default', (await readModelState(repo)).edits[id].rows!.file);
}

/** The set's delta file state.json names, relative to the repository (deltas/set@<hash>.safetensors). */
async function setDeltaOf(repo: string): Promise<string> {
  return join('models/default', (await readModelState(repo)).delta!.file);
}

/** What a state names: its rows files and its set delta, relative to the repository, sorted. */
async function namedFiles(repo: string): Promise<string[]> {
  const state = await readModelState(repo);
  const named = [...Object.values(state.edits).flatMap((e) => (e.rows === null ? [] : [e.rows.file])), ...(state.delta === null ? [] : [state.delta.file])];
  return named.map((f) => join('models/default', f)).sort();
}

/** Every file under the model's rows/ and deltas/, relative to the repository, sorted. */
async function contentFiles(repo: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['rows', 'deltas']) {
    const dir = join(repo, 'models/default', sub);
    if (!existsSync(dir)) continue;
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    out.push(...entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(repo.length + 1)));
  }
  return out.sort();
}

const scratch: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `editops-review-${prefix}-`));
  scratch.push(d);
  return d;
}
afterAll(async () => {
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Unit level

describe('leftover temp files of killed atomic writes', () => {
  it('recognizes only writeFileAtomic temp names', () => {
    expect(isTempFile('deltas/geo/.france.safetensors.tmp-123-abcd')).toBe(true);
    expect(isTempFile('.state.json.tmp-9-0f')).toBe(true);
    expect(isTempFile('france.safetensors')).toBe(false);
    expect(isTempFile('notdot.tmp-1-ab')).toBe(false);
  });

  it('removes those whose writer is dead, keeps live writers, other files and (unless recursive) subfolders', async () => {
    const dir = await tempDir('tmpfiles');
    const dead = deadPid();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      await mkdir(join(dir, 'deltas', 'geo'), { recursive: true });
      const files = {
        deadTop: join(dir, `.state.json.tmp-${dead}-ab12`),
        liveTop: join(dir, `.state.json.tmp-${child.pid}-cd34`),
        ownTop: join(dir, `.state.json.tmp-${process.pid}-ef56`),
        plain: join(dir, 'state.json'),
        deadNested: join(dir, 'deltas', 'geo', `.france.safetensors.tmp-${dead}-0a`),
      };
      for (const f of Object.values(files)) await writeFile(f, 'x');

      expect(await removeStaleTempFiles(dir)).toEqual([files.deadTop]);
      expect(existsSync(files.deadNested)).toBe(true);
      expect(await removeStaleTempFiles(join(dir, 'deltas'), { recursive: true })).toEqual([files.deadNested]);
      for (const f of [files.liveTop, files.ownTop, files.plain]) expect(existsSync(f), f).toBe(true);
      expect(await removeStaleTempFiles(join(dir, 'no-such-folder'))).toEqual([]);
    } finally {
      child.kill();
    }
  });
});

describe('apply checks that it can commit before it writes', () => {
  it('refuses paths .gitignore keeps out, naming them', async () => {
    const repo = await tempDir('ignore');
    await git(repo, 'init', '-q');
    await writeFile(join(repo, '.gitignore'), 'models/default/deltas/\n');
    const err = await checkCommittable(repo, ['models/default/state.json', 'models/default/deltas/geo/france.safetensors']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EditError);
    expect((err as EditError).message).toBe('cannot commit models/default/deltas/geo/france.safetensors: ignored by .gitignore');
    await expect(checkCommittable(repo, ['models/default/state.json'])).resolves.toBeUndefined();
  });

  it('refuses a folder outside any repository and a path outside the repository', async () => {
    const notRepo = await tempDir('norepo');
    const err = await checkCommittable(notRepo, ['models/default/state.json']).catch((e: unknown) => e);
    expect((err as EditError).message).toBe('not inside a git repository');
    const repo = await tempDir('outside');
    await git(repo, 'init', '-q');
    await expect(checkCommittable(repo, [join(notRepo, 'state.json')])).rejects.toThrow(/is outside the git repository/);
  });
});

describe('apply --refresh with a hand-edited state.json', () => {
  it('drops an entry whose id cannot name a rows file instead of failing without a file name, and never reads its path', async () => {
    const dir = await tempDir('refresh');
    const model = join(dir, 'models', 'default');
    await mkdir(model, { recursive: true });
    const base = new TextEncoder().encode('base weights');
    await writeFile(join(model, 'base.safetensors'), base);
    const baseSha = sha256(base);
    const manifest = {
      version: 1,
      name: 't',
      architecture: 'gpt2',
      config: { vocabSize: 10, nPositions: 8, nEmbd: 4, nLayer: 1, nHead: 1, layerNormEps: 1e-5 },
      tokenizer: { file: 'tokenizer.json', sha256: '0'.repeat(64) },
      weights: { file: 'base.safetensors', sha256: baseSha, dtype: 'F32' },
      editableLayers: [],
      thresholds: { reliability: 1, generalization: 0.5, locality: 0.9, portability: 0 },
    } as unknown as ModelManifest;
    const evil = { specSha256: 'a'.repeat(64), method: 'ft', rows: { file: '../../../outside.bin', sha256: 'b'.repeat(64), count: 0 }, metrics: { reliability: 1, generalization: null, locality: null, portability: null, passed: 1, total: 1 }, appliedAt: 'x' };
    const setDelta = { file: '../../../outside-delta.bin', sha256: 'e'.repeat(64), layers: [], capacity: [] };
    const state: ModelState = { version: 2, serial: 1, base: { sha256: baseSha }, editor: null, stats: null, manifest: { sha256: manifestSha(manifest) }, delta: setDelta, effective: { sha256: 'c'.repeat(64) }, edits: { '../evil': evil } };
    const ws: Workspace = { root: dir, modelDir: 'models/default', editsDir: 'edits', editsMissing: false, manifest, state, stateSha: 'd'.repeat(64), drift: [], stray: [], edits: [], problems: [], lockedBy: null };

    const r = await refreshWorkspace(ws);
    expect(r.dropped).toEqual([{ id: '../evil', reason: 'state.json names rows file "../../../outside.bin", not its place in rows/' }]);
    expect(r.ws.state.edits).toEqual({});
    // the set's delta is re-solved by the apply that follows: the refreshed state names none (nor reads the old path)
    expect(r.ws.state.delta).toBeNull();
    expect(r.ws.state.effective.sha256).toBe(effectiveSha(baseSha, null));
    expect(r.ws.drift).toEqual([]);
    expect(r.ws.stray).toEqual([]);
  });
});

describe('apply --json in a terminal', () => {
  it('is a user error (it cannot ask for confirmation), not a crash', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['apply', '--json'], { out: (t) => void out.push(t), err: (t) => void err.push(t), tty: true });
    expect(code).toBe(1);
    expect(err.join('')).toBe('error: apply --json cannot ask for confirmation: pass --auto-approve (or apply a saved plan file)');
    expect(out).toEqual([]);
  });
});

describe('deltas are checked against the model before they are added to it', () => {
  const loaded = { dir: 'models/default', model: { params: { 'h.0.mlp.c_fc.weight': tf.zeros([4, 8]) } } } as unknown as LoadedModel;
  const meta = { id: SET_DELTA_NAME, method: 'memit' };
  const file = 'models/default/deltas/set@0123456789ab.safetensors';

  it('a delta whose shape would broadcast (W + Δ) is an error naming the delta file', () => {
    const delta: ParsedDelta = { meta, file, layers: { 'h.0.mlp.c_fc.weight': { kind: 'dense', shape: [1, 8], data: new Float32Array(8) } } };
    const err = (() => {
      try {
        toDeltaTensors(delta, loaded);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(EditError);
    expect((err as EditError).format()).toBe('models/default/deltas/set@0123456789ab.safetensors: the delta of "h.0.mlp.c_fc.weight" has shape [1,8], the model\'s parameter [4,8]');
  });

  it('a delta of a parameter the model lacks names its file too; a good one becomes one tensor per parameter; none is no tensor', () => {
    const stray: ParsedDelta = { meta, file, layers: { 'h.9.mlp.c_fc.weight': { kind: 'dense', shape: [4, 8], data: new Float32Array(32) } } };
    expect(() => toDeltaTensors(stray, loaded)).toThrow(/the delta changes "h.9.mlp.c_fc.weight", which this model does not have/);
    const good: ParsedDelta = { meta, file, layers: { 'h.0.mlp.c_fc.weight': { kind: 'lowrank', a: new Float32Array(4).fill(1), b: new Float32Array(8).fill(2), in: 4, out: 8, rank: 1 } } };
    const t = toDeltaTensors(good, loaded);
    expect(Object.keys(t)).toEqual(['h.0.mlp.c_fc.weight']);
    expect(t['h.0.mlp.c_fc.weight'].shape).toEqual([4, 8]);
    expect(t['h.0.mlp.c_fc.weight'].dataSync()[0]).toBe(2);
    tf.dispose(Object.values(t));
    expect(toDeltaTensors(null, loaded)).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------
// End to end through the binary, on the tiny fixture

describe('end to end', () => {
  let template: string;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
    template = await tempDir('template');
    await git(template, 'init', '-q');
    await git(template, 'config', 'user.email', 'review@example.com');
    await git(template, 'config', 'user.name', 'review');
    expectCode(await edit(template, 'model', 'import', TINY, '--out', 'models/default'), 0);
    const manifestPath = join(template, 'models/default/model.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ModelManifest;
    await writeFile(manifestPath, `${JSON.stringify({ ...manifest, editor: { method: 'ft' } }, null, 2)}\n`);
    await writeEdit(template, 'geo/france', notOs('The capital of France is'));
    await git(template, 'add', '-A');
    await git(template, 'commit', '-qm', 'init');
    expectCode(await edit(template, 'apply', '--auto-approve'), 0);
    expect(await rowsOf(template, 'geo/france')).toMatch(/^models\/default\/rows\/geo\/france@[0-9a-f]{12}\.safetensors$/);
    expect(await setDeltaOf(template)).toMatch(/^models\/default\/deltas\/set@[0-9a-f]{12}\.safetensors$/);
    expect(await contentFiles(template)).toEqual(await namedFiles(template));
    expect(await contentFiles(template)).toHaveLength(2);
  });

  async function repoCopy(name: string): Promise<string> {
    const repo = join(await tempDir(name), 'repo');
    await cp(template, repo, { recursive: true });
    return repo;
  }

  it('apply --refresh rewrites a drifted state.json even when the plan is empty', async () => {
    const repo = await repoCopy('refresh-empty');
    const statePath = join(repo, 'models/default/state.json');
    const state = JSON.parse(await readFile(statePath, 'utf8')) as ModelState;
    state.effective.sha256 = 'a'.repeat(64);
    await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`);
    expectCode(await edit(repo, 'plan', '--structural'), 1);

    const r = await edit(repo, 'apply', '--refresh', '--auto-approve');
    expectCode(r, 0);
    expect(r.stdout).toContain('Apply complete');
    const plan = await edit(repo, 'plan', '--structural', '--detailed-exitcode');
    expectCode(plan, 0);
    expect(plan.stdout).not.toContain('drift');
  });

  it('a changed model.json (thresholds) is drift until apply --refresh re-verifies every edit', async () => {
    const repo = await repoCopy('manifest-drift');
    const manifestPath = join(repo, 'models/default/model.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ModelManifest;
    await writeFile(manifestPath, `${JSON.stringify({ ...manifest, thresholds: { ...manifest.thresholds, reliability: 0.5 } }, null, 2)}\n`);

    const plan = await edit(repo, 'plan');
    expectCode(plan, 1);
    expect(plan.stdout).toMatch(/!\s+models\/default\/model\.json/);
    expect(plan.stdout).toContain('model.json changed since the edits were applied (thresholds, layers or editor)');
    expectCode(await edit(repo, 'apply', '--auto-approve'), 1);

    const r = await edit(repo, 'apply', '--refresh', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain('refresh: geo/france will be recomputed (model.json changed)');
    // the plan shows the applied edit as recomputed in place, not as a new one beside a stray rows file
    expect(r.stdout).toMatch(/~ geo\/france\s+update\s+"[^"]+" → "[^"]+" \(recomputed: model\.json changed\)/);
    expect(r.stdout).not.toMatch(/\+ geo\/france/);
    expect(r.stdout).not.toContain('stray');
    expect(r.stdout).toContain('Apply complete');
    const state = JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')) as ModelState;
    expect(state.manifest.sha256).toBe(manifestSha(JSON.parse(await readFile(manifestPath, 'utf8')) as ModelManifest));
    const after = await edit(repo, 'plan', '--detailed-exitcode');
    expectCode(after, 0);
    expect(after.stdout).not.toContain('drift');
  });

  it('provenance and knowledge in model.json are not drift; a state.json without the manifest hash is taken as current', async () => {
    const repo = await repoCopy('manifest-info');
    const manifestPath = join(repo, 'models/default/model.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ModelManifest;
    await writeFile(manifestPath, `${JSON.stringify({ ...manifest, knowledge: { heldIn: 0.5 }, provenance: { note: 'changed' } }, null, 2)}\n`);
    const statePath = join(repo, 'models/default/state.json');
    const { manifest: _recorded, ...old } = JSON.parse(await readFile(statePath, 'utf8')) as ModelState;
    await writeFile(statePath, `${JSON.stringify(old, null, 2)}\n`);
    expectCode(await edit(repo, 'plan', '--detailed-exitcode'), 0);
  });

  it('a saved plan that is not there, or is a folder, says so; `edit -v` is the version', async () => {
    const repo = await repoCopy('saved-plan-missing');
    const missing = await edit(repo, 'apply', 'nothere.json');
    expectCode(missing, 1);
    expect(missing.stderr).toContain('nothere.json: no such file: a saved plan is what `edit plan --out <file>` writes');
    const folder = await edit(repo, 'apply', 'edits');
    expectCode(folder, 1);
    expect(folder.stderr).toContain('edits: cannot read it: it is a folder');
    const v = await edit(repo, '-v');
    expectCode(v, 0);
    expect(v.stdout).toMatch(/^editops \d+\.\d+\.\d+\n$/);
  });

  it('a saved plan made before model.json changed is stale', async () => {
    const repo = await repoCopy('manifest-stale');
    await writeEdit(repo, 'geo/france', { ...notOs('The capital of France is'), target: ' Nice' });
    const saved = join(repo, '..', 'plan.json');
    expectCode(await edit(repo, 'plan', '--out', saved), 0);
    expect(JSON.parse(await readFile(saved, 'utf8')).state.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    const manifestPath = join(repo, 'models/default/model.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ModelManifest;
    await writeFile(manifestPath, `${JSON.stringify({ ...manifest, editableLayers: manifest.editableLayers.slice(0, 1) }, null, 2)}\n`);

    const r = await edit(repo, 'apply', saved, '--refresh');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('saved plan is stale: model.json changed since it was made');
    expect(await git(repo, 'status', '--porcelain', 'models/default/state.json')).toBe('');
  });

  it('apply --refresh still refuses a state that another apply changed while it was planning', async () => {
    const repo = await repoCopy('refresh-race');
    await writeEdit(repo, 'geo/france', { ...notOs('The capital of France is'), target: ' Nice' });
    // Stands in for another apply finishing: state.json changes just before this one takes the lock.
    const hook = join(repo, '..', 'race.cjs');
    await writeFile(
      hook,
      `const fs = require('fs'); const { syncBuiltinESMExports } = require('module');
const link = fs.promises.link;
fs.promises.link = async function (from, to) {
  // the lock is written whole under a temp name and linked into place (src/state/lock.ts)
  if (String(to).endsWith('/.lock')) {
    const p = require('path').join(require('path').dirname(String(to)), 'state.json');
    const s = JSON.parse(fs.readFileSync(p, 'utf8')); s.serial += 1; fs.writeFileSync(p, JSON.stringify(s, null, 2) + '\\n');
  }
  return link.call(this, from, to);
};
syncBuiltinESMExports();
`,
    );
    const r = await run(process.execPath, [BIN, 'apply', '--refresh', '--auto-approve', '--no-commit'], repo, { NODE_OPTIONS: `--require ${hook}` });
    expectCode(r, 1);
    expect(r.stderr).toContain('the model state changed while this apply was planning');
    expect(existsSync(join(repo, 'models/default/.lock'))).toBe(false);
  });

  it('apply outside a git repository fails before writing anything', async () => {
    const repo = await repoCopy('nogit');
    await rm(join(repo, '.git'), { recursive: true, force: true });
    await writeEdit(repo, 'geo/france', { ...notOs('The capital of France is'), target: ' Nice' });
    const before = await readFile(join(repo, 'models/default/state.json'), 'utf8');
    const rowsBefore = await readFile(join(repo, await rowsOf(repo, 'geo/france')));
    const deltaBefore = await readFile(join(repo, await setDeltaOf(repo)));
    const filesBefore = await contentFiles(repo);
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 1);
    expect(r.stderr).toContain('not inside a git repository');
    expect(r.stderr).not.toContain('computing rows');
    expect(await readFile(join(repo, 'models/default/state.json'), 'utf8')).toBe(before);
    expect(Buffer.compare(await readFile(join(repo, await rowsOf(repo, 'geo/france'))), rowsBefore)).toBe(0);
    expect(Buffer.compare(await readFile(join(repo, await setDeltaOf(repo))), deltaBefore)).toBe(0);
    expect(await contentFiles(repo)).toEqual(filesBefore);
  });

  it('a commit that fails after the writes says the state was written (not "nothing was written")', async () => {
    const repo = await repoCopy('hook');
    await writeFile(join(repo, '.git/hooks/pre-commit'), '#!/bin/sh\necho refused by hook >&2\nexit 1\n', { mode: 0o755 });
    await writeEdit(repo, 'geo/france', { ...notOs('The capital of France is'), target: ' Nice' });
    const [oldRows, oldDelta] = [await rowsOf(repo, 'geo/france'), await setDeltaOf(repo)];
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 1);
    expect(r.stderr).toMatch(/error: \/.*: the edits were applied \(state serial 2 written\) but not committed: git commit failed/);
    const [rows, delta] = [await rowsOf(repo, 'geo/france'), await setDeltaOf(repo)];
    expect(rows).not.toBe(oldRows);
    expect(delta).not.toBe(oldDelta);
    // what was written (new rows, the new set delta, state.json) and removed (the old ones)
    expect(r.stderr).toContain(`hint: commit ${rows}, ${delta}, models/default/state.json, ${oldRows}, ${oldDelta}`);
    expect(JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8')).serial).toBe(2);
  });

  it('apply --target with an unknown id is an error, as in plan', async () => {
    const repo = await repoCopy('target');
    const r = await edit(repo, 'apply', '--auto-approve', '--target', 'geo/frnace');
    expectCode(r, 1);
    expect(r.stderr).toContain('--target geo/frnace: no edit file and no applied edit has this id');
  });

  it('apply removes temp files left by a killed write (dead pid only)', async () => {
    const repo = await repoCopy('leftovers');
    const dead = deadPid();
    const leftover = join(repo, 'models/default/rows/geo', `.france.safetensors.tmp-${dead}-abcd`);
    await writeFile(leftover, 'partial');
    const leftoverDelta = join(repo, 'models/default/deltas', `.set.safetensors.tmp-${dead}-abcd`);
    await writeFile(leftoverDelta, 'partial');
    await writeEdit(repo, 'geo/france', { ...notOs('The capital of France is'), target: ' Nice' });
    await git(repo, 'commit', '-qam', 'update');
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain(`removed ${leftover} (left by a killed write)`);
    expect(r.stderr).toContain(`removed ${leftoverDelta} (left by a killed write)`);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(leftoverDelta)).toBe(false);
  });

  it('rows or a set delta refused when encoded (no tensor, NaN) fail the apply before any file is written', async () => {
    const repo = await repoCopy('encode');
    const noExpect = (prompt: string) => ({ ...notOs(prompt), expect: undefined });
    await writeEdit(repo, 'a', noExpect('capital of France is'));
    await writeEdit(repo, 'b', noExpect('Hello there'));
    await initBackend('cpu');
    const ws = await openWorkspace(repo, 'models/default');
    const loaded = await loadModelFolder(join(repo, 'models/default'));
    try {
      const plan = structuralPlan(ws);
      expect(plan.changes.filter((c) => c.action === '+').map((c) => c.id)).toEqual(['a', 'b']);
      // ft rows are the edit's own (dense) delta
      const some: EditRows = { tensors: { 'h.1.mlp.c_proj.weight': { dtype: 'F32', shape: [64, 16], data: new Float32Array(64 * 16).fill(1e-4) } } };
      // The model's editor (ft: the kept edit's cached rows are read as its own), with made-up rows for the new edits and, poisoned, a set delta of NaN.
      const ft = makeEditor(editorSettings(ws.manifest));
      const fake = (rowsOf: (id: string) => EditRows, poison = false): SetEditor => ({
        method: ft.method,
        joint: ft.joint,
        editedLayers: (l) => ft.editedLayers(l),
        computeRows: async (_ctx, reqs) => new Map(reqs.map((r) => [r.id, rowsOf(r.id)])),
        solve: async (ctx, rows) => {
          const d = await ft.solve(ctx, rows);
          if (!poison) return d;
          return { layers: Object.fromEntries([...densify(d)].map(([p, t]) => [p, { kind: 'dense' as const, shape: t.shape, data: new Float32Array(t.data.length).fill(Number.NaN) }])) };
        },
        capacity: () => [],
      });
      const stateBefore = await readFile(join(repo, 'models/default/state.json'), 'utf8');
      const filesBefore = await contentFiles(repo);
      // "a" gets valid rows and is encoded first; "b" rows without a tensor, which serializeRows refuses.
      await expect(applyPlan(ws, plan, loaded, { editor: fake((id) => (id === 'a' ? some : { tensors: {} })), commit: false })).rejects.toThrow('rows of edit "b" hold no tensor');
      expect(await contentFiles(repo)).toEqual(filesBefore);
      expect(await readFile(join(repo, 'models/default/state.json'), 'utf8')).toBe(stateBefore);
      // Good rows, but a set delta with a NaN (encoded after every rows file): still nothing written.
      await expect(applyPlan(ws, plan, loaded, { editor: fake(() => some, true), commit: false })).rejects.toThrow(/NaN/);
      expect(await contentFiles(repo)).toEqual(filesBefore);
      expect(await readFile(join(repo, 'models/default/state.json'), 'utf8')).toBe(stateBefore);
    } finally {
      loaded.model.dispose();
    }
  });

  it('"= already satisfied" means the base model passes: an edit held only by another edit\'s change gets rows of its own, so that edit can be destroyed', async () => {
    const repo = await repoCopy('satisfied');
    // The France delta happens to change this prompt's output too; the base model does not pass it.
    await writeEdit(repo, 'b', notOs('capital of France is'));
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-qm', 'b');
    const plan = await edit(repo, 'plan', '--json');
    expectCode(plan, 0);
    const change = (JSON.parse(plan.stdout) as { changes: Array<{ id: string; action: string }> }).changes.find((c) => c.id === 'b');
    expect(change?.action).toBe('+');
    expectCode(await edit(repo, 'apply', '--auto-approve'), 0);

    await rm(join(repo, 'edits/geo/france.json'));
    await git(repo, 'commit', '-qam', 'remove france');
    const destroy = await edit(repo, 'apply', '--auto-approve');
    expectCode(destroy, 0);
    expect(existsSync(join(repo, 'models/default/rows/geo'))).toBe(false);
    expect(await contentFiles(repo)).toEqual([await setDeltaOf(repo), await rowsOf(repo, 'b')].sort());
    // b holds on its own
    expectCode(await edit(repo, 'verify'), 0);
  });
  it('a kill between the rows and delta writes and the state write leaves the previous state usable; the next apply removes the stray files', async () => {
    const repo = await repoCopy('killed');
    const prompt = 'The capital of France is';
    const before = await edit(repo, 'generate', prompt, '--json');
    expectCode(before, 0);
    await writeEdit(repo, 'geo/france', { ...notOs(prompt), target: ' Nice' });
    await git(repo, 'commit', '-qam', 'update');
    const stateBytes = await readFile(join(repo, 'models/default/state.json'));
    const old = [await rowsOf(repo, 'geo/france'), await setDeltaOf(repo)];
    const oldBytes = await Promise.all(old.map((f) => readFile(join(repo, f))));

    // SIGKILL the apply as it renames the new state.json into place: its rows and set delta files are written, state.json is not.
    const hook = join(repo, '..', 'kill.cjs');
    await writeFile(
      hook,
      `const fs = require('fs'); const { syncBuiltinESMExports } = require('module');
const rename = fs.promises.rename;
fs.promises.rename = async function (from, to) {
  if (String(to).endsWith('/state.json')) process.kill(process.pid, 'SIGKILL');
  return rename.call(this, from, to);
};
syncBuiltinESMExports();
`,
    );
    const killed = await run(process.execPath, [BIN, 'apply', '--auto-approve'], repo, { NODE_OPTIONS: `--require ${hook}` });
    expect(killed.code, killed.stderr).not.toBe(0);
    expect(killed.stdout).not.toContain('Apply complete');
    expect(await readFile(join(repo, 'models/default/state.json'))).toEqual(stateBytes);
    for (const [i, f] of old.entries()) expect(await readFile(join(repo, f))).toEqual(oldBytes[i]);
    const files = await contentFiles(repo);
    const stray = files.filter((f) => !old.includes(f));
    expect(files).toHaveLength(4);
    expect(stray).toHaveLength(2);
    expect(stray[0]).toMatch(/^models\/default\/deltas\/set@[0-9a-f]{12}\.safetensors$/);
    expect(stray[1]).toMatch(/^models\/default\/rows\/geo\/france@[0-9a-f]{12}\.safetensors$/);

    // plan: no blocking drift, the stray files as a warning; the update is still to do.
    const plan = await edit(repo, 'plan', '--detailed-exitcode');
    expectCode(plan, 2);
    for (const f of stray) expect(plan.stdout).toMatch(new RegExp(`^\\s*\\? ${f.replace(/[.]/g, '\\.')}\\s+stray file\\s+removed by the next apply$`, 'm'));
    expect(plan.stdout).toMatch(/^\s*~ geo\/france\s+update/m);
    expect(plan.stdout).toContain('Plan: 0 to create, 1 to update, 0 to destroy, 2 stray files to remove.');
    expect(plan.stdout).not.toContain('drift');
    const json = await edit(repo, 'plan', '--json', '--structural');
    expectCode(json, 0);
    expect(JSON.parse(json.stdout)).toMatchObject({ drift: [], stray: [stray[1], stray[0]], summary: { drift: 0, stray: 2, update: 1 } });

    // verify and generate run on the previous state.
    const [verify, gen] = await Promise.all([edit(repo, 'verify'), edit(repo, 'generate', prompt, '--json')]);
    expectCode(verify, 0);
    expect(verify.stderr).not.toMatch(/error|drift/i);
    expectCode(gen, 0);
    expect(JSON.parse(gen.stdout)).toMatchObject({ completion: JSON.parse(before.stdout).completion, edits: ['geo/france'] });

    // The killed apply still holds the lock (never taken over automatically); once it is cleared, the
    // next apply removes the stray files (or, when it computed the same rows and delta, reuses them) and the old ones.
    const lock = JSON.parse(await readFile(join(repo, 'models/default/.lock'), 'utf8')) as { id: string };
    expectCode(await edit(repo, 'force-unlock', lock.id), 0);
    const handWritten = ['models/default/rows/geo/france@000000000000.safetensors', 'models/default/deltas/set@000000000000.safetensors'];
    await writeFile(join(repo, handWritten[0]), serializeRows({ tensors: { 'h.0.mlp.c_fc.weight': { dtype: 'F32', shape: [1, 1], data: new Float32Array([1]) } } }, { id: 'geo/france', method: 'ft', specSha256: 'a'.repeat(64) }));
    await writeFile(join(repo, handWritten[1]), serializeDelta({ layers: { 'h.0.mlp.c_fc.weight': { kind: 'dense', shape: [1, 1], data: new Float32Array([1]) } } }, { id: SET_DELTA_NAME, method: 'ft' }));
    const apply = await edit(repo, 'apply', '--auto-approve');
    expectCode(apply, 0);
    expect(apply.stderr).toMatch(/removed .*\.state\.json\.tmp-\d+-[0-9a-f]+ \(left by a killed write\)/);
    const now = [await rowsOf(repo, 'geo/france'), await setDeltaOf(repo)];
    expect(now[0]).not.toBe(old[0]);
    expect(now[1]).not.toBe(old[1]);
    expect(await contentFiles(repo)).toEqual([...now].sort());
    expect(await git(repo, 'status', '--porcelain', '--untracked-files=all', '--', 'models/default')).toBe('');
    const clean = await edit(repo, 'plan', '--structural', '--detailed-exitcode');
    expectCode(clean, 0);
    expect(clean.stdout).not.toContain('stray');
  });

  it('an apply with only stray rows and delta files to remove removes them and leaves state.json as it is', async () => {
    const repo = await repoCopy('stray-only');
    const stateBytes = await readFile(join(repo, 'models/default/state.json'));
    const named = await namedFiles(repo);
    const stray = ['models/default/rows/killed/create@0123456789ab.safetensors', 'models/default/deltas/set@0123456789ab.safetensors'];
    for (const f of stray) {
      await mkdir(dirname(join(repo, f)), { recursive: true });
      await writeFile(join(repo, f), 'a killed create');
    }
    const plan = await edit(repo, 'plan', '--structural', '--detailed-exitcode');
    expectCode(plan, 0);
    expect(plan.stdout).toContain('No changes. The model matches the edit files (1 applied). 2 stray files to remove.');
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 0);
    expect(r.stdout).toContain('No changes to apply; removed 2 stray files, nothing to commit.');
    expect(existsSync(join(repo, 'models/default/rows/killed'))).toBe(false);
    expect(await contentFiles(repo)).toEqual(named);
    expect(await readFile(join(repo, 'models/default/state.json'))).toEqual(stateBytes);
  });
});

describe('read commands while an apply holds the lock', () => {
  it('plan --structural warns on stderr naming the holder, and still plans', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'editops-lockwarn-'));
    try {
      await git(dir, 'init', '-q');
      expectCode(await edit(dir, 'model', 'import', TINY, '--out', 'models/default'), 0);
      const { hostname } = await import('node:os');
      // A live holder: this test process itself, as a concurrent apply would be.
      const lock = { id: 'lock-1', pid: process.pid, host: hostname(), command: 'edit apply', startedAt: new Date().toISOString() };
      await writeFile(join(dir, 'models/default/.lock'), JSON.stringify(lock));
      const r = await edit(dir, 'plan', '--structural');
      expectCode(r, 0);
      expect(r.stderr).toContain(`warning: models/default is locked by pid ${process.pid} on host ${hostname()} running "edit apply"`);
      expect(r.stdout).toContain('No changes.');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
