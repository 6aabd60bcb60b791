/**
 * Data-parallel meta-training on several threads (tfjs-wasm runs on one thread per backend). Each
 * worker loads the model folder and a copy of the network. A step:
 *   1. the batch's edits are split in order between the threads; each computes its edits' rows
 *      (hyperRows: a forward and backward of the base model per edit) and the calling thread
 *      stacks them in edit order and solves the batch's operators (meta-train.ts, as on one thread);
 *   2. the loss's sequences (edit and rephrase prompts, locality text) are split in order; each
 *      thread computes, on the whole batch's ΔW, the gradient of its share weighted by the share's
 *      fraction of the batch's tokens, into its own shared buffer (shareGradient);
 *   3. the calling thread adds the shares in a fixed order, clips and steps its optimizers
 *      (MetaTrainer.applyGradient) and writes the new values into the shared parameter buffer the
 *      workers read at the next step.
 * For a fixed thread count a run is reproducible; it is not the one-thread run bit for bit (the
 * batched forwards pad differently and the sums are grouped differently).
 */
import { Worker } from 'node:worker_threads';
import { InternalError } from '../../errors.js';
import { workerScript } from '../../util/worker-script.js';
import type { EditRequest, EditRows } from '../editor.js';
import type { HyperNet } from './network.js';
import { getTrainable, trainableSize, type MetaSettings, type SolveArrays } from './train.js';

export interface MetaWorkerData {
  modelDir: string;
  /** The network's file bytes (shape and initial values; the values are overwritten from `params`). */
  network: Uint8Array;
  settings: Pick<MetaSettings, 'cEdit' | 'cLoc'>;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

export type MetaRequest =
  | { kind: 'rows'; edits: EditRequest[] }
  | { kind: 'grad'; solve: SolveArrays; pairs: Array<{ prompt: string; completion: string }>; locality: string[]; factor: { edit: number; loc: number } };

export type MetaReply = { rows: Array<[string, EditRows]> } | { loss: number; nll: number; kl: number } | { error: string };

type Parts = { loss: number; nll: number; kl: number };

/** `items` in `parts` contiguous shares, in order, sizes differing by at most one. */
export function shares<T>(items: readonly T[], parts: number): T[][] {
  return Array.from({ length: parts }, (_, k) => items.slice(Math.floor((k * items.length) / parts), Math.floor(((k + 1) * items.length) / parts)));
}

export class MetaPool {
  private constructor(
    private readonly workers: Worker[],
    private readonly params: Float32Array,
    private readonly grads: Float32Array[],
  ) {}

  /** Starts `threads − 1` workers on `modelDir` with copies of `net` (the calling thread is the last share). */
  static async open(modelDir: string, net: HyperNet, settings: Pick<MetaSettings, 'cEdit' | 'cLoc'>, threads: number): Promise<MetaPool> {
    const size = trainableSize(net);
    const params = new SharedArrayBuffer(size * 4);
    getTrainable(net, new Float32Array(params));
    const network = net.serialize();
    const script = workerScript(import.meta.url, 'meta-worker.js', 'meta-training worker');
    const bufs: SharedArrayBuffer[] = [];
    const workers = await Promise.all(
      Array.from({ length: Math.max(0, threads - 1) }, async () => {
        const grads = new SharedArrayBuffer(size * 4);
        bufs.push(grads);
        const data: MetaWorkerData = { modelDir, network, settings: { cEdit: settings.cEdit, cLoc: settings.cLoc }, params, grads };
        const worker = new Worker(script, { workerData: data });
        await new Promise<void>((resolve, reject) => {
          worker.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new InternalError(`meta-training worker: ${m.error}`))));
          worker.once('error', reject);
        });
        return worker;
      }),
    );
    return new MetaPool(workers, new Float32Array(params), bufs.map((b) => new Float32Array(b)));
  }

  /** Threads training, the calling one included. */
  get size(): number {
    return this.workers.length + 1;
  }

  /** Rows of every edit, in edit order: the workers take the first shares, `mine` computes the last. */
  async rows(edits: readonly EditRequest[], mine: (edits: EditRequest[]) => Array<[string, EditRows]>): Promise<Array<[string, EditRows]>> {
    const parts = shares(edits, this.size);
    const replies = this.workers.map((w, t) => this.ask(w, { kind: 'rows', edits: parts[t] }));
    const own = mine(parts[this.size - 1]);
    const theirs = (await Promise.all(replies)).map((r) => (r as { rows: Array<[string, EditRows]> }).rows);
    return [...theirs.flat(), ...own];
  }

  /**
   * Every thread's share of the gradient, added in thread order (the calling thread's last) into a
   * new array; `mine` computes the calling thread's share into the array it is given.
   */
  async gradient(solve: SolveArrays, pairs: Array<Array<{ prompt: string; completion: string }>>, locality: string[][], factors: Array<{ edit: number; loc: number }>, mine: (out: Float32Array) => Parts): Promise<{ flat: Float32Array; parts: Parts }> {
    const replies = this.workers.map((w, t) => this.ask(w, { kind: 'grad', solve, pairs: pairs[t], locality: locality[t], factor: factors[t] }));
    const own = new Float32Array(this.params.length);
    const mineParts = mine(own);
    const got = (await Promise.all(replies)) as Parts[];
    const flat = new Float32Array(this.params.length);
    for (const g of [...this.grads, own]) for (let i = 0; i < flat.length; i++) flat[i] += g[i];
    const parts = [...got, mineParts].reduce((a, p) => ({ loss: a.loss + p.loss, nll: a.nll + p.nll, kl: a.kl + p.kl }), { loss: 0, nll: 0, kl: 0 });
    return { flat, parts };
  }

  /** The network's values after a step, for the workers' next one. */
  publish(net: HyperNet): void {
    getTrainable(net, this.params);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private ask(w: Worker, req: MetaRequest): Promise<MetaReply> {
    return new Promise((resolve, reject) => {
      w.once('message', (m: MetaReply) => ('error' in m ? reject(new InternalError(`meta-training worker: ${m.error}`)) : resolve(m)));
      w.postMessage(req);
    });
  }
}
