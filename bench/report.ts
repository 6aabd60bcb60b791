/** The results file's shape, the ratios derived from its records, and the printed table. */
import type { GPTConfig } from '../src/model/gpt2.js';
import { PLAN_BUDGET_S } from './edits.js';
import { sig, type BenchRecord, type MemoryRecord, type Stamp } from './measure.js';

export interface Ratio {
  name: string;
  value: number;
  /** The two records divided, as section/metric/backend. */
  of: [string, string];
}

export interface BenchResults extends Stamp {
  format: 'editops-bench/1';
  quick: boolean;
  /** The sections measured (BENCH_SECTIONS narrows them). */
  sections: string[];
  cores: number;
  platform: string;
  tfjs: string;
  /** "ok" or why the backend did not load. */
  backends: Record<string, string>;
  seconds: number;
  records: BenchRecord[];
  ratios: Ratio[];
  memory: MemoryRecord[];
  errors: Array<{ section: string; backend: string; message: string }>;
}

const key = (r: BenchRecord) => `${r.section}/${r.metric}/${r.backend}`;

export function computeRatios(records: BenchRecord[]): Ratio[] {
  const out: Ratio[] = [];
  const find = (section: string, metric: string, backend: string) => records.find((r) => r.section === section && r.metric === metric && r.backend === backend);
  const add = (name: string, a: BenchRecord | undefined, b: BenchRecord | undefined) => {
    if (a !== undefined && b !== undefined && b.value > 0) out.push({ name, value: sig(a.value / b.value), of: [key(a), key(b)] });
  };
  const backends = [...new Set(records.map((r) => r.backend))];
  // every faster backend against the pure-JS cpu backend
  for (const b of backends.filter((x) => x !== 'cpu')) {
    for (const r of records.filter((x) => x.backend === b && (x.section === 'matmul' || x.metric === 'tokens/s'))) {
      add(`${r.section} ${r.metric} ${b}/cpu`, r, find(r.section, r.metric, 'cpu'));
    }
  }
  for (const b of backends) {
    add(`train custom-grad/plain autodiff ${b}`, find('train', 'tokens/s', b), find('train', 'tokens/s plain autodiff', b));
    add(`generate no-cache/KV-cache ms per token ${b}`, find('generate', 'ms/token no cache', b), find('generate', 'ms/token KV cache', b));
    // the same product with and without matMul's transposeB flag (what autodiff's matmul gradients use)
    for (const flag of records.filter((r) => r.backend === b && r.section === 'matmul' && r.detail.transposeB === true)) {
      const same = (r: BenchRecord) => r.detail.m === flag.detail.m && r.detail.k === flag.detail.k && r.detail.n === flag.detail.n;
      const plain = records.find((r) => r.backend === b && r.section === 'matmul' && r.detail.transposeB === false && same(r));
      add(`matmul ${plain?.metric} plain/transposeB-flag ${b}`, plain, flag);
    }
  }
  // data-parallel training: every thread count against one thread
  for (const b of backends) {
    const one = find('train threads', 'tokens/s 1 thread', b);
    for (const r of records.filter((x) => x.backend === b && x.section === 'train threads' && x !== one)) add(`train ${r.metric.slice(9)}/1 thread ${b}`, r, one);
  }
  // edits: how much of the CLI's plan is start-up, and what one edit costs in generated tokens
  const cliPlan = records.find((r) => r.section === 'edits' && r.metric.startsWith('plan --structural'));
  add('edits plan CLI wall/in-process work', cliPlan, records.find((r) => r.section === 'edits' && r.metric.startsWith('plan in-process')));
  add('edits a process loading tfjs, ESM import/require', records.find((r) => r.section === 'edits' && r.metric === 'load tfjs by import'), records.find((r) => r.section === 'edits' && r.metric === 'load tfjs by require'));
  const applies = records.filter((r) => r.section === 'edits' && r.metric.startsWith('apply'));
  for (const a of applies) {
    const gen = find('generate', 'ms/token KV cache', a.backend);
    const perEdit = a.detail.perEditS as number;
    if (gen !== undefined && gen.value > 0) out.push({ name: `edits ${a.metric}: s/edit in generated tokens (KV cache) ${a.backend}`, value: sig((perEdit * 1000) / gen.value), of: [key(a), key(gen)] });
  }
  const [one, many] = [applies[0], applies[applies.length - 1]];
  if (one !== undefined && many !== undefined && one !== many) {
    out.push({ name: `edits apply s/edit, ${one.detail.edits} edit/${many.detail.edits} edits`, value: sig((one.detail.perEditS as number) / (many.detail.perEditS as number)), of: [key(one), key(many)] });
  }
  // joint: how the solve grows with N, what it costs in edits' rows, and one edit into a large set vs alone
  const joint = records.filter((r) => r.section === 'joint');
  for (const b of [...new Set(joint.map((r) => r.backend))]) {
    const rows = find('joint', 'rows s/edit', b);
    const solves = joint.filter((r) => r.backend === b && r.metric.startsWith('solve N=')).sort((x, y) => (x.detail.edits as number) - (y.detail.edits as number));
    for (let i = 1; i < solves.length; i++) add(`joint solve ${solves[i].metric.slice(6)}/${solves[i - 1].metric.slice(6)} ${b}`, solves[i], solves[i - 1]);
    const largest = solves[solves.length - 1];
    if (largest !== undefined) add(`joint solve ${largest.metric.slice(6)} in edits' rows (solve s / rows s per edit) ${b}`, largest, rows);
    const gen = find('generate', 'ms/token KV cache', b);
    if (rows !== undefined && gen !== undefined && gen.value > 0) out.push({ name: `joint rows s/edit in generated tokens (KV cache) ${b}`, value: sig((rows.value * 1000) / gen.value), of: [key(rows), key(gen)] });
    const applies = joint.filter((r) => r.backend === b && r.metric.startsWith('apply 1 '));
    const alone = applies.find((r) => r.detail.cached === 0);
    for (const a of applies.filter((r) => r !== alone)) {
      add(`joint ${a.metric}/into empty (rows of 1 new edit + solve) ${b}`, a, alone);
      // the same on this process's CPU seconds, which other processes on the machine disturb less
      const [ca, cb] = [a.detail.cpuS as number | undefined, alone?.detail.cpuS as number | undefined];
      if (alone !== undefined && ca !== undefined && cb !== undefined && cb > 0) out.push({ name: `joint ${a.metric}/into empty, cpu s ${b}`, value: sig(ca / cb), of: [key(a), key(alone)] });
    }
  }
  // editors: each editor's ms per edit against the joint least-squares editor's
  for (const b of [...new Set(records.filter((r) => r.section === 'editors').map((r) => r.backend))]) {
    const memit = find('editors', 'memit ms/edit', b);
    for (const m of ['ft', 'mend', 'instructedit']) add(`editors ms/edit ${m}/memit ${b}`, find('editors', `${m} ms/edit`, b), memit);
  }
  // judge: batched vs one-at-a-time judging (the checks as verify runs them) and generation alone
  for (const b of [...new Set(records.filter((r) => r.section === 'judge').map((r) => r.backend))]) {
    add(`judge checks prompts/s batched/one at a time ${b}`, find('judge', 'checks batched', b), find('judge', 'checks one at a time', b));
    add(`judge generation prompts/s generateBatch/generate ${b}`, find('judge', 'generateBatch', b), find('judge', 'generate one at a time', b));
    for (const r of records.filter((x) => x.section === 'judge' && x.backend === b && x.metric.includes(' threads'))) {
      const single = find('judge', r.metric.startsWith('checks') ? 'checks batched' : 'generateBatch', b);
      add(`judge ${r.metric}/1 thread ${b}`, r, single);
      add(`judge ${r.metric}/one at a time ${b}`, r, find('judge', r.metric.startsWith('checks') ? 'checks one at a time' : 'generate one at a time', b));
    }
  }
  return out;
}

// ---------------------------------------------------------------- table

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

function fmt(x: number | undefined): string {
  if (x === undefined) return '-';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function renderResults(res: BenchResults): string {
  const out: string[] = [];
  out.push(`editops bench${res.quick ? ' (BENCH_QUICK: tiny sizes, numbers not comparable)' : ''} — ${res.date}`);
  out.push(`node ${res.node}, ${res.cpu}, ${res.cores} cores, tfjs ${res.tfjs}, ${res.seconds.toFixed(0)} s`);
  out.push(`backends: ${Object.entries(res.backends).map(([b, s]) => `${b} ${s}`).join('; ')}`);
  const backends = [...new Set(res.records.map((r) => r.backend))];
  const sections: Array<[string, string]> = [['matmul', 'GFLOP/s'], ['train', 'tokens/s'], ['generate', 'ms/token']];
  for (const [section, unit] of sections) {
    const recs = res.records.filter((r) => r.section === section);
    if (recs.length === 0) continue;
    const metrics = [...new Set(recs.map((r) => r.metric))];
    const cols = backends.filter((b) => recs.some((r) => r.backend === b));
    const rows = [[`${section} (${unit})`, ...cols]];
    for (const m of metrics) rows.push([m, ...cols.map((b) => fmt(recs.find((r) => r.metric === m && r.backend === b)?.value))]);
    out.push('', table(rows));
    if (section === 'train') {
      const d = recs[0].detail;
      out.push(`  batch ${d.batch}, d=${(d.config as GPTConfig).nEmbd}, ${(d.config as GPTConfig).nLayer} layers, median step after warm-up`);
    }
    if (section === 'generate') {
      const d = recs[0].detail;
      const first = recs.map((r) => `${fmt(r.detail.firstTokenMs as number)} ms ${r.metric.replace('ms/token ', '')} on ${r.backend}`).join(', ');
      out.push(`  model: ${d.model}; prompt ${d.promptTokens} tokens, ${d.newTokens} new (greedy), prefill included`);
      out.push(`  first token: ${first}; same tokens with/without cache: ${recs.every((r) => r.detail.sameTokensWithAndWithoutCache === true)}`);
    }
  }
  const edits = res.records.filter((r) => r.section === 'edits');
  if (edits.length > 0) out.push('', renderEdits(edits));
  const joint = res.records.filter((r) => r.section === 'joint');
  if (joint.length > 0) out.push('', renderJoint(joint));
  const editors = res.records.filter((r) => r.section === 'editors');
  if (editors.length > 0) {
    const rows = [['editors', 'backend', 'value', 'unit']];
    for (const r of editors) rows.push([r.metric, r.backend, fmt(r.value), r.unit]);
    out.push('', table(rows), `  model: ${editors[0].detail.model}; ms/edit over one set of ${editors[0].detail.edits ?? '?'} counterfactual edits (rows + solve)`);
  }
  const judge = res.records.filter((r) => r.section === 'judge');
  if (judge.length > 0) {
    const rows = [['judge (prompts/s)', 'backend', 'value', 's']];
    for (const r of judge) rows.push([r.metric, r.backend, fmt(r.value), fmt(r.detail.seconds as number)]);
    const d = judge[0].detail;
    out.push('', table(rows), `  model: ${d.model}; ${d.edits} edits, ${d.checks} checks, ${d.prompts} prompts; batched results identical: ${judge.every((r) => r.detail.identical === true)}`);
  }
  out.push('', table([['ratio', 'value'], ...res.ratios.map((r) => [r.name, `${fmt(r.value)}×`])]));
  out.push(
    '',
    table([
      ['memory after', 'backend', 'maxRSS MB', 'tf MiB', 'tensors', 'leak'],
      ...res.memory.map((m) => [m.after, m.backend, String(m.maxRssMB), (m.tfBytes / 2 ** 20).toFixed(1), String(m.tfTensors), m.leak ? 'LEAK' : 'no']),
    ]),
  );
  for (const m of res.memory.filter((x) => x.leak)) out.push(`  leak in ${m.after} on ${m.backend}: ${m.leakDetail}`);
  for (const e of res.errors) out.push(`ERROR ${e.section} on ${e.backend}: ${e.message}`);
  return out.join('\n');
}

/** The edits section: CLI runs (median wall s, the child's own CPU s), the in-process work, apply's phases. */
function renderEdits(recs: BenchRecord[]): string {
  const rows = [['edits (edit CLI, child process)', 'wall s', 'cpu s', 'RSS MB']];
  const notes = [''];
  const phases: string[] = [];
  for (const r of recs) {
    const d = r.detail;
    let note = '';
    if (r.metric.startsWith('validate')) note = `${fmt(((r.value * 1000) / (d.files as number)) * 1000)} µs/file, median of ${d.reps}`;
    if (r.metric.startsWith('plan --structural')) note = `${d.pass ? 'PASS' : 'FAIL'} (< ${PLAN_BUDGET_S} s), median of ${d.reps}`;
    if (r.metric.startsWith('plan in-process')) {
      note = `loadEdits ${fmt(d.loadEditsS as number)} + conflicts ${fmt(d.findConflictsS as number)} + makePlan ${fmt(d.makePlanS as number)} + JSON ${fmt(d.planJsonS as number)}; warm ${fmt((d.warm as { totalS: number }).totalS)}`;
    }
    if (r.metric.startsWith('apply')) {
      const ft = d.ftOptions as { steps: number } | undefined;
      note = `${d.editsHeld}/${d.edits} hold${d.applied ? '' : ' (apply refused: nothing written)'}; ${fmt(d.perEditS as number)} s/edit; ft ≤${ft?.steps} steps on ${(d.ftLayers as string[] | undefined)?.join(', ')}`;
      const p = d.phasesS as Record<string, number>;
      phases.push(
        `  ${r.metric} on ${r.backend}: start-up ${fmt(p.startupS)} s, load model + check current ${fmt(p.loadAndCheckS)} s, ` +
          `deltas ${fmt(p.deltasS)} s (${fmt(d.deltaPerEditS as number)}/edit), verify ${fmt(p.verifyS)} s (${fmt(d.verifyPerEditS as number)}/edit), write + exit ${fmt(p.writeAndExitS)} s`,
      );
    }
    const name = r.backend === 'none' ? r.metric : `${r.metric} (${r.backend})`;
    const cpu = d.cpuS as number | null | undefined;
    rows.push([name, fmt(r.value), cpu === null || cpu === undefined || !Number.isFinite(cpu) ? '-' : fmt(cpu), d.maxRssMB ? String(d.maxRssMB) : '-']);
    notes.push(note);
  }
  const first = recs[0].detail;
  const loads = recs.flatMap((r) => (Array.isArray(r.detail.loadAvg1m) ? (r.detail.loadAvg1m as number[]) : typeof r.detail.loadAvg1m === 'number' ? [r.detail.loadAvg1m] : []));
  return [
    table(rows).split('\n').map((line, i) => `${line}  ${notes[i]}`.trimEnd()).join('\n'),
    ...phases,
    `  built from ${first.commit ?? '?'}${first.srcDirty ? ' + uncommitted src/ changes' : ''}; apply model: ${first.model} (${first.modelWhy}); load average ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))} during the CLI runs`,
  ].join('\n');
}

/** The joint section: rows per edit, solves per N, one new edit into a set vs alone, the section's peak RSS. */
function renderJoint(recs: BenchRecord[]): string {
  const rows = [['joint (set editor, in process)', 'backend', 'value', 'cpu s']];
  const notes = [''];
  for (const r of recs) {
    const d = r.detail;
    let note = '';
    if (r.metric === 'rows s/edit') {
      const p = d.perEditS as { median: number; min: number; max: number };
      note = `${d.edits} real edits in ${fmt(d.totalS as number)} s (per edit median ${fmt(p.median)}, ${fmt(p.min)}–${fmt(p.max)}), ${fmt(d.rowsPerEdit as number)} rows/edit`;
    }
    if (r.metric.startsWith('solve')) note = `${d.rows} rows, ${d.source}; median of ${d.reps}`;
    if (r.metric.startsWith('apply')) note = `rows ${fmt(d.rowsS as number)} s + solve ${fmt(d.solveS as number)} s; rows computed for ${d.computed} edit, ${d.cached} cached; median of ${d.reps}`;
    if (r.metric === 'peak RSS MB') note = `process maxRSS at the section's end (${d.maxRssAtStartMB} MB at its start)`;
    rows.push([r.metric, r.backend, r.unit === 'MB' ? String(r.value) : `${fmt(r.value)} ${r.unit}`, typeof d.cpuS === 'number' ? fmt(d.cpuS) : '-']);
    notes.push(note);
  }
  const first = recs[0].detail;
  const settings = first.editor as { method: string } | undefined;
  return [
    table(rows).split('\n').map((line, i) => `${line}  ${notes[i]}`.trimEnd()).join('\n'),
    `  model: ${first.model} (${first.modelWhy}); editor ${settings?.method} on ${(first.editedLayers as string[] | undefined)?.join(', ')}`,
  ].join('\n');
}
