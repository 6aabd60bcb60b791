/** Assertion results as text (terminal and CI logs), JUnit XML and markdown (job summaries, PR comments). */
import type { BatchCheck, EditCheck } from '../assert/check-edit.js';
import { cut, excerpt, pct } from '../util/format.js';


function metricLine(r: EditCheck): string {
  const m = r.metrics;
  return `reliability ${pct(m.reliability)}  generalization ${pct(m.generalization)}  locality ${pct(m.locality)}  portability ${pct(m.portability)}  (${m.passed}/${m.total} checks)`;
}

/** One line per edit; failing edits list each failed check with expected vs actual. */
export function renderChecks(check: BatchCheck, opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  for (const { id, result } of check.edits) {
    lines.push(`${result.pass ? '✓' : '✗'} ${id}  ${metricLine(result)}`);
    for (const c of result.checks) {
      if (c.pass && !opts.verbose) continue;
      lines.push(`    ${c.pass ? 'ok  ' : 'FAIL'} ${c.kind.padEnd(14)} ${excerpt(c.prompt)}: ${c.reason}`);
    }
    if (!result.pass) {
      for (const [kind, k] of Object.entries(result.kinds)) {
        if (!k.pass) lines.push(`    ${kind}: ${pct(k.score)} passed, threshold ${pct(k.threshold)}`);
      }
    }
  }
  const failed = check.edits.filter((e) => !e.result.pass).length;
  lines.push('', `${check.edits.length - failed} of ${check.edits.length} edits hold; ${check.passed}/${check.total} checks passed.`);
  return lines.join('\n');
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
      const name = `${c.kind} #${i + 1}: ${cut(c.prompt)}`;
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
    for (const c of result.checks.filter((c) => !c.pass)) lines.push(`- **${c.kind}** \`${cut(c.prompt).replaceAll('`', "'")}\`: ${c.reason.replaceAll('|', '\\|')}`);
    lines.push('', '</details>', '');
  }
  return lines.join('\n');
}
