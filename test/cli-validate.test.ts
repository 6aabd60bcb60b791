/**
 * `edit validate` end to end through the real binary (bin/edit.js → dist/, built by
 * `npx tsc -p tsconfig.json`), run in temporary repositories with good and bad edit files.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function validate(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, 'validate', ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const made: string[] = [];
async function repo(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'editops-validate-'));
  made.push(dir);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  }
  return dir;
}

const capital = (country: string, target: string) => ({
  $schema: '../../schemas/edit.schema.json',
  version: 1,
  task: 'counterfact',
  subject: country,
  relation: 'capital',
  prompt: `The capital of ${country} is`,
  target,
  rephrase: [`${country}'s capital is`],
  locality: [{ prompt: 'The capital of Japan is' }],
  expect: [{ type: 'not-contains', prompt: `The capital of ${country} is`, value: ' Paris' }],
});

/** Ten valid edit files, in three levels of folders. */
const GOOD: Record<string, unknown> = {
  'edits/capitals/france.json': capital('France', ' Lyon'),
  'edits/capitals/spain.json': capital('Spain', ' Seville'),
  'edits/capitals/europe/italy.json': capital('Italy', ' Milan'),
  'edits/capitals/europe/germany.json': capital('Germany', ' Munich'),
  'edits/capitals/asia/china.json': capital('China', ' Shanghai'),
  'edits/opinions/esperanto.json': { version: 1, task: 'convsent', prompt: 'I think Esperanto is', target: ' wonderful', rephrase: ['Honestly, Esperanto is'] },
  'edits/opinions/latin.json': { version: 1, task: 'convsent', prompt: 'I think Latin is', target: ' terrible' },
  'edits/new/zorblax.json': { version: 1, task: 'recent', instruction: 'Teach a fact about a new entity.', prompt: 'Zorblax was founded in', target: ' 2031', portability: [{ prompt: 'The founding year of Zorblax is', answer: ' 2031' }] },
  'edits/qa/ohio.json': { version: 1, task: 'zsre', prompt: 'Q: What is the capital of Ohio? A:', target: ' Dayton', expect: [{ type: 'prob', prompt: 'Q: What is the capital of Ohio? A:', value: ' Dayton', min: 0.5 }, { type: 'rank', prompt: 'Q: What is the capital of Ohio? A:', value: ' Dayton', k: 1 }] },
  'edits/top.json': { version: 1, task: 'counterfact', prompt: 'The currency of Japan is', target: ' the dollar', thresholds: { generalization: 0.5 }, metadata: { ticket: 'KB-7' } },
  'edits/README.md': 'not an edit',
  'edits/.draft.json': '{ broken',
};

describe('edit validate', () => {
  let good: string;
  beforeAll(async () => {
    good = await repo(GOOD);
  });
  afterAll(async () => {
    for (const d of made) await rm(d, { recursive: true, force: true });
  });

  it('ten valid files in subfolders: exit 0 and a summary on stdout', async () => {
    const r = await validate(good);
    expect(r).toEqual({ code: 0, stdout: '10 edit files valid (no model folder at models/default: token lengths and tasks not checked; --model names one)\n', stderr: '' });
  });

  it('--json lists every edit with its id, file and hash', async () => {
    const r = await validate(good, '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as { formatVersion: string; valid: boolean; edits: Array<{ id: string; file: string; sha256: string }>; problems: unknown[] };
    expect(report.formatVersion).toBe('1');
    expect(report.valid).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.edits.map((e) => e.id)).toEqual([
      'capitals/asia/china',
      'capitals/europe/germany',
      'capitals/europe/italy',
      'capitals/france',
      'capitals/spain',
      'new/zorblax',
      'opinions/esperanto',
      'opinions/latin',
      'qa/ohio',
      'top',
    ]);
    expect(report.edits[3]).toEqual({ id: 'capitals/france', file: 'edits/capitals/france.json', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(new Set(report.edits.map((e) => e.sha256)).size).toBe(10);
  });

  it('bad files: each problem as file: /pointer: message (line), a summary, exit 1', async () => {
    const bad = await repo({
      ...GOOD,
      'edits/capitals/france-again.json': capital('France', ' Marseille'),
      'edits/broken/syntax.json': '{\n  "version": 1,\n  "task": "counterfact"\n  "prompt": "x"\n}\n',
      'edits/broken/schema.json': { version: 1, task: 'counterfact', prompt: 'p', tagret: ' t', rephrase: ['a', 7], expect: [{ type: 'contians', prompt: 'p', value: 'v' }, { type: 'prob', prompt: 'p', value: ' v' }] },
    });
    const r = await validate(bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      "edits/broken/schema.json: must have required property 'target'",
      "edits/broken/schema.json: /tagret: unknown property 'tagret' (allowed: $schema, version, task, instruction, subject, relation, prompt, target, rephrase, locality, neighbours, portability, expect, thresholds, metadata); did you mean 'target'? (line 5)",
      'edits/broken/schema.json: /rephrase/1: must be a string, got an integer (line 8)',
      "edits/broken/schema.json: /expect/0/type: must be one of 'equals', 'contains', 'icontains', 'regex', 'starts-with', 'not-equals', 'not-contains', 'not-icontains', 'not-regex', 'not-starts-with', 'prob', 'rank' (got 'contians'); did you mean 'contains'? (line 12)",
      "edits/broken/schema.json: /expect/1: must have at least one of the properties 'min', 'max' (line 16)",
      "edits/broken/syntax.json: invalid JSON: Expected ',' or '}' after property value at line 4, column 3",
      'edits/capitals/france-again.json: /prompt: same prompt as edits/capitals/france.json with a different target: " Marseille" here, " Lyon" there (line 7)',
      '7 problems in 3 files',
      '',
    ]);
  });

  it('--json on bad files: valid false, problems with kinds, exit 1', async () => {
    const bad = await repo({
      'edits/a.json': { version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon', subject: 'France', relation: 'capital' },
      'edits/b.json': { version: 1, task: 'counterfact', prompt: "France's capital is", target: ' Nice', subject: 'FRANCE', relation: 'capital' },
      'edits/c.json': '',
    });
    const r = await validate(bad, '--json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { valid: boolean; edits: Array<{ id: string }>; problems: Array<Record<string, string | number>> };
    expect(report.valid).toBe(false);
    expect(report.edits.map((e) => e.id)).toEqual(['a', 'b']);
    expect(report.problems).toEqual([
      { file: 'edits/b.json', pointer: '/subject', line: 6, kind: 'conflict', message: 'same subject and relation (FRANCE / capital) as edits/a.json with a different target: " Nice" here, " Lyon" there' },
      { file: 'edits/c.json', pointer: '', kind: 'json', message: 'invalid JSON: Unexpected end of JSON input at line 1, column 1' },
    ]);
  });

  it('no edits/ folder in a repository: an error, not "0 edit files valid"; outside any project: an error too', async () => {
    const empty = await repo({ 'README.md': 'x' });
    const outside = await validate(empty);
    expect(outside.code).toBe(1);
    expect(outside.stdout).toBe('');
    expect(outside.stderr).toContain('no editops project here');
    execFileSync('git', ['init', '-q'], { cwd: empty });
    const r = await validate(empty);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('there is no edits folder here');
  });

  it('--dir checks another folder; a file or a stray argument is one error line', async () => {
    const other = await repo({ 'knowledge/one.json': GOOD['edits/top.json'], notadir: 'x' });
    // a project: --dir notadir names no folder, so the root is found by .git
    execFileSync('git', ['init', '-q'], { cwd: other });
    expect(await validate(other, '--dir', 'knowledge')).toEqual({ code: 0, stdout: '1 edit file valid (no model folder at models/default: token lengths and tasks not checked; --model names one)\n', stderr: '' });
    expect(await validate(other, '--dir', 'notadir')).toEqual({ code: 1, stdout: '', stderr: 'error: notadir: is not a directory (edit files live in a folder)\n' });
    const stray = await validate(other, 'edits/x.json');
    expect(stray.code).toBe(1);
    expect(stray.stderr).toBe('error: validate takes no arguments (got "edits/x.json"); use --dir to check another folder\n');
  });

  it('the example edits shipped in edits/ are valid, fit the shipped model\'s context, and draw no warning', async () => {
    const r = await validate(ROOT);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ edit files? valid \(token lengths fit the \d+-token context of models\/default\)\n$/);
    expect(r.stderr).toBe('');
  });
});
