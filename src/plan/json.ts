/**
 * The plan's JSON form (schemas/plan.schema.json) and its markdown form for job summaries and PR
 * comments; both from the same Plan the terminal view renders.
 */
import { EditError } from '../errors.js';
import { Action, summarize, type Plan, type PlanSummary } from './plan.js';
import { nextSteps, planRows, solveLines, summaryLine } from './render.js';

export interface PlanJson extends Plan {
  $schema?: string;
  summary: PlanSummary;
}

export function planToJson(plan: Plan): PlanJson {
  return { ...plan, summary: summarize(plan) };
}

const ACTIONS = new Set<string>(Object.values(Action));

/** A saved plan file, checked enough to bind it to the current state. */
export function planFromJson(json: unknown, file: string): Plan {
  const fail = (pointer: string, msg: string): never => {
    throw new EditError(msg, { file, pointer });
  };
  if (typeof json !== 'object' || json === null) fail('', 'not a plan: expected a JSON object');
  const p = json as Record<string, unknown>;
  if (p.formatVersion !== '1') fail('/formatVersion', `unsupported plan format ${JSON.stringify(p.formatVersion)} (expected "1")`);
  if (typeof p.model !== 'string') fail('/model', 'missing model folder');
  const st = p.state as Record<string, unknown> | undefined;
  if (typeof st !== 'object' || st === null || typeof st.serial !== 'number') fail('/state', 'missing state binding');
  if (!Array.isArray(p.changes)) fail('/changes', 'missing changes');
  (p.changes as unknown[]).forEach((c, i) => {
    const ch = c as Record<string, unknown>;
    if (typeof ch?.id !== 'string') fail(`/changes/${i}/id`, 'missing edit id');
    if (typeof ch.action !== 'string' || !ACTIONS.has(ch.action)) fail(`/changes/${i}/action`, `unknown action ${JSON.stringify(ch.action)}`);
  });
  if (p.targets !== undefined && (!Array.isArray(p.targets) || p.targets.some((t) => typeof t !== 'string'))) fail('/targets', 'must be a list of edit ids');
  return { ...(p as unknown as Plan), targets: (p.targets as string[] | undefined) ?? [], drift: (p.drift as Plan['drift']) ?? [], stray: (p.stray as string[] | undefined) ?? [] };
}

export function planMarkdown(plan: Plan): string {
  const rows = planRows(plan);
  const lines = [`### editops plan — \`${plan.model}\``, ''];
  if (rows.length > 0) {
    lines.push('| | edit | action | detail |', '|---|---|---|---|');
    for (const r of rows) lines.push(`| \`${r.symbol}\` | \`${r.id}\` | ${r.verb} | ${r.detail.replaceAll('|', '\\|')} |`);
    lines.push('');
  }
  for (const l of solveLines(plan)) lines.push(l, '');
  lines.push(`**${summaryLine(plan)}**`, '');
  for (const step of nextSteps(plan)) lines.push(step, '');
  return lines.join('\n');
}
