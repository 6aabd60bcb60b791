/**
 * Editor backends by method: a typed table, so a method without a backend is a compile error. The
 * settings, defaults and plan-facing facts live in settings.ts (no TensorFlow.js there). The
 * hypernetwork editors also need their trained network (model.json `editor.file`), loaded here.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../errors.js';
import { MANIFEST, readChecked, type ModelManifest } from '../model/folder.js';
import type { SetEditor } from './editor.js';
import { FtEditor } from './ft.js';
import { MemitEditor } from './joint.js';
import { HyperEditor } from './mend/editor.js';
import { HyperNet } from './mend/network.js';
import { EDITOR_INFO, type EditorMethod, type EditorSettings } from './settings.js';

/** What an editor needs beyond its settings. */
export interface EditorResources {
  /** The trained hypernetwork (mend, instructedit); the editor owns it from here on. */
  network?: HyperNet;
}

function network(r: EditorResources, method: string): HyperNet {
  if (r.network === undefined) throw new EditError(`the ${method} editor needs its trained network`, { hint: `train one with \`edit train-editor --method ${method}\`` });
  return r.network;
}

const BACKENDS: { [M in EditorMethod]: (settings: Extract<EditorSettings, { method: M }>, resources: EditorResources) => SetEditor } = {
  ft: (s) => new FtEditor(s),
  memit: (s) => new MemitEditor(s),
  mend: (s, r) => new HyperEditor(s, network(r, s.method)),
  instructedit: (s, r) => new HyperEditor(s, network(r, s.method)),
};

/** The editor backend for settings. */
export function makeEditor(settings: EditorSettings, resources: EditorResources = {}): SetEditor {
  return (BACKENDS[settings.method] as (s: EditorSettings, r: EditorResources) => SetEditor)(settings, resources);
}

/**
 * The trained network of a hypernetwork editor: the file at `path` when given (eval's --network),
 * else the one model.json names for this method (sha256 checked). Other editors need none.
 */
export async function loadNetwork(dir: string, manifest: ModelManifest, method: EditorMethod, path?: string): Promise<HyperNet | undefined> {
  if (!EDITOR_INFO[method].needsNetwork) return undefined;
  if (path !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      throw new EditError(`cannot read the ${method} network: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
    }
    return HyperNet.parse(bytes, path);
  }
  const ed = manifest.editor;
  if (ed?.method === method && ed.file !== undefined && ed.sha256 !== undefined) return HyperNet.parse(await readChecked(dir, { file: ed.file, sha256: ed.sha256 }, '/editor'), join(dir, ed.file));
  const shipped = manifest.hypernetworks?.[method as 'mend' | 'instructedit'];
  if (shipped !== undefined) return HyperNet.parse(await readChecked(dir, shipped, `/hypernetworks/${method}`), join(dir, shipped.file));
  throw new EditError(`the ${method} editor needs its trained network, and model.json names none for it`, { file: join(dir, MANIFEST), pointer: '/editor/file', hint: `train one with \`edit train-editor --method ${method}\`` });
}

/** makeEditor with the method's network loaded (model.json's, or `path`). */
export async function openEditor(dir: string, manifest: ModelManifest, settings: EditorSettings, path?: string): Promise<SetEditor> {
  return makeEditor(settings, { network: await loadNetwork(dir, manifest, settings.method, path) });
}

export { editorSettings, needsStats, needsNetwork, EDITOR_INFO as EDITORS, EDITOR_METHODS, type EditorSettings, type EditorMethod } from './settings.js';
