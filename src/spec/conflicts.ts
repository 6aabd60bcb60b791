/**
 * Edits that cannot all hold at once. Apply verifies every assertion on the combined weights
 * (base + Σ deltas), so two edits that demand different things of one prompt would fail there;
 * this finds them before any model is loaded. Pure.
 *
 * Rules (each problem is reported on the later file in id order, naming the first file, in id
 * order, with that prompt or fact; a pair matching two rules is reported once):
 * - conflict: same prompt (trimmed, case-sensitive), different targets.
 * - conflict: same subject + relation (trimmed, case-insensitive), different targets.
 * - duplicate: same prompt and same target: the edit is declared twice, and summed deltas would
 *   apply it twice.
 * - conflict: a locality prompt that another edit (or the same edit) changes: "must not change"
 *   and "must give the target" cannot both pass. A locality answer equal to that target is fine.
 * - duplicate: a rephrase equal to the edit's own prompt or to an earlier rephrase (it would
 *   count the same prompt twice and overstate generalization). Not a conflict between edits,
 *   but still a problem: validate fails on it.
 */
import { cut, excerpt } from '../util/format.js';
import type { LoadedEdit, SpecProblem } from './types.js';

export function findConflicts(edits: LoadedEdit[]): SpecProblem[] {
  const sorted = [...edits].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const problems: SpecProblem[] = [];
  /** The first edit (in id order) of each prompt and of each subject + relation: later ones are compared to it. */
  const byPrompt = new Map<string, LoadedEdit>();
  const byFact = new Map<string, LoadedEdit>();
  /** Every prompt an edit changes (prompt and rephrasings) → the edits changing it. */
  const changed = new Map<string, LoadedEdit[]>();

  for (const e of sorted) {
    const { spec } = e;
    const prompt = spec.prompt.trim();
    const first = byPrompt.get(prompt);
    let reported: LoadedEdit | undefined;
    if (first === undefined) {
      byPrompt.set(prompt, e);
    } else if (first.spec.target !== spec.target) {
      problems.push({ file: e.file, pointer: '/prompt', kind: 'conflict', message: `same prompt as ${first.file} with a different target: ${q(spec.target)} here, ${q(first.spec.target)} there` });
      reported = first;
    } else {
      problems.push({ file: e.file, pointer: '/prompt', kind: 'duplicate', message: `same prompt and target as ${first.file}: the edit is declared twice` });
      reported = first;
    }

    if (spec.subject !== undefined && spec.relation !== undefined) {
      const fact = `${spec.subject.trim().toLowerCase()}\u0000${spec.relation.trim().toLowerCase()}`;
      const other = byFact.get(fact);
      if (other === undefined) {
        byFact.set(fact, e);
      } else if (other.spec.target !== spec.target && other !== reported) {
        problems.push({ file: e.file, pointer: '/subject', kind: 'conflict', message: `same subject and relation (${cut(spec.subject)} / ${cut(spec.relation)}) as ${other.file} with a different target: ${q(spec.target)} here, ${q(other.spec.target)} there` });
      }
    }

    const seen = new Map<string, number>();
    (spec.rephrase ?? []).forEach((r, i) => {
      const key = r.trim();
      if (key === prompt) {
        problems.push({ file: e.file, pointer: `/rephrase/${i}`, kind: 'duplicate', message: "repeats the edit's prompt; a rephrasing must differ from it" });
      } else if (seen.has(key)) {
        problems.push({ file: e.file, pointer: `/rephrase/${i}`, kind: 'duplicate', message: `repeats rephrase ${seen.get(key)}` });
      } else {
        seen.set(key, i);
      }
    });
    for (const p of [prompt, ...(spec.rephrase ?? []).map((r) => r.trim())]) {
      const list = changed.get(p) ?? [];
      if (!list.includes(e)) changed.set(p, [...list, e]);
    }
  }

  // Locality needs the full map of changed prompts, so it runs after every edit was seen.
  for (const e of sorted) {
    (e.spec.locality ?? []).forEach((loc, i) => {
      const changer = (changed.get(loc.prompt.trim()) ?? []).find((o) => loc.answer === undefined || loc.answer !== o.spec.target);
      if (changer === undefined) return;
      const whose = changer === e ? "this edit's own prompt or rephrasing" : `a prompt of ${changer.file}`;
      const must = loc.answer === undefined ? 'must not change' : `must still give ${q(loc.answer)}`;
      problems.push({ file: e.file, pointer: `/locality/${i}/prompt`, kind: 'conflict', message: `${must}, but it is ${whose}, whose target for it is ${q(changer.spec.target)}` });
    });
  }
  return problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

function q(s: string): string {
  return excerpt(s);
}
