/**
 * The editor interface. The unit of editing is the set (DESIGN §3, §5): effective weights are
 * base + ΔW(set), a pure function of the base, the editor's settings, the key statistics and the
 * applied edit specs. An editor splits its work in two:
 * - `computeRows`: per edit, against the base weights only (cached content-addressed in
 *   rows/<id>@<sha12>.safetensors, so adding one edit to a large set costs one edit);
 * - `solve`: the set's weight change from every edit's rows, recomputed on every apply — one joint
 *   least-squares solve (MEMIT; MALMEN for hypernetwork rows), or a plain sum for the `ft` baseline.
 * Rows must not depend on which other edits are computed alongside (each edit is computed on its
 * own), and `solve` sees the rows in id order, so the same set always gives the same bytes.
 */
import type { GPT } from '../model/gpt2.js';
import type { Tokenizer } from '../model/tokenizer.js';
import type { Delta } from '../model/weight-change.js';
import type { KeyStats } from './stats.js';

export interface EditRequest {
  id: string;
  /** The task name and the instruction text that describes it (InstructEdit wraps prompts with them). */
  task: string;
  instruction: string;
  prompt: string;
  target: string;
  /** Rephrasings: MEND-family editors may use them in meta-training, never at edit time. */
  rephrase: string[];
}

/** A fact to keep: the prompt and the object the base model answers ("Berlin", no leading space). */
export interface PreservedFact {
  prompt: string;
  object: string;
}

export interface EditorContext {
  model: GPT;
  tokenizer: Tokenizer;
  /** Linear layers the manifest allows editing ("h.3.mlp.c_proj"). */
  layers: string[];
  /** Key second moments per edited layer (joint editors; from the model folder's stats file). */
  stats?: KeyStats;
  /**
   * Facts the joint solve keeps still (the model's known facts the set does not edit): their keys at
   * every position that predicts the object (the last prompt token, then each object token but the
   * last — the same rows an edit has), weighted by the editor's settings, and the refinement's KL.
   */
  preserve?: PreservedFact[];
  onProgress?: (done: number, total: number, id: string) => void;
}

/** One cached tensor of an edit's rows. */
export interface RowTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** What an editor keeps per edit: named tensors whose meaning is the editor's own. */
export interface EditRows {
  tensors: Record<string, RowTensor>;
}

/** Rows against the key dimension of one edited layer (a joint solve holds while rows ≲ keyDim). */
export interface LayerCapacity {
  layer: string;
  rows: number;
  keyDim: number;
}

export interface SetEditor {
  /** "ft", "memit", "mend", "instructedit". */
  readonly method: string;
  /** true: the set's change is one joint solve over all rows; false: per-edit changes are summed. */
  readonly joint: boolean;
  /** The parameters' layers this editor changes, given the manifest's editable layers. */
  editedLayers(editable: string[]): string[];
  /** Per edit, against the base weights; each edit is computed on its own. */
  computeRows(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, EditRows>>;
  /** The set's weight change from every applied edit's rows (given in id order). */
  solve(ctx: EditorContext, rows: Array<[string, EditRows]>): Promise<Delta>;
  /** Rows per edited layer for `plan` (joint editors). */
  capacity(ctx: { layers: string[]; keyDims: Record<string, number> }, rows: Array<[string, EditRows]>): LayerCapacity[];
  /** Releases what the editor holds (a hypernetwork's tensors). */
  dispose?(): void;
}
