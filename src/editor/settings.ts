/**
 * Editor settings: the typed entry each editor has in model.json (`editor.settings`), its defaults,
 * and what plan needs to know about it (joint solve or sum, edited layers) — without TensorFlow.js,
 * so a structural plan starts fast. src/editor/registry.ts maps settings to editor backends.
 */
import { EditError } from '../errors.js';
import type { ModelManifest } from '../model/folder.js';
import { blockIndex } from '../model/config.js';

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
  /**
   * Weight μ of the kept facts' keys (the model's known facts, at every position that predicts their
   * object) in the solve: A = λC + μ·KpᵀKp + KᵀK; 0 = off.
   */
  preserveWeight?: number;
}

/** The meta-trained hypernetwork editors (src/editor/mend/): their network is model.json `editor.file`. */
interface HyperSolveSettings {
  /** Weight λ of the key statistics in the joint solve (as meta-trained). */
  lambda: number;
  /** Weight μ of the known facts' keys (every object-predicting position) in the solve; 0 = off (the meta-trained recipe). */
  preserveWeight?: number;
  /** Adam steps on the network's values through the set's solve (src/editor/mend/refine.ts); 0 = the network alone. */
  refineSteps?: number;
  refineLr?: number;
  /** Weight of KL(base ‖ edited) on the known facts (prompt and object, every token) in the refinement. */
  refineLocality?: number;
  /** At most this many edits per refinement step (a larger set takes turns in chunks; src/editor/mend/refine.ts). */
  refineBatch?: number;
  /** At most this many of the model's known facts (the preserved half of its probes) in the refinement's KL. */
  refineKnown?: number;
  /** At most this many of those known facts in one refinement step's KL (more take turns in chunks, each a share of every relation). */
  refineKnownBatch?: number;
  /**
   * A floor under the key statistics: λ·keyFloor·mean(diag C) on the solve's diagonal
   * (src/editor/mend/solve.ts); 0 = none. Default 0.001: without it a hypernetwork editor's change
   * settles in input neurons the corpus never fires (65× ‖W‖ on the shipped model), at no measured gain.
   */
  keyFloor?: number;
}
export interface MendSettings extends HyperSolveSettings {
  method: 'mend';
}
export interface InstructEditSettings extends HyperSolveSettings {
  method: 'instructedit';
}
export type HyperSettings = MendSettings | InstructEditSettings;

export type EditorSettings = FtSettings | MemitSettings | HyperSettings;
export type EditorMethod = EditorSettings['method'];

/** Chosen on 12 counterfactual capital edits (scripts/sweep-ft.ts). */
export const FT_DEFAULTS: FtSettings = { method: 'ft', steps: 60, lr: 5e-3, epsilon: 0.03, stopLoss: 0.02 };
/** Calibrated on the default model (scripts/sweep-memit.ts; docs/measurements.md, "Model v1: benchmark"). */
export const MEMIT_DEFAULTS: MemitSettings = { method: 'memit', lambda: 30, residualSteps: 40, residualLr: 0.3, normPenalty: 0.5, preserveWeight: 1 };
/** FACTS (hypernetwork editors): ΔW = (30·C + KᵀK)⁻¹KᵀV, no preserved keys. */
export const HYPER_DEFAULTS: Required<HyperSolveSettings> = { lambda: 30, preserveWeight: 0, refineSteps: 0, refineLr: 0.05, refineLocality: 10, refineBatch: 128, refineKnown: 32, refineKnownBatch: 32, keyFloor: 0.001 };
export const MEND_DEFAULTS: MendSettings = { method: 'mend', ...HYPER_DEFAULTS };
export const INSTRUCTEDIT_DEFAULTS: InstructEditSettings = { method: 'instructedit', ...HYPER_DEFAULTS };

interface EditorInfo<S extends EditorSettings> {
  summary: string;
  defaults: S;
  /** One least-squares solve over every edit's rows (true), or per-edit changes summed (false). */
  joint: boolean;
  /** Needs the model's key statistics (model.json `stats`). */
  needsStats: boolean;
  /** Needs a trained network (model.json `editor.file`, made by `edit train-editor`). */
  needsNetwork: boolean;
  /**
   * The editor's algorithm revision: raised whenever the same edits, settings and files would give
   * other rows or another solve. state.json records it with the set's delta; a set solved by an
   * earlier revision is drift that `edit apply --refresh` re-solves (verify still judges it).
   */
  revision: number;
  editedLayers(settings: S, editable: string[]): string[];
}

// revisions: 2 = known facts kept at every object-predicting position, their objects in the refinement's KL;
// 3 (mend, instructedit) = the refinement's known-fact chunks taken with a stride, every relation in every step
export const EDITOR_INFO: { [M in EditorMethod]: EditorInfo<Extract<EditorSettings, { method: M }>> } = {
  ft: { summary: 'FT-L baseline: constrained fine-tuning per edit, deltas summed', defaults: FT_DEFAULTS, revision: 1, joint: false, needsStats: false, needsNetwork: false, editedLayers: (s, editable) => s.layers ?? lastProjection(editable) },
  memit: { summary: 'joint least squares over the whole edit set (MEMIT recipe, keys at the last prompt token)', defaults: MEMIT_DEFAULTS, revision: 2, joint: true, needsStats: true, needsNetwork: false, editedLayers: memitLayers },
  mend: { summary: 'meta-trained hypernetwork (MEND inputs) whose value shifts go into one joint solve (MALMEN)', defaults: MEND_DEFAULTS, revision: 3, joint: true, needsStats: true, needsNetwork: true, editedLayers: projections },
  instructedit: { summary: 'InstructEdit: the hypernetwork reads each edit\'s task instruction; one editor for many tasks, joint solve', defaults: INSTRUCTEDIT_DEFAULTS, revision: 3, joint: true, needsStats: true, needsNetwork: true, editedLayers: projections },
};

export const EDITOR_METHODS = Object.keys(EDITOR_INFO) as EditorMethod[];

/** The default when model.json names no editor. */
export const DEFAULT_METHOD: EditorMethod = 'memit';

/** A method name the registry knows. */
export function isMethod(m: string): m is EditorMethod {
  return Object.hasOwn(EDITOR_INFO, m);
}

/**
 * The manifest's editor settings over the method's defaults (`method` overrides the manifest's choice):
 * the `editor` entry's when it is that method, else the method's shipped network's (`hypernetworks`)
 * or its calibrated entry (`editorSettings`).
 */
export function editorSettings(manifest: ModelManifest, method?: string): EditorSettings {
  const m = method ?? manifest.editor?.method ?? DEFAULT_METHOD;
  if (!isMethod(m)) throw new EditError(`unknown editor method "${m}"; available: ${EDITOR_METHODS.join(', ')}`);
  const shipped = (manifest.hypernetworks as Record<string, { settings?: Record<string, unknown> }> | undefined)?.[m]?.settings ?? (manifest.editorSettings as Record<string, Record<string, unknown>> | undefined)?.[m];
  const own = manifest.editor?.method === m ? (manifest.editor.settings ?? {}) : (shipped ?? {});
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

export function needsNetwork(method: EditorMethod): boolean {
  return EDITOR_INFO[method].needsNetwork;
}

/** The last MLP output projection among the editable layers (else the last editable layer). */
export function lastProjection(editable: string[]): string[] {
  const proj = editable.filter((l) => l.endsWith('mlp.c_proj'));
  const pick = proj.length > 0 ? proj[proj.length - 1] : editable[editable.length - 1];
  return pick === undefined ? [] : [pick];
}

/** Block index of a layer name "h.<i>.…". */
export function blockOf(layer: string): number {
  const block = blockIndex(layer);
  if (block === undefined) throw new EditError(`edited layer "${layer}" is not inside a block ("h.<i>.…")`);
  return block;
}

/** The hypernetwork editors' layers as plan sees them: the MLP output projections (the trained network names its own; HyperEditor checks they are editable). */
function projections(_s: HyperSettings, editable: string[]): string[] {
  return memitLayers({ ...MEMIT_DEFAULTS }, editable);
}

function memitLayers(s: MemitSettings, editable: string[]): string[] {
  const layers = s.layers ?? editable.filter((l) => l.endsWith('mlp.c_proj'));
  if (layers.length === 0) throw new EditError('the memit editor needs at least one edited layer (an "mlp.c_proj" among editableLayers, or settings.layers)');
  for (const l of layers) if (!editable.includes(l)) throw new EditError(`memit layer "${l}" is not among the model's editableLayers`);
  return [...layers].sort((a, b) => blockOf(a) - blockOf(b));
}

/**
 * The manifest with every hypernetwork editor's refinement (its own entry and each shipped
 * network's) cut to `steps` (and, given `known`, its KL to that many known facts): quicker solves
 * for runs that exercise the loop rather than measure the editor (BENCH_QUICK, the CLI tests). The
 * editors' numbers are measured with the shipped settings.
 */
export function withRefineSteps(manifest: ModelManifest, steps: number, known?: number): ModelManifest {
  const cut = (method: string, settings: Record<string, unknown> | undefined) =>
    EDITOR_INFO[method as EditorMethod]?.needsNetwork === true ? { ...settings, refineSteps: steps, ...(known === undefined ? {} : { refineKnown: known }) } : settings;
  const editor = manifest.editor === undefined || manifest.editor === null ? manifest.editor : { ...manifest.editor, settings: cut(manifest.editor.method, manifest.editor.settings as Record<string, unknown> | undefined) };
  const hypernetworks = manifest.hypernetworks === undefined ? undefined : Object.fromEntries(Object.entries(manifest.hypernetworks).map(([m, ref]) => [m, ref === undefined ? ref : { ...ref, settings: cut(m, ref.settings) }]));
  return { ...manifest, editor, ...(hypernetworks === undefined ? {} : { hypernetworks }) } as ModelManifest;
}
