/**
 * The judge section: judging throughput (prompts/s) one at a time vs batched, on a model folder
 * with knowledge probes (models/default). The workload is what `verify` does for E edits: batchChecks
 * over counterfactual capital edits built from the model's known facts (target = another fact's
 * capital; two rephrasings, two listed localities, three automatic neighbours, a portability prompt,
 * an expect assertion), an edited model (a fixed perturbation of one MLP projection) against the base.
 * One-at-a-time: judges that cannot prefetch, so each prompt is generated alone (today's path
 * before generateBatch). Batched: ModelJudges, whose generations batchChecks prefetches. Both start
 * with empty caches; the section fails unless both give identical results. Also the generation
 * alone: generate() per prompt vs generateBatch over the same prompts and budgets (decodeTree: the
 * prompts' prefix tree, one token per row and step). Then both batched
 * runs again on `threads` threads (GeneratePool), whose start-up is timed apart.
 */
import { tf } from '../src/tensor/tf.js';
import { loadavg } from 'node:os';
import { ModelJudge } from '../src/assert/judge.js';
import { batchChecks } from '../src/assert/check-edit.js';
import type { Judge } from '../src/assert/types.js';
import { loadModelFolder } from '../src/model/folder.js';
import { generateBatch } from '../src/model/decode.js';
import { generate } from '../src/model/gpt2.js';
import { GeneratePool } from '../src/model/pool.js';
import { sentenceStopIds } from '../src/model/tokenizer.js';
import type { BackendName } from '../src/tensor/backend.js';
import type { EditSpec } from '../src/spec/types.js';
import { memoryNow, ms, now, sig, stamp, type BenchRecord } from './measure.js';
import type { SectionResult } from './sections.js';

export interface JudgeSizes {
  /** Edits judged per run. */
  edits: number;
  modelDir: string;
  /** Threads for the pooled runs (GeneratePool: worker threads + this one); 1 skips them. */
  threads: number;
}

/** Counterfactual capital edits from the model's known facts, shaped like edits/capitals/france.json. */
function capitalEdits(facts: ReadonlyArray<{ relation: string; subject: string; prompt: string; object: string }>, n: number): Array<{ id: string; spec: EditSpec }> {
  const capitals = facts.filter((f) => f.relation === 'capital');
  const others = facts.filter((f) => f.relation !== 'capital');
  return capitals.slice(0, Math.min(n, capitals.length)).map((f, i) => {
    const target = ` ${capitals[(i + 7) % capitals.length].object}`;
    return {
      id: `capitals/${i}`,
      spec: {
        version: 1,
        task: 'counterfact',
        subject: f.subject,
        relation: 'capital',
        prompt: f.prompt,
        target,
        rephrase: [`${f.subject}'s capital is`, `Q: What is the capital of ${f.subject}? A:`],
        locality: [{ prompt: others[(2 * i) % others.length].prompt }, { prompt: others[(2 * i + 1) % others.length].prompt, answer: ` ${others[(2 * i + 1) % others.length].object}` }],
        neighbours: { count: 3 },
        portability: [{ prompt: `The capital city of ${f.subject} is`, answer: target }],
        expect: [{ type: 'not-contains', prompt: f.prompt, value: ` ${f.object}` }],
      },
    };
  });
}

/** The judge's methods only: without prefetch, every generation runs one prompt at a time. Counts distinct prompts generated. */
function oneAtATime(j: ModelJudge, seen: Set<string>, tag: string): Judge {
  return {
    generate: (p, n) => {
      seen.add(`${tag}\u0000${p}`);
      return j.generate(p, n);
    },
    prob: (p, c) => j.prob(p, c),
    rank: (p, c) => j.rank(p, c),
    tokenAccuracy: (p, c) => j.tokenAccuracy(p, c),
    countTokens: (t) => j.countTokens(t),
  };
}

/**
 * f run four times; the fastest of the last three runs' seconds. A thread's first runs of a workload
 * pay one-time costs (V8 compiling and optimizing the paths it takes, the wasm heap growing) that
 * differ between the configurations run in sequence in one process (the calling thread has run the
 * others; a fresh worker has not: its second run was still ~30% slower than its fourth): the steady
 * state compares them fairly, as in a long verify. The fastest of three, because these shared
 * machines slow down for seconds at a time (one configuration's runs measured 3.6 and 5.2 s minutes
 * apart), the same rule for every configuration. The first run's seconds are reported beside.
 */
function warm<T>(f: () => T): { result: T; seconds: number; coldS: number } {
  let t0 = now();
  let result = f();
  const coldS = ms(t0) / 1000;
  let seconds = Infinity;
  for (let i = 0; i < 3; i++) {
    t0 = now();
    result = f();
    seconds = Math.min(seconds, ms(t0) / 1000);
  }
  return { result, seconds, coldS };
}

export async function benchJudge(backend: BackendName, sizes: JudgeSizes, log: (line: string) => void): Promise<SectionResult> {
  const loaded = await loadModelFolder(sizes.modelDir);
  const { model, tokenizer } = loaded;
  const known = loaded.knownFacts ?? [];
  if (known.length === 0) throw new Error(`${sizes.modelDir} has no knowledge probes (model.json "probes"): the judge section builds its edits from them`);
  const edits = capitalEdits(known, sizes.edits);
  const thresholds = loaded.manifest.thresholds;
  const source = { known };
  const deltas = tf.tidy(() => {
    const w = model.params['h.3.mlp.c_proj.weight'];
    return { 'h.3.mlp.c_proj.weight': tf.keep(tf.mul(tf.randomNormal(w.shape, 0, 1, 'float32', 5), 0.05)) };
  });
  const records: BenchRecord[] = [];
  try {
    generate(model, tokenizer.encode(edits[0].spec.prompt), { maxNewTokens: 2 }); // warm-up: wasm kernels, the head table
    const tensorsAtStart = tf.memory().numTensors;
    // 1. batchChecks as verify runs it, one at a time and batched
    const seen = new Set<string>();
    const one = warm(() => batchChecks(edits, oneAtATime(new ModelJudge({ model, tokenizer, deltas }), seen, 'edited'), oneAtATime(new ModelJudge({ model, tokenizer }), seen, 'base'), thresholds, source));
    const [ref, oneS] = [one.result, one.seconds];
    log(`one at a time: ${edits.length} edits, ${seen.size} prompts in ${sig(oneS)} s (first run ${sig(one.coldS)} s)`);
    const batched = warm(() => batchChecks(edits, new ModelJudge({ model, tokenizer, deltas }), new ModelJudge({ model, tokenizer }), thresholds, source));
    const [got, batchS] = [batched.result, batched.seconds];
    log(`batched: ${sig(batchS)} s (first run ${sig(batched.coldS)} s)`);
    const identical = JSON.stringify(got) === JSON.stringify(ref);
    if (!identical) throw new Error('batched judging gave other results than one-at-a-time judging');
    const common = { model: sizes.modelDir, edits: edits.length, prompts: seen.size, checks: ref.total, passed: ref.passed, identical, loadAvg1m: sig(loadavg()[0]) };
    records.push(
      { ...stamp(), section: 'judge', metric: 'checks one at a time', backend, value: sig(seen.size / oneS), unit: 'prompts/s', detail: { ...common, seconds: sig(oneS), firstRunS: sig(one.coldS) } },
      { ...stamp(), section: 'judge', metric: 'checks batched', backend, value: sig(seen.size / batchS), unit: 'prompts/s', detail: { ...common, seconds: sig(batchS), firstRunS: sig(batched.coldS) } },
    );
    // 2. generation alone: the distinct prompts of the checks with the judge's stops, 16 tokens each
    const prompts = [...new Set([...seen].map((k) => k.split('\u0000')[1]))].map((p) => tokenizer.encode(p)).filter((p) => p.length > 0);
    const stopIds = sentenceStopIds(tokenizer, model.config.vocabSize);
    const { result: alone, seconds: aloneS, coldS: aloneCold } = warm(() => prompts.map((p) => generate(model, p, { maxNewTokens: 16, stopIds })));
    const { result: together, seconds: togetherS, coldS: togetherCold } = warm(() => generateBatch(model, prompts, { maxNewTokens: 16, stopIds }));
    const same = JSON.stringify(alone) === JSON.stringify(together);
    if (!same) throw new Error('generateBatch gave other ids than generate() one at a time');
    const gen = { model: sizes.modelDir, prompts: prompts.length, maxNewTokens: 16, lengths: new Set(prompts.map((p) => p.length)).size, identical: same };
    records.push(
      { ...stamp(), section: 'judge', metric: 'generate one at a time', backend, value: sig(prompts.length / aloneS), unit: 'prompts/s', detail: { ...gen, seconds: sig(aloneS), firstRunS: sig(aloneCold) } },
      { ...stamp(), section: 'judge', metric: 'generateBatch', backend, value: sig(prompts.length / togetherS), unit: 'prompts/s', detail: { ...gen, seconds: sig(togetherS), firstRunS: sig(togetherCold) } },
    );
    // 3. the batched runs on several threads (worker start-up and warm-up timed apart: once per command)
    if (sizes.threads > 1) {
      let t0 = now();
      const pool = await GeneratePool.open(sizes.modelDir, sizes.threads);
      // warm-up: every thread's first forward (kernels, the head table), as the main thread had above
      const byLength = [...new Map(prompts.map((p) => [p.length, p])).values()].slice(0, 2 * sizes.threads);
      pool.generateBatch(model, byLength, { maxNewTokens: 2 });
      const startS = ms(t0) / 1000;
      try {
        const checked = warm(() => batchChecks(edits, new ModelJudge({ model, tokenizer, deltas, pool }), new ModelJudge({ model, tokenizer, pool }), thresholds, source));
        const [pooled, checksS] = [checked.result, checked.seconds];
        if (JSON.stringify(pooled) !== JSON.stringify(ref)) throw new Error(`judging on ${sizes.threads} threads gave other results than on one`);
        const { result: split, seconds: genS, coldS: genCold } = warm(() => pool.generateBatch(model, prompts, { maxNewTokens: 16, stopIds }));
        if (JSON.stringify(split) !== JSON.stringify(alone)) throw new Error(`generateBatch on ${sizes.threads} threads gave other ids than on one`);
        log(`${sizes.threads} threads: start ${sig(startS)} s, checks ${sig(checksS)} s (first run ${sig(checked.coldS)} s), generation ${sig(genS)} s`);
        const threads = { threads: sizes.threads, workerStartS: sig(startS), identical: true };
        records.push(
          { ...stamp(), section: 'judge', metric: `checks batched, ${sizes.threads} threads`, backend, value: sig(seen.size / checksS), unit: 'prompts/s', detail: { ...common, ...threads, seconds: sig(checksS), firstRunS: sig(checked.coldS) } },
          { ...stamp(), section: 'judge', metric: `generateBatch, ${sizes.threads} threads`, backend, value: sig(prompts.length / genS), unit: 'prompts/s', detail: { ...gen, ...threads, seconds: sig(genS), firstRunS: sig(genCold) } },
        );
      } finally {
        await pool.close();
      }
    }
    const live = memoryNow();
    const leaked = tf.memory().numTensors - tensorsAtStart;
    return { records, memory: { ...stamp(), after: 'judge', backend, ...live, leak: leaked !== 0, leakDetail: `${leaked} tensors left after judging` } };
  } finally {
    tf.dispose(Object.values(deltas));
    model.dispose();
  }
}
