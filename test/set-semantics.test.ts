/**
 * The unit of editing is the set (DESIGN §3), end to end through the real binary (bin/edit.js →
 * dist/) on the shipped model and its default editor (instructedit), in temporary git repositories:
 * - order-independent: applying A then B gives the same set delta (same bytes, same sha256 in
 *   state.json) and the same effective sha256 as applying {A, B} at once;
 * - exact removal: removing B gives the set delta of a repository that only ever applied A;
 * - per-edit work is cached: adding one edit to an applied set computes rows for that edit only,
 *   and the kept edits' rows files are untouched;
 * - plan says that a change to the set re-solves the shared layers, with the capacity used.
 * Two counterfactuals on different subjects the model takes (checked with `edit generate`). The
 * refinement is cut to LOOP_REFINE_STEPS: the properties are about the set, not the editor's quality.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ModelState } from '../src/state/types.js';
import { EDITOR_INFO, type EditorMethod } from '../src/editor/settings.js';
import { sha256 } from '../src/util/hash.js';
import { ROOT, edit, expectCode, git, loopRefinement } from './helpers/cli.js';

const MODEL = 'models/default';
/** The shipped model's editor: a joint one (its rows go into one solve of the set). */
const EDITOR: string = (JSON.parse(readFileSync(join(ROOT, MODEL, 'model.json'), 'utf8')) as { editor: { method: string } }).editor.method;

/** A: France → " Lyon"; B: Spain → " Lisbon" (the base model says Paris and Madrid). */
const A = { id: 'capitals/france', country: 'France', target: ' Lyon', base: ' Paris' };
const B = { id: 'capitals/spain', country: 'Spain', target: ' Lisbon', base: ' Madrid' };
type Fact = typeof A;

async function writeEdit(repo: string, f: Fact): Promise<void> {
  const file = join(repo, 'edits', `${f.id}.json`);
  await mkdir(dirname(file), { recursive: true });
  const spec = { version: 1, task: 'counterfact', subject: f.country, relation: 'capital', prompt: `The capital of ${f.country} is`, target: f.target };
  await writeFile(file, `${JSON.stringify(spec, null, 2)}\n`);
}

async function newRepo(): Promise<string> {
  const repo = await mkdtemp(join(tmpdir(), 'editops-set-'));
  made.push(repo);
  await git(repo, 'init', '--quiet');
  await git(repo, 'config', 'user.name', 'Set Test');
  await git(repo, 'config', 'user.email', 'set@example.com');
  await git(repo, 'config', 'commit.gpgsign', 'false');
  expectCode(await edit(repo, 'init'), 0);
  await loopRefinement(join(repo, MODEL));
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '--quiet', '-m', 'scaffold');
  return repo;
}

async function readState(repo: string): Promise<ModelState> {
  return JSON.parse(await readFile(join(repo, MODEL, 'state.json'), 'utf8')) as ModelState;
}

/** The set delta state.json names: its entry, and the sha256 of the file's bytes as they are on disk. */
async function setDelta(repo: string): Promise<{ file: string; sha256: string; onDisk: string; effective: string }> {
  const state = await readState(repo);
  expect(state.delta, 'state.json names a set delta').not.toBeNull();
  return { file: state.delta!.file, sha256: state.delta!.sha256, onDisk: sha256(await readFile(join(repo, MODEL, state.delta!.file))), effective: state.effective.sha256 };
}

/** Every file under the model's rows/, relative to the model folder, with the sha256 of its bytes. */
async function rowsFiles(repo: string): Promise<Record<string, string>> {
  const dir = join(repo, MODEL, 'rows');
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out[abs.slice(join(repo, MODEL).length + 1)] = sha256(await readFile(abs));
  }
  return out;
}

async function completion(repo: string, country: string, ...flags: string[]): Promise<string> {
  const r = await edit(repo, 'generate', `The capital of ${country} is`, '--json', ...flags);
  expectCode(r, 0);
  return (JSON.parse(r.stdout) as { completion: string }).completion;
}

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe.sequential(`the edit set, solved jointly (${EDITOR} on the shipped model)`, () => {
  const PHASE = 150_000;
  let oneByOne: string; // A applied, then B
  let atOnce: string; // {A, B} applied together
  let onlyA: Awaited<ReturnType<typeof setDelta>>;
  let bothOneByOne: Awaited<ReturnType<typeof setDelta>>;
  let rowsA: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
    expect(['memit', 'mend', 'instructedit']).toContain(EDITOR);
    [oneByOne, atOnce] = await Promise.all([newRepo(), newRepo()]);
  }, PHASE);

  it('applying one edit writes its rows and the set delta; the model takes it', async () => {
    await writeEdit(oneByOne, A);
    const r = await edit(oneByOne, 'apply', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain('computing rows: 1/1 (capitals/france)');
    onlyA = await setDelta(oneByOne);
    expect(onlyA.file).toBe(`deltas/set@${onlyA.sha256.slice(0, 12)}.safetensors`);
    expect(onlyA.onDisk).toBe(onlyA.sha256);
    rowsA = await rowsFiles(oneByOne);
    expect(Object.keys(rowsA)).toEqual([(await readState(oneByOne)).edits[A.id].rows!.file]);
    expect(Object.keys(rowsA)[0]).toMatch(/^rows\/capitals\/france@[0-9a-f]{12}\.safetensors$/);
    expect((await completion(oneByOne, A.country)).startsWith(A.target)).toBe(true);
    expect((await completion(oneByOne, A.country, '--base')).startsWith(A.base)).toBe(true);
  }, PHASE);

  it('plan: adding an edit re-solves the shared layers for the whole set, with the capacity used', async () => {
    await writeEdit(oneByOne, B);
    const r = await edit(oneByOne, 'plan', '--detailed-exitcode');
    expectCode(r, 2);
    expect(r.stdout).toMatch(/^\s*\+ capitals\/spain\s+create/m);
    expect(r.stdout).toContain(`Editor ${EDITOR} re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 2 edits: 1 applied edit keeps its rows, but its weights change with the solve and every edit is verified again.`);
    // France's rows (1, from state.json) + Spain's estimate (1 per target token)
    expect(r.stdout).toContain('Capacity: 2 rows per edited layer of 1024 (0%).');
    const json = await edit(oneByOne, 'plan', '--json');
    expectCode(json, 0);
    expect((JSON.parse(json.stdout) as { solve: unknown }).solve).toEqual({ method: EDITOR, joint: true, resolves: true, edits: 2, kept: 1, layers: ['h.2.mlp.c_proj', 'h.3.mlp.c_proj'], rows: 2, keyDim: 1024, warning: null });
  }, PHASE);

  it('adding one edit to an applied set computes rows for that edit only; the kept rows files are untouched', async () => {
    const r = await edit(oneByOne, 'apply', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain('computing rows: 1/1 (capitals/spain)');
    expect(r.stderr).not.toMatch(/computing rows: \d+\/\d+ \(capitals\/france\)/);
    const rows = await rowsFiles(oneByOne);
    expect(Object.keys(rows)).toHaveLength(2);
    for (const [file, hash] of Object.entries(rowsA)) expect(rows[file], file).toBe(hash);
    expect(Object.keys(rows).find((f) => !(f in rowsA))).toMatch(/^rows\/capitals\/spain@[0-9a-f]{12}\.safetensors$/);
    bothOneByOne = await setDelta(oneByOne);
    // the set changed, so its delta did; the previous one is gone
    expect(bothOneByOne.sha256).not.toBe(onlyA.sha256);
    expect(existsSync(join(oneByOne, MODEL, onlyA.file))).toBe(false);
    expect((await completion(oneByOne, A.country)).startsWith(A.target)).toBe(true);
    expect((await completion(oneByOne, B.country)).startsWith(B.target)).toBe(true);
  }, PHASE);

  it('applying A then B gives the same set delta and effective weights as applying {A, B} at once', async () => {
    await writeEdit(atOnce, A);
    await writeEdit(atOnce, B);
    const r = await edit(atOnce, 'apply', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain('computing rows: 2/2');
    const both = await setDelta(atOnce);
    expect(both.sha256).toBe(bothOneByOne.sha256);
    expect(both.onDisk).toBe(bothOneByOne.onDisk);
    expect(both.file).toBe(bothOneByOne.file);
    expect(both.effective).toBe(bothOneByOne.effective);
    // each edit's rows do not depend on what was computed alongside
    expect(await rowsFiles(atOnce)).toEqual(await rowsFiles(oneByOne));
  }, PHASE);

  it('removing B gives the set delta of a repository that only ever applied A, and B\'s answer returns to the base model\'s', async () => {
    await unlink(join(atOnce, 'edits', `${B.id}.json`));
    const plan = await edit(atOnce, 'plan', '--detailed-exitcode');
    expectCode(plan, 2);
    expect(plan.stdout).toMatch(/^\s*- capitals\/spain\s+destroy/m);
    expect(plan.stdout).toContain(`Editor ${EDITOR} re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 1 edit: 1 applied edit keeps its rows`);
    expect(plan.stdout).toMatch(/^Capacity: 1 rows? per edited layer of 1024 \(0%\)\.$/m);
    const r = await edit(atOnce, 'apply', '--auto-approve');
    expectCode(r, 0);
    // nothing to compute: the kept edit's rows are cached
    expect(r.stderr).not.toContain('computing rows');
    const after = await setDelta(atOnce);
    expect(after.sha256).toBe(onlyA.sha256);
    expect(after.onDisk).toBe(onlyA.onDisk);
    expect(after.file).toBe(onlyA.file);
    expect(after.effective).toBe(onlyA.effective);
    expect(await rowsFiles(atOnce)).toEqual(rowsA);
    const [spain, spainBase, france] = await Promise.all([completion(atOnce, B.country), completion(atOnce, B.country, '--base'), completion(atOnce, A.country)]);
    expect(spain).toBe(spainBase);
    expect(spain.startsWith(B.base)).toBe(true);
    expect(france.startsWith(A.target)).toBe(true);
    expect(await git(atOnce, 'status', '--porcelain', '--', MODEL)).toBe('');
  }, PHASE);

  it('an edit that moves another edit\'s locality fact is named in the failure, and nothing is written', async () => {
    const repo = await newRepo();
    await writeEdit(repo, A);
    // B declares a rephrasing of France's capital as its unchanged neighbour, which A's edit carries to
    // (a trained form that starts like A's prompt: "France's capital is" starts a sentence and is read
    // as other tokens, README "A tokenization candidate")
    const file = join(repo, 'edits', `${B.id}.json`);
    await mkdir(dirname(file), { recursive: true });
    const spec = { version: 1, task: 'counterfact', prompt: `The capital of ${B.country} is`, target: B.target, locality: [{ prompt: `The capital city of ${A.country} is` }], neighbours: false };
    await writeFile(file, `${JSON.stringify(spec, null, 2)}\n`);
    const r = await edit(repo, 'apply', '--auto-approve');
    expectCode(r, 1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/FAIL locality +"The capital city of France is": expected the base model's output " Paris[^"]*", got " Lyon[^"]*" — the target of capitals\/france\n/);
    expect(out).toMatch(/\nFacts the set moved onto its own targets \(1\):\n  "The capital city of France is" → " Lyon[^"]*", the target of capitals\/france \(a failed locality check of capitals\/spain\)\n/);
    expect(existsSync(join(repo, MODEL, 'state.json'))).toBe(false);
  }, PHASE);

  it('a set solved by an earlier revision of its editor is drift: plan says so, verify still judges it, apply --refresh re-solves it', async () => {
    const revision = EDITOR_INFO[EDITOR as EditorMethod].revision;
    const state = await readState(atOnce);
    expect(state.delta!.solver).toEqual({ method: EDITOR, revision });
    // a state.json written before the revision was recorded (an older editops): revision 1
    delete state.delta!.solver;
    await writeFile(join(atOnce, MODEL, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
    const said = `the edit set was solved by ${EDITOR} revision 1; this editops solves with revision ${revision}: run \`edit apply --refresh\``;
    const plan = await edit(atOnce, 'plan');
    expectCode(plan, 1);
    expect(plan.stdout).toContain(said);
    const verify = await edit(atOnce, 'verify');
    expectCode(verify, 0);
    expect(verify.stderr).toContain(`warning: ${said}`);
    const refused = await edit(atOnce, 'apply', '--auto-approve');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(said);
    const r = await edit(atOnce, 'apply', '--refresh', '--auto-approve');
    expectCode(r, 0);
    expect(r.stderr).toContain('computing rows: 1/1 (capitals/france)');
    const after = await readState(atOnce);
    expect(after.delta!.solver).toEqual({ method: EDITOR, revision });
    // this editops solves the same set to the same bytes it did before
    expect(after.delta!.sha256).toBe(onlyA.sha256);
    expectCode(await edit(atOnce, 'plan', '--detailed-exitcode'), 0);
  }, PHASE);
});
