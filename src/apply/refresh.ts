/**
 * `apply --refresh`: accept what is on disk. Applied edits whose rows file is missing or changed
 * are dropped from the (in-memory) state so the plan recreates them; when the base weights or
 * model.json (editor, settings, statistics, thresholds, layers) changed, every edit's rows were
 * computed under the old ones, so all edits are recreated; likewise when the set was solved by an
 * earlier revision of its editor (a newer editops), and edits whose rows another editor computed
 * than `method` (the one this apply solves with) are recomputed with it. The set's delta is always re-solved
 * from the kept rows by the apply that follows. Plans show recomputed edits as updates of what
 * state.json held (Workspace.recomputed), not as new edits, and their old rows files and the old
 * delta not as strays: they are replaced, and removed once state.json is written.
 */
import { join } from 'node:path';
import { sha256FileIfExists } from '../util/hash.js';
import { rowsFileName } from '../state/rows.js';
import { checkDrift, effectiveSha, manifestSha, outdatedSolver } from '../state/state.js';
import type { AppliedEdit } from '../state/types.js';
import { relativeDrift, type Workspace } from './workspace.js';

export interface Refreshed {
  ws: Workspace;
  /** Edit ids that will be recomputed, with why. */
  dropped: Array<{ id: string; reason: string }>;
}

export async function refreshWorkspace(ws: Workspace, method?: string): Promise<Refreshed> {
  const modelAbs = join(ws.root, ws.modelDir);
  const baseSha = await sha256FileIfExists(join(modelAbs, ws.manifest.weights.file));
  const baseChanged = baseSha !== ws.state.base.sha256;
  // Thresholds, editable layers or editor changed: every edit is recomputed and re-verified under the new model.json.
  const manifestNow = manifestSha(ws.manifest);
  const manifestChanged = manifestNow !== ws.state.manifest.sha256;
  // The set was solved by an earlier revision of its editor: its rows may differ too, so every edit is recomputed.
  const outdated = outdatedSolver(ws.state);
  const edits: Record<string, AppliedEdit> = {};
  const dropped: Refreshed['dropped'] = [];
  for (const [id, e] of Object.entries(ws.state.edits)) {
    if (baseChanged && e.rows !== null) {
      dropped.push({ id, reason: 'base weights changed' });
      continue;
    }
    if (manifestChanged) {
      dropped.push({ id, reason: 'model.json changed' });
      continue;
    }
    if (outdated !== undefined && e.rows !== null) {
      dropped.push({ id, reason: `the ${outdated.method} editor changed (revision ${outdated.was} → ${outdated.now})` });
      continue;
    }
    if (method !== undefined && e.rows !== null && e.method !== method) {
      dropped.push({ id, reason: `its rows were computed by the ${e.method} editor; this apply solves with ${method}` });
      continue;
    }
    if (e.rows !== null) {
      // A state.json entry whose id or file is not a rows file's place in rows/ is dropped, its file never read.
      if (e.rows.file !== placeOf(id, e.rows.sha256)) {
        dropped.push({ id, reason: `state.json names rows file ${JSON.stringify(e.rows.file)}, not its place in rows/` });
        continue;
      }
      const actual = await sha256FileIfExists(join(modelAbs, e.rows.file));
      if (actual !== e.rows.sha256) {
        dropped.push({ id, reason: actual === null ? 'rows file missing' : 'rows file changed' });
        continue;
      }
    }
    edits[id] = e;
  }
  const base = { sha256: baseSha ?? ws.state.base.sha256 };
  // the set's delta is re-solved by the apply: the refreshed state names none
  const state = { ...ws.state, base, manifest: { sha256: manifestNow }, edits, delta: null, effective: { sha256: effectiveSha(base.sha256, null) } };
  const { drift, stray } = relativeDrift(ws.root, await checkDrift(modelAbs, ws.manifest, state));
  // the set delta the old state names is about to be re-solved (often to the same bytes): not a stray file
  // so are the rows files of the edits it recomputes: the plan shows those edits as updates
  const replaced = [...(ws.state.delta === null ? [] : [ws.state.delta.file]), ...dropped.flatMap((d) => (ws.state.edits[d.id].rows === null ? [] : [ws.state.edits[d.id].rows!.file]))];
  const old = new Set(relativeDrift(ws.root, { drift: [], stray: replaced.map((f) => join(modelAbs, f)) }).stray);
  const recomputed = new Map([...(ws.recomputed ?? []), ...dropped.map((d) => [d.id, { reason: d.reason, applied: ws.state.edits[d.id] }] as const)]);
  return { ws: { ...ws, state, drift, stray: stray.filter((f) => !old.has(f)), recomputed }, dropped };
}

/** rows/<id>@<hash>.safetensors, or undefined for an id or hash that cannot name one (a hand-edited state.json). */
function placeOf(id: string, fileSha256: string): string | undefined {
  try {
    return rowsFileName(id, fileSha256);
  } catch {
    return undefined;
  }
}
