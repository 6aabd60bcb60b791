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
  before?: { specSha256: string; target?: string };
  after?: { specSha256: string; target: string; prompt: string; task: string };
}

export interface DriftEntry {
  file: string;
  message: string;
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
