/** Assertion results as text (terminal and CI logs), JUnit XML and markdown (job summaries, PR comments). */
import type { BatchCheck, EditCheck } from '../assert/check-edit.js';
import type { CheckResult } from '../assert/types.js';
import { cut, excerpt, pct } from '../util/format.js';
import { annotation } from './github.js';


function metricLine(r: EditCheck): string {
  const m = r.metrics;
  return `reliability ${pct(m.reliability)}  generalization ${pct(m.generalization)}  locality ${pct(m.locality)}  portability ${pct(m.portability)}  (${m.passed}/${m.total} checks)`;
}

/** Printed (terminal) or quoted (markdown) under a report in which some edit's rephrasings fell short of its generalization threshold. */
export const GENERALIZATION_HINT =
  'hint: a rephrasing an edit does not reach can be declared as an edit of its own, with the same subject, relation and target ' +
  '(its rows then join the solve; docs/edit-files.md in the editops package, "When a rephrasing does not change")';

/**
 * Whether some edit reached its prompt but not enough of its rephrasings: the case the hint is about
 * (an edit whose prompt fails has a bigger problem than its rephrasings).
 */
function fellShort(check: BatchCheck): boolean {
  return check.edits.some((e) => e.result.kinds.reliability.pass && !e.result.kinds.generalization.pass);
}

/** A check's prompt as shown, with an expect assertion's description after it. */
function checkLabel(c: CheckResult, prompt: string = excerpt(c.prompt)): string {
  return c.description === undefined ? prompt : `${prompt} (${c.description})`;
}

/** One line per edit; failing edits list each failed check with expected vs actual; a hint when generalization fell short. */
export function renderChecks(check: BatchCheck, opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  for (const { id, result } of check.edits) {
    lines.push(`${result.pass ? '✓' : '✗'} ${id}  ${metricLine(result)}`);
    for (const c of result.checks) {
      if (c.pass && !opts.verbose) continue;
      lines.push(`    ${c.pass ? 'ok  ' : 'FAIL'} ${c.kind.padEnd(14)} ${checkLabel(c)}: ${c.reason}`);
    }
    if (!result.pass) {
      for (const [kind, k] of Object.entries(result.kinds)) {
        if (!k.pass) lines.push(`    ${kind}: ${pct(k.score)} passed, threshold ${pct(k.threshold)}`);
      }
    }
  }
  lines.push(...movedLines(check));
  if (fellShort(check)) lines.push('', GENERALIZATION_HINT);
  const failed = check.edits.filter((e) => !e.result.pass).length;
  if (lines.length > 0) lines.push('');
  lines.push(`${check.edits.length - failed} of ${check.edits.length} edits hold; ${check.passed}/${check.total} checks passed.`);
  return lines.join('\n');
}

/** At most this many moved facts are listed (the most shared first). */
const MOVED_SHOWN = 10;

interface MovedFact {
  prompt: string;
  actual: string;
  /** The edits whose target it now gives. */
  by: string[];
  /** The edits with a locality check it failed. */
  failing: string[];
}

/**
 * Set interference in one place: each fact whose locality check failed because its output became the
 * target of an edit of the set, with that edit and the edits whose checks it failed (most shared first).
 */
function movedFacts(check: BatchCheck): MovedFact[] {
  const moved = new Map<string, MovedFact>();
  for (const { id, result } of check.edits) {
    for (const c of result.checks) {
      if (c.movedTo === undefined) continue;
      const key = `${c.prompt}\u0000${c.actual ?? ''}`;
      const m = moved.get(key) ?? { prompt: c.prompt, actual: c.actual ?? '', by: c.movedTo, failing: [] };
      m.failing.push(id);
      moved.set(key, m);
    }
  }
  return [...moved.values()].sort((a, b) => b.failing.length - a.failing.length || (a.prompt < b.prompt ? -1 : 1));
}

function movedText(m: MovedFact): string {
  return `${excerpt(m.prompt)} → ${JSON.stringify(m.actual)}, the target of ${m.by.join(', ')} (a failed locality check of ${m.failing.length === 1 ? m.failing[0] : `${m.failing.length} edits`})`;
}

function movedLines(check: BatchCheck): string[] {
  const list = movedFacts(check);
  if (list.length === 0) return [];
  const out = ['', `Facts the set moved onto its own targets (${list.length}):`, ...list.slice(0, MOVED_SHOWN).map((m) => `  ${movedText(m)}`)];
  if (list.length > MOVED_SHOWN) out.push(`  … and ${list.length - MOVED_SHOWN} more`);
  return out;
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

/** JUnit: a testsuite per edit, a testcase per check. */
export function renderJunit(check: BatchCheck, seconds: number): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const failures = check.total - check.passed;
  out.push(`<testsuites name="editops verify" tests="${check.total}" failures="${failures}" time="${seconds.toFixed(3)}">`);
  for (const { id, result } of check.edits) {
    const f = result.checks.filter((c) => !c.pass).length;
    out.push(`  <testsuite name="${xml(id)}" tests="${result.checks.length}" failures="${f}">`);
    result.checks.forEach((c, i) => {
      const name = `${c.kind} #${i + 1}: ${checkLabel(c, cut(c.prompt))}`;
      if (c.pass) out.push(`    <testcase classname="${xml(id)}" name="${xml(name)}"/>`);
      else out.push(`    <testcase classname="${xml(id)}" name="${xml(name)}">\n      <failure message="${xml(c.reason)}">expected: ${xml(c.expected)}\nactual: ${xml(c.actual ?? '')}</failure>\n    </testcase>`);
    });
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}

export function renderMarkdown(check: BatchCheck, title: string): string {
  const failed = check.edits.filter((e) => !e.result.pass);
  const lines = [`### ${title}`, '', `${failed.length === 0 ? '✅' : '❌'} **${check.edits.length - failed.length} of ${check.edits.length} edits hold** — ${check.passed}/${check.total} checks passed.`, ''];
  if (check.edits.length > 0) {
    lines.push('| | edit | reliability | generalization | locality | portability |', '|---|---|---|---|---|---|');
    for (const { id, result: r } of check.edits) {
      const m = r.metrics;
      lines.push(`| ${r.pass ? '✅' : '❌'} | \`${id}\` | ${pct(m.reliability)} | ${pct(m.generalization)} | ${pct(m.locality)} | ${pct(m.portability)} |`);
    }
    lines.push('');
  }
  for (const { id, result } of failed) {
    lines.push(`<details><summary><code>${id}</code> failed</summary>`, '');
    for (const c of result.checks.filter((c) => !c.pass)) {
      const desc = c.description === undefined ? '' : ` (${c.description.replaceAll('|', '\\|')})`;
      lines.push(`- **${c.kind}** \`${cut(c.prompt).replaceAll('`', "'")}\`${desc}: ${c.reason.replaceAll('|', '\\|')}`);
    }
    lines.push('', '</details>', '');
  }
  const moved = movedFacts(check);
  if (moved.length > 0) {
    lines.push(`**Facts the set moved onto its own targets (${moved.length}):**`, '');
    for (const m of moved.slice(0, MOVED_SHOWN)) lines.push(`- ${movedText(m).replaceAll('|', '\\|')}`);
    if (moved.length > MOVED_SHOWN) lines.push(`- … and ${moved.length - MOVED_SHOWN} more`);
    lines.push('');
  }
  if (fellShort(check)) lines.push(`> ${GENERALIZATION_HINT}`, '');
  return lines.join('\n');
}

/**
 * One GitHub Actions error annotation per edit that does not hold, on its edit file: the kinds below
 * their thresholds and the first failed checks (`file` gives the file's path in the checkout).
 */
export function renderAnnotations(check: BatchCheck, file: (id: string) => string | undefined): string[] {
  return check.edits
    .filter((e) => !e.result.pass)
    .map(({ id, result }) => {
      const kinds = Object.entries(result.kinds).filter(([, k]) => !k.pass).map(([kind, k]) => `${kind} ${pct(k.score)}, threshold ${pct(k.threshold)}`);
      const failed = result.checks.filter((c) => !c.pass);
      const lines = [`${id} does not hold${kinds.length > 0 ? `: ${kinds.join('; ')}` : ''}`, ...failed.slice(0, 3).map((c) => `FAIL ${c.kind} ${checkLabel(c)}: ${c.reason}`)];
      if (failed.length > 3) lines.push(`and ${failed.length - 3} more failed checks`);
      return annotation('error', lines.join('\n'), { file: file(id), title: 'edit verify' });
    });
}
