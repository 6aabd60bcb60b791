/** The structural diff of declared edits against applied state. Pure: no fs, no model. */
import type { LoadedEdit } from '../spec/types.js';
import type { ModelState } from '../state/types.js';
import { Action, type DriftEntry, type EditChange, type Plan } from './plan.js';

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
  now?: Date;
}

export function makePlan(input: PlanInput): Plan {
  const { edits, state } = input;
  const only = input.targets !== undefined && input.targets.length > 0 ? new Set(input.targets) : undefined;
  const declared = new Map(edits.map((e) => [e.id, e]));
  const changes: EditChange[] = [];
  for (const e of edits) {
    if (only && !only.has(e.id)) continue;
    const applied = state.edits[e.id];
    const after = { specSha256: e.sha256, target: e.spec.target, prompt: e.spec.prompt, task: e.spec.task };
    if (applied === undefined) {
      changes.push({ id: e.id, action: Action.Create, reason: 'new edit file', file: e.file, after });
    } else if (applied.specSha256 !== e.sha256) {
      changes.push({ id: e.id, action: Action.Update, reason: 'edit file changed since it was applied', file: e.file, before: { specSha256: applied.specSha256 }, after });
    } else {
      changes.push({ id: e.id, action: Action.NoOp, reason: 'applied and unchanged', file: e.file, before: { specSha256: applied.specSha256 }, after });
    }
  }
  for (const [id, applied] of Object.entries(state.edits)) {
    if (declared.has(id) || (only && !only.has(id))) continue;
    changes.push({ id, action: Action.Destroy, reason: 'edit file removed', before: { specSha256: applied.specSha256 } });
  }
  changes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    formatVersion: '1',
    model: input.model,
    state: { serial: state.serial, sha256: input.stateSha256, manifestSha256: input.manifestSha256 },
    targets: input.targets ?? [],
    changes,
    drift: input.drift,
    stray: input.stray ?? [],
    checkedSatisfied: false,
    createdAt: (input.now ?? new Date()).toISOString(),
  };
}

/** Turn creates the current model already passes into "= already satisfied". */
export function markSatisfied(plan: Plan, satisfied: Set<string>): Plan {
  return {
    ...plan,
    checkedSatisfied: true,
    changes: plan.changes.map((c) =>
      c.action === Action.Create && satisfied.has(c.id) ? { ...c, action: Action.Satisfied, reason: 'the current model already passes every assertion of this edit' } : c,
    ),
  };
}
