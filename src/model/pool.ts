/**
 * Greedy generation and teacher-forced scores on several threads. tfjs-wasm runs on one thread, so
 * each worker thread runs its own backend with the same model folder loaded; a call's sequences,
 * in the order that puts shared prefixes side by side, are cut into one run per thread of about
 * equal work (decodeTree shares prefixes within a run), and the call blocks (Atomics.wait) until
 * every part is back, so synchronous callers (the judge's prefetch) can use it. Every thread runs
 * decodeTree, whose results are each sequence's alone: the same for any number of workers.
 */
import { availableParallelism, freemem } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { InternalError } from '../errors.js';
import { workerCount } from '../util/threads.js';
import { workerScript } from '../util/worker-script.js';
import { compareIds, continuations, decodeTree, type BatchGenerateOptions, type Continuation, type DecodeOptions } from './decode.js';
import type { Deltas, GPT } from './gpt2.js';
import type { ScorePair, Scored } from './score.js';

export { workerCount } from '../util/threads.js';

/**
 * Prompts a thread should have before judging starts another: a worker costs ~0.9 s to start (tfjs,
 * the backend, the model, its first slower pass); one thread judges ~550–780 prompts/s on the
 * default model and two ~1.3–2.1× that (bench: judge section), so a second thread pays off from
 * ~1,400 prompts.
 */
export const PROMPTS_PER_THREAD = 700;

/**
 * What a judging worker adds to the process's memory, from the model it loads: measured ~1.6 GB for
 * a 124M-parameter model (475 MB of weights: verify's peak RSS 1,757 MB on 1 thread, 3,384 MB on 2),
 * i.e. ~3.4× the weights — the wasm heap's copy, the head's transposed table, the prefix tree's KV
 * caches and the runtime. Counted as 300 MB + 4× the weights: a little over, to be safe.
 */
export function workerBytes(model: GPT): number {
  const weights = Object.values(model.params).reduce((n, t) => n + 4 * t.size, 0);
  return 300e6 + 4 * weights;
}

/** Free memory, and within a container's limit (cgroups) what this process has not used of it. */
export function freeMemory(): number {
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return limit !== undefined && limit > 0 ? Math.min(freemem(), Math.max(0, limit - process.memoryUsage.rss())) : freemem();
}

/**
 * Threads for judging about `prompts` prompts: the setting when given (workerCount); unset, every
 * core once there are PROMPTS_PER_THREAD prompts per thread, fewer below (1 for a small verify),
 * and no more workers than free memory holds at `perWorker` bytes each (workerBytes), with a
 * quarter of it left over. Judgements are the same for any count.
 */
export function judgeThreads(setting: string | undefined, source: string, prompts: number, perWorker = 0, free = freeMemory()): number {
  if (setting !== undefined && setting.trim() !== '') return workerCount(setting, source);
  const byWork = Math.floor(prompts / PROMPTS_PER_THREAD);
  const byMemory = perWorker > 0 ? 1 + Math.floor((0.75 * free) / perWorker) : Infinity;
  return Math.max(1, Math.min(availableParallelism(), byWork, byMemory));
}

/** Where judging gets its threads: a pool for about `prompts` prompts, or undefined (the calling thread alone). */
export interface PoolSource {
  for(prompts: number): Promise<GeneratePool | undefined>;
}

/** What a worker is sent: its part of one call, and the deltas' values the first time it meets them. */
export type PoolRequest = PoolJob & {
  deltasId?: number;
  deltas?: Array<{ name: string; shape: number[]; data: Float32Array }>;
};

/** Greedy continuations and teacher-forced scores (decodeTree) of a share of the sequences. */
export interface PoolJob {
  gens: Continuation[];
  pairs: ScorePair[];
  stopIds?: number[];
}

export type PoolReply = { ids: number[][]; scores: Scored[] } | { error: string };

interface Thread {
  worker: Worker;
  port: MessagePort;
  /** 0 while working, 1 when a reply is waiting on the port. */
  signal: Int32Array;
  /** The delta set the worker holds (it keeps one: the last it was sent). */
  deltasId: number | undefined;
}


export class GeneratePool {
  private readonly deltaIds = new WeakMap<Deltas, number>();
  private nextDeltaId = 1;

  private constructor(private readonly threads: Thread[]) {}

  /** Starts `threads − 1` workers, each loading `modelDir`; the calling thread is the last one. */
  static async open(modelDir: string, threads: number): Promise<GeneratePool> {
    const script = workerScript(import.meta.url, 'pool-worker.js', 'generation worker');
    const started = await Promise.all(
      Array.from({ length: Math.max(0, threads - 1) }, async () => {
        const { port1, port2 } = new MessageChannel();
        const signal = new Int32Array(new SharedArrayBuffer(4));
        const worker = new Worker(script, { workerData: { modelDir, port: port2, signal }, transferList: [port2] });
        await new Promise<void>((resolve, reject) => {
          worker.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
          worker.once('error', reject);
        });
        worker.unref(); // a pool left open does not keep the process alive
        return { worker, port: port1, signal, deltasId: undefined };
      }),
    );
    return new GeneratePool(started);
  }

  /** Threads generating, the calling one included. */
  get size(): number {
    return this.threads.length + 1;
  }

  /** decodeTree over every thread (greedy only); `model` is the calling thread's copy of the pool's model. */
  decode(model: GPT, gens: readonly Continuation[], pairs: readonly ScorePair[], opts: Pick<DecodeOptions, 'stopIds' | 'deltas'> = {}): { ids: number[][]; scores: Scored[] } {
    const room = model.config.nPositions; // a budget past the context (even Infinity) generates up to it
    const seqs = [...gens.map((g) => ({ seq: g.prompt, work: g.prompt.length + 2 * Math.min(g.budget, room) })), ...pairs.map((p) => ({ seq: [...p.prompt, ...p.completion], work: p.prompt.length + p.completion.length }))];
    const shares = this.split(seqs);
    const stopIds = opts.stopIds?.slice();
    const parts = (rows: number[]) => ({ gens: rows.filter((r) => r < gens.length).map((r) => gens[r]), pairs: rows.filter((r) => r >= gens.length).map((r) => pairs[r - gens.length]) });
    // one result per row of a share, in its order: its generations' ids, then its pairs' scores
    const rowsOf = (r: { ids: number[][]; scores: Scored[] }) => [...r.ids.map((ids) => ({ ids })), ...r.scores.map((score) => ({ score }))];
    const out = this.run<{ ids?: number[]; score?: Scored }>(shares, opts.deltas, (rows) => ({ ...plain(parts(rows)), stopIds }),
      (rows) => {
        const p = parts(rows);
        return rowsOf(decodeTree(model, p.gens, p.pairs, { stopIds, deltas: opts.deltas }));
      },
      (reply) => ('error' in reply ? undefined : rowsOf(reply)));
    return { ids: out.slice(0, gens.length).map((o) => o.ids!), scores: out.slice(gens.length).map((o) => o.score!) };
  }

  /** generateBatch over every thread (greedy only). */
  generateBatch(model: GPT, prompts: readonly number[][], opts: Omit<BatchGenerateOptions, 'temperature' | 'topK' | 'seed' | 'maxBatch'>): number[][] {
    return this.decode(model, continuations(prompts, opts.maxNewTokens), [], opts).ids;
  }

  /**
   * One call over every thread: each worker is sent its share's job (and the deltas the first time),
   * the calling thread does the last share itself, then waits (Atomics.wait) for every reply.
   */
  private run<T>(shares: number[][], deltas: Deltas | undefined, job: (rows: number[]) => PoolJob, local: (rows: number[]) => T[], result: (reply: PoolReply) => T[] | undefined): T[] {
    const deltasId = this.deltasId(deltas);
    shares.slice(0, this.threads.length).forEach((rows, t) => {
      const thread = this.threads[t];
      const req: PoolRequest = { ...job(rows), deltasId };
      if (deltasId !== undefined && thread.deltasId !== deltasId) {
        req.deltas = Object.entries(deltas!).map(([name, d]) => ({ name, shape: d.shape.slice(), data: d.dataSync() as Float32Array }));
        thread.deltasId = deltasId; // the worker drops the set it held
      }
      Atomics.store(thread.signal, 0, 0);
      thread.port.postMessage(req);
    });
    const out = new Array<T>(shares.reduce((n, rows) => n + rows.length, 0));
    const mine = shares[this.threads.length];
    // Every worker's reply is taken off its port even when this thread's share throws: a reply left
    // there would be read as the next call's.
    let failed: unknown;
    try {
      local(mine).forEach((x, i) => (out[mine[i]] = x));
    } catch (err) {
      failed = err;
    }
    const errors: string[] = [];
    this.threads.forEach((thread, t) => {
      while (Atomics.load(thread.signal, 0) === 0) Atomics.wait(thread.signal, 0, 0);
      const reply = receiveMessageOnPort(thread.port)?.message as PoolReply | undefined;
      const got = reply === undefined ? undefined : result(reply);
      if (got === undefined || got.length !== shares[t].length) errors.push(reply === undefined ? 'no reply' : 'error' in reply ? reply.error : 'a reply of the wrong kind or length');
      else got.forEach((x, i) => (out[shares[t][i]] = x));
    });
    if (failed !== undefined) throw failed;
    if (errors.length > 0) throw new InternalError(`judging worker failed: ${errors[0]}`);
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private deltasId(deltas: Deltas | undefined): number | undefined {
    if (deltas === undefined || Object.keys(deltas).length === 0) return undefined;
    let id = this.deltaIds.get(deltas);
    if (id === undefined) this.deltaIds.set(deltas, (id = this.nextDeltaId++));
    return id;
  }

  /**
   * Row indices per thread: the sequences in the order that puts shared prefixes side by side (as
   * decodeTree walks them), cut into one contiguous run per thread of about equal work. The calling
   * thread takes the last run.
   */
  private split(seqs: ReadonlyArray<{ seq: readonly number[]; work: number }>): number[][] {
    const order = seqs.map((_, i) => i).sort((a, b) => compareIds(seqs[a].seq, seqs[b].seq) || a - b);
    const total = seqs.reduce((n, s) => n + s.work, 0);
    const shares: number[][] = Array.from({ length: this.size }, () => []);
    let done = 0;
    for (const r of order) {
      shares[Math.min(this.size - 1, Math.floor((done * this.size) / Math.max(1, total)))].push(r);
      done += seqs[r].work;
    }
    return shares.map((rows) => rows.sort((a, b) => a - b)); // generations first, as decode's parts take them
  }
}

/** Only what a worker needs (the judge's pairs carry their cache keys too). */
function plain(job: { gens: Continuation[]; pairs: ScorePair[] }): { gens: Continuation[]; pairs: ScorePair[] } {
  return { gens: job.gens.map((g) => ({ prompt: g.prompt, budget: g.budget })), pairs: job.pairs.map((p) => ({ prompt: p.prompt, completion: p.completion })) };
}
