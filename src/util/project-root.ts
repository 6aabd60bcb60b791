/**
 * The project root: the folder edit ids, model paths, plans and commits are relative to. Found the
 * way git finds its work tree, by walking up from the working directory, so a command run from
 * `edits/capitals/` acts on the same project as one run from the top.
 *
 * Walking up from the working directory to the top of the git work tree (`.git`, a folder or a
 * file in a linked worktree), the root is the nearest folder that holds
 *   - the model folder: `<model>/model.json` (`--model`, default `models/default`), else
 *   - the edits folder: `<edits>/` (`--dir`, default `edits`), else
 *   - `.git`: the top of the work tree.
 * A model folder further up wins over an edits folder nearer by (an `edits/` folder of docs or
 * examples inside a project does not make a second project). The walk stops at `.git`: it never
 * leaves the repository it starts in, so a folder with no project and no repository above it is an
 * error, not an empty project. An absolute `--model` or `--dir`
 * is not looked for (it names itself); the other markers still apply, and when none is found an
 * absolute model folder that exists makes the working directory the root (`edit generate --model
 * /abs/path` or `edit model stats --model /abs/path` need no project around them).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { EditError } from '../errors.js';

export const DEFAULT_MODEL_DIR = 'models/default';
export const DEFAULT_EDITS_DIR = 'edits';

export interface RootMarkers {
  /** The model folder, relative to the root (`--model`). */
  model?: string;
  /** The edits folder, relative to the root (`--dir`). */
  edits?: string;
}

export function findProjectRoot(cwd: string, markers: RootMarkers = {}): string {
  const model = markers.model ?? DEFAULT_MODEL_DIR;
  const edits = markers.edits ?? DEFAULT_EDITS_DIR;
  const start = resolve(cwd);
  let withEdits: string | undefined;
  for (let dir = start; ; dir = dirname(dir)) {
    if (!isAbsolute(model) && existsSync(join(dir, model, 'model.json'))) return dir;
    if (withEdits === undefined && !isAbsolute(edits) && isDirectory(join(dir, edits))) withEdits = dir;
    if (existsSync(join(dir, '.git'))) return withEdits ?? dir;
    if (dirname(dir) === dir) break;
  }
  if (withEdits !== undefined) return withEdits;
  if (isAbsolute(model) && existsSync(join(model, 'model.json'))) return start;
  throw new EditError(`no editops project here: no ${model}/model.json, no ${edits}/ folder and no git repository in this folder or any folder above it`, {
    file: start,
    hint: 'run the command inside your project (or `editops init` to create one here)',
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
