import { EditError } from '../errors.js';
import type { ModelManifest } from '../model/folder.js';
import type { Editor } from './editor.js';
import { FtEditor } from './ft.js';

export const EDITOR_METHODS = ['ft'] as const;

/** The editor backend for a method name. */
export function makeEditor(method: string, manifest: ModelManifest): Editor {
  void manifest;
  switch (method) {
    case 'ft':
      return new FtEditor();
    default:
      throw new EditError(`unknown editor method "${method}"; available: ${EDITOR_METHODS.join(', ')}`);
  }
}
