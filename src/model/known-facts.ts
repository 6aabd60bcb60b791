/**
 * The model's knowledge probes (`probes` in model.json, e.g. models/default/probes.json): facts the
 * base model gets right with greedy generation, per relation. Edit checks take an edit's
 * neighbourhood from them (the same relation's prompt for other subjects); see src/assert/neighbours.ts.
 * Made for the shipped model by scripts/make-probes.ts; any model folder may carry a hand-written one.
 */
import { EditError } from '../errors.js';

/** One fact the base model knows: `prompt` is a trained sentence form cut before the object. */
export interface KnownFact {
  relation: string;
  subject: string;
  /** "The capital of Germany is" */
  prompt: string;
  /** What the base model answers, without the leading space ("Berlin"); informational. */
  object: string;
}

/** The probes file: `facts` is what is read; the rest says how it was made. */
export interface ProbesFile {
  version: 1;
  facts: KnownFact[];
  [meta: string]: unknown;
}

/** Structural checks of a probes file's JSON; a malformed one is the model folder's error, with its pointer. */
export function parseKnownFacts(json: unknown, file: string): KnownFact[] {
  const fail = (pointer: string, msg: string): never => {
    throw new EditError(msg, { file, pointer });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('', 'must be a JSON object');
  const o = json as Record<string, unknown>;
  if (o.version !== 1) fail('/version', `unsupported probes version ${JSON.stringify(o.version)} (expected 1)`);
  if (!Array.isArray(o.facts)) fail('/facts', 'must be a list of {relation, subject, prompt, object}');
  return (o.facts as unknown[]).map((f, i) => {
    if (typeof f !== 'object' || f === null) fail(`/facts/${i}`, 'must be an object');
    const r = f as Record<string, unknown>;
    for (const k of ['relation', 'subject', 'prompt', 'object']) {
      if (typeof r[k] !== 'string' || (r[k] as string).trim() === '') fail(`/facts/${i}/${k}`, 'must be a non-empty string');
    }
    return { relation: r.relation as string, subject: r.subject as string, prompt: r.prompt as string, object: r.object as string };
  });
}

/**
 * The model's known facts fall in two halves by a stable hash of subject and relation: one half the
 * joint solve keeps still (preserved), the other half is what automatic locality neighbours check —
 * so a passing neighbour check is evidence the edit did not spill over, not a restatement of what
 * the solve was told to keep.
 */
export function isPreserved(fact: Pick<KnownFact, 'subject' | 'relation'>): boolean {
  // FNV-1a over "relation\0subject": cheap, stable across platforms
  let h = 0x811c9dc5;
  const s = `${fact.relation.trim().toLowerCase()}\u0000${fact.subject.trim().toLowerCase()}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h & 1) === 0;
}
