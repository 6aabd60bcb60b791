/**
 * One worker of MetaPrefetch (meta-prefetch.ts): its own tfjs backend, the model folder, the calling
 * thread's key statistics and the benchmark; answers { step } with that step's batch as arrays, made by the
 * same code the calling thread runs without workers (stepBatch).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../tensor/backend.js';
import { loadModelFolder } from '../model/folder.js';
import { HyperNet } from '../editor/mend/network.js';
import { batchArrays } from '../editor/mend/train.js';
import type { PrefetchReply, PrefetchWorkerData } from './meta-prefetch.js';
import { stepBatch, trainOperators, trainPools } from './meta-train.js';

const data = workerData as PrefetchWorkerData;

try {
  await initBackend();
  const loaded = await loadModelFolder(data.modelDir);
  const ctx = { model: loaded.model, tokenizer: loaded.tokenizer, stats: data.stats };
  const net = HyperNet.parse(data.network, 'network (meta-training worker)');
  const pools = trainPools(data.bench, data.opts);
  const operators = trainOperators(ctx, data.opts);
  parentPort!.on('message', (req: { step: number }) => {
    try {
      const batch = stepBatch(ctx, data.bench, pools, net, data.opts, operators, req.step);
      try {
        parentPort!.postMessage({ step: req.step, batch: batchArrays(batch) } satisfies PrefetchReply); // copied here, before the tensors go
      } finally {
        batch.dispose();
      }
    } catch (err) {
      parentPort!.postMessage({ error: (err as Error).message } satisfies PrefetchReply);
    }
  });
  parentPort!.postMessage({ ready: true } satisfies PrefetchReply);
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message } satisfies PrefetchReply);
}
