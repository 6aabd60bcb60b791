/**
 * Automatic locality neighbours through the real binary (bin/edit.js → dist/), on the shipped model
 * in a temporary git repository made by `edit init`: an edit whose delta changes a neighbour fails
 * apply and verify, and the output names the neighbour with the base and edited outputs.
 *
 * The model's probes file is replaced by a hand-written one whose "neighbour" is a phrasing of the
 * edited fact itself under another subject name: any editor that makes the edit generalize changes
 * it, so the test does not hang on which unrelated facts a particular editor happens to disturb.
 * The editor's solve would keep the probes' facts still (memit's preserveWeight, the hypernetwork
 * refinement's KL), so that is turned off here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { isPreserved } from '../src/model/known-facts.js';
import { ROOT, edit as editIn, expectCode, git as gitIn } from './helpers/cli.js';
import { GENERALIZATION_HINT } from '../src/cli/report.js';

let repo: string;
const edit = (...args: string[]) => editIn(repo, ...args);
const git = (...args: string[]) => gitIn(repo, ...args);

const P = 'The capital of France is';
/**
 * A neighbour the edit changes (France under another name) and one it must leave alone; both
 * subjects fall in the half of the known facts that neighbours are drawn from (isPreserved false).
 */
const PROBES = {
  version: 1,
  facts: [
    { relation: 'capital', subject: 'French Republic', prompt: "France's capital is", object: 'Paris' },
    { relation: 'capital', subject: 'the Kingdom of Spain', prompt: 'The capital of Spain is', object: 'Madrid' },
    { relation: 'currency', subject: 'Germany', prompt: "Germany's capital is", object: 'Berlin' },
  ],
};

async function writeFrance(extra: Record<string, unknown> = {}): Promise<void> {
  const spec = { version: 1, task: 'counterfact', subject: 'France', relation: 'capital', prompt: P, target: ' Lyon', ...extra };
  await mkdir(join(repo, 'edits/capitals'), { recursive: true });
  await writeFile(join(repo, 'edits/capitals/france.json'), `${JSON.stringify(spec, null, 2)}\n`);
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  repo = await mkdtemp(join(tmpdir(), 'editops-neighbours-'));
  await git('init', '-q');
  await git('config', 'user.email', 'neighbours@example.com');
  await git('config', 'user.name', 'neighbours');
  await git('config', 'commit.gpgsign', 'false');
  expectCode(await edit('init'), 0);
  // init copies the probes file the shipped manifest names; replace it by the hand-written one.
  const manifestPath = join(repo, 'models/default/model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { probes?: { file: string; sha256: string }; editor?: { method: string; settings?: Record<string, unknown> } };
  expect(manifest.probes?.file).toBe('probes.json');
  expect(existsSync(join(repo, 'models/default/probes.json'))).toBe(true);
  const text = `${JSON.stringify(PROBES, null, 1)}\n`;
  await writeFile(join(repo, 'models/default/probes.json'), text);
  manifest.probes = { file: 'probes.json', sha256: createHash('sha256').update(text).digest('hex') };
  // The editor keeps the probes' facts still in its solve (memit: preserveWeight; the hypernetwork
  // editors: the KL of their refinement): off here, so the edit reaches its own phrasing under
  // another subject name and the check, not the solve, has to catch it.
  const method = manifest.editor?.method;
  expect(['memit', 'mend', 'instructedit']).toContain(method);
  const off = method === 'memit' ? { preserveWeight: 0 } : { preserveWeight: 0, refineLocality: 0 };
  manifest.editor = { ...manifest.editor!, settings: { ...manifest.editor!.settings, ...off } };
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFrance();
  await git('add', '-A');
  await git('commit', '-qm', 'init');
}, 120_000);

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('automatic neighbours through the CLI', () => {
  it('draws on probes in the checked half of the split', () => {
    expect(PROBES.facts.map(isPreserved)).toEqual([false, false, false]);
  });

  it('apply refuses an edit whose delta changes a neighbour, showing it, and writes nothing', async () => {
    const r = await edit('apply', '--auto-approve');
    expectCode(r, 1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/FAIL locality\s+"France's capital is": automatic neighbour \(capital of French Republic\): expected the base model's output " Paris[^"]*", got " Lyon[^"]*"/);
    expect(out).toMatch(/locality: 50% passed, threshold 80%/);
    // Spain's capital is a neighbour that held; Germany's fact is another relation's, never picked.
    expect(out).not.toContain('The capital of Spain is');
    expect(out).not.toContain("Germany's capital is");
    expect(out).not.toContain(GENERALIZATION_HINT); // every rephrasing held: no hint about them
    expect(existsSync(join(repo, 'models/default/state.json'))).toBe(false);
  }, 120_000);

  it('a rephrasing the edit does not reach fails apply with the failed check and a hint on what to do', async () => {
    await writeFrance({ rephrase: ['The weather today is'], neighbours: false });
    try {
      const r = await edit('apply', '--auto-approve');
      expectCode(r, 1);
      const out = r.stdout + r.stderr;
      expect(out).toMatch(/FAIL generalization "The weather today is": expected output to start with " Lyon", got /);
      expect(out).toMatch(/generalization: 0% passed, threshold 50%/);
      expect(out).toContain(GENERALIZATION_HINT);
      expect(existsSync(join(repo, 'models/default/state.json'))).toBe(false);
    } finally {
      await writeFrance();
    }
  }, 120_000);

  it('"neighbours": false opts out; verify then reports the neighbour once it is back on (JSON and JUnit)', async () => {
    await writeFrance({ neighbours: false });
    await git('commit', '-qam', 'no neighbours');
    expectCode(await edit('apply', '--auto-approve'), 0);

    await writeFrance(); // neighbours back on, same delta: verify judges the declared edit file
    const v = await edit('verify', '--json', '--junit', join(repo, 'junit.xml'));
    expectCode(v, 1);
    const report = JSON.parse(v.stdout) as { edits: Array<{ id: string; result: { pass: boolean; metrics: { locality: number }; checks: Array<{ kind: string; prompt: string; pass: boolean; neighbour?: { subject: string; relation: string }; actual?: string }> } }> };
    const checks = report.edits[0].result.checks.filter((c) => c.neighbour !== undefined);
    expect(checks.map((c) => [c.kind, c.prompt, c.pass, c.neighbour]).sort()).toEqual([
      ['locality', "France's capital is", false, { subject: 'French Republic', relation: 'capital' }],
      ['locality', 'The capital of Spain is', true, { subject: 'the Kingdom of Spain', relation: 'capital' }],
    ]);
    expect(checks.find((c) => !c.pass)!.actual).toMatch(/^ Lyon/);
    expect(report.edits[0].result.metrics.locality).toBe(0.5);
    expect(report.edits[0].result.pass).toBe(false);
    const junit = await readFile(join(repo, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testcase classname="capitals\/france" name="locality #\d+: France&apos;s capital is">\s*<failure message="automatic neighbour \(capital of French Republic\): expected the base model&apos;s output &quot; Paris/);
  }, 240_000);
});
