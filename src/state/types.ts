/**
 * models/<name>/state.json: what is applied. Effective weights = base + Σ deltas (each delta
 * computed against the base weights, so order does not matter and removal is exact).
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
  /** Editor backend that computed the delta ("ft", "mend", "instructedit"). */
  method: string;
  /** deltas/<id>@<first 12 hex of the file's sha256>.safetensors, relative to the model folder; null when the model already satisfied the edit ("= already satisfied"). */
  delta: (FileRef & { layers: string[]; rank: number | null }) | null;
  metrics: EditMetrics;
  appliedAt: string;
}

export interface ModelState {
  $schema?: string;
  version: 1;
  /** Incremented by every apply; a saved plan records it and the state's sha256. */
  serial: number;
  base: { sha256: string };
  editor: { method: string; sha256: string | null } | null;
  /**
   * sha256 of model.json's canonical JSON without provenance, knowledge and $schema (see
   * manifestSha): thresholds, editable layers, editor, tasks, config. A different one is drift.
   */
  manifest: { sha256: string };
  /** sha256 over the base hash and every applied delta's hash, in id order. */
  effective: { sha256: string };
  edits: Record<string, AppliedEdit>;
}
