/**
 * One worker of MetaPool (meta-pool.ts): its own tfjs backend, the model folder and a copy of the
 * network. Answers `rows` with its edits' rows, and `grad` with its share's loss parts after
 * writing the share's gradient into its shared buffer (network values read from the shared
 * parameter buffer first).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { hyperRows } from './editor.js';
import type { MetaReply, MetaRequest, MetaWorkerData } from './meta-pool.js';
import { HyperNet, instructionMode } from './network.js';
import { setTrainable, shareBatch, shareGradient } from './train.js';

const data = workerData as MetaWorkerData;

try {
  await initBackend();
  const { model, tokenizer } = await loadModelFolder(data.modelDir);
  const net = HyperNet.parse(data.network, 'network (meta-training worker)');
  const params = new Float32Array(data.params);
  const grads = new Float32Array(data.grads);
  const wrap = instructionMode(net.shape) === 'wrap';
  parentPort!.on('message', (req: MetaRequest) => {
    let reply: MetaReply;
    try {
      if (req.kind === 'rows') reply = { rows: [...hyperRows(model, tokenizer, net.shape.layers, req.edits, net.shape.condDim, wrap)] };
      else {
        setTrainable(net, params);
        const batch = shareBatch(model, tokenizer, req.solve, req.pairs, req.locality);
        try {
          reply = shareGradient(model, net, batch, data.settings, req.factor, grads);
        } finally {
          batch.dispose();
        }
      }
    } catch (err) {
      reply = { error: (err as Error).message };
    }
    parentPort!.postMessage(reply);
  });
  parentPort!.postMessage({ ready: true });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message });
}
