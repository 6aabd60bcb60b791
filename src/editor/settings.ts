/**
 * Editor settings: the typed entry each editor has in model.json (`editor.settings`), its defaults,
 * and what plan needs to know about it (joint solve or sum, edited layers) — without TensorFlow.js,
 * so a structural plan starts fast. src/editor/registry.ts maps settings to editor backends.
 */
import { EditError } from '../errors.js';
import type { ModelManifest } from '../model/folder.js';

/** FT-L: constrained fine-tuning per edit (the baseline). */
export interface FtSettings {
  method: 'ft';
  steps: number;
  lr: number;
  /** L∞ bound on every weight change. */
  epsilon: number;
  /** Stop early once the target's mean NLL is below this. */
  stopLoss: number;
  /** Matrices to tune; default: the last "mlp.c_proj" among the model's editable layers. */
  layers?: string[];
  /** Fit ΔW = A·B of this rank (stored as factors) instead of a dense ΔW. */
  rank?: number;
}

/** The joint least-squares editor (src/editor/joint.ts). */
export interface MemitSettings {
  method: 'memit';
  /** Edited layers in forward order; default: the MLP output projections among the editable layers. */
  layers?: string[];
  /** Weight of the key statistics against the edits' rows (steep: too low breaks locality, too high reliability). */
  lambda: number;
  /** Adam steps, learning rate and relative norm penalty of the per-edit target residual search. */
  residualSteps: number;
  residualLr: number;
  normPenalty: number;
  /** Weight μ of the preserved prompts' keys (the model's known facts) in the solve: A = λC + μ·KpᵀKp + KᵀK; 0 = off. */
  preserveWeight?: number;
}

export type EditorSettings = FtSettings | MemitSettings;
export type EditorMethod = EditorSettings['method'];

/** Chosen on 12 counterfactual capital edits (scripts/sweep-ft.ts). */
export const FT_DEFAULTS: FtSettings = { method: 'ft', steps: 60, lr: 5e-3, epsilon: 0.03, stopLoss: 0.02 };
/** Calibrated on the default model (scripts/sweep-memit.ts; README, "Benchmark"). */
export const MEMIT_DEFAULTS: MemitSettings = { method: 'memit', lambda: 30, residualSteps: 40, residualLr: 0.3, normPenalty: 0.5, preserveWeight: 1 };

interface EditorInfo<S extends EditorSettings> {
  summary: string;
  defaults: S;
  /** One least-squares solve over every edit's rows (true), or per-edit changes summed (false). */
  joint: boolean;
  /** Needs the model's key statistics (model.json `stats`). */
  needsStats: boolean;
  editedLayers(settings: S, editable: string[]): string[];
}

export const EDITOR_INFO: { [M in EditorMethod]: EditorInfo<Extract<EditorSettings, { method: M }>> } = {
  ft: { summary: 'FT-L baseline: constrained fine-tuning per edit, deltas summed', defaults: FT_DEFAULTS, joint: false, needsStats: false, editedLayers: (s, editable) => s.layers ?? lastProjection(editable) },
  memit: { summary: 'joint least squares over the whole edit set (MEMIT recipe, keys at the last prompt token)', defaults: MEMIT_DEFAULTS, joint: true, needsStats: true, editedLayers: memitLayers },
};

export const EDITOR_METHODS = Object.keys(EDITOR_INFO) as EditorMethod[];

/** The default when model.json names no editor. */
export const DEFAULT_METHOD: EditorMethod = 'memit';

function isMethod(m: string): m is EditorMethod {
  return Object.hasOwn(EDITOR_INFO, m);
}

/** The manifest's editor settings over the method's defaults (`method` overrides the manifest's choice). */
export function editorSettings(manifest: ModelManifest, method?: string): EditorSettings {
  const m = method ?? manifest.editor?.method ?? DEFAULT_METHOD;
  if (!isMethod(m)) throw new EditError(`unknown editor method "${m}"; available: ${EDITOR_METHODS.join(', ')}`);
  const own = manifest.editor?.method === m ? (manifest.editor.settings ?? {}) : {};
  return { ...EDITOR_INFO[m].defaults, ...own, method: m } as EditorSettings;
}

export function editorInfo(settings: EditorSettings): EditorInfo<EditorSettings> {
  return EDITOR_INFO[settings.method] as EditorInfo<EditorSettings>;
}

export function editedLayers(settings: EditorSettings, editable: string[]): string[] {
  return editorInfo(settings).editedLayers(settings, editable);
}

export function needsStats(method: EditorMethod): boolean {
  return EDITOR_INFO[method].needsStats;
}

/** The last MLP output projection among the editable layers (else the last editable layer). */
export function lastProjection(editable: string[]): string[] {
  const proj = editable.filter((l) => l.endsWith('mlp.c_proj'));
  const pick = proj.length > 0 ? proj[proj.length - 1] : editable[editable.length - 1];
  return pick === undefined ? [] : [pick];
}

/** Block index of a layer name "h.<i>.…". */
export function blockOf(layer: string): number {
  const m = /^h\.(\d+)\./.exec(layer);
  if (m === null) throw new EditError(`edited layer "${layer}" is not inside a block ("h.<i>.…")`);
  return Number(m[1]);
}

function memitLayers(s: MemitSettings, editable: string[]): string[] {
  const layers = s.layers ?? editable.filter((l) => l.endsWith('mlp.c_proj'));
  if (layers.length === 0) throw new EditError('the memit editor needs at least one edited layer (an "mlp.c_proj" among editableLayers, or settings.layers)');
  for (const l of layers) if (!editable.includes(l)) throw new EditError(`memit layer "${l}" is not among the model's editableLayers`);
  return [...layers].sort((a, b) => blockOf(a) - blockOf(b));
}
