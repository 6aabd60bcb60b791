/**
 * `edit train-editor`, `edit analyze` and the instruction options of `edit eval` through the real
 * binary, on a copy of the shipped model in a temporary project: a short meta-training installs its
 * network and task catalogue in model.json (a change `plan` reports as drift), the catalogue makes
 * validate refuse an unknown task without an instruction, analyze writes its picture and data, and
 * eval runs the installed editor with an instruction meta-training never showed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, edit, expectCode, tempDir } from './helpers/cli.js';
import { sha256 } from '../src/util/hash.js';
import { installNetwork } from '../src/cli/commands/train-editor.js';

let project: string;
const model = () => join(project, 'models/default');

describe('train-editor, analyze and eval --instruction on a copy of the default model', () => {
  beforeAll(async () => {
    project = await tempDir('train-editor');
    await cp(join(ROOT, 'models/default'), model(), { recursive: true });
    await cp(join(ROOT, 'edits'), join(project, 'edits'), { recursive: true });
    await mkdir(join(project, 'data'));
    await cp(join(ROOT, 'data/bench.json'), join(project, 'data/bench.json'));
    // start from a model whose editor is memit, as a user's model before its first train-editor
    const manifest = JSON.parse(await readFile(join(model(), 'model.json'), 'utf8'));
    // its shipped instructedit network on the shelf with refinement settings (a retrain keeps them)
    const shipped = manifest.editor;
    manifest.editor = { method: 'memit', settings: { lambda: 30, preserveWeight: 1 } };
    manifest.hypernetworks.instructedit = { file: shipped.file, sha256: shipped.sha256, settings: { lambda: 50, refineSteps: 40 } };
    delete manifest.tasks;
    await writeFile(join(model(), 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('meta-trains a few steps, installs the network and the catalogue, and plan reports the new editor as drift', async () => {
    const r = await edit(project, 'train-editor', '--steps', '2', '--batch', '4', '--tasks', 'counterfact,convsent', '--checkpoint', 'ckpt');
    expectCode(r, 0);
    expect(r.stderr).toContain('backend: wasm; meta-training instructedit (instructions by condition) on counterfact, convsent: 2 steps of 4 edits');
    expect(r.stderr).toMatch(/validation @0: counterfact nll [\d.]+ kl [\d.]+ acc \d+% · convsent/);
    expect(r.stdout).toContain('wrote models/default/editor-instructedit.safetensors (model.json now names it');
    expect(existsSync(join(project, 'ckpt'))).toBe(false); // a finished run leaves no checkpoint
    const manifest = JSON.parse(await readFile(join(model(), 'model.json'), 'utf8'));
    const bytes = await readFile(join(model(), 'editor-instructedit.safetensors'));
    expect(manifest.editor).toEqual({ method: 'instructedit', settings: { lambda: 50, refineSteps: 40 }, file: 'editor-instructedit.safetensors', sha256: sha256(bytes) });
    expect(Object.keys(manifest.hypernetworks)).toEqual(['mend']); // the method left the shelf; mend stays
    const bench = JSON.parse(await readFile(join(ROOT, 'data/bench.json'), 'utf8'));
    expect(manifest.tasks).toEqual([
      { name: 'counterfact', instructions: bench.tasks.counterfact.instructions },
      { name: 'convsent', instructions: bench.tasks.convsent.instructions },
    ]);
    for (const t of manifest.tasks) expect(t.instructions).not.toContain(bench.tasks[t.name].unseenInstruction);

    const plan = await edit(project, 'plan');
    expect(plan.code).not.toBe(0);
    expect(plan.stderr + plan.stdout).toContain('model.json changed since the edits were applied');
  }, 240_000);

  it('--checkpoint takes a folder outside the project as given (not under the project)', async () => {
    const outside = await tempDir('train-editor-ckpt');
    try {
      await writeFile(join(outside, 'progress.json'), 'not json');
      const r = await edit(project, 'train-editor', '--steps', '2', '--batch', '4', '--tasks', 'counterfact', '--checkpoint', outside, '--out', 'ckpt-test.safetensors');
      expectCode(r, 1);
      expect(r.stderr).toContain(join(outside, 'progress.json'));
      expect(r.stderr).toContain('checkpoint progress is not valid JSON');
      expect(existsSync(join(project, 'ckpt-test.safetensors'))).toBe(false);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  }, 120_000);

  it('--workers 2 trains on two threads (batches prepared ahead) into --out, model.json untouched, with relation instructions; bad flags are refused', async () => {
    const before = await readFile(join(model(), 'model.json'), 'utf8');
    const r = await edit(project, 'train-editor', '--steps', '2', '--batch', '4', '--tasks', 'counterfact', '--workers', '2', '--relation-instructions', '--checkpoint', 'ckpt2', '--out', 'two.safetensors', '--json');
    expectCode(r, 0);
    expect(r.stderr).toContain('meta-training instructedit (instructions by condition, with relation descriptions) on counterfact: 2 steps of 4 edits, layers h.2.mlp.c_proj, h.3.mlp.c_proj, 2 threads');
    const out = JSON.parse(r.stdout);
    expect(out.provenance.threads).toBe(2);
    expect(out.provenance.relationInstructions).toBe(true);
    expect(out.provenance.command).toContain('--tasks counterfact --relation-instructions --steps 2');
    expect(out.validation.every((v: { nll: number }) => Number.isFinite(v.nll))).toBe(true);
    expect(existsSync(join(project, 'two.safetensors'))).toBe(true);
    expect(await readFile(join(model(), 'model.json'), 'utf8')).toBe(before);
    const unknown = await edit(project, 'train-editor', '--exclude-relations', 'capitol', '--out', 'x.safetensors');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('--exclude-relations "capitol": unknown "capitol"; choose from calling code, capital, continent, country, currency, language, opinion, state capital');
    const plain = await edit(project, 'train-editor', '--method', 'mend', '--relation-instructions', '--out', 'x.safetensors');
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('--relation-instructions is for instructedit; mend trains without instructions');
    const bad = await edit(project, 'train-editor', '--workers', '0', '--out', 'x.safetensors');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--workers=0 is not a whole number ≥ 1 or "auto"');
  }, 240_000);

  it('with a catalogue, validate refuses a task it lacks unless the edit describes it with an instruction', async () => {
    const spec = { version: 1, prompt: 'The best season for Norway is', target: ' winter', task: 'travel-advice' };
    await writeFile(join(project, 'edits/norway-season.json'), JSON.stringify(spec, null, 2) + '\n');
    const bad = await edit(project, 'validate');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('edits/norway-season.json: /task: task "travel-advice" is not in the model\'s catalogue (counterfact, convsent); add an "instruction" describing it (line 5)');
    await writeFile(join(project, 'edits/norway-season.json'), JSON.stringify({ ...spec, instruction: 'Give the season a traveller should visit in.' }, null, 2) + '\n');
    expectCode(await edit(project, 'validate'), 0);
    await rm(join(project, 'edits/norway-season.json'));
  }, 60_000);

  it('analyze draws each task\'s editing directions with and without the instruction', async () => {
    const r = await edit(project, 'analyze', '--task', 'counterfact,convsent', '--per-task', '4', '--out', 'pca.svg');
    expectCode(r, 0);
    const svg = await readFile(join(project, 'pca.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('PC1 (');
    expect((svg.match(/<circle /g) ?? []).length).toBe(3 * 8 + 2); // three panels of 8 edits, a legend of 2 tasks
    const data = JSON.parse(await readFile(join(project, 'pca.json'), 'utf8'));
    expect(data.panels.map((p: { title: string }) => p.title)).toEqual(['gradient δ at the edit (h.3.mlp.c_proj)', 'instructedit: value shift with instruction', 'instructedit: without instruction (zero vector)']);
    for (const p of data.panels) {
      expect(p.points).toHaveLength(8);
      expect(p.separation).toBeGreaterThanOrEqual(0);
      expect(p.separation).toBeLessThanOrEqual(1);
    }
    expect(data.edits.filter((e: { task: string }) => e.task === 'convsent')).toHaveLength(4);
  }, 120_000);

  it('eval runs the installed editor with the unseen instruction, and the wrapped view', async () => {
    const r = await edit(project, 'eval', '--editor', 'instructedit', '--task', 'counterfact', '--sizes', '2', '--neighbours', '1', '--instruction', 'unseen', '--view', 'wrapped', '--json');
    expectCode(r, 0);
    const report = JSON.parse(r.stdout);
    expect(report.command).toContain('--instruction unseen --view wrapped');
    expect(report.results[0]).toMatchObject({ editor: 'instructedit', instruction: 'unseen', view: 'wrapped', task: 'counterfact', size: 2, edits: 2 });
    expect(report.results[0].generation.reliability).toBeGreaterThanOrEqual(0);
    const described = await edit(project, 'eval', '--editor', 'instructedit', '--task', 'counterfact', '--relation', 'capital', '--sizes', '1', '--singles', '1', '--neighbours', '1', '--settings', 'refineSteps=0', '--instruction', 'relation');
    expectCode(described, 0);
    expect(described.stdout).toMatch(/\ninstructedit \(relation instruction\)\s+counterfact\s+1\s/);
    // mend without --network: the network model.json ships under "hypernetworks", hash checked
    const shipped = await edit(project, 'eval', '--editor', 'mend', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '1', '--json');
    expectCode(shipped, 0);
    const mendSettings = JSON.parse(await readFile(join(model(), 'model.json'), 'utf8')).hypernetworks.mend.settings;
    expect(mendSettings.refineSteps).toBeGreaterThan(0);
    expect(JSON.parse(shipped.stdout).editors.mend).toMatchObject({ method: 'mend', ...mendSettings });
    // a network named on the command line is recorded relative to the project, in the options as in the command
    const named = await edit(project, 'eval', '--editor', 'mend', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '1', '--settings', 'refineSteps=0', '--network', `mend=${join(model(), 'editor-mend.safetensors')}`, '--json');
    expectCode(named, 0);
    const namedReport = JSON.parse(named.stdout);
    expect(namedReport.options.networks).toEqual({ mend: 'models/default/editor-mend.safetensors' });
    expect(namedReport.command).toContain('--network mend=models/default/editor-mend.safetensors');
    expect(named.stdout).not.toContain(project);
    const bad = await edit(project, 'eval', '--network', 'memit=x.safetensors');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('write <method>=<file> with a hypernetwork method (mend, instructedit)');
  }, 180_000);
});

describe('installNetwork (what train-editor writes into model.json)', () => {
  it('shelves the hypernetwork editor it replaces and keeps the method\'s settings, λ included (the meta-training λ only for a method without settings)', () => {
    const raw: Record<string, unknown> = {
      editor: { method: 'mend', file: 'editor-mend.safetensors', sha256: 'a'.repeat(64), settings: { lambda: 30, refineSteps: 40 } },
      hypernetworks: { instructedit: { file: 'old-ie.safetensors', sha256: 'b'.repeat(64), settings: { lambda: 50, refineSteps: 10, refineLr: 0.1 } } },
    };
    installNetwork(raw, { method: 'instructedit', file: 'editor-instructedit.safetensors', sha256: 'c'.repeat(64), lambda: 30 }, [{ name: 'zsre', instructions: ['Answer.'] }]);
    expect(raw).toEqual({
      editor: { method: 'instructedit', file: 'editor-instructedit.safetensors', sha256: 'c'.repeat(64), settings: { lambda: 50, refineSteps: 10, refineLr: 0.1 } },
      hypernetworks: { mend: { file: 'editor-mend.safetensors', sha256: 'a'.repeat(64), settings: { lambda: 30, refineSteps: 40 } } },
      tasks: [{ name: 'zsre', instructions: ['Answer.'] }],
    });
    // retraining the editor's own method: no shelf entry appears, settings carry over
    installNetwork(raw, { method: 'instructedit', file: 'editor-instructedit.safetensors', sha256: 'd'.repeat(64), lambda: 20 }, []);
    expect(raw.editor).toEqual({ method: 'instructedit', file: 'editor-instructedit.safetensors', sha256: 'd'.repeat(64), settings: { lambda: 50, refineSteps: 10, refineLr: 0.1 } });
    expect(Object.keys(raw.hypernetworks as object)).toEqual(['mend']);
    // a method that has no settings anywhere yet: the λ it was meta-trained with
    const fresh: Record<string, unknown> = { editor: { method: 'memit', settings: { lambda: 30 } } };
    installNetwork(fresh, { method: 'mend', file: 'editor-mend.safetensors', sha256: 'e'.repeat(64), lambda: 20 }, []);
    expect(fresh.editor).toEqual({ method: 'mend', file: 'editor-mend.safetensors', sha256: 'e'.repeat(64), settings: { lambda: 20 } });
  });
});
