/**
 * The scale section (opt-in: BENCH_SECTIONS=scale, ~30 min on 2 cores): the real `edit` binary on
 * sizes a team meets, with each child's wall time and peak RSS.
 *
 * On a GPT-2-small-shaped model (124M parameters: vocab 50,257, context 1,024, d 768, 12 layers;
 * seeded random weights written by this section into a temporary folder, never committed; the
 * default model's tokenizer, whose ids are a subset of the embedding's rows):
 *   `edit model import` (peak RSS against the weights file: one copy of the weights, not two),
 *   `edit model stats`, `edit generate`, and `edit apply` of memit edits carrying
 *   `asserts` expect assertions over distinct prompts (100 per edit, the schema's cap), then `edit verify` of them on 1 and on 2 threads.
 * On the default model:
 *   plan, apply and verify of a set of `edits` recent-fact insertions (data/bench.json) with
 *   `assertionsPerEdit` expect assertions each (10,000 at the full size), every threshold 0 (reliability too) so the
 *   mechanics are measured, not the editor's quality (`edit eval` measures that).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../src/model/folder.js';
import { paramShapes, type GPTConfig } from '../src/model/gpt2.js';
import { configToHf } from '../src/model/weights.js';
import type { BackendName } from '../src/tensor/backend.js';
import { packageRoot } from '../src/util/package-root.js';
import { Rng } from '../src/util/random.js';
import { makeRepo, runCli, type CliRun } from './edits.js';
import { memoryNow, sig, stamp, type BenchRecord } from './measure.js';
import type { SectionResult } from './sections.js';

/** Threads a CLI run judged on, from what it says on stderr (unset --workers: the command sizes it). */
function judgingThreads(run: { stderr: string }): number {
  return Number(/judging on (\d+) threads/.exec(run.stderr)?.[1] ?? 1);
}

export interface ScaleSizes {
  /** The large model's shape. */
  config: GPTConfig;
  /** Expect assertions (distinct prompts) on the large model's one edit. */
  asserts: number;
  /** Edits in the default model's set, and expect assertions per edit. */
  edits: number;
  assertionsPerEdit: number;
  modelDir: string;
  /** Which parts run: the large model, the default model's set, or the large model's import and one generate alone. */
  parts: ReadonlyArray<'large' | 'set' | 'import'>;
}

export const GPT2_SMALL: GPTConfig = { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5 };

/** A Hugging Face GPT-2 folder with seeded random weights (N(0, 0.02)-like, LayerNorm gains 1), written tensor by tensor. */
function writeRandomHf(dir: string, config: GPTConfig, tokenizer: string): { params: number; bytes: number } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHf(config, 0), null, 2));
  copyFileSync(tokenizer, join(dir, 'tokenizer.json'));
  const shapes = paramShapes(config);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    const rng = new Rng(124);
    for (const [name, shape] of shapes) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const gain = /ln_\d\.weight|ln_f\.weight/.test(name);
      if (gain) data.fill(1);
      else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.07; // sd ≈ 0.02
      writeSync(fd, new Uint8Array(data.buffer));
    }
  } finally {
    closeSync(fd);
  }
  return { params: offset / 4, bytes: offset };
}

/** One edit with `asserts` expect assertions over distinct prompts, thresholds 0. */
function assertedEdit(subject: string, prompt: string, target: string, asserts: number, seed: number): object {
  const rng = new Rng(seed);
  const words = ['river', 'mountain', 'harbour', 'bridge', 'garden', 'market', 'castle', 'valley'];
  return {
    version: 1,
    task: 'recent',
    subject,
    relation: 'country',
    prompt,
    target,
    neighbours: false,
    thresholds: { reliability: 0, locality: 0, generalization: 0 },
    expect: Array.from({ length: asserts }, (_, i) => ({
      type: 'not-contains', prompt: `Note ${seed}.${i}: the ${rng.pick(words)} of ${subject} is`, value: ' Zzyzx', maxTokens: 4,
    })),
  };
}

function check(run: CliRun, what: string, ok: number[] = [0]): void {
  if (!ok.includes(run.code)) throw new Error(`${what} exited ${run.code}: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}

export async function benchScale(backend: BackendName, sizes: ScaleSizes, log: (line: string) => void): Promise<SectionResult> {
  const bin = join(packageRoot(), 'bin', 'edit.js');
  const tmp = mkdtempSync(join(tmpdir(), 'editops-scale-'));
  const records: BenchRecord[] = [];
  const record = (metric: string, run: CliRun, detail: Record<string, unknown>) => {
    log(`${metric}: ${run.wallS.toFixed(1)} s, peak RSS ${run.maxRssMB} MB (exit ${run.code})`);
    const summary = run.stdout.trim().split('\n').filter((l) => /hold|passed|failed|changes/i.test(l)).slice(-2);
    records.push({ ...stamp(), section: 'scale', metric, backend, value: sig(run.wallS), unit: 's', detail: { wallS: sig(run.wallS), cpuS: run.cpuS === undefined ? null : sig(run.cpuS), maxRssMB: run.maxRssMB, exit: run.code, loadAvg1m: run.loadAvg1m, summary, ...detail } });
  };
  const bench = JSON.parse(readFileSync(join(packageRoot(), 'data', 'bench.json'), 'utf8')) as { records: Array<{ task: string; subject: string; relation: string; prompt: string; target: string }> };
  try {
    if (sizes.parts.includes('large') || sizes.parts.includes('import')) await large(bin, tmp, sizes, bench.records, record, log);
    if (sizes.parts.includes('set')) await set(bin, tmp, sizes, bench.records, record);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const live = memoryNow();
  return { records, memory: { ...stamp(), after: 'scale', backend, ...live, leak: false, leakDetail: 'children only: their peak RSS is in the records' } };
}

type Rec = { task: string; subject: string; relation: string; prompt: string; target: string };
type RecordFn = (metric: string, run: CliRun, detail: Record<string, unknown>) => void;

/** The 124M shape: import, stats, generate, apply of one edit with `asserts` assertions, verify on 1 and 2 threads. */
async function large(bin: string, tmp: string, sizes: ScaleSizes, recs: Rec[], record: RecordFn, log: (line: string) => void): Promise<void> {
  const hf = join(tmp, 'hf');
  const written = writeRandomHf(hf, sizes.config, join(sizes.modelDir, 'tokenizer.json'));
  const fileMB = Math.round(written.bytes / 2 ** 20);
  log(`wrote a random ${(written.params / 1e6).toFixed(1)}M-parameter HF folder (${fileMB} MB of F32)`);
  const repo = join(tmp, 'large');
  mkdirSync(repo, { recursive: true });
  const model = join(repo, 'models', 'default');
  const imported = await runCli(bin, ['model', 'import', hf, '--out', model], repo);
  check(imported, 'edit model import');
  record('import 124M', imported, { params: written.params, weightsFileMB: fileMB, rssOverWeights: sig((imported.maxRssMB ?? 0) / fileMB) });
  rmSync(hf, { recursive: true, force: true });
  const gen = await runCli(bin, ['generate', 'The capital of France is', '--model', model, '--max-tokens', '16', '--no-stop', '--json'], repo);
  check(gen, 'edit generate');
  record('generate 124M 16 tokens', gen, { rssOverWeights: sig((gen.maxRssMB ?? 0) / fileMB) });
  if (!sizes.parts.includes('large')) return; // the import and a load alone

  const text = join(tmp, 'text.txt');
  writeFileSync(text, recs.slice(0, 300).map((r) => `${r.prompt}${r.target}.`).join('\n') + '\n');
  const prompts = join(tmp, 'prompts.txt');
  writeFileSync(prompts, recs.slice(300, 600).map((r) => r.prompt).join('\n') + '\n');
  const stats = await runCli(bin, ['model', 'stats', '--model', model, '--text', text, '--prompts', prompts], repo);
  check(stats, 'edit model stats');
  record('model stats 124M (300 lines, 300 prompts)', stats, {});

  if (spawnSync('git', ['init', '-q'], { cwd: repo }).status !== 0) throw new Error('git init failed');
  mkdirSync(join(repo, 'edits'), { recursive: true });
  // An edit holds at most 100 expect assertions (schema): the assertions go to ⌈asserts/100⌉ edits.
  const names = ['Qarth', 'Volantis', 'Lorath', 'Ibben', 'Tyrosh', 'Pentos', 'Myr', 'Lys', 'Braavos', 'Norvos'];
  const edits = Math.ceil(sizes.asserts / 100);
  for (let i = 0; i < edits; i++) {
    const subject = `${names[i % names.length]}${i >= names.length ? ` ${i}` : ''}`;
    const n = Math.min(100, sizes.asserts - 100 * i);
    writeFileSync(join(repo, 'edits', `e${i}.json`), JSON.stringify(assertedEdit(subject, `The country of ${subject} is`, ' France', n, i + 1), null, 2));
  }
  const apply = await runCli(bin, ['apply', '--auto-approve', '--no-commit'], repo, (t, line) => log(`  apply +${t.toFixed(1)} s  ${line}`));
  check(apply, 'edit apply (124M)', [0, 1]);
  record(`apply 124M ${edits} edit${edits === 1 ? '' : 's'}, ${sizes.asserts} assertions`, apply, { edits, assertions: sizes.asserts, applied: apply.code === 0, workers: judgingThreads(apply) });
  if (apply.code === 0) {
    for (const workers of ['1', '2']) {
      const verify = await runCli(bin, ['verify', '--workers', workers], repo);
      check(verify, `edit verify --workers ${workers} (124M)`, [0, 1]);
      record(`verify 124M ${sizes.asserts} assertions, ${workers} thread${workers === '1' ? '' : 's'}`, verify, { assertions: sizes.asserts, workers: Number(workers) });
    }
  }
  rmSync(repo, { recursive: true, force: true });
}

/** The default model: plan, apply and verify a set of `edits` edits with assertionsPerEdit assertions each. */
async function set(bin: string, tmp: string, sizes: ScaleSizes, recs: Rec[], record: RecordFn): Promise<void> {
  const manifest = await readManifest(sizes.modelDir);
  const repo = makeRepo(join(tmp, 'set'), sizes.modelDir, manifest);
  const dir = join(repo, 'edits', 'recent');
  mkdirSync(dir, { recursive: true });
  const seen = new Set<string>();
  let n = 0;
  for (const r of recs.filter((x) => x.task === 'recent')) {
    if (n === sizes.edits) break;
    if (seen.has(r.subject)) continue;
    seen.add(r.subject);
    const spec = { ...assertedEdit(r.subject, r.prompt, r.target, sizes.assertionsPerEdit, n), relation: r.relation };
    writeFileSync(join(dir, `${String(n).padStart(4, '0')}.json`), JSON.stringify(spec, null, 2));
    n++;
  }
  if (n < sizes.edits) throw new Error(`data/bench.json has ${n} recent records with distinct subjects; ${sizes.edits} wanted`);
  const assertions = n * sizes.assertionsPerEdit;
  const plan = await runCli(bin, ['plan', '--json', '--workers', '1'], repo); // one thread, as recorded before judging threads had a default
  check(plan, 'edit plan', [0, 2]);
  record(`plan ${n} edits`, plan, { edits: n, workers: 1 });
  const apply = await runCli(bin, ['apply', '--auto-approve', '--no-commit'], repo);
  check(apply, `edit apply of ${n} edits`, [0, 1]);
  const held = /(\d+) of (\d+) edits hold/.exec(apply.stdout);
  record(`apply ${n} edits, ${assertions} assertions`, apply, { edits: n, assertions, applied: apply.code === 0, editsHeld: held === null ? null : Number(held[1]), workers: judgingThreads(apply) });
  if (apply.code !== 0) return;
  for (const workers of ['1', '2']) {
    const verify = await runCli(bin, ['verify', '--workers', workers], repo);
    check(verify, `edit verify --workers ${workers}`, [0, 1]);
    record(`verify ${n} edits, ${assertions} assertions, ${workers} thread${workers === '1' ? '' : 's'}`, verify, { edits: n, assertions, workers: Number(workers) });
  }
  const replan = await runCli(bin, ['plan', '--json'], repo);
  check(replan, 'edit plan after apply', [0, 2]);
  record(`plan ${n} applied edits (no changes)`, replan, { edits: n });
}
