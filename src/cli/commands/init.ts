/**
 * `edit init`: scaffold a repository for edits-as-code — edits/, a model folder copied from the
 * shipped default model, the CI workflow that gates pull requests, and .gitignore entries for locks
 * and node_modules. Existing files are left alone unless --force. Everything it writes must work in
 * a project that installed editops from npm: hints say `npx editops …`, `$schema` points into
 * node_modules/editops.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { EditError } from '../../errors.js';
import { insideFolder, manifestFileRefs, readManifest, type ModelManifest } from '../../model/folder.js';
import { packageRoot } from '../../util/package-root.js';
import { writeFileAtomic } from '../../util/atomic.js';
import type { Command } from '../command.js';
import { stringFlag } from '../flags.js';

const editsReadme = (schema: string) => `# Edit files

One edit per JSON file (subfolders allowed); the edit's id is its path without \`.json\`.

\`\`\`json
{
  "$schema": "${schema}",
  "version": 1,
  "task": "counterfact",
  "prompt": "The capital of France is",
  "target": " Lyon",
  "rephrase": ["France's capital is"],
  "locality": [{ "prompt": "The capital of Spain is" }]
}
\`\`\`

\`$schema\` (optional) lets an editor check the file against the installed package's schema; the path
is relative to the edit file, so an edit in a subfolder (\`edits/capitals/france.json\`) needs one more \`../\`.

Then: \`npx editops validate\`, \`npx editops plan\`, \`npx editops apply\`,
\`npx editops generate "The capital of France is"\` (\`npx editops help <command>\` for the flags).
`;

/**
 * `$schema` for a file in `fromDir` (relative to the project `cwd`): the running package's schema when
 * it is inside the project (node_modules/editops, or this repository itself), else where
 * `npm install editops` puts it — never a path into an npx cache or a global install.
 */
export function schemaRef(cwd: string, fromDir: string, schema: string): string {
  const installed = join(packageRoot(), 'schemas', schema);
  const rel = relative(cwd, installed);
  const target = rel.startsWith('..') || isAbsolute(rel) ? join(cwd, 'node_modules', 'editops', 'schemas', schema) : installed;
  return relative(join(cwd, fromDir), target).split(sep).join('/');
}

/** Every file a manifest names, each checked to stay inside the folder. */
function manifestFiles(manifest: ModelManifest, dir: string): string[] {
  return manifestFileRefs(manifest).map(({ pointer, file }) => {
    insideFolder(dir, file, `${pointer}/file`);
    return file;
  });
}

/** The .gitattributes line init makes sure of: no end-of-line conversion in model folders. */
const BINARY_MODELS = 'models/** -text';

/** Lines init makes sure .gitignore has: an apply's lock, and the installed packages. */
const IGNORED = [{ line: 'models/*/.lock', also: [] }, { line: 'node_modules/', also: ['node_modules', '/node_modules', '/node_modules/'] }];

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The shipped workflow for a project: it calls the installed package instead of this repository's
 * bin/, and every command names the model folder when init made one other than models/default.
 */
export async function workflowTemplate(modelRel = join('models', 'default')): Promise<string> {
  const text = await readFile(join(packageRoot(), '.github', 'workflows', 'edits.yml'), 'utf8');
  const model = modelRel === join('models', 'default') ? '' : ` --model ${modelRel.split(sep).join('/')}`;
  return text.replace(/node bin\/edit\.js (\w+)/g, (_, cmd: string) => `npx editops ${cmd}${model}`);
}

export const initCommand: Command = {
  name: 'init',
  args: '',
  summary: 'scaffold edits/, a model folder from the shipped default model, and the CI workflow',
  options: {
    name: { type: 'string', value: '<name>', description: 'the model folder to create, models/<name> (default: default)' },
    force: { type: 'boolean', description: 'overwrite files that already exist' },
  },
  examples: ['npx edit init', 'npx edit init --name support-bot'],
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
    await put('edits/README.md', (abs) => writeFileAtomic(abs, editsReadme(schemaRef(ctx.cwd, 'edits', 'edit.schema.json'))));

    const src = join(packageRoot(), 'models', 'default');
    const modelRel = join('models', name);
    // A model folder already in place is kept as a whole (the shipped one is not even read).
    const keepModel = join(ctx.cwd, modelRel) === src || (!force && (await exists(join(ctx.cwd, modelRel, 'model.json'))));
    if (!keepModel) {
      const manifest = await readManifest(src);
      await mkdir(join(ctx.cwd, modelRel), { recursive: true });
      const files = manifestFiles(manifest, src);
      // Atomic copies, model.json last: a killed init leaves no half-written file that a rerun would keep.
      for (const f of files) await put(join(modelRel, f), async (abs) => writeFileAtomic(abs, await readFile(join(src, f))));
      await put(join(modelRel, 'model.json'), (abs) => writeFileAtomic(abs, JSON.stringify({ ...manifest, name, $schema: schemaRef(ctx.cwd, modelRel, 'model.schema.json') }, null, 2) + '\n'));
    } else {
      skipped.push(modelRel);
    }

    await mkdir(join(ctx.cwd, '.github', 'workflows'), { recursive: true });
    const wf = await workflowTemplate(modelRel);
    await put('.github/workflows/edits.yml', (abs) => writeFileAtomic(abs, wf));

    const gi = join(ctx.cwd, '.gitignore');
    const current = (await exists(gi)) ? await readFile(gi, 'utf8') : '';
    const have = new Set(current.split('\n').map((l) => l.trim()));
    const missing = IGNORED.filter((i) => ![i.line, ...i.also].some((l) => have.has(l))).map((i) => i.line);
    if (missing.length > 0) {
      await writeFileAtomic(gi, `${current}${current === '' || current.endsWith('\n') ? '' : '\n'}${missing.join('\n')}\n`);
      created.push(`.gitignore (${missing.join(', ')})`);
    }
    // Model files are hashed byte for byte (model.json, state.json): git must never rewrite their line endings (core.autocrlf).
    const ga = join(ctx.cwd, '.gitattributes');
    const attrs = (await exists(ga)) ? await readFile(ga, 'utf8') : '';
    if (!attrs.split('\n').some((l) => l.trim() === BINARY_MODELS)) {
      await writeFileAtomic(ga, `${attrs}${attrs === '' || attrs.endsWith('\n') ? '' : '\n'}${BINARY_MODELS}\n`);
      created.push(`.gitattributes (${BINARY_MODELS})`);
    }
    for (const c of created) ctx.io.out(`created  ${c}`);
    for (const s of skipped) ctx.io.out(`exists   ${s} (kept; --force overwrites)`);
    const model = name === 'default' ? '' : ` --model ${modelRel.split(sep).join('/')}`;
    ctx.io.out(`\nNext: add an edit file under edits/ (see edits/README.md), then run \`npx editops plan${model}\` and \`npx editops apply${model}\`, and commit what init created.`);
    return 0;
  },
};
