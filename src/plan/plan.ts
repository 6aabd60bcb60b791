/**
 * A plan: what `edit apply` will do to a model, as data. The human view and `--json` are rendered
 * from this same structure (schemas/plan.schema.json describes the JSON).
 */

/** The glyph is the value, as in Terraform's plans.Action. */
export enum Action {
  Create = '+',
  Update = '~',
  Destroy = '-',
  /** The current model already passes the edit's assertions: applying records it without a delta. */
  Satisfied = '=',
  /** Nothing to do (not rendered in the human view). */
  NoOp = ' ',
}

export interface EditChange {
  id: string;
  action: Action;
  /** Why this action, in words ("new edit file", "target changed: \" Lyon\" → \" Nice\""). */
  reason: string;
  /** Edit file, relative to the repository root (absent for destroy). */
  file?: string;
  /** The spec's sha256 as applied (before) and as declared (after). */
  before?: { specSha256: string; prompt?: string; target?: string };
  after?: { specSha256: string; target: string; prompt: string; task: string };
}

export interface DriftEntry {
  file: string;
  message: string;
}

/**
 * What the set's solve will be after this plan (DESIGN §3): any create, update or destroy re-solves
 * the shared layers for the whole set, so every kept edit's weights change with it.
 */
export interface SolveInfo {
  /** The editor ("memit", "ft") and whether it solves the set jointly (ft sums per-edit deltas). */
  method: string;
  joint: boolean;
  /** True when the plan changes the set (a create, update or destroy): the shared layers are solved again. */
  resolves: boolean;
  /** Edits in the set after this plan that change weights, and how many of them are applied ones kept (rows reused). */
  edits: number;
  kept: number;
  layers: string[];
  /** Rows per edited layer after this plan (new edits estimated at one per target token) against the layers' key dimension. */
  rows: number;
  keyDim: number;
  /** Said when the rows come near the key dimension, where a joint solve stops holding every edit. */
  warning: string | null;
  /** Kept applied edits whose rows another editor computed (`apply --refresh` recomputes them); absent when there are none. */
  otherEditor?: { methods: string[]; edits: string[] };
}

export interface Plan {
  formatVersion: '1';
  /** The model folder, relative to the repository root. */
  model: string;
  /** Binding of a saved plan: apply refuses if the state or model.json (manifestSha256, see manifestSha) changed since. */
  state: { serial: number; sha256: string | null; manifestSha256: string };
  /** Edit ids the plan was restricted to (--target); empty = every edit. */
  targets: string[];
  changes: EditChange[];
  /** Files that do not match state.json; apply refuses them unless --refresh. */
  drift: DriftEntry[];
  /**
   * Delta files no applied edit names (relative to the repository root), e.g. left by a killed
   * apply: a warning, not drift (they change no weight); the next apply removes them.
   */
  stray: string[];
  /** The set's solve after this plan; null when the plan was made without the editor's view (old saved plans). */
  solve?: SolveInfo | null;
  /** True when the satisfied check ran (a model was loaded); false for a structural plan. */
  checkedSatisfied: boolean;
  createdAt: string;
}

export interface PlanSummary {
  create: number;
  update: number;
  destroy: number;
  satisfied: number;
  unchanged: number;
  drift: number;
  stray: number;
}

export function summarize(plan: Plan): PlanSummary {
  const count = (a: Action) => plan.changes.filter((c) => c.action === a).length;
  return {
    create: count(Action.Create),
    update: count(Action.Update),
    destroy: count(Action.Destroy),
    satisfied: count(Action.Satisfied),
    unchanged: count(Action.NoOp),
    drift: plan.drift.length,
    stray: plan.stray.length,
  };
}

/** Anything apply would write: creates, updates, destroys, and satisfied edits to record. */
export function hasChanges(plan: Plan): boolean {
  return plan.changes.some((c) => c.action !== Action.NoOp);
}
