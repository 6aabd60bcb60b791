/**
 * One generation worker of GeneratePool (pool.ts): its own tfjs backend and copy of the model
 * folder; answers each request with generateBatch's ids or scorePairs' numbers, then raises its signal so the blocked
 * caller wakes up. Deltas arrive once per id and stay until the worker ends.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { initBackend } from '../tensor/backend.js';
import { loadModelFolder } from './folder.js';
import { generateBatch, type Deltas } from './gpt2.js';
import type { PoolReply, PoolRequest } from './pool.js';
import { scorePairs } from './score.js';

const { modelDir, port, signal } = workerData as { modelDir: string; port: MessagePort; signal: Int32Array };

try {
  await initBackend();
  const { model } = await loadModelFolder(modelDir);
  const deltas = new Map<number, Deltas>();
  port.on('message', (req: PoolRequest) => {
    let reply: PoolReply;
    try {
      if (req.deltasId !== undefined && req.deltas !== undefined) {
        deltas.set(req.deltasId, Object.fromEntries(req.deltas.map((d) => [d.name, tf.tensor(d.data, d.shape)])));
      }
      const d = req.deltasId === undefined ? undefined : deltas.get(req.deltasId);
      if (req.deltasId !== undefined && d === undefined) throw new Error(`deltas ${req.deltasId} were never sent`);
      reply = req.kind === 'generate' ? { ids: generateBatch(model, req.prompts, { maxNewTokens: req.budgets, stopIds: req.stopIds, deltas: d }) } : { scores: scorePairs(model, req.pairs, d) };
    } catch (err) {
      reply = { error: (err as Error).message };
    }
    port.postMessage(reply);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
  parentPort!.postMessage({ ready: true });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message });
}
