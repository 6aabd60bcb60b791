import { readFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { exportHfFolder, importHfFolder } from '../../model/hf.js';
import * as tf from '@tensorflow/tfjs';
import { EditError } from '../../errors.js';
import type { Deltas, Params } from '../../model/gpt2.js';
import { toDeltaTensors } from '../../apply/apply-plan.js';
import { driftError, readSetDelta, relativeDrift } from '../../apply/workspace.js';
import { checkDrift, readState } from '../../state/state.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, projectRoot, stringFlag } from '../flags.js';

export const modelCommand: Command = {
  name: 'model',
  args: 'import <hf-dir> | export <out-dir>',
  summary: 'import a Hugging Face GPT-2 folder as a model folder, or export the effective weights as one',
  options: {
    ...MODEL_OPTION,
    name: { type: 'string', value: '<name>', description: "import: the new model's name (default: the folder's name)" },
    out: { type: 'string', value: '<dir>', description: 'import: where to write the model folder (default: models/<name>)' },
    base: { type: 'boolean', description: 'export: the base weights, without the applied edits' },
  },
  examples: ['edit model import ./gpt2 --name gpt2', 'edit model export ./exported', 'edit model export ./unedited --base'],
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
      ctx.io.out(`imported ${path} → ${dest} (GPT-2, ${m.config.nLayer} layers, d=${m.config.nEmbd}, vocab ${m.config.vocabSize}; editable: ${m.editableLayers.join(', ')})`);
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
    throw new EditError(`unknown subcommand "model ${sub ?? ''}"; use "model import <dir>" or "model export <dir>"`);
  },
};
