/**
 * Greedy generation on several threads. tfjs-wasm runs on one thread, so each worker thread runs
 * its own backend with the same model folder loaded; generateBatch deals a call's prompts, in
 * order of length, in turn to the workers and the calling thread (each gets the same mix of
 * lengths to pad into its batches), and blocks (Atomics.wait) until every part is back, so
 * synchronous callers (the judge's prefetch) can use it. Every thread runs generateBatch, whose
 * ids are each prompt's ids alone: the same for any number of workers.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { EditError, InternalError } from '../errors.js';
import { workerScript } from '../util/worker-script.js';
import { generateBatch, type BatchGenerateOptions, type Deltas, type GPT } from './gpt2.js';

/**
 * Threads for judging from --workers or EDIT_WORKERS: a whole number ≥ 1, or "auto" for every core.
 * Unset: 1 (the calling thread only) — a worker costs seconds to start (tfjs, backend, model), more
 * than it saves on a small verify.
 */
export function workerCount(setting: string | undefined, source = 'EDIT_WORKERS'): number {
  if (setting === undefined || setting.trim() === '') return 1;
  if (setting.trim() === 'auto') return Math.max(1, availableParallelism());
  const n = Number(setting);
  if (!Number.isInteger(n) || n < 1) throw new EditError(`${source}=${setting} is not a whole number ≥ 1 or "auto"`);
  return n;
}

/** What a worker is sent: its part of one call, and the deltas' values the first time it meets them. */
export interface PoolRequest {
  prompts: number[][];
  budgets: number[];
  stopIds?: number[];
  deltasId?: number;
  deltas?: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

export type PoolReply = { ids: number[][] } | { error: string };

interface Thread {
  worker: Worker;
  port: MessagePort;
  /** 0 while working, 1 when a reply is waiting on the port. */
  signal: Int32Array;
  deltasSent: Set<number>;
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
        return { worker, port: port1, signal, deltasSent: new Set<number>() };
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
    const shares = this.split(prompts, budgets);
    const deltasId = this.deltasId(opts.deltas);
    shares.slice(0, this.threads.length).forEach((rows, t) => {
      const thread = this.threads[t];
      const req: PoolRequest = { prompts: rows.map((r) => prompts[r]), budgets: rows.map((r) => budgets[r]), stopIds: opts.stopIds?.slice(), deltasId };
      if (deltasId !== undefined && !thread.deltasSent.has(deltasId)) {
        req.deltas = Object.entries(opts.deltas!).map(([name, t]) => ({ name, shape: t.shape.slice(), data: t.dataSync() as Float32Array }));
        thread.deltasSent.add(deltasId);
      }
      Atomics.store(thread.signal, 0, 0);
      thread.port.postMessage(req);
    });
    const out: number[][] = prompts.map(() => []);
    const mine = shares[this.threads.length];
    generateBatch(model, mine.map((r) => prompts[r]), { ...opts, maxNewTokens: mine.map((r) => budgets[r]) }).forEach((ids, i) => (out[mine[i]] = ids));
    const errors: string[] = [];
    this.threads.forEach((thread, t) => {
      while (Atomics.load(thread.signal, 0) === 0) Atomics.wait(thread.signal, 0, 0);
      const reply = receiveMessageOnPort(thread.port)?.message as PoolReply | undefined;
      if (reply === undefined || 'error' in reply) errors.push(reply === undefined ? 'no reply' : reply.error);
      else reply.ids.forEach((ids, i) => (out[shares[t][i]] = ids));
    });
    if (errors.length > 0) throw new InternalError(`generation worker failed: ${errors[0]}`);
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

  /** Prompt indices per thread: in order of length (then budget), dealt in turn, so each thread gets an equal share of every length. */
  private split(prompts: readonly number[][], budgets: number[]): number[][] {
    const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || budgets[a] - budgets[b] || a - b);
    const shares: number[][] = Array.from({ length: this.size }, () => []);
    order.forEach((r, k) => shares[k % this.size].push(r));
    return shares;
  }
}
