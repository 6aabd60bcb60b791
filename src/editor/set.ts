/**
 * A set of edits → its weight change: rows per edit (reused from `cache` when given, else
 * computed), then one solve over all rows in id order. The one path apply and eval share.
 */
import type { Delta } from '../model/weight-change.js';
import type { EditRequest, EditRows, EditorContext, LayerCapacity, PreservedFact, SetEditor } from './editor.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { rowSequence, type RowSequence } from './batch.js';
import { keyDim } from './stats.js';
import { isPreserved, type KnownFact } from '../model/known-facts.js';

export interface SetSolution {
  delta: Delta;
  /** Every edit's rows, computed now or taken from the cache. */
  rows: Map<string, EditRows>;
  /** Ids whose rows were computed now. */
  computed: string[];
  rowsSeconds: number;
  solveSeconds: number;
  capacity: LayerCapacity[];
}

export async function solveSet(ctx: EditorContext, editor: SetEditor, requests: EditRequest[], cache: ReadonlyMap<string, EditRows> = new Map()): Promise<SetSolution> {
  const missing = requests.filter((r) => !cache.has(r.id));
  const t0 = performance.now();
  const fresh = await editor.computeRows(ctx, missing);
  const t1 = performance.now();
  const rows = new Map<string, EditRows>();
  for (const r of requests) rows.set(r.id, cache.get(r.id) ?? fresh.get(r.id)!);
  const ordered = [...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const delta = await editor.solve(ctx, ordered);
  const t2 = performance.now();
  const layers = editor.editedLayers(ctx.layers);
  const keyDims = Object.fromEntries(layers.map((l) => [l, keyDim(ctx.model, l)]));
  return { delta, rows, computed: missing.map((r) => r.id), rowsSeconds: (t1 - t0) / 1000, solveSeconds: (t2 - t1) / 1000, capacity: editor.capacity({ layers: ctx.layers, keyDims }, ordered) };
}

/**
 * The facts a joint solve keeps still: the preserved half of the model's known facts (its probes
 * file; the other half is for automatic neighbour checks), except those
 * the set itself changes — a fact whose subject appears in an edit's prompt, or whose prompt is one
 * of an edit's prompts or rephrasings. Deterministic for a given set (edit order does not matter).
 */
export function preservedFacts(known: readonly KnownFact[], requests: readonly EditRequest[]): PreservedFact[] {
  const edited = new Set(requests.flatMap((r) => [r.prompt, ...r.rephrase]));
  const texts = requests.flatMap((r) => [r.prompt, ...r.rephrase]);
  return known.filter((f) => isPreserved(f) && !edited.has(f.prompt) && !texts.some((t) => t.includes(f.subject))).map((f) => ({ prompt: f.prompt, object: f.object }));
}

/**
 * A kept fact's tokens and the positions whose keys the solve keeps still: an edit's rows with the
 * object as its target (rowSequence) — every position that predicts an object token, so a
 * multi-token answer ("South Korea") keeps its later tokens as well as its first. A fact longer
 * than the context is cut from the front, as an edit's wrapped prompt is.
 */
export function preservedSequences(tokenizer: Tokenizer, nPositions: number, facts: readonly PreservedFact[]): RowSequence[] {
  return facts.map((f) => rowSequence(tokenizer, nPositions, f.prompt, ` ${f.object}`, "the model's known facts (probes)", { keepTail: true }));
}

/** A kept fact as text (prompt and object), for a KL that covers every object token. */
export function preservedText(f: PreservedFact): string {
  return `${f.prompt} ${f.object}`;
}
