/**
 * The joint section: what the set editor (src/editor/set.ts `solveSet`, the model's editor —
 * instructedit on the shipped model) costs, in this process on one backend —
 *   rows: seconds per edit computing a real batch of counterfactual edits' rows (against the base);
 *   solve: seconds per joint solve over N edits' cached rows, N = 1, 100, 1,000;
 *   apply 1 new edit: rows of the new edit + the solve, into a set of 1,000 cached edits vs into an
 *   empty set (issue 7: adding one edit recomputes one edit's rows plus the solve, not 1,000 rows).
 * Rows of 1,000 real edits would take 5–15 min on wasm, so N = 1,000 reuses the real edits' rows under
 * distinct ids: the solve's cost depends only on the row count and shapes, not on what the rows say.
 * Every solve gets the known facts apply would keep still for its set (a hypernetwork editor's
 * refinement runs its KL on them), so the times are apply's.
 */
import { tf } from '../src/tensor/tf.js';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { EditRequest, EditRows, EditorContext, SetEditor } from '../src/editor/editor.js';
import { editorSettings, openEditor } from '../src/editor/registry.js';
import { preservedFacts, solveSet, type SetSolution } from '../src/editor/set.js';
import { withRefineSteps } from '../src/editor/settings.js';
import { readKeyStats } from '../src/editor/stats.js';
import { loadModelFolder } from '../src/model/folder.js';
import type { BackendName } from '../src/tensor/backend.js';
import { packageRoot } from '../src/util/package-root.js';
import { Rng } from '../src/util/random.js';
import { pickModel } from './edits.js';
import { median, memoryNow, sig, stamp, type BenchRecord, type MemoryRecord } from './measure.js';

export interface JointSizes {
  /** Real counterfactual edits whose rows are computed (and timed); their rows feed every solve. */
  edits: number;
  /** Set sizes N to solve; N above `edits` repeats the real edits' rows under distinct ids. */
  solves: number[];
  /** The set the one new edit is applied into (its rows cached, as apply's rows/ folder keeps them). */
  into: number;
  /** Timed repetitions of each solve and of each apply of the new edit; the median is the number. */
  reps: number;
  /** The model folder; undefined: models/default or .tmp/mid-model (bench/edits.ts pickModel). */
  modelDir?: string;
  /** A hypernetwork editor's refinement cut to this many steps (BENCH_QUICK); undefined: the model's own. */
  refineSteps?: number;
}

/** Seed of the edit order. */
const SEED = 5;

export async function benchJoint(backend: BackendName, sizes: JointSizes, log: (line: string) => void): Promise<{ records: BenchRecord[]; memory: MemoryRecord }> {
  const start = { tensors: tf.memory().numTensors, ...memoryNow() };
  let peakRssMB = start.rssMB;
  const sample = () => (peakRssMB = Math.max(peakRssMB, memoryNow().rssMB));
  const model = pickModel(sizes.modelDir);
  if (model === undefined) throw new Error('no model folder: neither models/default/model.json nor .tmp/mid-model/model.json exists');
  const loaded = await loadModelFolder(model.dir);
  const records: BenchRecord[] = [];
  let opened: SetEditor | undefined;
  try {
    const settings = editorSettings(sizes.refineSteps === undefined ? loaded.manifest : withRefineSteps(loaded.manifest, sizes.refineSteps));
    const editor = (opened = await openEditor(model.dir, loaded.manifest, settings));
    if (!editor.joint) throw new Error(`${model.dir}: the model's editor "${settings.method}" does not solve jointly`);
    const stats = await readKeyStats(model.dir, loaded.manifest);
    if (stats === undefined) throw new Error(`${model.dir}/model.json names no key statistics: run \`npm run stats\``);
    const requests = counterfactualEdits(sizes.edits + 1);
    const fresh = requests.pop()!; // the one new edit, never cached
    const perEdit: number[] = [];
    let last = performance.now();
    const ctx: EditorContext = {
      model: loaded.model,
      tokenizer: loaded.tokenizer,
      layers: loaded.manifest.editableLayers,
      stats,
      onProgress: () => {
        const t = performance.now();
        perEdit.push((t - last) / 1000);
        last = t;
      },
    };
    // the facts the solve keeps still, as apply gives them (the model's known facts minus the set's subjects)
    const known = (set: EditRequest[]): EditorContext => ({ ...ctx, preserve: preservedFacts(loaded.knownFacts ?? [], set) });
    const where = { model: model.dir, modelWhy: model.why, editor: settings, editedLayers: editor.editedLayers(ctx.layers), preserved: 'the known facts apply keeps for each set' };
    // with loadAvg1m ≫ 1 per core, other processes had the cores while this was measured
    const record = (metric: string, value: number, unit: string, detail: Record<string, unknown>): BenchRecord =>
      ({ ...stamp(), section: 'joint', metric, backend, value: sig(value), unit, detail: { ...detail, ...where, loadAvg1m: sig(loadavg()[0]) } });

    // warm-up: the first edit's rows compile the backend's kernels; not timed
    const warm = await timed(() => solveSet(known([fresh]), editor, [fresh]));
    log(`warm-up: rows + solve of 1 edit ${warm.s.toFixed(2)} s`);

    // ---- rows of the real batch
    perEdit.length = 0;
    last = performance.now();
    const batch = await timed(() => editor.computeRows(ctx, requests));
    sample();
    const real = batch.value;
    const rowCount = (rows: Iterable<[string, EditRows]>) => [...rows].reduce((a, [, r]) => a + r.tensors.positions.shape[0], 0);
    const rowsPerEdit = rowCount(real) / real.size;
    log(`rows of ${real.size} edits: ${batch.s.toFixed(1)} s (${(batch.s / real.size).toFixed(2)} s/edit, ${rowsPerEdit.toFixed(2)} rows/edit)`);
    records.push(
      record('rows s/edit', batch.s / real.size, 's/edit', {
        edits: real.size,
        totalS: sig(batch.s),
        cpuS: sig(batch.cpuS / real.size),
        perEditS: { median: sig(median(perEdit)), min: sig(Math.min(...perEdit)), max: sig(Math.max(...perEdit)) },
        rowsPerEdit: sig(rowsPerEdit),
        warmupS: sig(warm.s),
        editsFrom: `data/bench.json: counterfact records, one per subject (seed ${SEED})`,
      }),
    );

    // ---- one cache of N edits' rows: the real ones, then copies under distinct ids
    const cacheOf = (n: number): { requests: EditRequest[]; cache: Map<string, EditRows> } => {
      const out = { requests: [] as EditRequest[], cache: new Map<string, EditRows>() };
      for (let i = 0; i < n; i++) {
        const r = requests[i % requests.length];
        const copy = Math.floor(i / requests.length);
        const id = copy === 0 ? r.id : `${r.id}-copy${copy}`;
        out.requests.push({ ...r, id });
        out.cache.set(id, real.get(r.id)!);
      }
      return out;
    };
    const repeated = (n: number) => (n > requests.length ? `rows of ${requests.length} real edits repeated to N` : `rows of ${n} real edit${n === 1 ? '' : 's'}`);

    // ---- solves over cached rows
    for (const n of sizes.solves) {
      const set = cacheOf(n);
      const runs: SetSolution[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < sizes.reps; i++) {
        const r = await timed(() => solveSet(known(set.requests), editor, set.requests, set.cache));
        runs.push(r.value);
        cpu.push(r.cpuS);
        sample();
      }
      const times = runs.map((r) => r.solveSeconds);
      if (runs.some((r) => r.computed.length !== 0)) throw new Error(`solve N=${n}: rows were computed although every edit's rows were cached`);
      log(`solve N=${n}: ${times.map((t) => t.toFixed(2)).join(', ')} s (${rowCount(runs[0].rows)} rows)`);
      records.push(record(`solve N=${n}`, median(times), 's', { edits: n, rows: rowCount(runs[0].rows), source: repeated(n), capacity: runs[0].capacity, reps: sizes.reps, timesS: times.map(sig), cpuS: sig(median(cpu)) }));
    }

    // ---- one new edit: into the cached set vs into an empty set (its rows computed each time)
    const into = cacheOf(sizes.into);
    const apply = async (label: string, set: { requests: EditRequest[]; cache: Map<string, EditRows> }) => {
      const runs: Array<{ s: number; cpuS: number; sol: SetSolution }> = [];
      for (let i = 0; i < sizes.reps; i++) {
        const r = await timed(() => solveSet(known([...set.requests, fresh]), editor, [...set.requests, fresh], set.cache));
        sample();
        if (r.value.computed.length !== 1 || r.value.computed[0] !== fresh.id) throw new Error(`apply 1 ${label}: computed rows of ${r.value.computed.length} edits, expected only the new one`);
        runs.push({ s: r.s, cpuS: r.cpuS, sol: r.value });
      }
      const times = runs.map((r) => r.s);
      log(`apply 1 new edit ${label}: ${times.map((t) => t.toFixed(2)).join(', ')} s`);
      records.push(
        record(`apply 1 ${label}`, median(times), 's', {
          cached: set.requests.length,
          computed: runs[0].sol.computed.length,
          rows: rowCount(runs[0].sol.rows),
          source: set.requests.length === 0 ? 'the new edit alone' : `${repeated(set.requests.length)}, plus 1 new real edit`,
          rowsS: sig(median(runs.map((r) => r.sol.rowsSeconds))),
          solveS: sig(median(runs.map((r) => r.sol.solveSeconds))),
          reps: sizes.reps,
          timesS: times.map(sig),
          cpuS: sig(median(runs.map((r) => r.cpuS))),
        }),
      );
    };
    await apply('into empty', { requests: [], cache: new Map() });
    await apply(`into ${sizes.into}`, into);
    sample();
    records.push(
      record('peak RSS MB', memoryNow().maxRssMB, 'MB', {
        note: "process.resourceUsage().maxRSS at the section's end: the process's high-water mark, so in a full run it also covers earlier sections (maxRssAtStartMB)",
        maxRssAtStartMB: start.maxRssMB,
        rssAtStartMB: start.rssMB,
        sampledPeakRssMB: peakRssMB,
      }),
    );
  } finally {
    opened?.dispose?.();
    loaded.model.dispose();
  }
  const end = memoryNow();
  const left = tf.memory().numTensors - start.tensors;
  return { records, memory: { ...stamp(), after: 'joint', backend, ...end, leak: left !== 0, leakDetail: `${left} tensors left after the model was disposed` } };
}

/** `count` counterfactual edits from data/bench.json (committed; `npm run bench:data`), one per subject, in a seeded order. */
export function counterfactualEdits(count: number): EditRequest[] {
  const file = join(packageRoot(), 'data', 'bench.json');
  if (!existsSync(file)) throw new Error('data/bench.json is missing: run `npm run bench:data`');
  const records = (JSON.parse(readFileSync(file, 'utf8')) as { records: CounterfactRecord[] }).records.filter((r) => r.task === 'counterfact');
  const rng = new Rng(SEED);
  const used = new Set<string>();
  const out: EditRequest[] = [];
  for (const r of rng.shuffle(records)) {
    if (out.length === count) break;
    if (used.has(r.subject)) continue;
    used.add(r.subject);
    out.push({ id: `e${String(out.length).padStart(4, '0')}`, task: 'counterfact', instruction: '', prompt: r.prompt, target: r.target, rephrase: r.rephrase });
  }
  if (out.length < count) throw new Error(`data/bench.json has ${out.length} counterfact subjects; ${count} needed`);
  return out;
}

interface CounterfactRecord {
  task: string;
  subject: string;
  prompt: string;
  target: string;
  rephrase: string[];
}

/** Wall seconds and this process's CPU seconds (user + sys; wasm runs on this thread): cpuS ≪ s means other processes had the cores. */
export async function timed<T>(f: () => Promise<T>): Promise<{ value: T; s: number; cpuS: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const value = await f();
  const c = process.cpuUsage(c0);
  return { value, s: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6 };
}
