/**
 * `apply --refresh`: accept what is on disk. Applied edits whose delta file is missing or changed
 * are dropped from the (in-memory) state so the plan recreates them; when the base weights changed,
 * every delta was computed against the old base, so all edits are recreated; so are they all when
 * model.json changed (thresholds, editable layers, editor), to be re-verified under it. Their files become
 * stray, as any other unnamed delta file, and the apply removes them once state.json is written.
 */
import { join } from 'node:path';
import { sha256FileIfExists } from '../util/hash.js';
import { deltaFileName } from '../state/deltas.js';
import { checkDrift, effectiveSha, manifestSha } from '../state/state.js';
import type { AppliedEdit } from '../state/types.js';
import { relativeDrift, type Workspace } from './workspace.js';

export interface Refreshed {
  ws: Workspace;
  /** Edit ids that will be recomputed, with why. */
  dropped: Array<{ id: string; reason: string }>;
}

export async function refreshWorkspace(ws: Workspace): Promise<Refreshed> {
  const modelAbs = join(ws.root, ws.modelDir);
  const baseSha = await sha256FileIfExists(join(modelAbs, ws.manifest.weights.file));
  const baseChanged = baseSha !== ws.state.base.sha256;
  // Thresholds, editable layers or editor changed: every edit is recomputed and re-verified under the new model.json.
  const manifestNow = manifestSha(ws.manifest);
  const manifestChanged = manifestNow !== ws.state.manifest.sha256;
  const edits: Record<string, AppliedEdit> = {};
  const dropped: Refreshed['dropped'] = [];
  for (const [id, e] of Object.entries(ws.state.edits)) {
    if (baseChanged && e.delta !== null) {
      dropped.push({ id, reason: 'base weights changed' });
      continue;
    }
    if (manifestChanged) {
      dropped.push({ id, reason: 'model.json changed' });
      continue;
    }
    if (e.delta !== null) {
      // A state.json entry whose id or file is not a delta's place in deltas/ is dropped, its file never read.
      if (e.delta.file !== placeOf(id, e.delta.sha256)) {
        dropped.push({ id, reason: `state.json names delta file ${JSON.stringify(e.delta.file)}, not its place in deltas/` });
        continue;
      }
      const actual = await sha256FileIfExists(join(modelAbs, e.delta.file));
      if (actual !== e.delta.sha256) {
        dropped.push({ id, reason: actual === null ? 'delta file missing' : 'delta file changed' });
        continue;
      }
    }
    edits[id] = e;
  }
  const base = { sha256: baseSha ?? ws.state.base.sha256 };
  const state = { ...ws.state, base, manifest: { sha256: manifestNow }, edits, effective: { sha256: effectiveSha(base.sha256, edits) } };
  const { drift, stray } = relativeDrift(ws.root, await checkDrift(modelAbs, ws.manifest, state));
  return { ws: { ...ws, state, drift, stray }, dropped };
}

/** deltas/<id>@<hash>.safetensors, or undefined for an id or hash that cannot name one (a hand-edited state.json). */
function placeOf(id: string, fileSha256: string): string | undefined {
  try {
    return deltaFileName(id, fileSha256);
  } catch {
    return undefined;
  }
}
