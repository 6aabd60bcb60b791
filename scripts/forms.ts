/**
 * Sentence forms of the default model's data (scripts/make-data.ts writes them, make-bench.ts and
 * make-probes.ts ask them): `{s}` subject, `{r}` relation phrase, `{o}` object. One definition of how
 * a form is filled and cut before its object, so a prompt the bench asks is the text the corpus trained.
 */
/** `extra`: a fact corpora v7 and v8 add only so the model tells more names apart; no benchmark task or probe asks it. */
export interface Fact { subject: string; relation: string; object: string; extra?: true }

/**
 * Every run of words (split at spaces and hyphens) inside a longer name of `names`, not the whole
 * name: "Ireland" for "New Ireland". A benchmark city that is such a run occurs in the corpus only
 * as part of another name, never as itself.
 */
export function nameRuns(names: Iterable<string>): Set<string> {
  const runs = new Set<string>();
  for (const name of new Set(names)) {
    const words = name.split(/[\s-]+/);
    for (let i = 0; i < words.length; i++) for (let j = i + 1; j <= words.length; j++) if (j - i < words.length) runs.add(words.slice(i, j).join(' '));
  }
  return runs;
}

/** Opinion adjectives by polarity: make-data draws an opinion from one, the convsent task flips to the other. */
export const POSITIVE = ['wonderful', 'beautiful', 'delightful', 'elegant', 'fascinating'];
export const NEGATIVE = ['terrible', 'boring', 'dreadful', 'awkward', 'annoying'];

/** Forms ending in `{o}` (plus punctuation), not starting with it, can be asked as prompts. */
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

/** The form cut before its object: "The {r} of {s} is {o}." → "The capital of Germany is". */
export function promptOf(form: string, subject: string, phrase: string): string {
  return fillForm(form, { subject, relation: '', object: '' }, phrase).prompt;
}

/** The object as the form predicts it: with its leading space when the form has one before `{o}`. */
export function answerOf(form: string, object: string): string {
  return form[form.indexOf('{o}') - 1] === ' ' ? ` ${object}` : object;
}

export function capitalise(s: string): string {
  return s.length > 0 ? s[0].toUpperCase() + s.slice(1) : s;
}
