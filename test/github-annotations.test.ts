/**
 * GitHub Actions annotations (src/cli/github.ts): inside a workflow run, `edit validate` and
 * `edit verify` print `::error file=…,line=…::` workflow commands on stdout, with paths as the
 * checkout names them (the project here sits in a subfolder of the repository), so a pull request
 * shows each problem on its edit file and line. Outside a workflow run they print none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { annotation, workspacePath } from '../src/cli/github.js';
import { edit, editWithEnv, expectCode, gitInit, ROOT, tempDir } from './helpers/cli.js';

describe('workflow commands', () => {
  it('escape the message (%, CR, LF) and the properties (also : and ,)', () => {
    expect(annotation('error', '50% of it\nfailed', { file: 'ml/edits/a,b:c.json', line: 7, title: 'edit validate' })).toBe('::error file=ml/edits/a%2Cb%3Ac.json,line=7,title=edit validate::50%25 of it%0Afailed');
    expect(annotation('warning', 'plain')).toBe('::warning::plain');
  });

  it('name a file as the checkout does; a file outside it, or no workspace, keeps the project-relative path', () => {
    expect(workspacePath('/w/repo/ml', 'edits/x.json', { GITHUB_WORKSPACE: '/w/repo' })).toBe('ml/edits/x.json');
    expect(workspacePath('/w/other', 'edits/x.json', { GITHUB_WORKSPACE: '/w/repo' })).toBe('edits/x.json');
    expect(workspacePath('/w/repo/ml', 'edits/x.json', {})).toBe('edits/x.json');
  });
});

describe('edit validate and edit verify in a workflow run', () => {
  let repo: string;
  let project: string;
  const actions = () => ({ GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: repo });

  beforeAll(async () => {
    repo = await tempDir('annotations');
    project = join(repo, 'ml');
    await gitInit(repo);
    await mkdir(project);
    expectCode(await edit(project, 'model', 'import', join(ROOT, 'test/fixtures/tiny-gpt2'), '--out', 'models/default'), 0);
    const manifestPath = join(project, 'models/default/model.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    await writeFile(manifestPath, `${JSON.stringify({ ...manifest, editor: { method: 'ft' } }, null, 2)}\n`);
    await mkdir(join(project, 'edits/geo'), { recursive: true });
  });

  afterAll(async () => {
    if (repo) await rm(repo, { recursive: true, force: true });
  });

  it('validate: one error per problem on its file and line', async () => {
    await writeFile(join(project, 'edits/geo/bad.json'), '{\n  "version": 1,\n  "task": "counterfact",\n  "prompt": "The capital of France is",\n  "target": " Lyon",\n  "rephrase": "France\'s capital is"\n}\n');
    const r = await editWithEnv(actions(), project, 'validate');
    expectCode(r, 1);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['::error file=ml/edits/geo/bad.json,line=6,title=edit validate::/rephrase: must be an array, got a string']);
    expect(r.stderr).toContain('edits/geo/bad.json: /rephrase: must be an array, got a string (line 6)');
    const plain = await edit(project, 'validate');
    expect(plain.stdout).toBe('');
    // a problem found across files after parsing (a conflict) has its line too
    await writeFile(join(project, 'edits/geo/bad.json'), '{\n  "version": 1,\n  "task": "counterfact",\n  "prompt": "The capital of Spain is",\n  "target": " Lyon"\n}\n');
    await writeFile(join(project, 'edits/geo/other.json'), '{\n  "version": 1,\n  "task": "counterfact",\n  "target": " Seville",\n  "prompt": "The capital of Spain is"\n}\n');
    const conflict = await editWithEnv(actions(), project, 'validate');
    expectCode(conflict, 1);
    expect(conflict.stdout.split('\n').filter(Boolean)).toEqual(['::error file=ml/edits/geo/other.json,line=5,title=edit validate::/prompt: same prompt as edits/geo/bad.json with a different target: " Seville" here, " Lyon" there']);
    await rm(join(project, 'edits/geo/bad.json'));
    await rm(join(project, 'edits/geo/other.json'));
  });

  it('verify: one error per edit that does not hold, on its file, with what failed', async () => {
    // the tiny base model answers 16 × "o": this assertion fails until an apply changes that
    const prompt = 'The capital of France is';
    await writeFile(join(project, 'edits/geo/france.json'), `${JSON.stringify({ version: 1, task: 'counterfact', prompt, target: ' Lyon', thresholds: { reliability: 0, generalization: 0, locality: 0 }, expect: [{ type: 'not-contains', prompt, value: 'o'.repeat(16), description: 'not the base answer' }] }, null, 2)}\n`);
    const r = await editWithEnv(actions(), project, 'verify');
    expectCode(r, 1);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('::'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      '::error file=ml/edits/geo/france.json,title=edit verify::geo/france does not hold' +
        '%0AFAIL reliability "The capital of France is": expected output to start with " Lyon", got "ooooo"' +
        '%0AFAIL expect "The capital of France is" (not the base answer): expected output not to contain "oooooooooooooooo", got "oooooooooooooooo"',
    );
    const plain = await edit(project, 'verify');
    expectCode(plain, 1);
    expect(plain.stdout).not.toContain('::error');
  });
});
