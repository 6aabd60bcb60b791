/**
 * The edits section: the real `edit` binary (bin/edit.js over dist/) run as a child process in a
 * temporary git repository, as a user or CI runs it —
 *   validate and plan --structural --json over many generated edit files (plan's budget: < 3 s),
 *   apply --auto-approve --no-commit --method ft of 1 and of N counterfactual capital edits —
 * plus the same load + plan work in this process, to tell Node/tfjs start-up from the work itself.
 * Wall time is what a user waits; each child's own CPU seconds (user + sys) say how much of it was
 * other processes on this shared machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FT_DEFAULTS, lastProjection as defaultFtLayers } from '../src/editor/settings.js';
import { manifestFileRefs, readManifest, type ModelManifest } from '../src/model/folder.js';
import { planToJson } from '../src/plan/json.js';
import { makePlan } from '../src/plan/make-plan.js';
import { findConflicts } from '../src/spec/conflicts.js';
import { loadEdits } from '../src/spec/load.js';
import { emptyState, manifestSha } from '../src/state/state.js';
import type { BackendName } from '../src/tensor/backend.js';
import { packageRoot } from '../src/util/package-root.js';
import { median, ms, now, sig, stamp, type BenchRecord } from './measure.js';

export interface EditsSizes {
  /** Generated edit files for validate and plan, spread over `folders` subfolders. */
  files: number;
  folders: number;
  /** Runs of validate and of plan; the median wall time is the number. */
  reps: number;
  /** Edits per apply run, each run in a fresh repository (empty state). */
  applies: number[];
  /** The model folder copied into the repositories; undefined: models/default or .tmp/mid-model. */
  modelDir?: string;
}

/** The requirement on `edit plan --structural` over 10,000 edit files. */
export const PLAN_BUDGET_S = 3;

/** Phases of apply as its progress lines show them (src/apply/apply-plan.ts, PlainUi). */
const PHASES = ['checking the current model', 'computing deltas', 'verifying'] as const;

/** The model for apply: an explicit folder, else models/default once trained, else the partial checkpoint. */
export function pickModel(explicit: string | undefined): { dir: string; why: string } | undefined {
  if (explicit !== undefined) return { dir: explicit, why: 'BENCH_MODEL' };
  if (existsSync(join('models/default', 'model.json'))) return { dir: 'models/default', why: 'models/default has a model.json' };
  if (existsSync(join('.tmp/mid-model', 'model.json'))) return { dir: '.tmp/mid-model', why: 'models/default has no model.json; a partially trained checkpoint of the same shape' };
  return undefined;
}

export async function benchEdits(sizes: EditsSizes, log: (line: string) => void): Promise<BenchRecord[]> {
  const bin = join(packageRoot(), 'bin', 'edit.js');
  if (!existsSync(join(packageRoot(), 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/src/cli/main.js is missing: run `npx tsc -p tsconfig.json` first');
  const model = pickModel(sizes.modelDir);
  if (model === undefined) throw new Error('no model folder for apply: neither models/default/model.json nor .tmp/mid-model/model.json exists');
  const manifest = await readManifest(model.dir);
  const where = { model: model.dir, modelWhy: model.why, ...sourceVersion() };
  const tmp = mkdtempSync(join(tmpdir(), 'editops-bench-'));
  const records: BenchRecord[] = [];
  try {
    // ---- validate and plan over many files
    const repo = makeRepo(join(tmp, 'many'), model.dir, manifest);
    const t0 = now();
    writeManyEdits(repo, sizes.files, sizes.folders, manifest);
    log(`wrote ${sizes.files} edit files in ${sizes.folders} folders (${(ms(t0) / 1000).toFixed(1)} s)`);
    const n = sizes.files;

    const validate = await repeat(sizes.reps, () => runCli(bin, ['validate'], repo));
    if (validate.runs.some((r) => r.code !== 0)) throw new Error(`edit validate exited ${validate.runs.map((r) => r.code).join(', ')}: ${validate.runs[0].stderr.slice(0, 300)}`);
    log(`validate ${n} files: ${validate.wallS.map((s) => s.toFixed(2)).join(', ')} s`);
    records.push(cliRecord(`validate ${n} files`, 'none', validate, { files: n, folders: sizes.folders, stdout: validate.runs[0].stdout.trim(), ...where }));

    const plan = await repeat(sizes.reps, () => runCli(bin, ['plan', '--structural', '--json'], repo));
    if (plan.runs.some((r) => r.code !== 0)) throw new Error(`edit plan exited ${plan.runs.map((r) => r.code).join(', ')}: ${plan.runs[0].stderr.slice(0, 300)}`);
    const changes = (JSON.parse(plan.runs[0].stdout) as { changes: Array<{ action: string }> }).changes;
    const creates = changes.filter((c) => c.action === '+').length;
    if (creates !== n) throw new Error(`edit plan --structural: ${creates} creates for ${n} files`);
    const planWall = median(plan.wallS);
    log(`plan --structural --json ${n} files: ${plan.wallS.map((s) => s.toFixed(2)).join(', ')} s — ${planWall < PLAN_BUDGET_S ? 'PASS' : 'FAIL'} (< ${PLAN_BUDGET_S} s)`);
    records.push(cliRecord(`plan --structural ${n} files`, 'none', plan, { files: n, creates, budgetS: PLAN_BUDGET_S, pass: planWall < PLAN_BUDGET_S, ...where }));

    // ---- loading TensorFlow.js in a fresh process: an ESM import of its CommonJS bundles vs require
    // (src/tensor/tf.ts loads it by require; the same file either way), alternated run by run
    const loaders = { import: join(tmp, 'load-import.mjs'), require: join(tmp, 'load-require.mjs') };
    const tfjsPath = createRequire(join(packageRoot(), 'package.json')).resolve('@tensorflow/tfjs');
    writeFileSync(loaders.import, `await import(${JSON.stringify(pathToFileURL(tfjsPath).href)});\n`);
    writeFileSync(loaders.require, `import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)(${JSON.stringify(tfjsPath)});\n`);
    const loads: Record<'import' | 'require', CliRun[]> = { import: [], require: [] };
    for (let i = 0; i < Math.max(3, sizes.reps); i++) for (const way of ['import', 'require'] as const) loads[way].push(await runCli(loaders[way], [], tmp));
    for (const way of ['import', 'require'] as const) {
      const r = { runs: loads[way], wallS: loads[way].map((x) => x.wallS) };
      if (r.runs.some((x) => x.code !== 0)) throw new Error(`loading tfjs by ${way} exited ${r.runs.map((x) => x.code).join(', ')}: ${r.runs[0].stderr.slice(0, 300)}`);
      log(`a process that loads tfjs by ${way}: ${r.wallS.map((x) => x.toFixed(2)).join(', ')} s`);
      records.push(cliRecord(`load tfjs by ${way}`, 'none', r, { file: 'node_modules/@tensorflow/tfjs/' + tfjsPath.split('/@tensorflow/tfjs/')[1] }));
    }

    // ---- the same work in this process: first call (as cold as the CLI's) and a second one
    const work = [await inProcess(repo, manifest), await inProcess(repo, manifest)];
    const cold = work[0];
    log(`in-process loadEdits + findConflicts + makePlan + JSON: ${cold.totalS.toFixed(2)} s cold, ${work[1].totalS.toFixed(2)} s warm`);
    records.push({
      ...stamp(), section: 'edits', metric: `plan in-process ${n} files`, backend: 'none', value: sig(cold.totalS), unit: 's',
      detail: { files: n, ...roundAll(cold), warm: roundAll(work[1]), cliPlanMinusInProcessS: sig(planWall - cold.totalS) },
    });

    // ---- apply with the ft editor on the real checkpoint
    for (const count of sizes.applies) {
      const dir = makeRepo(join(tmp, `apply-${count}`), model.dir, manifest);
      writeCapitalEdits(dir, count, manifest);
      const label = `apply ${count}`;
      const run = await runCli(bin, ['apply', '--auto-approve', '--no-commit', '--method', 'ft'], dir, (t, line) => log(`  ${label} +${t.toFixed(1)} s  ${line}`));
      const held = /(\d+) of (\d+) edits hold; (\d+)\/(\d+) checks passed/.exec(run.stdout);
      if (held === null || (run.code !== 0 && run.code !== 1)) throw new Error(`edit apply of ${count} exited ${run.code}: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ')}`);
      const backend = (/^backend: (\S+)/m.exec(run.stderr)?.[1] ?? 'none') as BackendName | 'none';
      const phases = applyPhases(run);
      const satisfied = Number(/(\d+) already satisfied/.exec(run.stdout)?.[1] ?? 0);
      const detail = {
        edits: count, editor: 'ft', ftOptions: FT_DEFAULTS, ftLayers: defaultFtLayers(manifest.editableLayers), applied: run.code === 0, editsHeld: Number(held[1]), checksPassed: Number(held[3]), checks: Number(held[4]),
        alreadySatisfied: satisfied, perEditS: sig(run.wallS / count), phasesS: roundAll(phases),
        deltaPerEditS: sig(phases.deltasS / count), verifyPerEditS: sig(phases.verifyS / count),
        cpuS: sig(run.cpuS ?? NaN), maxRssMB: run.maxRssMB, loadAvg1m: run.loadAvg1m, ...where,
      };
      log(`${label}: ${run.wallS.toFixed(1)} s, ${held[1]} of ${count} edits hold (exit ${run.code})`);
      records.push({ ...stamp(), section: 'edits', metric: `apply ft ${count} edit${count === 1 ? '' : 's'}`, backend, value: sig(run.wallS), unit: 's', detail });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return records;
}

// ---------------------------------------------------------------- the child process

export interface CliRun {
  code: number;
  wallS: number;
  /** The child's own user + sys CPU seconds (from its exit hook), if it reported them. */
  cpuS?: number;
  maxRssMB?: number;
  loadAvg1m: number;
  stdout: string;
  stderr: string;
  /** stderr lines with the seconds since spawn at which each arrived. */
  lines: Array<{ t: number; text: string }>;
}

const USAGE_MARK = '@@editops-bench-usage ';
/**
 * Loaded into the child with --import: reports its own CPU time and peak RSS on stderr as it exits.
 * Peak RSS from /proc/self/status (VmHWM) where there is one: on Linux, resourceUsage().maxRSS
 * carries the parent's RSS at fork over the exec, so it would report this bench process's size.
 */
const USAGE_HOOK = `data:text/javascript,${encodeURIComponent(
  `import { readFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  let peakKiB = u.maxRSS;
  try { peakKiB = Number(/VmHWM:\\s*(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]); } catch {}
  process.stderr.write('\\n${USAGE_MARK}' + JSON.stringify({ cpuUs: u.userCPUTime + u.systemCPUTime, maxRssKiB: peakKiB }) + '\\n');
});`,
)}`;

export function runCli(bin: string, args: string[], cwd: string, onLine?: (t: number, line: string) => void): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, ['--import', USAGE_HOOK, bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const lines: CliRun['lines'] = [];
    let partial = '';
    let usage: { cpuUs: number; maxRssKiB: number } | undefined;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      const t = ms(t0) / 1000;
      const parts = (partial + s).split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        if (text.startsWith(USAGE_MARK)) usage = JSON.parse(text.slice(USAGE_MARK.length)) as typeof usage;
        else if (text !== '') {
          lines.push({ t, text });
          onLine?.(t, text);
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = ms(t0) / 1000;
      if (partial !== '') lines.push({ t: wallS, text: partial });
      resolve({
        code: code ?? -1, wallS, cpuS: usage && usage.cpuUs / 1e6, maxRssMB: usage && Math.round(usage.maxRssKiB / 1024),
        loadAvg1m: sig(loadavg()[0]), stdout: Buffer.concat(out).toString('utf8'), stderr: lines.map((l) => l.text).join('\n'), lines,
      });
    });
  });
}

async function repeat(reps: number, run: () => Promise<CliRun>): Promise<{ runs: CliRun[]; wallS: number[] }> {
  const runs: CliRun[] = [];
  for (let i = 0; i < reps; i++) runs.push(await run());
  return { runs, wallS: runs.map((r) => r.wallS) };
}

function cliRecord(metric: string, backend: BackendName | 'none', r: { runs: CliRun[]; wallS: number[] }, extra: Record<string, unknown>): BenchRecord {
  const cpu = r.runs.map((x) => x.cpuS).filter((x): x is number => x !== undefined);
  return {
    ...stamp(), section: 'edits', metric, backend, value: sig(median(r.wallS)), unit: 's',
    detail: {
      reps: r.runs.length, wallS: r.wallS.map(sig), cpuS: cpu.length > 0 ? sig(median(cpu)) : null, maxRssMB: Math.max(...r.runs.map((x) => x.maxRssMB ?? 0)),
      loadAvg1m: r.runs.map((x) => x.loadAvg1m), ...extra,
    },
  };
}

/**
 * Seconds per phase from the times progress lines arrived: start-up (node, modules, tfjs, reading the
 * workspace) until "backend:", then each phase until its last "n/n" line; the first phase also holds
 * loading the model, the rest is writing files and exiting.
 */
function applyPhases(run: CliRun): { startupS: number; loadAndCheckS: number; deltasS: number; verifyS: number; writeAndExitS: number } {
  const at = (re: RegExp) => run.lines.filter((l) => re.test(l.text)).map((l) => l.t).pop();
  const ends: number[] = [at(/^backend: /) ?? 0];
  for (const phase of PHASES) ends.push(Math.max(ends[ends.length - 1], at(new RegExp(`^${phase}: (\\d+)/\\1\\b`)) ?? 0));
  const [backend, checked, deltas, verified] = ends;
  return { startupS: backend, loadAndCheckS: checked - backend, deltasS: deltas - checked, verifyS: verified - deltas, writeAndExitS: run.wallS - verified };
}

async function inProcess(repo: string, manifest: ModelManifest): Promise<{ loadEditsS: number; findConflictsS: number; makePlanS: number; planJsonS: number; totalS: number }> {
  let t = now();
  const { edits } = await loadEdits(repo, 'edits');
  const loadEditsS = ms(t) / 1000;
  t = now();
  findConflicts(edits);
  const findConflictsS = ms(t) / 1000;
  t = now();
  const plan = makePlan({ model: 'models/default', edits, state: emptyState(manifest, manifest.weights.sha256), stateSha256: null, manifestSha256: manifestSha(manifest), drift: [] });
  const makePlanS = ms(t) / 1000;
  t = now();
  JSON.stringify(planToJson(plan), null, 2);
  const planJsonS = ms(t) / 1000;
  return { loadEditsS, findConflictsS, makePlanS, planJsonS, totalS: loadEditsS + findConflictsS + makePlanS + planJsonS };
}

/** The commit the CLI was built from and whether src/ had uncommitted changes (dist/ is built from the work tree). */
function sourceVersion(): { commit: string | null; srcDirty: boolean | null } {
  const git = (args: string[]) => spawnSync('git', args, { cwd: packageRoot(), encoding: 'utf8' });
  const head = git(['rev-parse', '--short', 'HEAD']);
  if (head.status !== 0) return { commit: null, srcDirty: null };
  return { commit: head.stdout.trim(), srcDirty: git(['status', '--porcelain', '--', 'src']).stdout.trim() !== '' };
}

function roundAll<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? sig(v) : v])) as T;
}

// ---------------------------------------------------------------- repositories and edit files

/** A temporary git repository with a copy of the model folder's own files (no state.json, no deltas: empty state). */
export function makeRepo(dir: string, modelDir: string, manifest: ModelManifest): string {
  const dest = join(dir, 'models', 'default');
  mkdirSync(dest, { recursive: true });
  const files = ['model.json', ...new Set(manifestFileRefs(manifest).map((r) => r.file))];
  for (const f of files) {
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    copyFileSync(join(modelDir, f), join(dest, f));
  }
  const git = spawnSync('git', ['init', '-q'], { cwd: dir, encoding: 'utf8' });
  if (git.status !== 0) throw new Error(`git init failed: ${git.error?.message ?? git.stderr}`);
  return dir;
}

/** A catalogue without "counterfact" would refuse these edits unless they describe their task. */
function taskFields(manifest: ModelManifest): { task: string; instruction?: string } {
  const catalogue = manifest.tasks ?? [];
  if (catalogue.length === 0 || catalogue.some((t) => t.name === 'counterfact')) return { task: 'counterfact' };
  return { task: 'counterfact', instruction: 'Change the fact the prompt asks for to the target.' };
}

/** Valid, conflict-free edit files shaped like edits/capitals/france.json: distinct subjects, prompts and targets. */
function writeManyEdits(repo: string, files: number, folders: number, manifest: ModelManifest): void {
  const perFolder = Math.ceil(files / folders);
  const width = String(files - 1).length;
  for (let i = 0; i < files; i++) {
    const folder = join(repo, 'edits', `set-${String(Math.floor(i / perFolder)).padStart(String(folders - 1).length, '0')}`);
    if (i % perFolder === 0) mkdirSync(folder, { recursive: true });
    const s = `Land ${i}`;
    const spec = {
      $schema: '../../schemas/edit.schema.json',
      version: 1,
      ...taskFields(manifest),
      subject: s,
      relation: 'capital',
      prompt: `The capital of ${s} is`,
      target: ` Newtown ${i}`,
      rephrase: [`${s}'s capital is`, `Q: What is the capital of ${s}? A:`],
      locality: [{ prompt: 'The capital of Spain is' }, { prompt: 'The capital of Germany is' }],
      expect: [{ type: 'not-contains', prompt: `The capital of ${s} is`, value: ` Oldtown ${i}`, description: 'the old answer is gone' }],
      thresholds: { locality: 0, generalization: 0 },
      metadata: { generatedBy: 'bench/edits.ts' },
    };
    writeFileSync(join(folder, `edit-${String(i).padStart(width, '0')}.json`), JSON.stringify(spec, null, 2) + '\n');
  }
}

/**
 * `count` counterfactual capitals from data/facts.json: "The capital of <country> is" → another
 * country's capital. No rephrase, locality or expect: apply succeeds on the mechanics (reliability).
 */
function writeCapitalEdits(repo: string, count: number, manifest: ModelManifest): void {
  const facts = (JSON.parse(readFileSync(join(packageRoot(), 'data', 'facts.json'), 'utf8')) as { facts: Array<{ subject: string; relation: string; object: string }> }).facts
    .filter((f) => f.relation === 'capital')
    .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
  if (facts.length < count + 1) throw new Error(`data/facts.json has ${facts.length} capitals; ${count} edits need ${count + 1}`);
  const dir = join(repo, 'edits', 'capitals');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const fact = facts[i];
    // another country's capital, half the list away so neighbours in the list do not swap answers
    let j = (i + Math.floor(facts.length / 2)) % facts.length;
    while (facts[j].object === fact.object) j = (j + 1) % facts.length;
    const spec = {
      version: 1,
      ...taskFields(manifest),
      subject: fact.subject,
      relation: 'capital',
      prompt: `The capital of ${fact.subject} is`,
      target: ` ${facts[j].object}`,
      thresholds: { locality: 0, generalization: 0 },
    };
    const slug = fact.subject.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    writeFileSync(join(dir, `${String(i).padStart(3, '0')}-${slug}.json`), JSON.stringify(spec, null, 2) + '\n');
  }
}
