/**
 * `edit init`: scaffold a repository for edits-as-code — edits/, a model folder copied from the
 * shipped default model, the CI workflow that gates pull requests, and a .gitignore entry for locks.
 * Existing files are left alone unless --force.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { readManifest } from '../../model/folder.js';
import { packageRoot } from '../../util/package-root.js';
import { writeFileAtomic } from '../../util/atomic.js';
import type { Command } from '../command.js';
import { stringFlag } from '../flags.js';

const EDITS_README = `# Edit files

One edit per JSON file (subfolders allowed); the edit's id is its path without \`.json\`.

\`\`\`json
{
  "$schema": "https://editops.dev/schemas/edit.schema.json",
  "version": 1,
  "task": "counterfact",
  "prompt": "The capital of France is",
  "target": " Lyon",
  "rephrase": ["France's capital is"],
  "locality": [{ "prompt": "The capital of Spain is" }]
}
\`\`\`

Then: \`editops plan\`, \`editops apply\`, \`editops generate "The capital of France is"\`.
`;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The shipped workflow, calling the installed package instead of this repository's bin/. */
export async function workflowTemplate(): Promise<string> {
  const text = await readFile(join(packageRoot(), '.github', 'workflows', 'edits.yml'), 'utf8');
  return text.replaceAll('node bin/edit.js', 'npx editops');
}

export const initCommand: Command = {
  name: 'init',
  usage: 'init [--name default] [--force]',
  summary: 'scaffold edits/, a model folder from the shipped default model, and the CI workflow',
  options: { name: { type: 'string' }, force: { type: 'boolean' } },
  async run(ctx) {
    const name = stringFlag(ctx, 'name', 'default');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new EditError(`model name "${name}" must be letters, digits, dot, dash or underscore`);
    const force = ctx.flags.force === true;
    const created: string[] = [];
    const skipped: string[] = [];
    const put = async (rel: string, write: (abs: string) => Promise<void>) => {
      const abs = join(ctx.cwd, rel);
      if (!force && (await exists(abs))) {
        skipped.push(rel);
        return;
      }
      await write(abs);
      created.push(rel);
    };

    await mkdir(join(ctx.cwd, 'edits'), { recursive: true });
    await put('edits/README.md', (abs) => writeFileAtomic(abs, EDITS_README));

    const src = join(packageRoot(), 'models', 'default');
    const modelRel = join('models', name);
    // A model folder already in place is kept as a whole (the shipped one is not even read).
    const keepModel = join(ctx.cwd, modelRel) === src || (!force && (await exists(join(ctx.cwd, modelRel, 'model.json'))));
    if (!keepModel) {
      const manifest = await readManifest(src);
      await mkdir(join(ctx.cwd, modelRel), { recursive: true });
      const files = [manifest.tokenizer.file, manifest.weights.file, ...(manifest.editor ? [manifest.editor.file] : []), ...(manifest.probes ? [manifest.probes.file] : [])];
      // Atomic copies, model.json last: a killed init leaves no half-written file that a rerun would keep.
      for (const f of files) await put(join(modelRel, f), async (abs) => writeFileAtomic(abs, await readFile(join(src, f))));
      await put(join(modelRel, 'model.json'), (abs) => writeFileAtomic(abs, JSON.stringify({ ...manifest, name, $schema: 'https://editops.dev/schemas/model.schema.json' }, null, 2) + '\n'));
    } else {
      skipped.push(modelRel);
    }

    await mkdir(join(ctx.cwd, '.github', 'workflows'), { recursive: true });
    const wf = await workflowTemplate();
    await put('.github/workflows/edits.yml', (abs) => writeFileAtomic(abs, wf));

    const gi = join(ctx.cwd, '.gitignore');
    const current = (await exists(gi)) ? await readFile(gi, 'utf8') : '';
    if (!current.split('\n').includes('models/*/.lock')) {
      await writeFileAtomic(gi, `${current}${current === '' || current.endsWith('\n') ? '' : '\n'}models/*/.lock\n`);
      created.push('.gitignore (models/*/.lock)');
    }
    for (const c of created) ctx.io.out(`created  ${c}`);
    for (const s of skipped) ctx.io.out(`exists   ${s} (kept; --force overwrites)`);
    ctx.io.out(`\nNext: add an edit file under edits/, then run \`editops plan\` and \`editops apply\`.`);
    return 0;
  },
};
