/**
 * The model's knowledge probes (src/model/known-facts.ts): per relation of data/facts.json, every
 * fact the base model answers right (at most PROBES_PER_RELATION when set), asked in the relation's first sentence form
 * (the trained form edit prompts use: "The capital of Germany is"). Right = greedy generation
 * starts with the object and a word boundary follows it (end, space, punctuation). Facts are tried
 * in a seeded shuffle, so the file is reproducible. Edits take their automatic locality neighbours
 * from it (src/assert/neighbours.ts), and the solve keeps its preserved half still (src/editor/set.ts
 * preservedFacts): every known fact rather than a sample, because a neighbour the solve was not
 * shown moves less when more facts like it were kept (README, "The default model").
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/make-probes.js [models/default [data]]
 *
 * Writes <model>/probes.json and names it (with its sha256) in model.json's `probes`. model.json's
 * hash is part of state.json, so the applied edits must be re-applied afterwards (apply --refresh).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, setManifestEntry } from '../src/model/folder.js';
import { ModelJudge } from '../src/assert/judge.js';
import type { KnownFact, ProbesFile } from '../src/model/known-facts.js';
import { sha256 } from '../src/util/hash.js';
import { Rng } from '../src/util/random.js';
import { type Fact, promptOf } from './forms.js';

const SEED = Number(process.env.PROBES_SEED ?? 2024);
/** At most this many per relation; unset = all (the first models kept 60). */
const PER_RELATION = process.env.PROBES_PER_RELATION === undefined ? Number.POSITIVE_INFINITY : Number(process.env.PROBES_PER_RELATION);
const FILE = 'probes.json';

interface FactsJson {
  relations: Array<{ name: string; phrases: string[]; forms: string[] }>;
  facts: Fact[];
}

/** The object as a whole word at the start of the output: what the model "knows". */
function answers(output: string, object: string): boolean {
  const want = ` ${object}`;
  return output.startsWith(want) && !/^[\p{L}\p{N}]/u.test(output.slice(want.length));
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? 'models/default';
  const backend = await initBackend();
  const loaded = await loadModelFolder(dir);
  const judge = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer });
  const data = JSON.parse(readFileSync(`${process.argv[3] ?? 'data'}/facts.json`, 'utf8')) as FactsJson;
  const rng = new Rng(SEED);
  const facts: KnownFact[] = [];
  const relations: Record<string, { form: string; tried: number; known: number; facts: number }> = {};
  for (const r of data.relations) {
    const form = r.forms[0];
    if (!form.includes('{o}')) continue;
    // Facts marked extra (corpus v7's added cities) are there so the model tells names apart; the
    // probes, like the benchmark, keep to the facts every model so far was trained on.
    const pool = rng.shuffle(data.facts.filter((f) => f.relation === r.name && f.extra !== true));
    const stats = { form: form.replaceAll('{r}', r.phrases[0]).replace(/ {2,}/g, ' '), tried: 0, known: 0, facts: pool.length };
    for (const f of pool) {
      if (stats.known >= PER_RELATION) break;
      const prompt = promptOf(form, f.subject, r.phrases[0]);
      stats.tried++;
      const output = judge.generate(prompt, judge.countTokens(` ${f.object}`) + 2);
      if (!answers(output, f.object)) continue;
      stats.known++;
      facts.push({ relation: r.name, subject: f.subject, prompt, object: f.object });
    }
    relations[r.name] = stats;
    console.log(`${r.name.padEnd(14)} ${String(stats.known).padStart(3)} known of ${String(stats.tried).padStart(3)} tried (${stats.facts} facts)`);
  }
  loaded.model.dispose();

  const out: ProbesFile = {
    version: 1,
    description: 'Facts the base model answers right (greedy generation starts with the object as a whole word), per relation, in the first trained sentence form. Edits with a subject and relation get these as automatic locality neighbours (src/assert/neighbours.ts).',
    command: `npx tsc -p tsconfig.json && node dist/scripts/make-probes.js ${[dir, ...process.argv.slice(3, 4)].join(' ')}`,
    seed: SEED,
    perRelation: Number.isFinite(PER_RELATION) ? PER_RELATION : 'all',
    weightsSha256: loaded.manifest.weights.sha256,
    backend,
    relations,
    facts,
  };
  const text = `${JSON.stringify(out, null, 1)}\n`;
  writeFileSync(join(dir, FILE), text);
  await setManifestEntry(dir, 'probes', { file: FILE, sha256: sha256(text) });
  console.log(`wrote ${join(dir, FILE)}: ${facts.length} facts (${backend}); model.json names it`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
