/** The structural diff of declared edits against applied state. Pure: no fs, no model. */
import type { LoadedEdit } from '../spec/types.js';
import type { AppliedEdit, ModelState } from '../state/types.js';
import { Action, type DriftEntry, type EditChange, type Plan, type SolveInfo } from './plan.js';

export interface PlanInput {
  model: string;
  edits: LoadedEdit[];
  state: ModelState;
  stateSha256: string | null;
  /** manifestSha of the model.json the plan is made against. */
  manifestSha256: string;
  drift: DriftEntry[];
  /** Delta files no applied edit names; none when not given. */
  stray?: string[];
  /** Edit ids to restrict the plan to (--target); empty = all. */
  targets?: string[];
  /**
   * New edits the current model already passes (apply-plan checks them on the model): planned as
   * "= already satisfied", recorded without rows, so they neither re-solve the set nor count in its
   * capacity. Absent: a structural plan, creates not checked.
   */
  satisfied?: ReadonlySet<string>;
  /** Applied edits a refresh took out of `state` to recompute them: updates (or destroys, without a file), not creates. */
  recomputed?: ReadonlyMap<string, Recomputed>;
  now?: Date;
  /** The editor's view of the set, for the solve section; none: no solve section. */
  editor?: {
    method: string;
    joint: boolean;
    layers: string[];
    keyDim: number;
    /** Estimated rows of an edit about to be computed. */
    estimateRows(edit: LoadedEdit): number;
  };
}

/** An applied edit `apply --refresh` recomputes: why, and what state.json held for it. */
export interface Recomputed {
  reason: string;
  applied: AppliedEdit;
}

/** Warn from this share of the key dimension on (FACTS: 435 rows of 512 no longer held every edit). */
export const CAPACITY_WARNING = 0.6;

export function makePlan(input: PlanInput): Plan {
  const { edits, state } = input;
  const only = input.targets !== undefined && input.targets.length > 0 ? new Set(input.targets) : undefined;
  const declared = new Map(edits.map((e) => [e.id, e]));
  const changes: EditChange[] = [];
  for (const e of edits) {
    if (only && !only.has(e.id)) continue;
    const applied = state.edits[e.id];
    const after = { specSha256: e.sha256, target: e.spec.target, prompt: e.spec.prompt, task: e.spec.task };
    const redo = input.recomputed?.get(e.id);
    if (applied === undefined && redo !== undefined && redo.applied.rows === null && input.satisfied?.has(e.id) === true) {
      // recorded without rows because the model passed it: still passed, still no rows
      changes.push({ id: e.id, action: Action.Satisfied, reason: `the current model already passes every assertion of this edit (rechecked: ${redo.reason})`, file: e.file, before: beforeOf(redo.applied), after });
    } else if (applied === undefined && redo !== undefined) {
      const edited = redo.applied.specSha256 !== e.sha256 ? 'edit file changed since it was applied; ' : '';
      changes.push({ id: e.id, action: Action.Update, reason: `${edited}recomputed: ${redo.reason}`, file: e.file, before: beforeOf(redo.applied), after });
    } else if (applied === undefined) {
      changes.push(
        input.satisfied?.has(e.id) === true
          ? { id: e.id, action: Action.Satisfied, reason: 'the current model already passes every assertion of this edit', file: e.file, after }
          : { id: e.id, action: Action.Create, reason: 'new edit file', file: e.file, after },
      );
    } else if (applied.specSha256 !== e.sha256) {
      changes.push({ id: e.id, action: Action.Update, reason: 'edit file changed since it was applied', file: e.file, before: beforeOf(applied), after });
    } else {
      changes.push({ id: e.id, action: Action.NoOp, reason: 'applied and unchanged', file: e.file, before: { specSha256: applied.specSha256 }, after });
    }
  }
  const appliedBefore = new Map([...(input.recomputed ?? new Map<string, Recomputed>())].map(([id, r]) => [id, r.applied] as const));
  for (const [id, applied] of Object.entries(state.edits)) appliedBefore.set(id, applied);
  for (const [id, applied] of appliedBefore) {
    if (declared.has(id) || (only && !only.has(id))) continue;
    changes.push({ id, action: Action.Destroy, reason: 'edit file removed', before: beforeOf(applied) });
  }
  changes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    solve: input.editor === undefined ? null : solveInfo(input.editor, changes, state, declared),
    formatVersion: '1',
    model: input.model,
    state: { serial: state.serial, sha256: input.stateSha256, manifestSha256: input.manifestSha256 },
    targets: input.targets ?? [],
    changes,
    drift: input.drift,
    stray: input.stray ?? [],
    checkedSatisfied: input.satisfied !== undefined,
    createdAt: (input.now ?? new Date()).toISOString(),
  };
}

function solveInfo(editor: NonNullable<PlanInput['editor']>, changes: EditChange[], state: ModelState, declared: Map<string, LoadedEdit>): SolveInfo {
  const leaving = new Set(changes.filter((c) => c.action === Action.Destroy || c.action === Action.Update).map((c) => c.id));
  const kept = Object.entries(state.edits).filter(([id, e]) => !leaving.has(id) && e.rows !== null);
  const coming = changes.filter((c) => c.action === Action.Create || c.action === Action.Update).map((c) => declared.get(c.id)!);
  const rows = kept.reduce((a, [, e]) => a + (e.rows?.count ?? 0), 0) + coming.reduce((a, e) => a + editor.estimateRows(e), 0);
  const share = editor.keyDim > 0 ? rows / editor.keyDim : 0;
  const warning = !editor.joint || share < CAPACITY_WARNING ? null : `${rows} rows per edited layer against a key dimension of ${editor.keyDim} (${Math.round(100 * share)}%): ${share >= 1 ? 'past' : 'near'} the capacity of a joint solve on this model; expect edits or locality to fail (edit more layers or use a wider model)`;
  const other = kept.filter(([, e]) => e.method !== editor.method);
  return {
    method: editor.method,
    joint: editor.joint,
    resolves: changes.some((c) => c.action === Action.Create || c.action === Action.Update || c.action === Action.Destroy),
    edits: kept.length + coming.length,
    kept: kept.length,
    layers: editor.layers,
    rows,
    keyDim: editor.keyDim,
    warning,
    ...(other.length === 0 ? {} : { otherEditor: { methods: [...new Set(other.map(([, e]) => e.method))].sort(), edits: other.map(([id]) => id).sort() } }),
  };
}

/** What an applied edit was, as state.json recorded it. */
function beforeOf(applied: ModelState['edits'][string]): NonNullable<EditChange['before']> {
  return { specSha256: applied.specSha256, ...(applied.prompt !== undefined ? { prompt: applied.prompt } : {}), ...(applied.target !== undefined ? { target: applied.target } : {}) };
}
