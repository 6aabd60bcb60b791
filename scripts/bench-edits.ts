/**
 * Edit files from the benchmark: N records of a task and split (distinct subjects, seeded), written
 * as edits/<task>/<subject>.json with subject, relation, prompt, target and rephrasings, so that
 * `edit apply` judges them as a user's edits (automatic locality neighbours included).
 *
 *   node dist/scripts/bench-edits.js 100 /tmp/repo/edits [task=counterfact] [split=test] [seed=0]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/util/random.js';

interface Rec { id: string; task: string; split: string; subject: string; relation: string; prompt: string; target: string; rephrase: string[] }

const [n, out, task = 'counterfact', split = 'test', seed = '0'] = process.argv.slice(2);
if (n === undefined || out === undefined) throw new Error('usage: bench-edits.js <N> <edits-dir> [task] [split] [seed]');
const { records } = JSON.parse(readFileSync('data/bench.json', 'utf8')) as { records: Rec[] };
const pool = new Rng(Number(seed)).shuffle(records.filter((r) => r.task === task && split.split(',').includes(r.split)));
const used = new Set<string>();
let written = 0;
for (const r of pool) {
  if (written === Number(n)) break;
  if (used.has(r.subject)) continue;
  used.add(r.subject);
  const name = r.subject.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || r.id;
  mkdirSync(join(out, task), { recursive: true });
  const edit = { version: 1, task, subject: r.subject, relation: r.relation, prompt: r.prompt, target: r.target, rephrase: r.rephrase, metadata: { source: `data/bench.json ${r.id}` } };
  writeFileSync(join(out, task, `${name}.json`), `${JSON.stringify(edit, null, 2)}\n`);
  written++;
}
console.log(`${written} ${task} edit files (${split}, seed ${seed}) → ${out}`);
