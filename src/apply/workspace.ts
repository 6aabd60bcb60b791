/**
 * Everything a plan, apply or verify reads: the model folder's manifest and state, drift on disk,
 * and the declared edits with their problems. Reading only; nothing here writes. No TensorFlow.js
 * either (deltas become tensors in apply-plan.ts), so `plan --structural` starts fast.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { EditError } from '../errors.js';
import { idList } from '../util/format.js';
import { loadTokenizer, readManifest, type ModelManifest, type Thresholds } from '../model/folder.js';
import { findConflicts } from '../spec/conflicts.js';
import { contextProblems, modelContext } from '../spec/lengths.js';
import { loadEdits, withLines } from '../spec/load.js';
import { formatProblem, type EditSpec, type LoadedEdit, type SpecProblem } from '../spec/types.js';
import { parseDelta, SET_DELTA_NAME } from '../state/deltas.js';
import type { Delta } from '../model/weight-change.js';
import { parseRows } from '../state/rows.js';
import { checkDrift, manifestSha, readState, type DriftProblem, type DriftReport } from '../state/state.js';
import type { ModelState } from '../state/types.js';
import type { EditRequest, EditRows } from '../editor/editor.js';
import { describeHolder, holderStatus, readLock, type LockInfo } from '../state/lock.js';
import { makePlan, type PlanInput, type Recomputed } from '../plan/make-plan.js';
import { editedLayers, editorInfo, editorSettings } from '../editor/settings.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { innerDim } from '../model/config.js';
import type { Plan } from '../plan/plan.js';

export interface Workspace {
  /** Project root (where edits/ and models/ live; util/project-root.ts). */
  root: string;
  /** Model folder as given (relative to root, for messages and plans). */
  modelDir: string;
  /** Edits folder as given (relative to root). */
  editsDir: string;
  /** The edits folder does not exist: every applied edit plans as a destroy, which apply refuses unless asked (missingEditsError). */
  editsMissing: boolean;
  manifest: ModelManifest;
  state: ModelState;
  stateSha: string | null;
  /** Blocking drift (paths relative to root): plan shows it, apply refuses it unless --refresh. */
  drift: DriftProblem[];
  /** Delta files no applied edit names (relative to root): a warning; the next apply removes them. */
  stray: string[];
  edits: LoadedEdit[];
  problems: SpecProblem[];
  /** A lock held by a running process (an apply in progress): what is read may change when it finishes. */
  lockedBy: LockInfo | null;
  /** The model's tokenizer (loaded when there are edits: context lengths, row estimates). */
  tokenizer?: Tokenizer;
  /** Applied edits `apply --refresh` dropped from the state to recompute (refresh.ts): plans show them as updates, not creates. */
  recomputed?: ReadonlyMap<string, Recomputed>;
}

export async function openWorkspace(root: string, modelDir: string, editsDir = 'edits'): Promise<Workspace> {
  const dir = join(root, modelDir);
  const manifest = await readManifest(dir);
  const { state, sha256 } = await readState(dir, manifest);
  const { drift, stray } = relativeDrift(root, await checkDrift(dir, manifest, state));
  const editsMissing = await isMissing(resolve(root, editsDir));
  const { edits, problems } = await loadEdits(root, editsDir);
  const later = [...findConflicts(edits), ...taskProblems(edits, manifest)];
  let tokenizer: Tokenizer | undefined;
  // Prompts that do not fit the model's context fail here, with file and pointer, not later in the judge.
  if (edits.length > 0) {
    const tok = await loadTokenizer(dir, manifest);
    tokenizer = tok;
    later.push(...contextProblems(edits, modelContext(tok, manifest.config.nPositions, modelDir)));
  }
  problems.push(...withLines(later, edits));
  const lock = await readLock(join(root, modelDir)).catch(() => null);
  const lockedBy = lock !== null && holderStatus(lock) === 'running' && lock.pid !== process.pid ? lock : null;
  return { root, modelDir, editsDir, editsMissing, manifest, state, stateSha: sha256, drift, stray, edits, problems, lockedBy, tokenizer };
}

/** Only "no such file" counts as missing; any other read error is loadEdits' to report. */
async function isMissing(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** What read-only commands print when the edits folder is missing (plan, verify). */
export function missingEditsWarning(ws: Workspace): string | undefined {
  if (!ws.editsMissing) return undefined;
  const applied = Object.keys(ws.state.edits).length;
  const destroys = applied === 1 ? 'the applied edit plans as a destroy' : `all ${applied} applied edits plan as destroys`;
  return `warning: there is no edits folder (${join(ws.root, ws.editsDir)})${applied > 0 ? `: ${destroys}, which apply refuses without --allow-destroy-all` : ''}`;
}

/**
 * A missing edits folder would destroy every applied edit: more likely a wrong folder or a
 * checkout without edits/ than a wish. Apply refuses it; an existing, empty edits folder (or
 * --allow-destroy-all) says the wish explicitly.
 */
export function missingEditsError(ws: Workspace, destroyed: string[]): EditError {
  return new EditError(`there is no edits folder, so this apply would destroy ${destroyed.length} applied edit${destroyed.length === 1 ? '' : 's'} (${idList(destroyed)}); nothing was written`, {
    file: join(ws.root, ws.editsDir),
    hint: 'run from your project (or pass --dir); to remove every applied edit, create an empty edits folder or pass --allow-destroy-all',
  });
}

/** checkDrift's paths relative to `base` (the working directory), "/"-separated, as plans and messages show them. */
export function relativeDrift(base: string, report: DriftReport): DriftReport {
  const rel = (file: string) => relative(base, file).split(sep).join('/');
  return { drift: report.drift.map((d) => ({ ...d, file: rel(d.file) })), stray: report.stray.map(rel) };
}

/**
 * The plan from files and state alone (no model): creates are not checked against the current model
 * unless `satisfied` names those the model already passes (planWorkspace checks them).
 * `method`: the editor apply will use instead of the model's (`apply --method`), as the solve section says.
 */
export function structuralPlan(ws: Workspace, targets: string[] = [], method?: string, satisfied?: ReadonlySet<string>): Plan {
  return makePlan({ model: ws.modelDir, edits: ws.edits, state: ws.state, stateSha256: ws.stateSha, manifestSha256: manifestSha(ws.manifest), drift: ws.drift, stray: ws.stray, targets, editor: editorView(ws, method), satisfied, recomputed: ws.recomputed });
}

/** The plan's view of the editor (the model's, or `method`): its layers, their key dimension, and rows estimated per target token. */
function editorView(ws: Workspace, method?: string): NonNullable<PlanInput['editor']> | undefined {
  let settings;
  try {
    settings = editorSettings(ws.manifest, method);
  } catch {
    return undefined; // an unknown editor is apply's error to report
  }
  let layers: string[];
  try {
    layers = editedLayers(settings, ws.manifest.editableLayers);
  } catch {
    return undefined;
  }
  const tokenizer = ws.tokenizer;
  return {
    method: settings.method,
    joint: editorInfo(settings).joint,
    layers,
    // GPT-2's MLP: c_proj reads the 4·d hidden units
    keyDim: innerDim(ws.manifest.config),
    estimateRows: (e) => Math.max(1, tokenizer === undefined ? 1 : tokenizer.encode(e.spec.target).length),
  };
}

/** An edit's task must be in the model's catalogue unless it describes itself with an instruction. */
export function taskProblems(edits: LoadedEdit[], manifest: ModelManifest): SpecProblem[] {
  const catalogue = manifest.tasks ?? [];
  if (catalogue.length === 0) return [];
  return edits
    .filter((e) => e.spec.instruction === undefined && !catalogue.some((t) => t.name === e.spec.task))
    .map((e) => ({
      file: e.file,
      pointer: '/task',
      kind: 'schema' as const,
      message: `task "${e.spec.task}" is not in the model's catalogue (${catalogue.map((t) => t.name).join(', ')}); add an "instruction" describing it`,
    }));
}

/** `--target` ids, each of which must name an edit file or an applied edit. */
export function checkTargets(ws: Workspace, targets: string[]): string[] {
  for (const t of targets) {
    if (!ws.edits.some((e) => e.id === t) && ws.state.edits[t] === undefined) throw new EditError(`--target ${t}: no edit file and no applied edit has this id`);
  }
  return targets;
}

/** One EditError listing every problem, for commands that need valid edits. */
export function problemsError(problems: SpecProblem[]): EditError {
  const lines = problems.map((p) => `  ${formatProblem(p)}`);
  return new EditError(`${problems.length} problem${problems.length === 1 ? '' : 's'} in edit files:\n${lines.join('\n')}`, { hint: 'run `edit validate` for details' });
}

/**
 * For commands that read the recorded weights (verify, diff): a set solved by an earlier editor
 * revision is still exactly what state.json names, so it is only warned about; any other drift refuses.
 */
export function checkRecordedWeights(ws: Pick<Workspace, 'drift'>, warn: (line: string) => void): void {
  for (const d of ws.drift) if (d.kind === 'solver') warn(`warning: ${d.message}`);
  const blocking = ws.drift.filter((d) => d.kind !== 'solver');
  if (blocking.length > 0) throw driftError(blocking);
}

export function driftError(drift: DriftProblem[]): EditError {
  const lines = drift.map((d) => `  ! ${d.file}: ${d.message}`);
  return new EditError(`the model folder drifted from state.json:\n${lines.join('\n')}`, {
    hint: 'restore the files from git, or run `edit apply --refresh` to accept what is on disk and recompute affected edits',
  });
}

/** The instruction an editor sees: the edit's own, else the catalogue's default for its task. */
export function editRequest(edit: LoadedEdit, manifest: ModelManifest): EditRequest {
  const task = manifest.tasks?.find((t) => t.name === edit.spec.task);
  return {
    id: edit.id,
    task: edit.spec.task,
    instruction: edit.spec.instruction ?? task?.instructions[0] ?? '',
    prompt: edit.spec.prompt,
    target: edit.spec.target,
    rephrase: edit.spec.rephrase ?? [],
  };
}

export function thresholdsFor(spec: EditSpec, manifest: ModelManifest): Thresholds {
  return { ...manifest.thresholds, ...(spec.thresholds ?? {}) };
}

/**
 * The applied set's solved weight change (base + this = the effective weights), read from disk
 * (its hash was checked by checkDrift); null when no applied edit changes a weight. The one path
 * plan, verify, generate, diff and export read the effective weights through.
 */
export async function readSetDelta(root: string, modelDir: string, state: ModelState): Promise<Delta | null> {
  if (state.delta === null) return null;
  return parseDelta(await readFile(join(root, modelDir, state.delta.file)), join(modelDir, state.delta.file), SET_DELTA_NAME);
}

/** The cached rows of applied edits (`ids`), read from disk; edits without rows are skipped. */
export async function readAppliedRows(ws: Workspace, ids: Iterable<string>, method: string): Promise<Map<string, EditRows>> {
  const out = new Map<string, EditRows>();
  for (const id of ids) {
    const ref = ws.state.edits[id]?.rows;
    if (ref === null || ref === undefined) continue;
    out.set(id, parseRows(await readFile(join(ws.root, ws.modelDir, ref.file)), join(ws.modelDir, ref.file), id, method));
  }
  return out;
}

/** The warning read-only commands print while an apply holds the lock. */
export function lockWarning(ws: Workspace): string | undefined {
  if (ws.lockedBy === null) return undefined;
  return `warning: ${ws.modelDir} is locked by ${describeHolder(ws.lockedBy)}; what this shows may change when it finishes`;
}
