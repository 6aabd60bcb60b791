import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { generate } from '../../model/gpt2.js';
import { EditError } from '../../errors.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, numberFlag } from '../flags.js';

export const generateCommand: Command = {
  name: 'generate',
  usage: 'generate "<prompt>" [--max-tokens N] [--temperature T]',
  summary: "print the model's continuation of a prompt (greedy unless --temperature > 0)",
  options: {
    ...MODEL_OPTION,
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    'no-cache': { type: 'boolean' },
    'no-stop': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(ctx) {
    if (ctx.args.length !== 1) throw new EditError('generate takes one prompt, in quotes: edit generate "The capital of France is"');
    const prompt = ctx.args[0];
    const maxTokens = numberFlag(ctx, 'max-tokens', 16, { min: 1, integer: true });
    const temperature = numberFlag(ctx, 'temperature', 0, { min: 0 });
    const topK = numberFlag(ctx, 'top-k', 0, { min: 0, integer: true });
    const seed = numberFlag(ctx, 'seed', 0, { integer: true });
    const backend = await initBackend();
    const loaded = await loadModelFolder(modelDir(ctx));
    const { tokenizer, model } = loaded;
    const ids = tokenizer.encode(prompt);
    if (ids.length === 0) throw new EditError('the prompt is empty');
    if (ids.length >= model.config.nPositions) {
      throw new EditError(`the prompt is ${ids.length} tokens; this model's context is ${model.config.nPositions}`);
    }
    // Sentences in the training corpus end at a newline; stop there unless asked not to.
    const stopIds = ctx.flags['no-stop'] === true ? [tokenizer.eosId] : [tokenizer.eosId, ...newlineIds(tokenizer)];
    const t0 = performance.now();
    const out = generate(model, ids, { maxNewTokens: maxTokens, temperature, topK, seed, stopIds, noCache: ctx.flags['no-cache'] === true });
    const ms = performance.now() - t0;
    const completion = tokenizer.decode(out);
    model.dispose();
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ prompt, completion, tokens: out.length, promptTokens: ids.length, backend, ms: Math.round(ms), model: loaded.manifest.name }));
      return 0;
    }
    ctx.io.out(`${prompt}${completion}`);
    ctx.io.err(`${out.length} tokens in ${ms.toFixed(0)} ms (${out.length > 0 ? (ms / out.length).toFixed(1) : '0'} ms/token) on ${backend}, model ${loaded.manifest.name}`);
    return 0;
  },
};

function newlineIds(tokenizer: { vocabSize: number; idToToken(id: number): string | undefined; decode(ids: number[]): string }): number[] {
  const out: number[] = [];
  for (let i = 0; i < tokenizer.vocabSize; i++) if (tokenizer.decode([i]).includes('\n')) out.push(i);
  return out;
}
