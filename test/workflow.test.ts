/**
 * The CI workflow this repository runs and `edit init` writes into a project: least privilege per
 * job, a maintained Node, one pinned backend, the JUnit report kept, the plan on the pull request.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workflowTemplate } from '../src/cli/commands/init.js';
import { packageRoot } from '../src/util/package-root.js';

const SHIPPED = readFileSync(join(packageRoot(), '.github/workflows/edits.yml'), 'utf8');

/** The text of each job (`jobs:` → `  <name>:` blocks), and what comes before `jobs:`. */
function split(text: string): { top: string; jobs: Record<string, string> } {
  const [top, rest] = text.split(/^jobs:\n/m);
  const jobs: Record<string, string> = {};
  for (const block of rest.split(/^(?= {2}[\w-]+:\n)/m)) {
    const name = /^ {2}([\w-]+):/.exec(block)?.[1];
    if (name !== undefined) jobs[name] = block;
  }
  return { top, jobs };
}

describe.each([
  ['the shipped workflow', SHIPPED],
  ['the workflow init writes', await workflowTemplate()],
])('%s', (_, text) => {
  const { top, jobs } = split(text);

  it('reads by default; only the apply job may write contents', () => {
    expect(top).toMatch(/^permissions:\n {2}contents: read$/m);
    expect(Object.keys(jobs).sort()).toEqual(['apply', 'check']);
    expect(jobs.apply).toMatch(/^ {4}permissions:\n {6}contents: write\b/m);
    expect(jobs.check).toMatch(/^ {4}permissions:\n {6}contents: read\n {6}pull-requests: write\b/m);
    expect(text.match(/contents: write/g)).toHaveLength(1);
  });

  it('uses a maintained Node LTS in every job', () => {
    const versions = [...text.matchAll(/node-version: (\S+)/g)].map((m) => Number(m[1]));
    expect(versions).toHaveLength(2);
    for (const v of versions) expect([22, 24]).toContain(v);
  });

  it('pins the backend for apply and verify alike', () => {
    expect(top).toMatch(/^env:\n(?: {2}#.*\n)* {2}EDIT_BACKEND: wasm$/m);
  });

  it('keeps the JUnit report as an artifact, even when verify fails', () => {
    expect(jobs.check).toMatch(/--junit edit-results\.xml/);
    expect(jobs.check).toMatch(/- name: Upload the JUnit report\n {8}if: always\(\)[^\n]*\n {8}uses: actions\/upload-artifact@v4\n {8}with:\n {10}name: edit-results\n {10}path: edit-results\.xml/);
  });

  it('posts the plan as one pull-request comment, updated on each push, besides the job summary', () => {
    expect(jobs.check).toContain('cat plan.md >> "$GITHUB_STEP_SUMMARY"');
    expect(jobs.check).toMatch(/if: always\(\) && github\.event_name == 'pull_request'[^\n]*\n {8}continue-on-error: true\n {8}uses: actions\/github-script@v7/);
    expect(jobs.check).toContain("fs.readFileSync('plan.md', 'utf8')");
    expect(jobs.check).toContain('github.rest.issues.updateComment');
  });

  it('gives the apply commit a git identity', () => {
    expect(jobs.apply).toMatch(/git config user\.name .*\n.*git config user\.email/);
  });
});

it('init writes the workflow with the installed command, not this repository\'s bin/', async () => {
  const t = await workflowTemplate();
  expect(SHIPPED).toContain('node bin/edit.js verify');
  expect(t).not.toContain('bin/edit.js');
  expect(t).toContain('npx editops verify --junit edit-results.xml');
  expect(t).toContain('npx editops apply --auto-approve');
});

it('init names a model folder other than models/default in every command of the workflow', async () => {
  const t = await workflowTemplate('models/bot');
  const commands = [...t.matchAll(/npx editops (\w+)([^\n]*)/g)];
  expect(commands.map((m) => m[1]).sort()).toEqual(['apply', 'plan', 'validate', 'verify']);
  for (const m of commands) expect(m[2]).toMatch(/^ --model models\/bot(?: |$)/);
  expect(await workflowTemplate()).not.toContain('--model');
});
