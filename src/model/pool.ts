/**
 * Greedy generation on several threads. tfjs-wasm runs on one thread, so each worker thread runs
 * its own backend with the same model folder loaded; generateBatch deals a call's prompts, in
 * order of length, in turn to the workers and the calling thread (each gets the same mix of
 * lengths to pad into its batches), and blocks (Atomics.wait) until every part is back, so
 * synchronous callers (the judge's prefetch) can use it. Every thread runs generateBatch, whose
 * ids are each prompt's ids alone: the same for any number of workers. Teacher-forced scores
 * (scorePairs) are split the same way, whole groups of one sequence length to a thread.
 */
import { availableParallelism, freemem } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { InternalError } from '../errors.js';
import { workerCount } from '../util/threads.js';
import { workerScript } from '../util/worker-script.js';
import { generateBatch, type BatchGenerateOptions, type Deltas, type GPT } from './gpt2.js';
import { scorePairs, scoredLength, type ScorePair, type Scored } from './score.js';

export { workerCount } from '../util/threads.js';

/**
 * Prompts a thread should have before judging starts another: a worker costs ~0.6 s to start (tfjs,
 * the backend, the model) plus its first, slower pass, about what one thread judges 300–400 prompts
 * in on the default model (bench: judge section).
 */
export const PROMPTS_PER_THREAD = 400;

/**
 * What a judging worker adds to the process's memory, from the model it loads: measured ~3.1 GB
 * for a 124M-parameter model (475 MB of weights: verify's peak RSS 3,669 MB on 1 thread, 6,799 MB
 * on 2), i.e. ~6.6× the weights — the wasm heap's copy, the head's transposed table, activations
 * and the runtime. Counted as 300 MB + 7× the weights: a little over, to be safe.
 */
export function workerBytes(model: GPT): number {
  const weights = Object.values(model.params).reduce((n, t) => n + 4 * t.size, 0);
  return 300e6 + 7 * weights;
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

/** Greedy generation (generateBatch) or teacher-forced scores (scorePairs) of a share of the rows. */
export type PoolJob = { kind: 'generate'; prompts: number[][]; budgets: number[]; stopIds?: number[] } | { kind: 'score'; pairs: ScorePair[] };

export type PoolReply = { ids: number[][] } | { scores: Scored[] } | { error: string };

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

  /** generateBatch over every thread (greedy only); `model` is the calling thread's copy of the pool's model. */
  generateBatch(model: GPT, prompts: readonly number[][], opts: Omit<BatchGenerateOptions, 'temperature' | 'topK' | 'seed'>): number[][] {
    const budgets = prompts.map((_, i) => (typeof opts.maxNewTokens === 'number' ? opts.maxNewTokens : opts.maxNewTokens[i]));
    const shares = this.split(prompts.map((p, i) => [p.length, budgets[i]]));
    return this.run(shares, opts.deltas, (rows) => ({ kind: 'generate', prompts: rows.map((r) => prompts[r]), budgets: rows.map((r) => budgets[r]), stopIds: opts.stopIds?.slice() }),
      (rows) => generateBatch(model, rows.map((r) => prompts[r]), { ...opts, maxNewTokens: rows.map((r) => budgets[r]) }),
      (reply) => ('ids' in reply ? reply.ids : undefined));
  }

  /** scorePairs over every thread: the same numbers as on one (each pair is scored in a group of its own length either way). */
  scorePairs(model: GPT, pairs: readonly ScorePair[], deltas?: Deltas): Scored[] {
    const shares = this.byGroup(pairs.map(scoredLength));
    const plain = (rows: number[]) => rows.map((r) => ({ prompt: pairs[r].prompt, completion: pairs[r].completion }));
    return this.run(shares, deltas, (rows) => ({ kind: 'score', pairs: plain(rows) }), (rows) => scorePairs(model, plain(rows), deltas), (reply) => ('scores' in reply ? reply.scores : undefined));
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
   * Row indices per thread, from each row's [length, budget]: in order of length (then budget),
   * dealt in turn, so each thread gets an equal share of every length.
   */
  private split(sizes: ReadonlyArray<[number, number]>): number[][] {
    const order = sizes.map((_, i) => i).sort((a, b) => sizes[a][0] - sizes[b][0] || sizes[a][1] - sizes[b][1] || a - b);
    const shares: number[][] = Array.from({ length: this.size }, () => []);
    order.forEach((r, k) => shares[k % this.size].push(r));
    return shares;
  }

  /**
   * Row indices per thread keeping rows of one length together (scorePairs makes one forward per
   * length): the largest groups first, each to the thread with the fewest tokens so far.
   */
  private byGroup(lengths: readonly number[]): number[][] {
    const groups = new Map<number, number[]>();
    lengths.forEach((t, i) => groups.set(t, [...(groups.get(t) ?? []), i]));
    const shares: number[][] = Array.from({ length: this.size }, () => []);
    const load = shares.map(() => 0);
    for (const [t, rows] of [...groups].sort((a, b) => b[0] * b[1].length - a[0] * a[1].length || a[0] - b[0])) {
      const k = load.indexOf(Math.min(...load));
      shares[k].push(...rows);
      load[k] += t * rows.length;
    }
    return shares;
  }
}
