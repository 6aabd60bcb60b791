import { readFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { initBackend } from '../../tensor/backend.js';
import { loadModelFolder } from '../../model/folder.js';
import { exportHfFolder, importHfFolder } from '../../model/hf.js';
import { EditError } from '../../errors.js';
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
  },
  examples: ['edit model import ./gpt2 --name gpt2', 'edit model export ./exported'],
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
      const loaded = await loadModelFolder(join(root, modelDir(ctx, root)));
      const tokBytes = await readFile(join(loaded.dir, loaded.manifest.tokenizer.file));
      await exportHfFolder(loaded.model.params, loaded.manifest, tokBytes, loaded.tokenizer.eosId, path);
      loaded.model.dispose();
      ctx.io.err(`backend: ${backend}`);
      ctx.io.out(`exported ${loaded.dir} → ${path} (config.json, model.safetensors, tokenizer.json)`);
      return 0;
    }
    throw new EditError(`unknown subcommand "model ${sub ?? ''}"; use "model import <dir>" or "model export <dir>"`);
  },
};
