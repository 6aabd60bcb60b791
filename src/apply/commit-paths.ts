/**
 * What an apply commits besides the files it wrote (deltas, state.json): the files the new state
 * depends on, so that a clone of the commit plans "No changes". In a fresh project `init` leaves the
 * model folder and the edit files untracked; committing only the deltas would give a clone a state
 * whose edits plan as destroys and whose base is missing.
 *
 * The policy: of these, exactly the ones that differ from HEAD —
 *   - the model folder's model.json and every file it names (tokenizer, base weights, editor, …):
 *     state.json binds their hashes (apply refused them if they had drifted), and a clone needs
 *     the rest (a knowledge report) to be the same model folder;
 *   - the edit file of every edit the new state holds, when its content is the applied one (an
 *     edit file changed after it was applied, or left out by --target, stays as the user has it);
 *   - the edit file of every destroyed edit: its removal.
 * Nothing else: not edits/README.md, not an edit file that is not applied, not any other change.
 * Files .gitignore keeps out are the user's choice and are not committed.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST, manifestFileRefs, type ModelManifest } from '../model/folder.js';
import { parseEditFile } from '../spec/load.js';
import { uncommittedPaths } from '../state/git.js';
import type { ModelState } from '../state/types.js';
import type { Workspace } from './workspace.js';

/** Paths relative to `ws.root` to commit along with what apply wrote for `state` (the new state). */
export async function stateDependencies(ws: Workspace, state: ModelState): Promise<string[]> {
  const model = [MANIFEST, ...manifestFiles(ws.manifest)].map((f) => join(ws.modelDir, f));
  const applied = ws.edits.filter((e) => state.edits[e.id]?.specSha256 === e.sha256).map((e) => e.file);
  const destroyed = Object.keys(ws.state.edits)
    .filter((id) => state.edits[id] === undefined)
    .map((id) => join(ws.editsDir, `${id}.json`))
    .filter((f) => !existsSync(join(ws.root, f)));
  const changed = await uncommittedPaths(ws.root, [...model, ...applied, ...destroyed]);
  const appliedSet = new Set(applied);
  const out: string[] = [];
  for (const f of changed) {
    // The file may have changed again while apply ran: commit it only in the form that was applied.
    if (appliedSet.has(f) && !(await stillApplied(ws, state, f))) continue;
    out.push(f);
  }
  return out;
}

/** The files a manifest names (folder.ts manifestFileRefs), whichever a model has. */
function manifestFiles(manifest: ModelManifest): string[] {
  return manifestFileRefs(manifest).map((r) => r.file);
}

async function stillApplied(ws: Workspace, state: ModelState, file: string): Promise<boolean> {
  const edit = ws.edits.find((e) => e.file === file)!;
  let text: string;
  try {
    text = await readFile(join(ws.root, file), 'utf8');
  } catch {
    return false;
  }
  return parseEditFile(text, { id: edit.id, file }).edit?.sha256 === state.edits[edit.id]?.specSha256;
}
