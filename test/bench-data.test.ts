/**
 * The benchmark is reproducible from the committed facts (`npm run bench:data`), and a corpus that
 * adds facts no task asks (corpus v7's extra cities) leaves its records and neighbours unchanged, so
 * every model's `edit eval` numbers compare.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameRuns } from '../scripts/forms.js';
import { escapeRegExp } from '../src/util/regex.js';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'editops-bench-data-'));
});
afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const makeBench = (facts: string, out: string) => run(process.execPath, ['dist/scripts/make-bench.js', facts, out], { cwd: repo });

describe('make-bench', () => {
  it('builds data/bench.json byte for byte from data/facts.json', async () => {
    await makeBench('data/facts.json', join(dir, 'bench.json'));
    expect(await readFile(join(dir, 'bench.json'), 'utf8')).toBe(await readFile(join(repo, 'data/bench.json'), 'utf8'));
  });

  it('asks no fact marked extra: adding extra city facts keeps the records and neighbours', async () => {
    const facts = JSON.parse(await readFile(join(repo, 'data/facts.json'), 'utf8')) as { facts: Array<Record<string, unknown>> };
    const base = facts.facts.length;
    // far-away city names no benchmark record uses, in a country the facts know
    facts.facts.push({ subject: 'Zzyzx Springs', relation: 'country', object: 'France', extra: true });
    facts.facts.push({ subject: 'Zzyzx Springs', relation: 'province', object: 'Qwerty Region', extra: true });
    await writeFile(join(dir, 'facts-extra.json'), JSON.stringify(facts));
    await makeBench(join(dir, 'facts-extra.json'), join(dir, 'bench-extra.json'));
    const a = JSON.parse(await readFile(join(dir, 'bench-extra.json'), 'utf8'));
    const b = JSON.parse(await readFile(join(repo, 'data/bench.json'), 'utf8'));
    expect(facts.facts.length).toBe(base + 2);
    expect(a.records).toEqual(b.records);
    expect(a.neighbours).toEqual(b.neighbours);
    // without the mark the same city becomes a counterfact subject: the mark is what keeps it out
    for (const f of facts.facts) delete f.extra;
    await writeFile(join(dir, 'facts-plain.json'), JSON.stringify(facts));
    await makeBench(join(dir, 'facts-plain.json'), join(dir, 'bench-plain.json'));
    const c = JSON.parse(await readFile(join(dir, 'bench-plain.json'), 'utf8'));
    expect(c.records.some((r: { subject: string }) => r.subject === 'Zzyzx Springs')).toBe(true);
  });

  it('refuses an unasked fact that names a benchmark city, unless inside a longer name', async () => {
    const bench = JSON.parse(await readFile(join(repo, 'data/bench.json'), 'utf8')) as { records: Array<{ task: string; relation: string; subject: string }> };
    const city = bench.records.find((r) => r.task === 'recent' && r.relation === 'country' && !/[\s-]/.test(r.subject))!.subject;
    const facts = JSON.parse(await readFile(join(repo, 'data/facts.json'), 'utf8')) as { facts: Array<Record<string, unknown>> };
    facts.facts.push({ subject: 'Zzyzx Springs', relation: 'province', object: `New ${city}`, extra: true });
    await writeFile(join(dir, 'facts-inside.json'), JSON.stringify(facts));
    await makeBench(join(dir, 'facts-inside.json'), join(dir, 'bench-inside.json'));
    facts.facts.pop();
    facts.facts.push({ subject: 'Zzyzx Springs', relation: 'province', object: city, extra: true });
    await writeFile(join(dir, 'facts-named.json'), JSON.stringify(facts));
    await expect(makeBench(join(dir, 'facts-named.json'), join(dir, 'bench-named.json'))).rejects.toThrow(new RegExp(`recent city ${escapeRegExp(city)} is named by the fact Zzyzx Springs / province / ${escapeRegExp(city)}`));
  });
});

describe('nameRuns', () => {
  it('lists the word runs inside longer names, not the names themselves', () => {
    const runs = nameRuns(['New Ireland', 'Rio de Janeiro', 'Baden-Wuerttemberg', 'Paris']);
    expect([...runs].sort()).toEqual(['Baden', 'Ireland', 'Janeiro', 'New', 'Rio', 'Rio de', 'Wuerttemberg', 'de', 'de Janeiro'].sort());
    expect(runs.has('Paris')).toBe(false);
    expect(runs.has('New Ireland')).toBe(false);
  });
});
