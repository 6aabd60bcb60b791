/**
 * models/<name>/state.json: what is applied. The unit of editing is the set (DESIGN §3): effective
 * weights = base + ΔW(set), where ΔW is solved from every applied edit's cached rows (rows/) and
 * stored as one file (deltas/set@<sha12>.safetensors). Both are content-addressed.
 */
import type { FileRef } from '../model/folder.js';

export interface EditMetrics {
  /** Fractions in 0..1, judged on real greedy generations. */
  reliability: number | null;
  generalization: number | null;
  locality: number | null;
  portability: number | null;
  /** Assertions (implied + expect) that passed / ran. */
  passed: number;
  total: number;
}

export interface AppliedEdit {
  /** sha256 of the edit spec's canonical JSON when applied: a different one means "update". */
  specSha256: string;
  /** The prompt and target as applied, so plan can show what an update or destroy replaces (absent in states written before). */
  prompt?: string;
  target?: string;
  /** Editor that computed the rows ("memit", "ft", …); "none" when the base already satisfied the edit. */
  method: string;
  /** rows/<id>@<first 12 hex of the file's sha256>.safetensors (what depends only on the edit and the base), with its row count; null when the model already satisfied the edit ("= already satisfied"). */
  rows: (FileRef & { count: number }) | null;
  metrics: EditMetrics;
  appliedAt: string;
}

/** Rows solved into one edited layer against its key dimension. */
export interface LayerCapacityRecord {
  layer: string;
  rows: number;
  keyDim: number;
}

/** The editor code that solved a set: its method and algorithm revision (absent in older states: revision 1). */
export interface SolverRecord {
  method: string;
  revision: number;
}

export interface ModelState {
  $schema?: string;
  version: 2;
  /** Incremented by every apply; a saved plan records it and the state's sha256. */
  serial: number;
  base: { sha256: string };
  /** The editor and the sha256 of its settings (and of its weights file, for hypernetworks). */
  editor: { method: string; sha256: string | null } | null;
  /** sha256 of the key statistics file the set was solved with (joint editors), else null. */
  stats: { sha256: string } | null;
  /**
   * sha256 of model.json's canonical JSON without provenance, knowledge and $schema (see
   * manifestSha): thresholds, editable layers, editor, stats, tasks, config. A different one is drift.
   */
  manifest: { sha256: string };
  /** The set's solved weight change: deltas/set@<sha12>.safetensors; null when no edit changes a weight. */
  delta: (FileRef & { layers: string[]; capacity: LayerCapacityRecord[]; solver?: SolverRecord }) | null;
  /** The TensorFlow.js backend the last apply judged on ("wasm", "node", …); verify says when it runs on another. */
  backend?: string;
  /** sha256 over the base hash and the set delta's hash. */
  effective: { sha256: string };
  edits: Record<string, AppliedEdit>;
}
