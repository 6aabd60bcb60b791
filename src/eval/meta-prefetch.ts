/**
 * Meta-training on several threads by prefetching: a step's batch (sampleStep's edits, their rows
 * — a forward and backward of the base model per edit —, the solve operators, the base model's
 * locality distributions) depends only on the base model, the benchmark and the step's seed, never
 * on the network being trained. So worker threads prepare the next steps' batches while the
 * calling thread takes the current step's gradient, and the calling thread rebuilds each batch from
 * the arrays it is sent. Every thread runs the same code on the same inputs, so a run gives the
 * same bytes on any number of threads.
 */
import { Worker } from 'node:worker_threads';
import { InternalError } from '../errors.js';
import { workerScript } from '../util/worker-script.js';
import type { BatchArrays } from '../editor/mend/train.js';
import type { KeyStats } from '../editor/stats.js';
import type { BenchFile } from './bench.js';
import type { TrainEditorOptions } from './meta-train.js';

export interface PrefetchWorkerData {
  modelDir: string;
  bench: BenchFile;
  opts: TrainEditorOptions;
  /** The network's file bytes: its shape (layers, conditioning, instruction mode) decides the rows. */
  network: Uint8Array;
  /** The calling thread's key statistics (the solve operators are made from them). */
  stats: KeyStats;
}

export type PrefetchReply = { step: number; batch: BatchArrays } | { error: string } | { ready: true };

export class MetaPrefetch {
  private readonly waiting = new Map<number, Promise<BatchArrays>>();

  private constructor(private readonly workers: Worker[]) {}

  /** Starts `threads − 1` workers (each loads the model folder). */
  static async open(data: PrefetchWorkerData, threads: number): Promise<MetaPrefetch> {
    const script = workerScript(import.meta.url, 'meta-worker.js', 'meta-training worker');
    const workers = await Promise.all(
      Array.from({ length: Math.max(1, threads - 1) }, async () => {
        const worker = new Worker(script, { workerData: data });
        await new Promise<void>((resolve, reject) => {
          worker.once('message', (m: PrefetchReply) => ('ready' in m ? resolve() : reject(new InternalError(`meta-training worker: ${'error' in m ? m.error : 'no reply'}`))));
          worker.once('error', reject);
        });
        return worker;
      }),
    );
    return new MetaPrefetch(workers);
  }

  /** Asks for step k's batch (worker k mod workers), unless it is already asked for. */
  request(step: number): void {
    if (this.waiting.has(step)) return;
    const w = this.workers[step % this.workers.length];
    const batch = new Promise<BatchArrays>((resolve, reject) => {
      const onMessage = (m: PrefetchReply) => {
        if ('error' in m) return done(() => reject(new InternalError(`meta-training worker: ${m.error}`)));
        if ('step' in m && m.step === step) done(() => resolve(m.batch));
      };
      // a worker that dies (out of memory, a crash) fails the step instead of leaving it waiting
      const onError = (err: Error) => done(() => reject(new InternalError(`meta-training worker: ${err.message}`)));
      const onExit = (code: number) => done(() => reject(new InternalError(`meta-training worker exited (code ${code})`)));
      const done = (settle: () => void) => {
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
        settle();
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      w.postMessage({ step });
    });
    batch.catch(() => undefined); // a step asked for ahead and never taken (the run stopped) fails quietly
    this.waiting.set(step, batch);
  }

  /** Step k's batch (asked for now if it was not). */
  async take(step: number): Promise<BatchArrays> {
    this.request(step);
    const batch = await this.waiting.get(step)!;
    this.waiting.delete(step);
    return batch;
  }

  /** Threads working, the calling one included. */
  get size(): number {
    return this.workers.length + 1;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
