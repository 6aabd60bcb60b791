/**
 * Every check of one edit: the implied ones (reliability on `prompt`, generalization on each
 * rephrase, locality, portability), judged on real greedy generation, and the user's `expect`
 * assertions. A kind passes when the fraction of its prompts that pass reaches its threshold;
 * EasyEdit's teacher-forced token accuracy is reported beside, never used to pass
 * (QAEdit/WILD, arXiv 2502.11177: teacher forcing overstates real success).
 */
import type { EditMetrics as StoredMetrics } from '../state/types.js';
import type { Thresholds } from '../model/folder.js';
import type { KnownFact } from '../model/known-facts.js';
import type { AssertionSpec, EditSpec } from '../spec/types.js';
import { quote } from './format.js';
import { describeAssertion, runAssertion } from './registry.js';
import { DEFAULT_NEIGHBOURS, pickNeighbours, type Neighbour } from './neighbours.js';
import { prefetchJudgements } from './prefetch.js';
import { DEFAULT_MAX_TOKENS, startsWith, startsWithWord } from './string.js';
import type { CheckKind, CheckResult, Judge } from './types.js';

export type ImpliedKind = Exclude<CheckKind, 'expect'>;
export const IMPLIED_KINDS: readonly ImpliedKind[] = ['reliability', 'generalization', 'locality', 'portability'];

/** Greedy tokens beyond the expected text's own: room for the model to spell it in more tokens. */
export const EXTRA_TOKENS = 2;

export interface KindSummary {
  /** Fraction of the kind's prompts that passed; null when the edit has none. */
  score: number | null;
  threshold: number;
  pass: boolean;
}

/** The stored metrics (state.json) plus EasyEdit's teacher-forced numbers, which are reported, not stored. */
export interface EditMetrics extends StoredMetrics {
  /** EasyEdit's teacher-forced token accuracy of the target/answers on the edited model (mean per kind); for comparison only. */
  teacherForced: { reliability: number | null; generalization: number | null; portability: number | null };
}

export interface EditCheck {
  checks: CheckResult[];
  /** Every implied kind reaches its threshold and every expect assertion passes. */
  pass: boolean;
  metrics: EditMetrics;
  /** Per implied kind: its score against its threshold. */
  kinds: Record<ImpliedKind, KindSummary>;
}

/** Floating-point slack for fractions against thresholds (4/5 vs 0.8). */
const EPS = 1e-9;

function tokenBudget(judge: Judge, text: string): number {
  // Byte-level BPE never needs more tokens than bytes: a safe bound when the judge cannot count.
  const n = judge.countTokens?.(text) ?? new TextEncoder().encode(text).length;
  return n + EXTRA_TOKENS;
}

/** Greedy output of `prompt` starts with `expected` (the target or an answer, leading space included). */
function startsWithCheck(kind: ImpliedKind, judge: Judge, prompt: string, expected: string): CheckResult {
  const assertion: AssertionSpec = { type: 'starts-with', prompt, value: expected, maxTokens: tokenBudget(judge, expected) };
  return { kind, prompt, expected, ...startsWith({ assertion, judge, inverse: false }) };
}

/** Locality without an answer: the edited model's continuation equals the pre-edit base model's, exactly. */
function unchangedCheck(edited: Judge, base: Judge, prompt: string): CheckResult {
  const before = base.generate(prompt, DEFAULT_MAX_TOKENS);
  const after = edited.generate(prompt, DEFAULT_MAX_TOKENS);
  const pass = after === before;
  const reason = pass ? `output equals the base model's: ${quote(after)}` : `expected the base model's output ${quote(before)}, got ${quote(after)}`;
  return { kind: 'locality', prompt, expected: `= base output ${quote(before)}`, pass, score: pass ? 1 : 0, reason, actual: after };
}

/** An automatic neighbour: an unchanged check, marked (in the result and its reason) as not listed in the edit. */
function neighbourCheck(edited: Judge, base: Judge, n: Neighbour): CheckResult {
  const c = unchangedCheck(edited, base, n.prompt);
  return { ...c, reason: `automatic neighbour (${n.relation} of ${n.subject}): ${c.reason}`, neighbour: { subject: n.subject, relation: n.relation } };
}

function mean(xs: number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Runs every check of one edit: `edited` is the model with the edits applied, `base` the model before any;
 * `neighbours` (pickNeighbours) are locality prompts the edit does not list, judged unchanged like listed ones.
 */
export function checkEdit(spec: EditSpec, edited: Judge, base: Judge, thresholds: Thresholds, neighbours: readonly Neighbour[] = []): EditCheck {
  const checks: CheckResult[] = [startsWithCheck('reliability', edited, spec.prompt, spec.target)];
  for (const p of spec.rephrase ?? []) checks.push(startsWithCheck('generalization', edited, p, spec.target));
  for (const l of spec.locality ?? []) {
    checks.push(l.answer !== undefined ? startsWithCheck('locality', edited, l.prompt, l.answer) : unchangedCheck(edited, base, l.prompt));
  }
  for (const n of neighbours) checks.push(neighbourCheck(edited, base, n));
  for (const p of spec.portability ?? []) checks.push(startsWithCheck('portability', edited, p.prompt, p.answer));
  for (const a of spec.expect ?? []) checks.push({ kind: 'expect', prompt: a.prompt, expected: describeAssertion(a), ...runAssertion(a, edited), ...(a.description === undefined ? {} : { description: a.description }) });

  const limits: Thresholds = { ...thresholds, ...definedOnly(spec.thresholds ?? {}) };
  const kinds = {} as Record<ImpliedKind, KindSummary>;
  for (const kind of IMPLIED_KINDS) {
    const mine = checks.filter((c) => c.kind === kind);
    const score = mine.length === 0 ? null : mine.filter((c) => c.pass).length / mine.length;
    kinds[kind] = { score, threshold: limits[kind], pass: score === null || score + EPS >= limits[kind] };
  }
  const expectsPass = checks.every((c) => c.kind !== 'expect' || c.pass);

  const teacherForced = {
    reliability: edited.tokenAccuracy(spec.prompt, spec.target),
    generalization: mean((spec.rephrase ?? []).map((p) => edited.tokenAccuracy(p, spec.target))),
    portability: mean((spec.portability ?? []).map((p) => edited.tokenAccuracy(p.prompt, p.answer))),
  };
  return {
    checks,
    pass: expectsPass && IMPLIED_KINDS.every((k) => kinds[k].pass),
    metrics: {
      reliability: kinds.reliability.score,
      generalization: kinds.generalization.score,
      locality: kinds.locality.score,
      portability: kinds.portability.score,
      passed: checks.filter((c) => c.pass).length,
      total: checks.length,
      teacherForced,
    },
    kinds,
  };
}

/**
 * About how many prompts checking these edits generates for (edited and base judges together, before
 * caching merges repeats): for sizing the judging threads, never for a result.
 */
export function judgedPrompts(specs: readonly EditSpec[]): number {
  return specs.reduce((n, s) => {
    const listed = s.locality ?? [];
    const answered = listed.filter((l) => l.answer !== undefined).length;
    const neighbours = s.neighbours === false || s.subject === undefined || s.relation === undefined ? 0 : (s.neighbours?.count ?? DEFAULT_NEIGHBOURS);
    const unchanged = listed.length - answered + neighbours; // edited and base each
    return n + 1 + (s.rephrase ?? []).length + answered + 2 * unchanged + (s.portability ?? []).length + (s.expect ?? []).length;
  }, 0);
}

/** Overrides the user left unset must not erase the manifest's defaults. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface BatchCheck {
  /** Per edit id, in the order given. */
  edits: Array<{ id: string; result: EditCheck }>;
  pass: boolean;
  passed: number;
  total: number;
}

/**
 * Marks each failed locality check whose output now starts with the target of an edit of the set,
 * as that edit's own reliability check would judge it (`movedTo`, and in its reason): the fact was
 * moved onto that edit's target.
 */
export function attributeMoves(results: ReadonlyArray<{ id: string; result: EditCheck }>, declared: ReadonlyArray<{ id: string; spec: EditSpec }>): void {
  for (const { id, result } of results) {
    for (const c of result.checks) {
      if (c.pass || c.kind !== 'locality' || c.actual === undefined) continue;
      const by = declared.filter((d) => startsWithWord(c.actual!, d.spec.target)).map((d) => d.id);
      if (by.length === 0) continue;
      c.movedTo = by;
      c.reason += ` — ${by.map((b) => (b === id ? "this edit's target" : `the target of ${b}`)).join(', ')}`;
    }
  }
}

/** Where automatic neighbours come from: the model's knowledge probes, minus what the declared edits change. */
export interface NeighbourSource {
  known: readonly KnownFact[];
  /** Every declared edit (default: the edits being checked). */
  declared?: ReadonlyArray<{ id: string; spec: EditSpec }>;
}

/** Thresholds for prefetching: they decide what passes, never what is generated. */
const ANY_THRESHOLDS: Thresholds = { reliability: 1, generalization: 1, locality: 1, portability: 1 };

/**
 * Computes, batched, everything the checks of `edits` will ask the judges to generate or score
 * (prefetch.ts), so the checks that follow read it from the judges' caches with unchanged results.
 * A no-op for judges that cannot prefetch.
 */
export function prefetchChecks(edits: ReadonlyArray<{ id: string; spec: EditSpec; neighbours: readonly Neighbour[] }>, edited: Judge, base: Judge): void {
  prefetchJudgements([edited, base], (e, b) => {
    for (const x of edits) checkEdit(x.spec, e, b, ANY_THRESHOLDS, x.neighbours);
  });
}

/**
 * Checks a set of edits applied together (batch semantics: all deltas on at once), each against
 * the same edited and base judges, whose caches share the prompts edits have in common; their
 * generations and teacher-forced scores are prefetched in batches first.
 */
export function batchChecks(edits: Array<{ id: string; spec: EditSpec }>, edited: Judge, base: Judge, thresholds: Thresholds, source?: NeighbourSource): BatchCheck {
  const withHoods = edits.map((e) => ({ ...e, neighbours: source === undefined ? [] : pickNeighbours(e, source.known, source.declared ?? edits) }));
  prefetchChecks(withHoods, edited, base);
  const out = withHoods.map((e) => ({ id: e.id, result: checkEdit(e.spec, edited, base, thresholds, e.neighbours) }));
  attributeMoves(out, source?.declared ?? edits);
  return {
    edits: out,
    pass: out.every((e) => e.result.pass),
    passed: out.reduce((a, e) => a + e.result.metrics.passed, 0),
    total: out.reduce((a, e) => a + e.result.metrics.total, 0),
  };
}
