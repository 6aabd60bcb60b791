/**
 * Editor backends by method: a typed table, so a method without a backend is a compile error. The
 * settings, defaults and plan-facing facts live in settings.ts (no TensorFlow.js there).
 */
import type { SetEditor } from './editor.js';
import { FtEditor } from './ft.js';
import { MemitEditor } from './joint.js';
import type { EditorMethod, EditorSettings } from './settings.js';

const BACKENDS: { [M in EditorMethod]: (settings: Extract<EditorSettings, { method: M }>) => SetEditor } = {
  ft: (s) => new FtEditor(s),
  memit: (s) => new MemitEditor(s),
};

/** The editor backend for settings. */
export function makeEditor(settings: EditorSettings): SetEditor {
  return (BACKENDS[settings.method] as (s: EditorSettings) => SetEditor)(settings);
}

export { editorSettings, needsStats, EDITOR_INFO as EDITORS, EDITOR_METHODS, type EditorSettings, type EditorMethod } from './settings.js';
