/**
 * The eval report as versioned JSON, and the text table rendered from that same structure
 * (as Terraform renders its plan from the JSON `show -json` emits).
 */
import { pct } from '../util/format.js';
import type { EvalOptions, EvalRow, Scores } from './run-eval.js';

export const EVAL_FORMAT_VERSION = 1;

export interface EvalReport {
  formatVersion: typeof EVAL_FORMAT_VERSION;
  /** The tfjs backend the numbers were measured on (seconds depend on it). */
  backend: string;
  model: string;
  /** The command line that produced the report. */
  command: string;
  bench: { file: string; sha256: string; seed: number };
  options: EvalOptions;
  /** Each editor's settings as used. */
  editors: Record<string, unknown>;
  results: EvalRow[];
}

const KINDS: Array<[keyof Scores, string]> = [
  ['reliability', 'Rel'],
  ['generalization', 'Gen'],
  ['heldOut', 'Held'],
  ['locality', 'Loc'],
  ['portability', 'Port'],
];

function seconds(x: number): string {
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

/** One line per editor × task × size: generation scores | teacher-forced scores | seconds. */
export function renderReport(report: EvalReport): string {
  const head = ['editor', 'task', 'N', 'sets', ...KINDS.map(([, k]) => k), '|', ...KINDS.map(([, k]) => `tf ${k}`), '|', 's/edit', 's/solve'];
  const body = report.results.map((r) => [
    `${r.editor}${r.instruction === 'seen' ? '' : ` (${r.instruction} instruction)`}${r.view === 'wrapped' ? ' (wrapped)' : ''}`,
    r.task,
    String(r.size),
    String(r.sets),
    ...KINDS.map(([k]) => pct(r.generation[k])),
    '|',
    ...KINDS.map(([k]) => pct(r.teacherForced[k])),
    '|',
    seconds(r.seconds.rowsPerEdit),
    seconds(r.seconds.solvePerSet),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [
    `edit eval on ${report.model} (${report.backend}), split ${report.options.splits.join('+')}, seed ${report.options.seed}`,
    'Rel/Gen/Held/Loc/Port: real greedy generation, judged as apply judges (target as a whole word; neighbours unchanged vs base).',
    'tf …: EasyEdit teacher-forced token accuracy (Loc: argmax agreement with the base model). Held = the held-out form. s/edit = rows per edit, s/solve = per set.',
    '',
    line(head),
    ...body.map(line),
  ].join('\n');
}
