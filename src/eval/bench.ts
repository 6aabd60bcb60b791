/**
 * The benchmark file (data/bench.json, built by scripts/make-bench.ts): edit records of four tasks
 * mirroring InstructEdit's (counterfact, recent, convsent, zsre), split by subject, with locality
 * neighbours as indices into one shared pool of facts. Reading and picking edit sets are pure.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { EditError } from '../errors.js';
import { sha256 } from '../util/hash.js';
import type { Rng } from '../util/random.js';

export const BENCH_FORMAT = 'editops-bench';
export const BENCH_TASKS = ['counterfact', 'recent', 'convsent', 'zsre'] as const;
export type BenchTask = (typeof BENCH_TASKS)[number];
export const SPLITS = ['train', 'validation', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** One edit: rewrite (or insert) the object of subject's relation. */
export interface BenchRecord {
  id: string;
  task: BenchTask;
  split: Split;
  subject: string;
  relation: string;
  /** The true object before the edit (with its leading space); null when the model never saw the subject (recent). */
  original: string | null;
  /** The new object, with its leading space (" Lyon"). */
  target: string;
  prompt: string;
  /** Rephrasings in trained sentence forms. */
  rephrase: string[];
  /** The relation's held-out form (never in the training corpus): zero or one prompt. */
  heldOutRephrase: string[];
  /** Follow-up prompts whose answer follows from the edit; none built so far. */
  portability: Array<{ prompt: string; answer: string }>;
  /** Candidate locality neighbours: indices into the file's `neighbours`, facts of other subjects. */
  locality: number[];
}

/** One task of the benchmark: its instructions (InstructEdit's "Description" texts) and record counts. */
export interface BenchTaskInfo {
  /** The default instruction (the first of `instructions`). */
  instruction: string;
  /** Instruction texts meta-training may show (older files: absent, meaning [instruction]). */
  instructions?: string[];
  /** An instruction meta-training never shows: the unseen-instruction test. */
  unseenInstruction?: string;
  /** The task InstructEdit's paper holds out of editor training (zsre). */
  heldOut: boolean;
  records: Record<Split, number>;
}

/** A fact of the base model's training data, asked in a trained form (a locality probe). */
export interface Neighbour {
  subject: string;
  relation: string;
  prompt: string;
  answer: string;
}

export interface BenchFile {
  format: typeof BENCH_FORMAT;
  version: 1;
  seed: number;
  /** How records were made: sources, forms, split fractions, the held-out task. */
  notes: Record<string, unknown>;
  /** Per task: which splits its subjects fall in (counts), and whether the task is held out of editor training. */
  tasks: Record<BenchTask, BenchTaskInfo>;
  /** Per relation, what its new object is in words (older files: absent). */
  relations?: Record<string, string>;
  neighbours: Neighbour[];
  records: BenchRecord[];
}

export type InstructionChoice = 'seen' | 'unseen' | 'relation';

/**
 * The instruction a benchmark record's edit carries under `choice`: its task's default ('seen'),
 * the one meta-training never shows ('unseen'), or the default followed by what the record's
 * relation's new object is ('relation').
 */
export function instructionOf(bench: BenchFile, record: Pick<BenchRecord, 'task' | 'relation'>, choice: InstructionChoice = 'seen'): string {
  const t = bench.tasks[record.task];
  if (choice === 'unseen') {
    if (t.unseenInstruction === undefined) throw new EditError(`the benchmark has no unseen instruction for task ${record.task}: rebuild it with \`npm run bench:data\``);
    return t.unseenInstruction;
  }
  return choice === 'relation' ? withRelation(bench, t.instruction, record.relation) : t.instruction;
}

/** `instruction` followed by the benchmark's description of `relation`'s new object. */
export function withRelation(bench: BenchFile, instruction: string, relation: string): string {
  const text = bench.relations?.[relation];
  if (text === undefined) throw new EditError(`the benchmark describes no relation "${relation}": rebuild it with \`npm run bench:data\``);
  return `${instruction} ${text}`;
}

/** Checks the shape the eval relies on; a malformed file is the user's (or a hand edit's) mistake. */
export function parseBench(json: unknown, file: string): BenchFile {
  const fail = (m: string): never => {
    throw new EditError(m, { file });
  };
  const b = json as Partial<BenchFile>;
  if (typeof b !== 'object' || b === null || b.format !== BENCH_FORMAT) fail(`not an editops benchmark file (format is not "${BENCH_FORMAT}")`);
  if (b.version !== 1) fail(`unsupported benchmark version ${JSON.stringify(b.version)} (expected 1)`);
  if (!Array.isArray(b.records) || !Array.isArray(b.neighbours)) fail('benchmark file needs "records" and "neighbours" arrays');
  if (b.relations !== undefined && (typeof b.relations !== 'object' || b.relations === null || Array.isArray(b.relations) || Object.values(b.relations).some((t) => typeof t !== 'string' || t === ''))) fail('"relations" must map each relation to a non-empty description');
  const n = b.neighbours!.length;
  b.records!.forEach((r, i) => {
    const where = `records[${i}]`;
    if (!BENCH_TASKS.includes(r.task) || !SPLITS.includes(r.split)) fail(`${where}: unknown task "${r.task}" or split "${r.split}"`);
    if (typeof r.prompt !== 'string' || typeof r.target !== 'string' || r.target === '') fail(`${where}: needs a prompt and a non-empty target`);
    if (!Array.isArray(r.rephrase) || !Array.isArray(r.heldOutRephrase) || !Array.isArray(r.portability)) fail(`${where}: rephrase, heldOutRephrase and portability must be arrays`);
    if (!Array.isArray(r.locality) || r.locality.some((k) => !Number.isInteger(k) || k < 0 || k >= n)) fail(`${where}: locality must be indices into neighbours (0..${n - 1})`);
  });
  return b as BenchFile;
}

/** The benchmark file at `path` (messages name it relative to `cwd`), with its sha256. */
export async function readBench(path: string, cwd: string): Promise<{ bench: BenchFile; sha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new EditError(`cannot read the benchmark: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: relative(cwd, path) || path, hint: 'name one with --bench (the editops repository builds data/bench.json with `npm run bench:data`)' });
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new EditError(`not valid JSON: ${(err as Error).message}`, { file: path });
  }
  return { bench: parseBench(json, path), sha256: sha256(bytes) };
}

/**
 * `size` records of one task and split, seeded: distinct subjects first (one record per subject in a
 * shuffled subject order), then further relations of the same subjects while distinct subjects run
 * out — never the same subject and relation twice (two targets for one fact would be a conflict).
 */
export function pickRecords(records: readonly BenchRecord[], size: number, rng: Rng): BenchRecord[] {
  const bySubject = new Map<string, BenchRecord[]>();
  for (const r of records) {
    if (!bySubject.has(r.subject)) bySubject.set(r.subject, []);
    bySubject.get(r.subject)!.push(r);
  }
  const subjects = rng.shuffle([...bySubject.keys()].sort());
  const queues = subjects.map((s) => rng.shuffle([...bySubject.get(s)!]));
  const seen = new Set<string>();
  const out: BenchRecord[] = [];
  for (let round = 0; out.length < size; round++) {
    let added = 0;
    for (const q of queues) {
      const r = q[round];
      if (r === undefined || out.length >= size) continue;
      const key = `${r.subject}\u0000${r.relation}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(r);
      added++;
    }
    if (added === 0) break;
  }
  return out;
}

/** How many records a set can hold: distinct (subject, relation) pairs. */
export function capacityOf(records: readonly BenchRecord[]): number {
  return new Set(records.map((r) => `${r.subject}\u0000${r.relation}`)).size;
}

/**
 * A record's locality prompts inside an edit set: its candidates whose subject no edit of the set
 * touches (an edited subject's facts are not "unrelated"), the first `k` of them.
 */
export function neighboursOf(record: BenchRecord, pool: readonly Neighbour[], editedSubjects: ReadonlySet<string>, k: number, skip: (n: Neighbour) => boolean = () => false): Neighbour[] {
  return record.locality.map((i) => pool[i]).filter((n) => !editedSubjects.has(n.subject) && !skip(n)).slice(0, k);
}
