/** The human view of a plan, rendered from the same structure `--json` emits. */
import { excerpt } from '../util/format.js';
import { Action, summarize, type Plan } from './plan.js';

export interface PlanRow {
  symbol: string;
  id: string;
  verb: string;
  detail: string;
}

const VERB: Record<Action, string> = {
  [Action.Create]: 'create',
  [Action.Update]: 'update',
  [Action.Destroy]: 'destroy',
  [Action.Satisfied]: 'already satisfied',
  [Action.NoOp]: 'unchanged',
};

export function planRows(plan: Plan): PlanRow[] {
  const rows: PlanRow[] = plan.changes
    .filter((c) => c.action !== Action.NoOp)
    .map((c) => {
      let detail = c.reason;
      if (c.action === Action.Create || c.action === Action.Satisfied) detail = `${excerpt(c.after!.prompt)} → ${excerpt(c.after!.target)} (${c.after!.task})`;
      if (c.action === Action.Update) {
        const same = c.before?.prompt === c.after!.prompt && c.before?.target === c.after!.target;
        const was = c.before?.target !== undefined && c.before.prompt !== undefined && !same ? `, was ${excerpt(c.before.prompt)} → ${excerpt(c.before.target)}` : '';
        detail = `${excerpt(c.after!.prompt)} → ${excerpt(c.after!.target)} (${c.reason}${was})`;
      }
      if (c.action === Action.Destroy && c.before?.target !== undefined && c.before.prompt !== undefined) detail = `${excerpt(c.before.prompt)} → ${excerpt(c.before.target)} (${c.reason}: the set is solved without it)`;
      return { symbol: c.action, id: c.id, verb: VERB[c.action], detail };
    });
  for (const d of plan.drift) rows.push({ symbol: '!', id: d.file, verb: 'drift', detail: d.message });
  for (const f of plan.stray) rows.push({ symbol: '?', id: f, verb: 'stray file', detail: 'removed by the next apply' });
  return rows;
}

export function summaryLine(plan: Plan): string {
  const s = summarize(plan);
  const stray = `${s.stray} stray file${s.stray === 1 ? '' : 's'} to remove`;
  if (s.create + s.update + s.destroy + s.satisfied === 0 && s.drift === 0) {
    const matches =
      plan.targets.length === 0 ? `The model matches the edit files (${s.unchanged} applied)` : s.unchanged === 1 ? 'The --target edit matches its edit file (applied and unchanged)' : `The --target edits match their edit files (${s.unchanged} applied and unchanged)`;
    return `No changes. ${matches}.${s.stray > 0 ? ` ${stray[0].toUpperCase()}${stray.slice(1)}.` : ''}`;
  }
  const parts = [`Plan: ${s.create} to create, ${s.update} to update, ${s.destroy} to destroy`];
  if (s.satisfied > 0) parts.push(`${s.satisfied} already satisfied`);
  if (s.stray > 0) parts.push(stray);
  if (s.drift > 0) parts.push(`${s.drift} drifted (run \`edit apply --refresh\` or restore the files)`);
  return `${parts.join(', ')}.`;
}

/**
 * What to do about a non-empty plan, one line per kind of change. CI prints it, so each says what is
 * true: a destroy is an applied edit whose file was removed, not an edit waiting to be applied.
 */
export function nextSteps(plan: Plan): string[] {
  const s = summarize(plan);
  const steps: string[] = [];
  if (s.create + s.update + s.satisfied > 0) steps.push('Edit files are new or changed since they were applied: run `edit apply` to apply them (it commits the result).');
  const gone = plan.changes.filter((c) => c.action === Action.Destroy).map((c) => c.id);
  if (gone.length > 0) {
    const [what, it] = gone.length === 1 ? [`applied edit ${gone[0]} was`, 'it'] : [`${gone.length} applied edits (${gone.join(', ')}) were`, 'them'];
    steps.push(`The edit file of ${what} removed: run \`edit apply\` to remove ${it} from the model, or restore the file${gone.length === 1 ? '' : 's'} to keep ${it}.`);
  }
  return steps;
}

/** The solve section: what re-solving the set touches and how full the edited layers are. */
export function solveLines(plan: Plan): string[] {
  const s = plan.solve;
  if (s === null || s === undefined) return [];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (s.otherEditor !== undefined) {
    const n = s.otherEditor.edits.length;
    return [
      `Editor ${s.method} cannot reuse the rows of ${plural(n, 'applied edit')}: the ${s.otherEditor.methods.join(' and ')} editor computed them. ` +
        `\`edit apply --refresh\` recomputes ${n === 1 ? 'it' : 'them'} with ${s.method} and re-solves the set.`,
    ];
  }
  if (!s.resolves) return [];
  if (!s.joint) return [`Editor ${s.method}: per-edit changes are summed over ${s.layers.join(', ')} (${plural(s.edits, 'edit')} after this plan).`];
  if (s.edits === 0) return [`Editor ${s.method}: no edit changes weights after this plan; ${s.layers.join(', ')} go back to the base weights.`];
  const kept =
    s.kept === 0
      ? plan.changes.some((c) => c.action === Action.Update)
        ? "every edit's rows computed now"
        : 'all of them new'
      : `${plural(s.kept, 'applied edit')} ${s.kept === 1 ? 'keeps its' : 'keep their'} rows, but ${s.kept === 1 ? 'its weights change' : 'their weights change'} with the solve and every edit is verified again`;
  const lines = [
    `Editor ${s.method} re-solves ${s.layers.join(', ')} for the whole set of ${plural(s.edits, 'edit')}: ${kept}.`,
    `Capacity: ${plural(s.rows, 'row')} per edited layer of ${s.keyDim} (${s.keyDim > 0 ? Math.round((100 * s.rows) / s.keyDim) : 0}%).`,
  ];
  if (s.warning !== null) lines.push(`Warning: ${s.warning}.`);
  return lines;
}

export function renderPlanText(plan: Plan): string {
  const rows = planRows(plan);
  const lines = [`Model ${plan.model} (state serial ${plan.state.serial})${plan.checkedSatisfied ? '' : ' — structural plan: assertions not run'}`];
  if (rows.length > 0) {
    lines.push('');
    const w = Math.max(...rows.map((r) => r.id.length));
    const v = Math.max(...rows.map((r) => r.verb.length));
    for (const r of rows) lines.push(`  ${r.symbol} ${r.id.padEnd(w)}  ${r.verb.padEnd(v)}  ${r.detail}`);
  }
  const solve = solveLines(plan);
  if (solve.length > 0) lines.push('', ...solve);
  lines.push('', summaryLine(plan));
  return lines.join('\n');
}
