/**
 * An edit's automatic neighbourhood: the same relation's prompt for other subjects the base model
 * knows (the model's knowledge probes, src/model/known-facts.ts). Edit checks judge each one
 * unchanged against the base model, as a locality prompt without `answer` — the neighbourhood
 * probes of CounterFact (ROME, arXiv 2202.05262), which catch an edit that rewrites the relation
 * for every subject ("The capital of Germany is Lyon") while the listed prompts still pass.
 */
import type { KnownFact } from '../model/known-facts.js';
import type { EditSpec } from '../spec/types.js';
import { sha256 } from '../util/hash.js';

/** Neighbours per edit when the edit does not set `neighbours.count`. */
export const DEFAULT_NEIGHBOURS = 8;

/** One automatic locality prompt of an edit. */
export interface Neighbour {
  subject: string;
  relation: string;
  prompt: string;
}

interface DeclaredEdit {
  id: string;
  spec: EditSpec;
}

const norm = (s: string) => s.trim().toLowerCase();

/**
 * The neighbours of `edit`: facts of its relation (case-insensitive) about other subjects, minus
 * any fact another declared edit changes (same subject and relation) and any prompt a declared edit
 * changes (its prompt or a rephrase) or this edit already lists under `locality`; then at most
 * `count` of them, in an order seeded by the edit's id (sha256 of id + subject: stable when the
 * probes file or the other edits change, and different edits see different neighbours).
 * None when the edit lacks subject or relation, sets `"neighbours": false`, or the model has no probes.
 */
export function pickNeighbours(edit: DeclaredEdit, known: readonly KnownFact[], declared: readonly DeclaredEdit[] = []): Neighbour[] {
  const { spec } = edit;
  if (spec.neighbours === false || spec.subject === undefined || spec.relation === undefined) return [];
  const count = spec.neighbours?.count ?? DEFAULT_NEIGHBOURS;
  const relation = norm(spec.relation);
  const own = norm(spec.subject);
  const editedSubjects = new Set(
    declared.filter((d) => d.id !== edit.id && d.spec.subject !== undefined && d.spec.relation !== undefined && norm(d.spec.relation) === relation).map((d) => norm(d.spec.subject!)),
  );
  const takenPrompts = new Set<string>();
  for (const d of [edit, ...declared]) for (const p of [d.spec.prompt, ...(d.spec.rephrase ?? [])]) takenPrompts.add(p.trim());
  for (const l of spec.locality ?? []) takenPrompts.add(l.prompt.trim());

  const bySubject = new Map<string, Neighbour & { order: string }>();
  for (const f of known) {
    const subject = norm(f.subject);
    if (norm(f.relation) !== relation || subject === own || editedSubjects.has(subject) || takenPrompts.has(f.prompt.trim()) || bySubject.has(subject)) continue;
    bySubject.set(subject, { subject: f.subject, relation: f.relation, prompt: f.prompt, order: sha256(`${edit.id}\n${subject}`) });
  }
  return [...bySubject.values()]
    .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
    .slice(0, count)
    .map(({ subject, relation: r, prompt }) => ({ subject, relation: r, prompt }));
}
