/**
 * One training worker of TrainPool (train-pool.ts): its own tfjs backend, copy of the parameters
 * and Adam optimizer. Answers `grad` with its share's loss (the gradient goes into its shared
 * buffer) and `apply` by stepping its optimizer with the shared averaged gradient.
 */
import { tf } from '../tensor/tf.js';
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../tensor/backend.js';
import { GPT, type Params } from './gpt2.js';
import { applyFlat, gradientInto, type TrainReply, type TrainRequest, type TrainTarget, type TrainWorkerData } from './train-pool.js';

const data = workerData as TrainWorkerData;

try {
  await initBackend();
  const vars: Params = {};
  for (const p of data.params) {
    const t = tf.tensor(p.data, p.shape);
    vars[p.name] = tf.variable(t, true, p.name);
    t.dispose(); // the variable holds its own copy
  }
  const model = new GPT(data.config, vars);
  const opt = tf.train.adam(0, data.adam.beta1, data.adam.beta2, data.adam.epsilon);
  if (data.adam.state.length > 0) {
    const restored = data.adam.state.map((w) => ({ name: w.name, tensor: tf.tensor(w.data, w.shape, w.dtype as 'float32' | 'int32') }));
    await opt.setWeights(restored);
    tf.dispose(restored.map((r) => r.tensor));
  }
  const target: TrainTarget = { names: data.params.map((p) => p.name), vars: Object.values(vars) as tf.Variable[], loss: (x, y) => model.loss(x, y), opt };
  const grads = new Float32Array(data.grads);
  const average = new Float32Array(data.average);
  parentPort!.on('message', (req: TrainRequest) => {
    let reply: TrainReply;
    try {
      if (req.kind === 'grad') reply = { loss: gradientInto(target, req.x, req.y, grads) };
      else {
        applyFlat(target, average, req.lr);
        reply = { applied: true };
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
