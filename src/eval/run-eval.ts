/**
 * `edit eval`: for each editor × task × batch size, solve `size` benchmark records as ONE set
 * (solveSet, the path apply uses), then measure the edited model against the base model, both as
 * EasyEdit does and on real greedy generation (metrics.ts). Batch size 1 averages several
 * single-edit sets. The same seeded records go to every editor.
 */
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import { ModelJudge } from '../assert/judge.js';
import type { GeneratePool } from '../model/pool.js';
import { prefetchJudgements } from '../assert/prefetch.js';
import type { Judge } from '../assert/types.js';
import type { EditRequest, EditorContext, LayerCapacity } from '../editor/editor.js';
import { EDITORS, editorSettings, needsStats, openEditor, type EditorMethod, type EditorSettings } from '../editor/registry.js';
import { wrapPrompt } from '../editor/mend/editor.js';
import { preservedFacts, solveSet } from '../editor/set.js';
import { isPreserved } from '../model/known-facts.js';
import type { KeyStats } from '../editor/stats.js';
import type { LoadedModel } from '../model/folder.js';
import type { Tokenizer } from '../model/tokenizer.js';
import type { Deltas } from '../model/gpt2.js';
import { toDeltaTensors } from '../model/delta-tensors.js';
import { Rng } from '../util/random.js';
import { capacityOf, instructionOf, neighboursOf, pickRecords, type BenchFile, type BenchRecord, type BenchTask, type InstructionChoice, type Neighbour, type Split } from './bench.js';
import { agreement, continuationUnchanged, generationHolds, mean, tokenAccuracy } from './metrics.js';
import { teacherForcedTokens, type ForcedTokens } from './teacher-forced.js';

export interface EvalOptions {
  editors: EditorMethod[];
  tasks: BenchTask[];
  /** Only records of these relations (absent: every relation). */
  relations?: string[];
  sizes: number[];
  splits: Split[];
  seed: number;
  /** Single-edit sets averaged for batch size 1. */
  singles: number;
  /** Locality neighbours per record (the first ones of its candidates whose subject the set leaves alone). */
  neighbours: number;
  /** The instruction each edit carries: its task's default ('seen') or the one meta-training never shows ('unseen'). */
  instruction?: InstructionChoice;
  /** Prompts measured as typed, or wrapped in InstructEdit's template (the paper's view). */
  view?: PromptView;
  /** Hypernetwork files per method instead of model.json's (`--network`). */
  networks?: Partial<Record<EditorMethod, string>>;
  /** Numeric settings over every editor's own (`--settings lambda=20,preserveWeight=1`); a key an editor lacks is refused. */
  overrides?: Record<string, number>;
}

/** The settings an eval runs an editor with: model.json's (or the method's defaults) with the overrides on top. */
export function evalSettings(manifest: LoadedModel['manifest'], method: EditorMethod, overrides: Record<string, number> = {}): EditorSettings {
  const base = editorSettings(manifest, method);
  const known = new Set([...Object.keys(EDITORS[method].defaults), ...Object.keys(base)]);
  for (const k of Object.keys(overrides)) {
    if (!known.has(k) || k === 'method') throw new EditError(`--settings ${k}: the ${method} editor has no numeric setting "${k}" (it has ${[...known].filter((x) => x !== 'method').join(', ')})`);
  }
  return { ...base, ...overrides } as EditorSettings;
}

export type PromptView = 'typed' | 'wrapped';

/**
 * The record with its prompts wrapped in InstructEdit's template (neighbours stay as typed). A
 * wrapped prompt longer than the context leaves room for the target and a few generated tokens by
 * dropping the template's front (the prompt itself is always kept).
 */
function wrapped(r: BenchRecord, instruction: string, tokenizer: Tokenizer, nPositions: number): BenchRecord {
  const room = nPositions - tokenizer.encode(r.target).length - 4;
  const w = (p: string) => {
    const text = wrapPrompt(r.task, instruction, p);
    const ids = tokenizer.encode(text);
    return ids.length <= room ? text : tokenizer.decode(ids.slice(ids.length - Math.max(room, tokenizer.encode(p).length)));
  };
  return { ...r, prompt: w(r.prompt), rephrase: r.rephrase.map(w), heldOutRephrase: r.heldOutRephrase.map(w), portability: r.portability.map((p) => ({ ...p, prompt: w(p.prompt) })) };
}

/** Means over the set's records (each record's own mean first, as EasyEdit averages); null: nothing to measure. */
export interface Scores {
  reliability: number | null;
  /** Trained-form rephrasings. */
  generalization: number | null;
  /** The relation's held-out form. */
  heldOut: number | null;
  locality: number | null;
  portability: number | null;
}

export interface EvalRow {
  editor: EditorMethod;
  /** Which instruction the edits carried, and how prompts were measured. */
  instruction: InstructionChoice;
  view: PromptView;
  task: BenchTask;
  size: number;
  /** Sets solved (size 1: several single-edit sets; else one). */
  sets: number;
  edits: number;
  subjects: number;
  /** Real greedy generation, judged as `edit apply` judges. */
  generation: Scores;
  /** EasyEdit's teacher-forced token accuracy; locality = argmax agreement with the base model. */
  teacherForced: Scores;
  /** Prompts measured per kind, over all sets. */
  prompts: { rephrase: number; heldOut: number; locality: number; portability: number };
  seconds: { rowsPerEdit: number; solvePerSet: number; measurePerSet: number };
  /** Rows per edited layer against its key dimension, of the last set (joint editors). */
  capacity: LayerCapacity[];
  /** Every prompt real generation missed, over all sets, in record order (the JSON's answer to "which ones"). */
  misses: EvalMiss[];
}

export interface EvalProgress {
  (message: string): void;
}

/** Per record: one value per kind (its prompts' mean) for each of the two views, and the prompts real generation missed. */
interface RecordScores {
  generation: Scores;
  teacherForced: Scores;
  misses: EvalMiss[];
}

/** A prompt whose real generation missed (the target not produced, or a neighbour's continuation changed). */
export interface EvalMiss {
  record: string;
  kind: keyof Scores;
  prompt: string;
}

/** `pool`: threads generating the measured prompts (the same numbers as without). */
export async function runEval(loaded: LoadedModel, stats: KeyStats | undefined, bench: BenchFile, opts: EvalOptions, onRow?: (row: EvalRow) => void | Promise<void>, progress?: EvalProgress, pool?: GeneratePool): Promise<EvalRow[]> {
  const base = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, pool });
  const baseForced = new Map<string, ForcedTokens>();
  const plan = opts.tasks.flatMap((task) => {
    const pool = bench.records.filter((r) => r.task === task && opts.splits.includes(r.split) && (opts.relations === undefined || opts.relations.includes(r.relation)));
    return opts.sizes.map((size) => ({ task, size, sets: pickSets(pool, size, opts, task) }));
  });
  const rows: EvalRow[] = [];
  const protectedFacts = new Set((loaded.knownFacts ?? []).filter(isPreserved).map((f) => `${f.subject}\u0000${f.relation}`));
  for (const method of opts.editors) {
    const settings = evalSettings(loaded.manifest, method, opts.overrides);
    if (needsStats(method) && stats === undefined) throw new EditError(`the ${method} editor needs the model's key statistics (model.json "stats")`);
    const editor = await openEditor(loaded.dir, loaded.manifest, settings, opts.networks?.[method]);
    try {
      const ctx: EditorContext = { model: loaded.model, tokenizer: loaded.tokenizer, layers: loaded.manifest.editableLayers, stats };
      for (const { task, size, sets } of plan) {
        const perRecord: RecordScores[] = [];
        const prompts = { rephrase: 0, heldOut: 0, locality: 0, portability: 0 };
        let rowsSeconds = 0;
        let solveSeconds = 0;
        let measureSeconds = 0;
        let capacity: LayerCapacity[] = [];
        for (const [i, set] of sets.entries()) {
          progress?.(`${method} ${task} N=${size}: set ${i + 1}/${sets.length}, computing rows and solving`);
          const instructions = set.map((r) => instructionOf(bench, r, opts.instruction));
          const requests: EditRequest[] = set.map((r, j) => ({ id: r.id, task: r.task, instruction: instructions[j], prompt: r.prompt, target: r.target, rephrase: r.rephrase }));
          // as apply does: the solve keeps the model's known facts still (its probes), except those the set edits
          const sol = await solveSet({ ...ctx, preserve: preservedFacts(loaded.knownFacts ?? [], requests) }, editor, requests);
          rowsSeconds += sol.rowsSeconds;
          solveSeconds += sol.solveSeconds;
          capacity = sol.capacity;
          const t0 = performance.now();
          const deltas: Deltas = toDeltaTensors(sol.delta, loaded);
          try {
            progress?.(`${method} ${task} N=${size}: set ${i + 1}/${sets.length}, measuring`);
            const edited = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, deltas, pool });
            const touched = new Set(set.map((r) => r.subject));
            // locality is measured on facts the solve does not protect: no neighbour is one of the model's probes
            const hoods = set.map((r) => neighboursOf(r, bench.neighbours, touched, opts.neighbours, (n) => protectedFacts.has(`${n.subject}\u0000${n.relation}`)));
            const measured = opts.view === 'wrapped' ? set.map((r, j) => wrapped(r, instructions[j], loaded.tokenizer, loaded.model.config.nPositions)) : set;
            perRecord.push(...measureSet(loaded, measured, hoods, edited, base, deltas, baseForced));
            for (const [j, r] of set.entries()) {
              prompts.rephrase += r.rephrase.length;
              prompts.heldOut += r.heldOutRephrase.length;
              prompts.portability += r.portability.length;
              prompts.locality += hoods[j].length;
            }
          } finally {
            tf.dispose(Object.values(deltas));
          }
          measureSeconds += (performance.now() - t0) / 1000;
        }
        const edits = sets.reduce((a, s) => a + s.length, 0);
        const row: EvalRow = {
          editor: method,
          instruction: opts.instruction ?? 'seen',
          view: opts.view ?? 'typed',
          task,
          size,
          sets: sets.length,
          edits,
          subjects: new Set(sets.flat().map((r) => r.subject)).size,
          generation: meanScores(perRecord.map((r) => r.generation)),
          teacherForced: meanScores(perRecord.map((r) => r.teacherForced)),
          prompts,
          seconds: { rowsPerEdit: rowsSeconds / edits, solvePerSet: solveSeconds / sets.length, measurePerSet: measureSeconds / sets.length },
          capacity,
          misses: perRecord.flatMap((r) => r.misses),
        };
        rows.push(row);
        await onRow?.(row);
      }
    } finally {
      editor.dispose?.();
    }
  }
  return rows;
}

/** Size 1: `singles` single-edit sets; else one set of `size` records. Refuses a size the split cannot fill. */
function pickSets(pool: BenchRecord[], size: number, opts: EvalOptions, task: BenchTask): BenchRecord[][] {
  const rng = new Rng(opts.seed * 1_000_003 + size);
  const want = size === 1 ? opts.singles : size;
  const picked = pickRecords(pool, want, rng);
  if (picked.length === 0 || (size > 1 && picked.length < size)) {
    throw new EditError(`task ${task} has ${capacityOf(pool)} distinct (subject, relation) records in split ${opts.splits.join('+')}; a set of ${size} does not fit`, {
      hint: 'use a smaller --sizes value or more splits (--split train,validation,test)',
    });
  }
  return size === 1 ? picked.map((r) => [r]) : [picked];
}

function measureSet(loaded: LoadedModel, set: BenchRecord[], hoods: Neighbour[][], edited: ModelJudge, base: ModelJudge, deltas: Deltas, baseForced: Map<string, ForcedTokens>): RecordScores[] {
  const { model, tokenizer } = loaded;
  // Teacher forcing, batched: every edit prompt with its target, every neighbour with its true answer.
  const editPairs = set.flatMap((r) => [r.prompt, ...r.rephrase, ...r.heldOutRephrase].map((prompt) => ({ prompt, completion: r.target })));
  const portPairs = set.flatMap((r) => r.portability.map((p) => ({ prompt: p.prompt, completion: p.answer })));
  const hoodPairs = hoods.flat().map((n) => ({ prompt: n.prompt, completion: n.answer }));
  const forced = teacherForcedTokens(model, tokenizer, [...editPairs, ...portPairs, ...hoodPairs], deltas);
  const key = (p: { prompt: string; completion: string }) => `${p.prompt}\u0000${p.completion}`;
  const missing = hoodPairs.filter((p) => !baseForced.has(key(p)));
  teacherForcedTokens(model, tokenizer, missing).forEach((f, i) => baseForced.set(key(missing[i]), f));

  prefetchJudgements([edited, base], (e, b) => set.forEach((r, j) => generationScores(r, hoods[j], e, b)));

  let at = 0;
  let portAt = editPairs.length;
  let hoodAt = editPairs.length + portPairs.length;
  const acc = () => {
    const f = forced[at++];
    return tokenAccuracy(f.argmax, f.target);
  };
  return set.map((r, j) => {
    const tfRel = acc();
    const tfGen = r.rephrase.map(acc);
    const tfHeld = r.heldOutRephrase.map(acc);
    const tfPort = r.portability.map(() => {
      const f = forced[portAt++];
      return tokenAccuracy(f.argmax, f.target);
    });
    const tfLoc = hoods[j].map((n) => {
      const f = forced[hoodAt++];
      return agreement(f.argmax, baseForced.get(key({ prompt: n.prompt, completion: n.answer }))!.argmax);
    });
    const misses: EvalMiss[] = [];
    return {
      teacherForced: { reliability: tfRel, generalization: mean(tfGen), heldOut: mean(tfHeld), locality: mean(tfLoc), portability: mean(tfPort) },
      generation: generationScores(r, hoods[j], edited, base, misses),
      misses,
    };
  });
}

/** Real greedy generation of one record, judged as apply judges (the set's generations are prefetched in batches by measureSet). */
function generationScores(r: BenchRecord, hood: Neighbour[], edited: Judge, base: Judge, misses?: EvalMiss[]): Scores {
  const score = (kind: keyof Scores, prompt: string, ok: boolean) => {
    if (!ok) misses?.push({ record: r.id, kind, prompt });
    return ok ? 1 : 0;
  };
  const holds = (kind: keyof Scores) => (p: string) => score(kind, p, generationHolds(edited, p, r.target));
  return {
    reliability: holds('reliability')(r.prompt),
    generalization: mean(r.rephrase.map(holds('generalization'))),
    heldOut: mean(r.heldOutRephrase.map(holds('heldOut'))),
    locality: mean(hood.map((n) => score('locality', n.prompt, continuationUnchanged(edited, base, n.prompt)))),
    portability: mean(r.portability.map((p) => score('portability', p.prompt, generationHolds(edited, p.prompt, p.answer)))),
  };
}

function meanScores(xs: Scores[]): Scores {
  const m = (k: keyof Scores) => mean(xs.map((x) => x[k]));
  return { reliability: m('reliability'), generalization: m('generalization'), heldOut: m('heldOut'), locality: m('locality'), portability: m('portability') };
}
