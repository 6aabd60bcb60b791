/**
 * One generation worker of GeneratePool (pool.ts): its own tfjs backend and copy of the model
 * folder; answers each request with decodeTree's ids and scores, then raises its signal so the
 * blocked caller wakes up. Deltas arrive with the first request of their id and replace the set held.
 */
import { tf } from '../tensor/tf.js';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { initBackend } from '../tensor/backend.js';
import { loadModelFolder } from './folder.js';
import { decodeTree } from './decode.js';
import type { Deltas } from './gpt2.js';
import type { PoolReply, PoolRequest } from './pool.js';

const { modelDir, port, signal } = workerData as { modelDir: string; port: MessagePort; signal: Int32Array };

try {
  await initBackend();
  const { model } = await loadModelFolder(modelDir);
  // One delta set at a time (the last one sent): eval sends a new set per measured set.
  let held: { id: number; deltas: Deltas } | undefined;
  port.on('message', (req: PoolRequest) => {
    let reply: PoolReply;
    try {
      if (req.deltasId !== undefined && req.deltas !== undefined) {
        if (held !== undefined) tf.dispose(Object.values(held.deltas));
        held = { id: req.deltasId, deltas: Object.fromEntries(req.deltas.map((d) => [d.name, tf.tensor(d.data, d.shape)])) };
      }
      const d = req.deltasId === undefined ? undefined : held?.id === req.deltasId ? held.deltas : undefined;
      if (req.deltasId !== undefined && d === undefined) throw new Error(`deltas ${req.deltasId} are not the ones this worker holds`);
      reply = decodeTree(model, req.gens, req.pairs, { stopIds: req.stopIds, deltas: d });
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
