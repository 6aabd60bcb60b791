import { innerDim } from '../../model/config.js';
import { readFile } from 'node:fs/promises';
import { join, basename, resolve } from 'node:path';
import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { computeKeyStats, saveKeyStats, STATS_FILE } from '../../editor/stats.js';
import { editedLayers, editorSettings } from '../../editor/settings.js';
import { exportHfFolder, importHfFolder } from '../../model/hf.js';
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import type { Deltas, Params } from '../../model/gpt2.js';
import { toDeltaTensors } from '../../model/delta-tensors.js';
import { driftError, readSetDelta, relativeDrift } from '../../apply/workspace.js';
import { checkDrift, readState } from '../../state/state.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, projectRoot, stringFlag } from '../flags.js';

export const modelCommand: Command = {
  name: 'model',
  args: 'import <hf-dir> | export <out-dir> | stats',
  summary: 'import a Hugging Face GPT-2 folder as a model folder, export the effective weights as one, or compute the key statistics the joint editor needs',
  options: {
    ...MODEL_OPTION,
    name: { type: 'string', value: '<name>', description: "import: the new model's name (default: the folder's name)" },
    out: { type: 'string', value: '<dir>', description: 'import: where to write the model folder (default: models/<name>)' },
    base: { type: 'boolean', description: 'export: the base weights, without the applied edits' },
    text: { type: 'string', value: '<file>', description: 'stats: running text, one passage per line (every token position counts)' },
    prompts: { type: 'string', value: '<file>', description: "stats: fact prompts cut before the answer, one per line (their last token counts; default: the model's known facts)" },
    'prompt-weight': { type: 'string', value: '<w>', description: 'stats: weight of the prompts against the text (default 5, as the shipped model)' },
  },
  examples: ['edit model import ./gpt2 --name gpt2', 'edit model stats --model models/gpt2 --text corpus.txt', 'edit model export ./exported', 'edit model export ./unedited --base'],
  async run(ctx) {
    const [sub, path] = ctx.args;
    if (sub === 'import') {
      if (path === undefined) throw new EditError('usage: edit model import <hf-dir> [--name N] [--out models/N]');
      const name = stringFlag(ctx, 'name', basename(path.replace(/\/+$/, '')) || 'imported');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new EditError(`model name "${name}" must be letters, digits, dot, dash or underscore`);
      const dest = stringFlag(ctx, 'out', join('models', name));
      const backend = await initBackend();
      const m = await importHfFolder(path, dest, name);
      ctx.io.err(`backend: ${backend}`);
      ctx.io.out(`imported ${path} → ${dest} (GPT-2, ${m.config.nLayer} layers, d=${m.config.nEmbd}, MLP ${innerDim(m.config)}, vocab ${m.config.vocabSize}; editable: ${m.editableLayers.join(', ')})`);
      return 0;
    }
    if (sub === 'export') {
      if (path === undefined) throw new EditError('usage: edit model export <out-dir> [--model models/default]');
      const backend = await initBackend();
      const root = projectRoot(ctx);
      const rel = modelDir(ctx, root);
      const loaded = await loadModelFolder(join(root, rel));
      // The effective weights (base + the applied set's change), the ones plan/apply/verify judge; --base: the unedited model.
      let params: Params = loaded.model.params;
      let deltas: Deltas = {};
      let applied = 0;
      if (ctx.flags.base !== true) {
        const { state } = await readState(loaded.dir, loaded.manifest);
        const { drift } = relativeDrift(root, await checkDrift(loaded.dir, loaded.manifest, state));
        if (drift.length > 0) {
          loaded.model.dispose();
          throw driftError(drift);
        }
        deltas = toDeltaTensors(await readSetDelta(root, rel, state), loaded);
        params = { ...params };
        for (const [name, d] of Object.entries(deltas)) params[name] = tf.add(loaded.model.params[name], d);
        applied = Object.keys(state.edits).length;
      }
      const tokBytes = await readFile(join(loaded.dir, loaded.manifest.tokenizer.file));
      await exportHfFolder(params, loaded.manifest, tokBytes, loaded.tokenizer.eosId, path);
      for (const name of Object.keys(deltas)) params[name].dispose();
      tf.dispose(Object.values(deltas));
      loaded.model.dispose();
      ctx.io.err(`backend: ${backend}`);
      ctx.io.out(`exported ${loaded.dir} → ${path} (config.json, model.safetensors, tokenizer.json): ${ctx.flags.base === true ? 'base weights (--base)' : `effective weights, ${applied} applied edit${applied === 1 ? '' : 's'}`}`);
      return 0;
    }
    if (sub === 'stats') {
      const root = projectRoot(ctx);
      const rel = modelDir(ctx, root);
      const textFile = stringFlag(ctx, 'text');
      if (textFile === undefined) throw new EditError('usage: edit model stats --text <file> [--prompts <file>] [--prompt-weight 5] [--model models/default]', { hint: 'the text is what the model normally reads: its keys are what the joint solve must not disturb' });
      const weight = Number(stringFlag(ctx, 'prompt-weight', '5'));
      if (!Number.isFinite(weight) || weight < 0) throw new EditError(`--prompt-weight must be a number ≥ 0 (got ${JSON.stringify(stringFlag(ctx, 'prompt-weight'))})`);
      const lines = async (file: string) => (await readFile(resolve(ctx.cwd, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new EditError(`cannot read: ${err.code ?? err.message}`, { file });
      })).split(/\r?\n/).filter((l) => l.trim() !== '');
      const texts = await lines(textFile);
      const backend = await initBackend();
      ctx.io.err(`backend: ${backend}`);
      const loaded = await loadModelFolder(join(root, rel));
      try {
        const promptsFile = stringFlag(ctx, 'prompts');
        const prompts = promptsFile !== undefined ? await lines(promptsFile) : (loaded.knownFacts ?? []).map((f) => f.prompt);
        if (texts.length === 0) throw new EditError('the text file has no non-empty line', { file: textFile });
        const settings = editorSettings(loaded.manifest, 'memit');
        const layers = editedLayers(settings, loaded.manifest.editableLayers);
        const stats = computeKeyStats(loaded.model, loaded.tokenizer, layers, { texts, prompts, promptWeight: weight });
        await saveKeyStats(loaded.dir, stats, { texts: texts.length, prompts: prompts.length, promptWeight: weight }, { command: 'edit model stats', texts: texts.length, prompts: prompts.length, promptWeight: weight });
        ctx.io.out(`key statistics of ${layers.join(', ')} from ${texts.length} lines of text + ${prompts.length} prompts ×${weight} → ${join(rel, STATS_FILE)} (named in model.json)`);
        const { state } = await readState(loaded.dir);
        if (Object.keys(state.edits).length > 0) ctx.io.err('model.json changed: run `edit apply --refresh` to solve the applied edits again under the new statistics');
      } finally {
        loaded.model.dispose();
      }
      return 0;
    }
    throw new EditError(`unknown subcommand "model ${sub ?? ''}"; use "model import <dir>", "model export <dir>" or "model stats --text <file>"`);
  },
};
