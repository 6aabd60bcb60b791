/**
 * A task the editor never saw, described only by its instruction, through `edit apply`: a copy of
 * the shipped model whose editor is the instructedit network meta-trained without opinion edits
 * (bench/networks/instructedit-no-convsent-v7.safetensors, meta-trained for model v7 on counterfact,
 * recent and zsre only: `npx edit train-editor --method instructedit --tasks counterfact,recent,zsre
 * --steps 600 --batch 32 --seed 1 --out <file>`; its catalogue lacks convsent). The example opinion edit is refused until it carries an instruction;
 * with one, it applies beside the counterfactual example, both hold under the default thresholds,
 * and verify and plan agree afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, edit, expectCode, git, gitInit, tempDir } from './helpers/cli.js';
import { sha256 } from '../src/util/hash.js';

const NETWORK = 'bench/networks/instructedit-no-convsent-v7.safetensors';
let repo: string;

describe('instructedit applies an edit of a task it never saw, told by the instruction', () => {
  beforeAll(async () => {
    repo = await tempDir('instructedit-apply');
    await gitInit(repo);
    const model = join(repo, 'models/default');
    await cp(join(ROOT, 'models/default'), model, { recursive: true });
    for (const f of ['state.json', 'rows', 'deltas', 'editor-instructedit.safetensors', 'editor-mend.safetensors']) await rm(join(model, f), { recursive: true, force: true });
    await cp(join(ROOT, NETWORK), join(model, 'editor-instructedit.safetensors'));
    await cp(join(ROOT, 'edits'), join(repo, 'edits'), { recursive: true });
    const bench = JSON.parse(await readFile(join(ROOT, 'data/bench.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(join(model, 'model.json'), 'utf8'));
    manifest.editor = { method: 'instructedit', settings: { lambda: 50, refineSteps: 20 }, file: 'editor-instructedit.safetensors', sha256: sha256(await readFile(join(model, 'editor-instructedit.safetensors'))) };
    delete manifest.hypernetworks; // the shipped networks are removed from this copy
    manifest.tasks = ['counterfact', 'recent', 'zsre'].map((name) => ({ name, instructions: bench.tasks[name].instructions }));
    await writeFile(join(model, 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-qm', 'model with an instructedit editor that never saw opinions');
  }, 60_000);
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it('refuses the opinion edit without an instruction, then applies and holds it with one', async () => {
    const refused = await edit(repo, 'plan');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('edits/opinions/esperanto.json: /task: task "convsent" is not in the model\'s catalogue (counterfact, recent, zsre); add an "instruction" describing it');

    const file = join(repo, 'edits/opinions/esperanto.json');
    const spec = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...spec, instruction: 'Change the opinion the model expresses about the topic.' }, null, 2) + '\n');
    await git(repo, 'commit', '-qam', 'describe the opinion edit');

    const r = await edit(repo, 'apply', '--auto-approve', '--json');
    expectCode(r, 0);
    const out = JSON.parse(r.stdout);
    expect(out.applied).toBe(true);
    const state = JSON.parse(await readFile(join(repo, 'models/default/state.json'), 'utf8'));
    expect(state.editor.method).toBe('instructedit');
    expect(Object.keys(state.edits).sort()).toEqual(['capitals/france', 'opinions/esperanto']);

    const said = await edit(repo, 'generate', 'I think Esperanto is', '--max-tokens', '3');
    expectCode(said, 0);
    expect(said.stdout).toContain(' wonderful');
    expectCode(await edit(repo, 'verify'), 0);
    const plan = await edit(repo, 'plan');
    expectCode(plan, 0);
    expect(plan.stdout).toContain('No changes');
  }, 240_000);
});
