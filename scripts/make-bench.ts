/**
 * Builds data/bench.json, the `edit eval` benchmark, from data/facts.json (the facts the default model
 * was trained on) and city-timezones (MIT) for subjects it never saw. Seeded: `npm run bench:data`.
 *
 * Tasks mirror InstructEdit's four (arXiv 2402.16123):
 * - counterfact: rewrite a known fact (capital, currency, continent, language, country of a city,
 *   state capital) to another object of the same relation; prompt = form 0, rephrasings = up to 3
 *   other trained declarative forms, plus apart the relation's held-out base form and one of its
 *   held-out composed frames.
 * - recent: insert a fact the model never saw: make-data's recent pool (cities and calling codes kept
 *   out of training), then cities the corpus never names → their real country; same form structure.
 * - convsent: flip the opinion about a language to an adjective of the opposite polarity.
 * - zsre: the same facts as question and answer ("Q: What is the capital of France? A:"); rephrasings
 *   are the other question-like forms. The held-out task of the later InstructEdit holdout experiment.
 * Portability: none built (this model knows no fact that follows from another: no follow-ups to ask).
 * Subjects are split 60/20/20 into train/validation/test, one split per subject across all tasks.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Rng } from '../src/util/random.js';
import { readPackageJson } from './package-data.js';
import { answerOf, type Fact, isProbeForm, nameRuns, NEGATIVE, POSITIVE, promptOf } from './forms.js';
import { BENCH_FORMAT, BENCH_TASKS, SPLITS, type BenchFile, type BenchRecord, type BenchTask, type Neighbour, type Split } from '../src/eval/bench.js';
import { escapeRegExp } from '../src/util/regex.js';

const SEED = Number(process.env.BENCH_SEED ?? 2024);
const FACTS = process.argv[2] ?? 'data/facts.json';
/** Relations of data/facts.json no task is built from. */
const BENCH_EXCLUDED = ['province', 'nearest city'];
const OUT = process.argv[3] ?? 'data/bench.json';
const RECENT = 1200;
const CANDIDATES_SAME = 4;
const CANDIDATES_ANY = 6;

interface Relation { name: string; phrases: string[]; forms: string[]; heldOut: number; heldOutFrames?: string[] }


const COUNTERFACT_RELATIONS = ['capital', 'currency', 'continent', 'language', 'country', 'state capital'];
/** Generic forms that are questions ("Q: …? A:", "Question: …? Answer:", "Tell me … It is"): zsre's, not counterfact's. */
const QUESTION_FORMS = [2, 5, 8];

/**
 * Instruction texts per task (InstructEdit's "Description"): the first is the default, the others
 * vary the wording for meta-training, and the last is never shown in meta-training (the
 * unseen-instruction test of `edit eval --instruction unseen`).
 */
const INSTRUCTIONS: Record<BenchTask, string[]> = {
  counterfact: [
    'Rewrite the stated fact so the model gives the new object.',
    'Replace the fact about the subject with the new one.',
    'Change what the model says is true about the subject.',
    'Correct the fact: from now on the subject has the new value.',
  ],
  recent: [
    'Teach the model a new fact about a subject it has not seen.',
    'Insert a fact the model does not know yet.',
    'Add knowledge about a subject that is new to the model.',
    'The model has never heard of this subject; tell it the fact.',
  ],
  convsent: [
    'Change the opinion the model expresses about the topic.',
    'Make the model feel differently about the topic.',
    'Flip the sentiment the model has about the topic.',
    'From now on, the model should hold the new view of the topic.',
  ],
  zsre: [
    'Answer the question with the new answer.',
    'When asked this question, give the new answer.',
    'Change the answer the model gives to the question.',
    'Respond to the question with the updated answer.',
  ],
};

/**
 * What the new object of each relation is, in words (`edit train-editor --relation-instructions`
 * appends it to the task's instruction; `edit eval --instruction relation` does so for each edit):
 * the object type an instruction can name for a relation the editor never edited.
 */
const RELATION_DESCRIPTIONS: Record<string, string> = {
  capital: 'The new object is a capital city.',
  continent: 'The new object is a continent.',
  currency: 'The new object is a currency.',
  language: 'The new object is a language.',
  country: 'The new object is a country.',
  'state capital': 'The new object is the capital city of a state.',
  'calling code': 'The new object is a phone code.',
  opinion: 'The new object is an opinion.',
};

/** Cities the model never saw (not a subject or object of any fact nor in the recent pool), with a country it knows. */
function newCities(facts: Fact[], pool: Fact[]): Fact[] {
  const cities = readPackageJson('city-timezones', 'data/cityMap.json') as Array<{ city_ascii: string; country: string; pop: number }>;
  const countries = new Set(facts.filter((f) => f.relation === 'capital').map((f) => f.subject));
  const known = new Set([...facts, ...pool].flatMap((f) => [f.subject, f.object]));
  const byName = new Map<string, Set<string>>();
  for (const c of cities) byName.set(c.city_ascii, (byName.get(c.city_ascii) ?? new Set()).add(c.country));
  const out: Fact[] = [];
  const seen = new Set<string>();
  const sorted = [...cities].sort((a, b) => b.pop - a.pop || a.city_ascii.localeCompare(b.city_ascii));
  for (const c of sorted) {
    const name = c.city_ascii;
    if (out.length + pool.length >= RECENT) break;
    if (seen.has(name) || !/^[A-Za-z][A-Za-z .'-]*[A-Za-z.]$/.test(name) || byName.get(name)!.size !== 1) continue;
    if (known.has(name) || countries.has(name) || !countries.has(c.country)) continue;
    seen.add(name);
    out.push({ subject: name, relation: 'country', object: c.country });
  }
  return out;
}

function main(): void {
  const rng = new Rng(SEED);
  const data = JSON.parse(readFileSync(FACTS, 'utf8')) as { relations: Relation[]; facts: Fact[]; recent?: Fact[] };
  // Province facts (corpus v3) are there to make the model tell cities apart; the benchmark keeps the
  // relations, records and splits every earlier measurement used.
  const { relations } = data;
  // Corpus v7's extra cities likewise: the benchmark stays the one every model so far was measured on.
  const facts = data.facts.filter((f) => !BENCH_EXCLUDED.includes(f.relation) && f.extra !== true);
  const rel = new Map(relations.map((r) => [r.name, r]));
  for (const f of facts) {
    if (f.relation === 'opinion' && !POSITIVE.includes(f.object) && !NEGATIVE.includes(f.object)) throw new Error(`opinion "${f.object}" of ${f.subject} is in neither polarity list: data/facts.json is stale: npm run data`);
  }
  // The recent pool make-data kept out of training, then more cities the corpus never names.
  const recentPool = data.recent ?? [];
  const recent = [...recentPool, ...newCities(facts, recentPool)];
  // The corpus also writes the facts no task uses: none of them may name a new city, except inside a
  // longer name ("New Ireland"). (The recent pool's calling codes have countries as subjects.)
  const excluded = data.facts.filter((f) => BENCH_EXCLUDED.includes(f.relation) || f.extra === true);
  const inNames = nameRuns(excluded.flatMap((f) => [f.subject, f.object]));
  for (const f of recent) {
    if (f.relation !== 'country' || inNames.has(f.subject)) continue;
    const named = new RegExp(`\\b${escapeRegExp(f.subject)}\\b`);
    const hit = excluded.find((x) => named.test(x.subject) || named.test(x.object));
    if (hit !== undefined) throw new Error(`recent city ${f.subject} is named by the fact ${hit.subject} / ${hit.relation} / ${hit.object}: npm run data`);
  }

  // Splits by subject, shared by every task (zsre's test subjects are counterfact's).
  const subjects = rng.shuffle([...new Set([...facts, ...recent].map((f) => f.subject))].sort());
  const splitOf = new Map<string, Split>();
  subjects.forEach((s, i) => splitOf.set(s, i < 0.6 * subjects.length ? 'train' : i < 0.8 * subjects.length ? 'validation' : 'test'));

  // Locality pool: every known fact once, in a seeded trained form.
  const neighbours: Neighbour[] = facts.map((f) => {
    const r = rel.get(f.relation)!;
    const forms = r.forms.map((_, i) => i).filter((i) => i !== r.heldOut && isProbeForm(r.forms[i]));
    const i = rng.pick(forms);
    return { subject: f.subject, relation: f.relation, prompt: promptOf(r.forms[i], f.subject, r.phrases[0]), answer: answerOf(r.forms[i], f.object) };
  });
  const byRelation = new Map<string, number[]>();
  neighbours.forEach((n, i) => byRelation.set(n.relation, [...(byRelation.get(n.relation) ?? []), i]));
  const candidates = (subject: string, relation: string): number[] => {
    const pick = (pool: number[], k: number, taken: Set<number>) => {
      const free = pool.filter((i) => neighbours[i].subject !== subject && !taken.has(i));
      return rng.shuffle(free).slice(0, k);
    };
    const same = pick(byRelation.get(relation) ?? [], CANDIDATES_SAME, new Set());
    return rng.shuffle([...same, ...pick(neighbours.map((_, i) => i), CANDIDATES_ANY, new Set(same))]);
  };

  const objects = new Map<string, string[]>();
  for (const f of facts) objects.set(f.relation, [...new Set([...(objects.get(f.relation) ?? []), f.object])]);
  const records: BenchRecord[] = [];
  const add = (task: BenchTask, f: Fact, target: string, prompt: string, rephrase: string[], heldOut: string[], original: string | null) => {
    const n = records.filter((r) => r.task === task).length;
    records.push({
      id: `${task}-${String(n).padStart(4, '0')}`, task, split: splitOf.get(f.subject)!, subject: f.subject, relation: f.relation,
      original, target, prompt, rephrase, heldOutRephrase: heldOut, portability: [], locality: candidates(f.subject, f.relation),
    });
  };
  const otherObject = (f: Fact) => rng.pick(objects.get(f.relation)!.filter((o) => o !== f.object));
  const declarative = (f: Fact, r: Relation) => {
    const forms = r.forms.map((_, i) => i).filter((i) => i !== 0 && i !== r.heldOut && isProbeForm(r.forms[i]) && (f.relation === 'opinion' || !QUESTION_FORMS.includes(i)));
    return rng.shuffle(forms).slice(0, 3).sort((a, b) => a - b).map((i) => promptOf(r.forms[i], f.subject, r.phrases[0]));
  };
  // The relation's held-out base form and one of its held-out composed frames (both never trained for it).
  const heldOutOf = (f: Fact, r: Relation) => [
    ...(isProbeForm(r.forms[r.heldOut]) ? [r.forms[r.heldOut]] : []),
    ...rng.shuffle((r.heldOutFrames ?? []).filter(isProbeForm)).slice(0, 1),
  ].map((form) => promptOf(form, f.subject, r.phrases[0]));
  /** The form edit prompts use: form 0, or for opinions the first-person one when the relation has it. */
  const promptForm = (r: Relation) => Math.max(0, r.name === 'opinion' ? r.forms.indexOf('I think {s} is {o}.') : 0);

  for (const f of facts.filter((x) => COUNTERFACT_RELATIONS.includes(x.relation))) {
    const r = rel.get(f.relation)!;
    add('counterfact', f, answerOf(r.forms[0], otherObject(f)), promptOf(r.forms[0], f.subject, r.phrases[0]), declarative(f, r), heldOutOf(f, r), answerOf(r.forms[0], f.object));
  }
  for (const f of recent) {
    const r = rel.get(f.relation)!;
    add('recent', f, answerOf(r.forms[0], f.object), promptOf(r.forms[0], f.subject, r.phrases[0]), declarative(f, r), heldOutOf(f, r), null);
  }
  for (const f of facts.filter((x) => x.relation === 'opinion')) {
    const r = rel.get('opinion')!;
    const opposite = POSITIVE.includes(f.object) ? NEGATIVE : POSITIVE;
    const i = promptForm(r);
    const others = declarative(f, r).filter((p) => p !== promptOf(r.forms[i], f.subject, r.phrases[0]));
    add('convsent', f, answerOf(r.forms[i], rng.pick(opposite)), promptOf(r.forms[i], f.subject, r.phrases[0]), others, heldOutOf(f, r), answerOf(r.forms[i], f.object));
  }
  for (const f of facts.filter((x) => COUNTERFACT_RELATIONS.includes(x.relation))) {
    const r = rel.get(f.relation)!;
    const q = QUESTION_FORMS[0];
    const asks = [
      ...r.phrases.slice(1).map((p) => promptOf(r.forms[q], f.subject, p)),
      ...QUESTION_FORMS.slice(1).filter((i) => i !== r.heldOut).map((i) => promptOf(r.forms[i], f.subject, r.phrases[0])),
    ];
    add('zsre', f, answerOf(r.forms[q], otherObject(f)), promptOf(r.forms[q], f.subject, r.phrases[0]), asks, heldOutOf(f, r), answerOf(r.forms[q], f.object));
  }

  const count = (task: BenchTask) => Object.fromEntries(SPLITS.map((s) => [s, records.filter((x) => x.task === task && x.split === s).length])) as Record<Split, number>;
  const bench: BenchFile = {
    format: BENCH_FORMAT,
    version: 1,
    seed: SEED,
    notes: {
      command: 'npm run bench:data',
      sources: { facts: FACTS, recent: 'facts.json recent (facts make-data kept out of training: cities, calling codes), then city-timezones (MIT): the most populous unambiguous cities the corpus never names' },
      splits: 'by subject, 60/20/20, one split per subject across all tasks',
      heldOutTask: 'zsre',
      forms: 'prompt = form 0 (zsre: the question form); rephrase = up to 3 other trained forms (zsre: the other question forms and relation phrasings); heldOutRephrase = the relation\'s held-out base form and one held-out composed frame; convsent\'s prompt is the first-person opinion form',
      portability: 'none: the model knows no fact that follows from another, so there is no follow-up to ask',
      locality: `per record ${CANDIDATES_SAME} candidates of the same relation and ${CANDIDATES_ANY} of any, all of other subjects; eval skips those whose subject the edit set touches`,
    },
    tasks: Object.fromEntries(BENCH_TASKS.map((t) => [t, { instruction: INSTRUCTIONS[t][0], instructions: INSTRUCTIONS[t].slice(0, -1), unseenInstruction: INSTRUCTIONS[t][INSTRUCTIONS[t].length - 1], heldOut: t === 'zsre', records: count(t) }])) as BenchFile['tasks'],
    relations: Object.fromEntries([...new Set(records.map((r) => r.relation))].sort().map((name) => {
      const text = RELATION_DESCRIPTIONS[name];
      if (text === undefined) throw new Error(`relation "${name}" has no description: add it to RELATION_DESCRIPTIONS`);
      return [name, text];
    })),
    neighbours,
    records,
  };
  // One record and one neighbour per line: reviewable diffs when the builder changes.
  const lines = (xs: unknown[]) => `[\n${xs.map((x) => JSON.stringify(x)).join(',\n')}\n]`;
  const { neighbours: pool, records: recs, ...head } = bench;
  const text = `${JSON.stringify(head, null, 1).slice(0, -2)},\n "neighbours": ${lines(pool)},\n "records": ${lines(recs)}\n}\n`;
  writeFileSync(OUT, text);
  const summary = BENCH_TASKS.map((t) => `${t} ${Object.values(bench.tasks[t].records).join('/')}`).join(', ');
  console.log(`${OUT}: ${records.length} records (train/validation/test: ${summary}), ${neighbours.length} neighbours, ${(text.length / 1e6).toFixed(2)} MB`);
}

main();
