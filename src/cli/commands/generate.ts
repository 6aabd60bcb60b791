import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { generate } from '../../model/gpt2.js';
import { sentenceStopIds } from '../../model/tokenizer.js';
import { EditError } from '../../errors.js';
import { join } from 'node:path';
import { tf } from '../../tensor/tf.js';
import type { Deltas } from '../../model/gpt2.js';
import { checkDrift, readState } from '../../state/state.js';
import type { Delta } from '../../model/weight-change.js';
import { driftError, readSetDelta, relativeDrift } from '../../apply/workspace.js';
import { toDeltaTensors } from '../../model/delta-tensors.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, numberFlag, projectRoot } from '../flags.js';

export const generateCommand: Command = {
  name: 'generate',
  args: '"<prompt>"',
  summary: "print the edited model's continuation of a prompt (greedy unless --temperature > 0); --base: before the edits",
  options: {
    ...MODEL_OPTION,
    base: { type: 'boolean', description: 'use the base weights, before any edit' },
    'max-tokens': { type: 'string', value: '<n>', description: 'generate at most n tokens (default 16)' },
    temperature: { type: 'string', value: '<t>', description: 'sample at temperature t (default 0: greedy)' },
    'top-k': { type: 'string', value: '<k>', description: 'sample only among the k likeliest tokens (default 0: all)' },
    seed: { type: 'string', value: '<n>', description: 'the sampling seed (default 0)' },
    'no-cache': { type: 'boolean', description: 'recompute the whole prefix each step instead of using the KV cache (slower)' },
    'no-stop': { type: 'boolean', description: 'do not stop at the end of a sentence' },
    json: { type: 'boolean', description: 'print the completion, timing and applied edits as JSON' },
  },
  examples: ['edit generate "The capital of France is"', 'edit generate "The capital of France is" --base'],
  async run(ctx) {
    if (ctx.args.length !== 1) throw new EditError('generate takes one prompt, in quotes: edit generate "The capital of France is"');
    const prompt = ctx.args[0];
    const maxTokens = numberFlag(ctx, 'max-tokens', 16, { min: 1, integer: true });
    const temperature = numberFlag(ctx, 'temperature', 0, { min: 0 });
    const topK = numberFlag(ctx, 'top-k', 0, { min: 0, integer: true });
    const seed = numberFlag(ctx, 'seed', 0, { integer: true });
    const backend = await initBackend();
    const root = projectRoot(ctx);
    const dir = join(root, modelDir(ctx, root));
    const loaded = await loadModelFolder(dir);
    const { tokenizer, model } = loaded;
    // The effective weights (base + the applied set's solved change), as plan/apply/verify judge them; --base: the pre-edit model.
    let delta: Delta | null = null;
    let applied: string[] = [];
    if (ctx.flags.base !== true) {
      const { state } = await readState(dir, loaded.manifest);
      // Stray delta files (a killed apply's) change no weight: only real drift stops generate.
      const { drift } = relativeDrift(root, await checkDrift(dir, loaded.manifest, state));
      if (drift.length > 0) {
        model.dispose();
        throw driftError(drift);
      }
      delta = await readSetDelta(root, modelDir(ctx, root), state);
      applied = Object.keys(state.edits).sort();
    }
    const deltas: Deltas = toDeltaTensors(delta, loaded);
    const ids = tokenizer.encode(prompt);
    if (ids.length === 0) throw new EditError('the prompt is empty');
    if (ids.length >= model.config.nPositions) {
      throw new EditError(`the prompt is ${ids.length} tokens; this model's context is ${model.config.nPositions}`);
    }
    // Sentences in the training corpus end at a newline; stop there unless asked not to.
    const stopIds = ctx.flags['no-stop'] === true ? [tokenizer.eosId] : sentenceStopIds(tokenizer, model.config.vocabSize);
    const t0 = performance.now();
    const out = generate(model, ids, { maxNewTokens: maxTokens, temperature, topK, seed, stopIds, noCache: ctx.flags['no-cache'] === true, deltas });
    const ms = performance.now() - t0;
    const completion = tokenizer.decode(out);
    tf.dispose(Object.values(deltas));
    model.dispose();
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ prompt, completion, tokens: out.length, promptTokens: ids.length, backend, ms: Math.round(ms), model: loaded.manifest.name, edits: applied }));
      return 0;
    }
    ctx.io.out(`${prompt}${completion}`);
    const edited = ctx.flags.base === true ? 'base weights (--base)' : `${applied.length} applied edit${applied.length === 1 ? '' : 's'}`;
    ctx.io.err(`${out.length} tokens in ${ms.toFixed(0)} ms (${out.length > 0 ? (ms / out.length).toFixed(1) : '0'} ms/token) on ${backend}, model ${loaded.manifest.name}, ${edited}`);
    return 0;
  },
};
