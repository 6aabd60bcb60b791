/**
 * The whole edits-as-code workflow end to end through the real binary (bin/edit.js → dist/, built
 * by `npx tsc -p tsconfig.json`), in one temporary git repository walked through in order:
 * init → plan → apply → generate → update → destroy → a failing apply that writes nothing →
 * stale saved plan → lock → git revert → reports → drift and --refresh → --target and --shard.
 *
 * Model: $EDITOPS_TEST_MODEL, else the shipped models/default, else .tmp/mid-model (a partially
 * trained checkpoint of the same architecture). The editor is the model's own (instructedit for the
 * shipped model): per edit a cached rows file (rows/<id>@<sha12>.safetensors), one solved change of the
 * whole set (deltas/set@<sha12>.safetensors). The edits set `"thresholds": {"locality": 0}` so the
 * walk does not depend on an editor's spill-over (set-semantics.test.ts and neighbours-cli.test.ts
 * hold locality). The walk is about the loop, so a hypernetwork editor's refinement is cut to
 * LOOP_REFINE_STEPS (test/helpers/cli.ts); the editor's quality is measured by `edit eval`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loopRefinement } from './helpers/cli.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');

function testModel(): string {
  const wanted = process.env.EDITOPS_TEST_MODEL ?? join(ROOT, 'models/default');
  return existsSync(join(wanted, 'model.json')) ? resolve(wanted) : join(ROOT, '.tmp/mid-model');
}
const MODEL_SRC = testModel();
/** The model's own editor (instructedit on the shipped model: it holds a hypernetwork file). */
const EDITOR: string = (JSON.parse(readFileSync(join(MODEL_SRC, 'model.json'), 'utf8')) as { editor?: { method: string; file?: string } }).editor?.method ?? 'memit';
const EDITOR_HASH = ['mend', 'instructedit'].includes(EDITOR) ? 'network' : 'settings';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let repo: string;
let scratch: string; // outside the repository: saved plans, reports
const timings: Array<[string, number]> = [];

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: { ...process.env, EDIT_BACKEND: 'wasm' }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      done({ code, stdout, stderr });
    });
  });
}

/** `edit <args>` in the test repository. */
function edit(...args: string[]): Promise<Run> {
  return run(process.execPath, [BIN, ...args], repo);
}

async function git(...args: string[]): Promise<string> {
  const r = await run('git', args, repo);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Print the whole run when an expectation on its exit code fails. */
function expectCode(r: Run, code: number | number[]): void {
  const ok = Array.isArray(code) ? code.includes(r.code) : r.code === code;
  expect(ok, `exit ${r.code}, expected ${JSON.stringify(code)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(true);
}

const MODEL = 'models/default';
const modelPath = (...p: string[]) => join(repo, MODEL, ...p);

async function writeEdit(id: string, spec: Record<string, unknown>): Promise<void> {
  const file = join(repo, 'edits', `${id}.json`);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ version: 1, task: 'counterfact', ...spec }, null, 2)}\n`);
}

const capital = (country: string, target: string, extra: Record<string, unknown> = {}) => ({
  subject: country,
  relation: 'capital',
  prompt: `The capital of ${country} is`,
  target,
  locality: [{ prompt: 'The capital of Japan is' }],
  thresholds: { locality: 0 },
  ...extra,
});

async function readState(): Promise<{ serial: number; delta: { file: string; sha256: string } | null; edits: Record<string, { method: string; rows: { file: string; count: number } | null }> }> {
  return JSON.parse(await readFile(modelPath('state.json'), 'utf8'));
}

/** Every file under the model folder, relative to it. */
async function modelFiles(): Promise<string[]> {
  const entries = await readdir(modelPath(), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(modelPath().length + 1)).sort();
}

/** The files under the model's rows/ and deltas/, relative to the model folder, sorted. */
async function contentFiles(): Promise<string[]> {
  return (await modelFiles()).filter((f) => f.startsWith('rows/') || f.startsWith('deltas/'));
}

/** rows/<id>@<12 hex>.safetensors: where the rows of `id` live (content-addressed). */
const rowsName = (id: string) => new RegExp(`^rows/${id.replace(/[.]/g, '\\.')}@[0-9a-f]{12}\\.safetensors$`);
/** deltas/set@<12 hex>.safetensors: where the set's solved change lives (content-addressed). */
const SET_DELTA = /^deltas\/set@[0-9a-f]{12}\.safetensors$/;

async function commitCount(): Promise<number> {
  return Number((await git('rev-list', '--count', 'HEAD')).trim());
}

async function timed<T>(phase: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([phase, (performance.now() - t0) / 1000]);
  }
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  repo = await mkdtemp(join(tmpdir(), 'editops-e2e-'));
  scratch = await mkdtemp(join(tmpdir(), 'editops-e2e-out-'));
  await git('init', '--quiet');
  await git('config', 'user.name', 'E2E Test');
  await git('config', 'user.email', 'e2e@example.com');
  await git('config', 'commit.gpgsign', 'false');
  // init copies the package's shipped models/default; any other model is put in place first, and init keeps it.
  if (MODEL_SRC !== resolve(ROOT, 'models/default')) {
    const manifest = JSON.parse(await readFile(join(MODEL_SRC, 'model.json'), 'utf8')) as { tokenizer: { file: string }; weights: { file: string }; editor?: { file?: string } | null; stats?: { file: string }; probes?: { file: string } };
    await mkdir(modelPath(), { recursive: true });
    const named = [manifest.editor?.file, manifest.stats?.file, manifest.probes?.file].filter((f): f is string => f !== undefined);
    for (const f of ['model.json', manifest.tokenizer.file, manifest.weights.file, ...named]) {
      await cp(join(MODEL_SRC, f), modelPath(f));
    }
  }
});

afterAll(async () => {
  if (timings.length > 0) {
    const total = timings.reduce((a, [, s]) => a + s, 0);
    console.log(`e2e-workflow on ${MODEL_SRC}\n${timings.map(([p, s]) => `  ${s.toFixed(1).padStart(6)} s  ${p}`).join('\n')}\n  ${total.toFixed(1).padStart(6)} s  total`);
  }
  if (repo) await rm(repo, { recursive: true, force: true });
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.sequential('edit workflow end to end', () => {
  const PHASE = 150_000;

  it('init scaffolds edits/, the model folder, the workflow and the lock ignore', () =>
    timed('init', async () => {
      const r = await edit('init');
      expectCode(r, 0);
      expect(r.stdout).toMatch(/Next: add an edit file/);
      expect(existsSync(modelPath('model.json'))).toBe(true);
      expect(existsSync(join(repo, 'edits/README.md'))).toBe(true);
      expect(existsSync(join(repo, '.github/workflows/edits.yml'))).toBe(true);
      expect(await readFile(join(repo, '.gitignore'), 'utf8')).toContain('models/*/.lock');
      await loopRefinement(modelPath());
      await git('add', '-A');
      await git('commit', '--quiet', '-m', 'scaffold');
    }), PHASE);

  it('plan shows a new edit file as a create (exit 2 with --detailed-exitcode)', () =>
    timed('plan create', async () => {
      await writeEdit('capitals/italy', capital('Italy', ' Berlin'));
      const r = await edit('plan', '--detailed-exitcode');
      expectCode(r, 2);
      expect(r.stdout).toMatch(/^\s*\+ capitals\/italy\s+create\s+"The capital of Italy is" → " Berlin"/m);
      expect(r.stdout).toContain(`\nEditor ${EDITOR} re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 1 edit: all of them new.`);
      expect(r.stdout).toMatch(/^Capacity: 1 rows? per edited layer of 1024 \(0%\)\.$/m);
      expect(r.stdout).toContain('Plan: 1 to create, 0 to update, 0 to destroy.');
    }), PHASE);

  it('apply without --auto-approve and without a terminal is refused and writes nothing', () =>
    timed('apply without a TTY', async () => {
      const r = await edit('apply');
      expectCode(r, 1);
      expect(r.stderr).toMatch(/asks for confirmation.*--auto-approve/);
      expect(existsSync(modelPath('state.json'))).toBe(false);
    }), PHASE);

  it('apply --auto-approve writes the edit\'s rows, the set delta and state.json and commits them', () =>
    timed('apply create', async () => {
      const before = await commitCount();
      const r = await edit('apply', '--auto-approve');
      expectCode(r, 0);
      expect(r.stdout).toMatch(/✓ capitals\/italy\s+reliability 100%/);
      expect(r.stdout).toMatch(/Apply complete: state serial 1, 3 files written, committed [0-9a-f]{10}\./);
      expect(await commitCount()).toBe(before + 1);
      const message = await git('log', '-1', '--format=%B');
      expect(message).toMatch(/^edit apply: 1 created, 0 updated, 0 destroyed/);
      expect(message).toContain('+ capitals/italy "The capital of Italy is" → " Berlin"');
      const state = await readState();
      expect(state.serial).toBe(1);
      expect(state.edits['capitals/italy'].method).toBe(EDITOR);
      const rows = state.edits['capitals/italy'].rows!.file;
      expect(rows).toMatch(rowsName('capitals/italy'));
      const delta = state.delta!.file;
      expect(delta).toMatch(SET_DELTA);
      expect(await contentFiles()).toEqual([delta, rows]);
      const tracked = (await git('ls-files', MODEL)).split('\n');
      expect(tracked).toContain(`${MODEL}/state.json`);
      expect(tracked).toContain(`${MODEL}/${rows}`);
      expect(tracked).toContain(`${MODEL}/${delta}`);
      expect(await git('status', '--porcelain', '--', MODEL)).toBe('');
      // With them, the edit file the new state depends on (untracked until now): a clone plans no change.
      expect((await git('show', '--name-only', '--format=', 'HEAD')).trim().split('\n').sort()).toEqual(['edits/capitals/italy.json', `${MODEL}/${delta}`, `${MODEL}/${rows}`, `${MODEL}/state.json`]);
    }), PHASE);

  it('generate gives the new target, --base the old answer; plan then has no changes', () =>
    timed('generate + plan clean', async () => {
      const [gen, base, plan] = await Promise.all([
        edit('generate', 'The capital of Italy is', '--json'),
        edit('generate', 'The capital of Italy is', '--base', '--json'),
        edit('plan', '--detailed-exitcode'),
      ]);
      expectCode(gen, 0);
      const out = JSON.parse(gen.stdout) as { completion: string; edits: string[] };
      expect(out.completion.startsWith(' Berlin')).toBe(true);
      expect(out.edits).toEqual(['capitals/italy']);
      expectCode(base, 0);
      expect((JSON.parse(base.stdout) as { completion: string }).completion.startsWith(' Berlin')).toBe(false);
      expectCode(plan, 0);
      expect(plan.stdout).toContain('No changes. The model matches the edit files (1 applied).');
    }), PHASE);

  it('a changed target plans as an update and applies', () =>
    timed('update', async () => {
      await writeEdit('capitals/italy', capital('Italy', ' Madrid'));
      const plan = await edit('plan', '--detailed-exitcode');
      expectCode(plan, 2);
      expect(plan.stdout).toMatch(/^\s*~ capitals\/italy\s+update\s+"The capital of Italy is" → " Madrid"/m);
      expect(plan.stdout).toContain('Plan: 0 to create, 1 to update, 0 to destroy.');
      const before = await readState();
      const old = [before.edits['capitals/italy'].rows!.file, before.delta!.file];
      const apply = await edit('apply', '--auto-approve');
      expectCode(apply, 0);
      expect(await git('log', '-1', '--format=%B')).toMatch(/^edit apply: 0 created, 1 updated, 0 destroyed[\s\S]*~ capitals\/italy "The capital of Italy is" → " Madrid"/);
      const state = await readState();
      expect(state.serial).toBe(2);
      // The new rows and set delta went to new names (the old state's files were never overwritten); the old ones are gone.
      const now = [state.edits['capitals/italy'].rows!.file, state.delta!.file];
      expect(now[0]).toMatch(rowsName('capitals/italy'));
      expect(now[1]).toMatch(SET_DELTA);
      expect(now[0]).not.toBe(old[0]);
      expect(now[1]).not.toBe(old[1]);
      expect(await contentFiles()).toEqual([now[1], now[0]]);
      expect(await git('status', '--porcelain', '--', MODEL)).toBe('');
    }), PHASE);

  it('a deleted edit file plans as a destroy; apply removes its rows, the set delta and its state entry and commits', () =>
    timed('destroy', async () => {
      await unlink(join(repo, 'edits/capitals/italy.json'));
      const plan = await edit('plan', '--detailed-exitcode');
      expectCode(plan, 2);
      expect(plan.stdout).toMatch(/^\s*- capitals\/italy\s+destroy/m);
      expect(plan.stdout).toContain('0 to create, 0 to update, 1 to destroy');
      const apply = await edit('apply', '--auto-approve');
      expectCode(apply, 0);
      // the deleted edit file is committed as a deletion; the rows and set delta count as removed, not written
      expect(apply.stdout).toContain("Committed with the new state (the deletion of destroyed edits' files): edits/capitals/italy.json");
      expect(apply.stdout).not.toContain('files it depends on');
      expect(apply.stdout).toMatch(/Apply complete: state serial 3, 1 file written, 2 removed, committed [0-9a-f]{10}\./);
      expect(await contentFiles()).toEqual([]);
      const state = await readState();
      expect(state.edits).toEqual({});
      // the empty set changes no weight: the base model
      expect(state.delta).toBeNull();
      expect(state.serial).toBe(3);
      expect(await git('log', '-1', '--format=%B')).toMatch(/^edit apply: 0 created, 0 updated, 1 destroyed[\s\S]*- capitals\/italy/);
      expect(await git('ls-files', MODEL)).not.toContain('italy@');
      expect(await git('ls-files', MODEL)).not.toContain('set@');
      expect(await git('status', '--porcelain', '--', MODEL)).toBe('');
    }), PHASE);

  it('an apply whose assertion cannot hold fails, names the assertion and the actual output, and writes nothing', () =>
    timed('failing apply', async () => {
      await writeEdit('capitals/spain', capital('Spain', ' Tokyo', { expect: [{ type: 'equals', prompt: 'The capital of Spain is', value: 'zzzz qqqq', description: 'a string no model says' }] }));
      const stateBytes = await readFile(modelPath('state.json'));
      const status = await git('status', '--porcelain', '--untracked-files=all');
      const files = await modelFiles();
      const head = await git('rev-parse', 'HEAD');

      const r = await edit('apply', '--auto-approve');
      expectCode(r, 1);
      expect(r.stdout).toMatch(/✗ capitals\/spain/);
      const fail = /FAIL expect\s+"The capital of Spain is" \(a string no model says\): expected output to equal "zzzz qqqq", got "(.*)"$/m.exec(r.stdout);
      expect(fail, r.stdout).not.toBeNull();
      expect(fail![1]).not.toBe('zzzz qqqq');
      expect(r.stdout).toContain('Nothing was written.');

      expect((await readFile(modelPath('state.json'))).equals(stateBytes)).toBe(true);
      expect(await git('status', '--porcelain', '--untracked-files=all')).toBe(status);
      expect(await modelFiles()).toEqual(files);
      expect(await git('rev-parse', 'HEAD')).toBe(head);
      await unlink(join(repo, 'edits/capitals/spain.json'));
    }), PHASE);

  it('a saved plan is refused once an edit file changed after it was made', () =>
    timed('stale saved plan', async () => {
      await writeEdit('capitals/italy', capital('Italy', ' Berlin'));
      const saved = join(scratch, 'p.json');
      const plan = await edit('plan', '--out', saved);
      expectCode(plan, 0);
      expect(plan.stdout).toContain(`Saved the plan to ${saved}`);
      expect(JSON.parse(await readFile(saved, 'utf8'))).toMatchObject({ formatVersion: '1', model: MODEL, state: { serial: 3 } });

      await writeEdit('capitals/italy', capital('Italy', ' Oslo'));
      const stateBytes = await readFile(modelPath('state.json'));
      const r = await edit('apply', saved);
      expectCode(r, 1);
      expect(r.stderr).toMatch(/saved plan is stale: edit file capitals\/italy changed since the plan was made/);
      expect((await readFile(modelPath('state.json'))).equals(stateBytes)).toBe(true);
    }), PHASE);

  it('a held lock refuses apply, naming its holder; force-unlock <id> clears it', () =>
    timed('lock + force-unlock', async () => {
      const lock = { id: 'e2e-lock-1234', pid: process.pid, host: hostname(), command: 'edit apply --auto-approve', startedAt: '2025-05-01T12:00:00.000Z' };
      await writeFile(modelPath('.lock'), `${JSON.stringify(lock, null, 2)}\n`);
      const stateBytes = await readFile(modelPath('state.json'));
      const r = await edit('apply', '--auto-approve');
      expectCode(r, 1);
      expect(r.stderr).toContain(`model is locked by pid ${process.pid} on host ${hostname()} running "edit apply --auto-approve" since 2025-05-01T12:00:00.000Z`);
      expect(r.stderr).toContain(`edit force-unlock ${lock.id}`);
      expect((await readFile(modelPath('state.json'))).equals(stateBytes)).toBe(true);
      expect(existsSync(modelPath('.lock'))).toBe(true);

      const wrong = await edit('force-unlock', 'not-the-id');
      expectCode(wrong, 1);
      expect(existsSync(modelPath('.lock'))).toBe(true);

      const u = await edit('force-unlock', lock.id);
      expectCode(u, 0);
      expect(u.stdout).toContain(`unlocked ${MODEL}: the lock ${lock.id} was held by pid ${process.pid} on host ${hostname()}`);
      expect(existsSync(modelPath('.lock'))).toBe(false);
    }), PHASE);

  it('git revert of an apply commit leaves a consistent state (plan shows no drift, verify runs), and so does reverting the revert', () =>
    timed('apply + git revert', async () => {
      const apply = await edit('apply', '--auto-approve');
      expectCode(apply, 0);
      expect(await git('log', '-1', '--format=%B')).toContain('+ capitals/italy "The capital of Italy is" → " Oslo"');
      const applied = await contentFiles();
      expect(applied).toHaveLength(2);

      // The apply commit holds the edit file it applied (untracked until then): the revert takes it back too.
      await git('revert', '--no-edit', 'HEAD');
      expect(await contentFiles()).toEqual([]);
      expect((await readState()).edits).toEqual({});
      expect((await readState()).delta).toBeNull();
      expect(existsSync(join(repo, 'edits/capitals/italy.json'))).toBe(false);
      const [plan, verify] = await Promise.all([edit('plan', '--detailed-exitcode'), edit('verify')]);
      expectCode(plan, 0);
      expect(plan.stdout).not.toContain('drift');
      expect(plan.stdout).toContain('No changes. The model matches the edit files (0 applied).');
      expectCode(verify, 0);
      expect(verify.stderr).not.toMatch(/error|drift/i);
      expect(verify.stdout).toContain('0 of 0 edits hold');

      // Rollback is a git revert, and so is rolling forward again: the same files, the edit holds.
      await git('revert', '--no-edit', 'HEAD');
      expect(await contentFiles()).toEqual(applied);
      const [plan2, verify2, gen] = await Promise.all([edit('plan', '--detailed-exitcode'), edit('verify'), edit('generate', 'The capital of Italy is', '--json')]);
      expectCode(plan2, 0);
      expect(plan2.stdout).not.toContain('drift');
      expect(plan2.stdout).toContain('No changes. The model matches the edit files (1 applied).');
      expectCode(verify2, 0);
      expect(verify2.stderr).not.toMatch(/error|drift/i);
      expect(verify2.stdout).toMatch(/capitals\/italy\s+reliability 100%/);
      expect(verify2.stdout).toContain('1 of 1 edits hold');
      expectCode(gen, 0);
      expect((JSON.parse(gen.stdout) as { completion: string }).completion.startsWith(' Oslo')).toBe(true);
    }), PHASE);

  it('a drifted rows file or set delta: plan shows ! and exits 1, apply refuses, apply --refresh recomputes it', () =>
    timed('drift + --refresh', async () => {
      expectCode(await edit('apply', '--auto-approve'), 0);
      const damage = async (rel: string): Promise<Buffer> => {
        const bytes = await readFile(modelPath(rel));
        for (let i = 1; i <= 8; i++) bytes[bytes.length - i * 97] ^= 0xff; // tensor data, not the header
        await writeFile(modelPath(rel), bytes);
        return bytes;
      };
      const refused = async (): Promise<void> => {
        const r = await edit('apply', '--auto-approve');
        expectCode(r, 1);
        expect(r.stderr).toContain('the model folder drifted from state.json');
        expect(r.stderr).toContain('edit apply --refresh');
      };

      // 1. the edit's cached rows
      const rowsRel = (await readState()).edits['capitals/italy'].rows!.file;
      const damagedRows = await damage(rowsRel);
      const plan = await edit('plan', '--detailed-exitcode');
      expectCode(plan, 1);
      expect(plan.stdout).toMatch(/^\s*! models\/default\/rows\/capitals\/italy@[0-9a-f]{12}\.safetensors\s+drift\s+rows of edit "capitals\/italy" has sha256/m);
      expect(plan.stdout).toContain(`! ${MODEL}/${rowsRel} `);
      expect(plan.stdout).toContain('1 drifted');
      await refused();
      const refresh = await edit('apply', '--refresh', '--auto-approve');
      expectCode(refresh, 0);
      expect(refresh.stderr).toContain('refresh: capitals/italy will be recomputed (rows file changed)');
      expect(refresh.stderr).toContain('computing rows: 1/1 (capitals/italy)');
      // The recomputed rows are at their own content-addressed name (the same one when the editor
      // recomputed the same bytes, overwriting the damaged file); the damaged file is gone either way.
      const recomputed = await readState();
      expect(await contentFiles()).toEqual([recomputed.delta!.file, recomputed.edits['capitals/italy'].rows!.file]);
      expect((await readFile(modelPath(recomputed.edits['capitals/italy'].rows!.file))).equals(damagedRows)).toBe(false);

      // 2. the set's solved change
      const deltaRel = recomputed.delta!.file;
      const damagedDelta = await damage(deltaRel);
      const plan2 = await edit('plan', '--detailed-exitcode');
      expectCode(plan2, 1);
      expect(plan2.stdout).toMatch(/^\s*! models\/default\/deltas\/set@[0-9a-f]{12}\.safetensors\s+drift\s+the solved change of the edit set has sha256/m);
      expect(plan2.stdout).toContain(`! ${MODEL}/${deltaRel} `);
      expect(plan2.stdout).toContain('1 drifted');
      await refused();
      const refresh2 = await edit('apply', '--refresh', '--auto-approve');
      expectCode(refresh2, 0);
      // the rows are intact: nothing to recompute, the set is solved again from them
      expect(refresh2.stderr).not.toContain('will be recomputed');
      expect(refresh2.stderr).not.toContain('computing rows');
      const resolved = await readState();
      expect(resolved.edits['capitals/italy'].rows!.file).toBe(recomputed.edits['capitals/italy'].rows!.file);
      expect(await contentFiles()).toEqual([resolved.delta!.file, resolved.edits['capitals/italy'].rows!.file]);
      expect((await readFile(modelPath(resolved.delta!.file))).equals(damagedDelta)).toBe(false);

      const clean = await edit('plan', '--detailed-exitcode');
      expectCode(clean, 0);
      expect(clean.stdout).toContain('No changes.');
      expect(await git('status', '--porcelain', '--', MODEL)).toBe('');
    }), PHASE);

  it('show, show <id> and diff print the applied edit', () =>
    timed('show + diff', async () => {
      const [show, one, diff, diffJson] = await Promise.all([edit('show'), edit('show', 'capitals/italy'), edit('diff'), edit('diff', '--json')]);
      expectCode(show, 0);
      expect(show.stdout).toMatch(new RegExp(`^capitals/italy\\s+${EDITOR}\\s+100%`, 'm'));
      expect(show.stdout).toMatch(new RegExp(`^editor\\s+${EDITOR} \\(${EDITOR_HASH} [0-9a-f]{12}\\)$`, 'm'));
      expect(show.stdout).toMatch(/^delta\s+deltas\/set@[0-9a-f]{12}\.safetensors: h\.2\.mlp\.c_proj 1\/1024 rows, h\.3\.mlp\.c_proj 1\/1024 rows$/m);
      expect(show.stdout).toContain('1 edit applied.');
      expectCode(one, 0);
      expect(one.stdout).toContain('edit capitals/italy');
      expect(one.stdout).toMatch(/^\s+rows\s+rows\/capitals\/italy@[0-9a-f]{12}\.safetensors \(1 row in the set's solve\)$/m);
      expect(one.stdout).toMatch(/reliability 100%/);
      expectCode(diff, 0);
      expect(diff.stdout).toContain(`The applied set's solved change (${EDITOR}; base + ΔW):`);
      expect(diff.stdout).toMatch(/^\s+h\.2\.mlp\.c_proj\.weight\s+\d+\.\d{4}\s+\d+\.\d{2}%\s+\d+\.\d{2}%\s+1 \/ 1024$/m);
      expect(diff.stdout).toMatch(/^\s+h\.3\.mlp\.c_proj\.weight\s+\d+\.\d{4}\s+\d+\.\d{2}%\s+\d+\.\d{2}%\s+1 \/ 1024$/m);
      // "on keys": the change on the inputs the layer sees (key statistics), a few percent for one edit
      const layers = (JSON.parse(diffJson.stdout) as { total: Array<{ param: string; relative: number; onKeys: number }> }).total;
      expect(layers.map((l) => l.param)).toEqual(['h.2.mlp.c_proj.weight', 'h.3.mlp.c_proj.weight']);
      for (const l of layers) {
        expect(l.onKeys).toBeGreaterThan(0);
        expect(l.onKeys).toBeLessThan(Math.min(0.2, l.relative));
        // the key floor (model.json keyFloor) keeps ΔW off directions the corpus's keys never take (without it: 65× ‖W‖ in block 2)
        expect(l.relative).toBeLessThan(1);
      }
      expect(diff.stdout).toMatch(/^\s+capitals\/italy\s+1 row$/m);
      const missing = await edit('show', 'capitals/nowhere');
      expectCode(missing, 1);
      expect(missing.stderr).toContain('no applied edit "capitals/nowhere"');
    }), PHASE);

  it('verify --json, --junit and --markdown produce parseable reports', () =>
    timed('verify reports', async () => {
      const junit = join(scratch, 'f.xml');
      const md = join(scratch, 'f.md');
      const r = await edit('verify', '--json', '--junit', junit, '--markdown', md);
      expectCode(r, 0);
      const json = JSON.parse(r.stdout) as { formatVersion: string; pass: boolean; passed: number; total: number; edits: Array<{ id: string; result: { pass: boolean } }> };
      expect(json).toMatchObject({ formatVersion: '1', model: MODEL, pass: true, shard: null });
      expect(json.edits.map((e) => e.id)).toEqual(['capitals/italy']);
      expect(json.edits[0].result.pass).toBe(true);
      expect(json.passed).toBeGreaterThan(0); // ft may break the locality prompt: its threshold here is 0

      const xml = await readFile(junit, 'utf8');
      expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
      expect(xml).toMatch(new RegExp(`<testsuites name="editops verify" tests="${json.total}" failures="${json.total - json.passed}"`));
      expect(xml).toContain('<testsuite name="capitals/italy"');
      // well-formed enough: every opened element is closed, in order
      const stack: string[] = [];
      for (const m of xml.matchAll(/<(\/?)([A-Za-z]+)[^>]*?(\/?)>/g)) {
        if (m[3] === '/') continue;
        if (m[1] === '/') expect(stack.pop()).toBe(m[2]);
        else stack.push(m[2]);
      }
      expect(stack).toEqual([]);

      const text = await readFile(md, 'utf8');
      expect(text).toMatch(/^### editops verify — `models\/default`/);
      expect(text).toContain('✅ **1 of 1 edits hold**');
      expect(text).toMatch(/^\| ✅ \| `capitals\/italy` \| 100% \|/m);
    }), PHASE);

  it('--target applies only the named edits; verify --shard i/n splits the edits', () =>
    timed('--target + --shard', async () => {
      // italy goes (a targeted destroy), germany comes; spain stays declared but is not applied
      await unlink(join(repo, 'edits/capitals/italy.json'));
      await writeEdit('capitals/germany', capital('Germany', ' Rome'));
      await writeEdit('capitals/spain', capital('Spain', ' Tokyo'));
      const r = await edit('apply', '--auto-approve', '--target', 'capitals/germany', '--target', 'capitals/italy');
      expectCode(r, 0);
      expect(r.stdout).toMatch(/^\s*\+ capitals\/germany\s+create/m);
      expect(r.stdout).toMatch(/^\s*- capitals\/italy\s+destroy/m);
      expect(r.stdout).not.toMatch(/capitals\/spain/);
      expect(r.stdout).toContain('Plan: 1 to create, 0 to update, 1 to destroy.');
      const state = await readState();
      expect(Object.keys(state.edits)).toEqual(['capitals/germany']);
      expect(state.edits['capitals/germany'].rows!.file).toMatch(rowsName('capitals/germany'));
      expect(await contentFiles()).toEqual([state.delta!.file, state.edits['capitals/germany'].rows!.file]);
      expect(await git('status', '--porcelain', '--', MODEL)).toBe('');

      const [plan, s1, s2] = await Promise.all([edit('plan', '--detailed-exitcode'), edit('verify', '--shard', '1/2', '--json'), edit('verify', '--shard', '2/2', '--json')]);
      expectCode(plan, 2);
      expect(plan.stdout).toMatch(/^\s*\+ capitals\/spain\s+create/m);
      expect(plan.stdout).not.toMatch(/capitals\/germany/);
      expect(plan.stdout).toContain('Plan: 1 to create, 0 to update, 0 to destroy.');
      type V = { shard: { index: number; count: number }; edits: Array<{ id: string; result: { pass: boolean } }> };
      const shards = [s1, s2].map((s) => {
        expectCode(s, [0, 1]);
        return JSON.parse(s.stdout) as V;
      });
      expect(shards.map((s) => s.shard)).toEqual([{ index: 1, count: 2 }, { index: 2, count: 2 }]);
      const ids = shards.map((s) => s.edits.map((e) => e.id));
      expect(ids.every((l) => l.length === 1)).toBe(true);
      expect([...ids[0], ...ids[1]].sort()).toEqual(['capitals/germany', 'capitals/spain']);
      // each shard's exit code is its own verdict: germany is applied and holds, spain is not applied
      for (const [i, s] of shards.entries()) {
        const pass = s.edits.every((e) => e.result.pass);
        expect([s1, s2][i].code).toBe(pass ? 0 : 1);
        expect(pass).toBe(s.edits[0].id === 'capitals/germany');
      }
      const bad = await edit('verify', '--shard', '3/2');
      expectCode(bad, 1);
      expect(bad.stderr).toContain('--shard must be i/n');
    }), PHASE);
});
