/**
 * A model folder (models/<name>/): model.json (the manifest), tokenizer.json, base.safetensors,
 * and later editor.safetensors, state.json and deltas/. Every file the manifest names is checked
 * against its sha256 on load.
 */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve, relative, isAbsolute } from 'node:path';
import { EditError } from '../errors.js';
import { sha256, sha256Handle } from '../util/hash.js';
import { readJsonFile } from '../util/json-file.js';
import { validateAgainst } from '../util/schemas.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { GPT, GPTConfig } from './gpt2.js';
import { parseKnownFacts, type KnownFact } from './known-facts.js';
import { safetensorsReader } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

export interface FileRef {
  /** Path relative to the model folder. */
  file: string;
  sha256: string;
}

export interface Thresholds {
  reliability: number;
  generalization: number;
  locality: number;
  portability: number;
}

export interface TaskEntry {
  name: string;
  description?: string;
  instructions: string[];
}

export interface ModelManifest {
  $schema?: string;
  version: 1;
  name: string;
  architecture: 'gpt2';
  config: GPTConfig;
  tokenizer: FileRef;
  weights: FileRef & { dtype: 'F32' };
  /** Linear layers the editor may change, e.g. "h.3.mlp.c_fc". */
  editableLayers: string[];
  /** The editor and its typed settings (src/editor/registry.ts); null/absent: the default editor. Hypernetworks name their weights file. */
  editor?: { method: string; settings?: Record<string, unknown>; file?: string; sha256?: string } | null;
  /** Key statistics of the joint editor's layers (stats.safetensors), hash checked. */
  stats?: FileRef & { layers?: string[]; source?: Record<string, unknown> };
  /** The editor's task catalogue: tasks it was meta-trained on, each with instruction texts (the first is the default). */
  tasks?: TaskEntry[];
  /** Trained hypernetworks shipped beside the editor, per method (`edit apply --method instructedit`, eval, bench), hash checked. */
  hypernetworks?: Partial<Record<'mend' | 'instructedit', FileRef & { settings?: Record<string, unknown> }>>;
  /** Settings of the weight-free editors when they are not `editor` (`edit apply --method memit`, eval, bench): what this model was calibrated with. */
  editorSettings?: Partial<Record<'memit' | 'ft', Record<string, unknown>>>;
  /** Default pass thresholds of the implied assertions (fraction of prompts that must pass). */
  thresholds: Thresholds;
  /** Where the weights came from: training settings or the imported folder. */
  provenance?: Record<string, unknown>;
  /** Measured knowledge of the base model (see scripts/eval-model.ts). */
  knowledge?: Record<string, unknown>;
  /** Facts the base model knows, per relation (src/model/known-facts.ts): edits' automatic locality neighbours. */
  probes?: FileRef;
}

export interface LoadedModel {
  dir: string;
  manifest: ModelManifest;
  model: GPT;
  tokenizer: Tokenizer;
  /** The manifest's knowledge probes; empty when it names none. */
  knownFacts: KnownFact[];
}

export const MANIFEST = 'model.json';

/**
 * Every file a manifest names, with the JSON pointer of its entry: the top-level sections with a
 * `file` (tokenizer, weights, editor, key statistics, probes, knowledge, …) and each shipped
 * hypernetwork (`/hypernetworks/<method>`).
 */
export function manifestFileRefs(manifest: ModelManifest): Array<{ pointer: string; file: string }> {
  const entries: Array<[string, unknown]> = [
    ...Object.entries(manifest).filter(([key]) => key !== 'hypernetworks').map(([key, v]): [string, unknown] => [`/${key}`, v]),
    ...Object.entries(manifest.hypernetworks ?? {}).map(([method, v]): [string, unknown] => [`/hypernetworks/${method}`, v]),
  ];
  return entries.flatMap(([pointer, v]) => {
    const file = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as { file?: unknown }).file : undefined;
    return typeof file === 'string' ? [{ pointer, file }] : [];
  });
}

/** A path from a manifest, resolved inside the model folder; anything that escapes it is refused. */
export function insideFolder(dir: string, file: string, pointer: string): string {
  const full = resolve(dir, file);
  const rel = relative(resolve(dir), full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || isAbsolute(file)) {
    throw new EditError(`path "${file}" leaves the model folder`, { file: join(dir, MANIFEST), pointer });
  }
  return full;
}

/** A file the manifest names at `pointer` ("/tokenizer"), read inside the folder and checked against its sha256. */
export async function readChecked(dir: string, ref: FileRef, pointer: string): Promise<Uint8Array> {
  const path = insideFolder(dir, ref.file, `${pointer}/file`);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw unreadable(dir, ref, err);
  }
  checkSha(dir, ref, sha256(bytes));
  return bytes;
}

/**
 * readChecked for a file too large to hold twice: opened, hashed through the open handle, and
 * returned open (the caller reads it and closes it) — a file renamed over it meanwhile is not the one read.
 */
export async function openChecked(dir: string, ref: FileRef, pointer: string): Promise<FileHandle> {
  const path = insideFolder(dir, ref.file, `${pointer}/file`);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw unreadable(dir, ref, err);
  }
  try {
    checkSha(dir, ref, await sha256Handle(fh));
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh;
}

function unreadable(dir: string, ref: FileRef, err: unknown): EditError {
  const code = (err as NodeJS.ErrnoException).code;
  return new EditError(code === 'ENOENT' ? 'file is missing (named by model.json)' : `cannot read: ${code}`, { file: join(dir, ref.file) });
}

function checkSha(dir: string, ref: FileRef, actual: string): void {
  if (actual !== ref.sha256) {
    throw new EditError(`sha256 ${actual.slice(0, 12)}… does not match model.json (${ref.sha256.slice(0, 12)}…): the file changed outside editops`, {
      file: join(dir, ref.file),
      exitCode: 1,
    });
  }
}

export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, MANIFEST);
  try {
    await stat(dir);
  } catch {
    throw new EditError('model folder does not exist', { file: dir });
  }
  const json = await readJsonFile(path, 'model.json is missing: not a model folder');
  return checkManifest(json, path);
}

/**
 * Set one top-level entry of a folder's model.json (a file it names: probes, key statistics),
 * keeping the rest as it is; written atomically. The entry is part of the manifest hash, so applied
 * edits must be re-applied afterwards (apply --refresh).
 */
export async function setManifestEntry(dir: string, key: string, value: unknown): Promise<void> {
  await updateManifest(dir, (manifest) => {
    manifest[key] = value;
  });
}

/** Rewrites model.json through `change` (on the raw JSON object), atomically. */
export async function updateManifest(dir: string, change: (manifest: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, MANIFEST);
  const manifest = (await readJsonFile(path, 'model.json is missing: not a model folder')) as Record<string, unknown>;
  change(manifest);
  await writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Structural checks with messages of their own, then schemas/model.schema.json (what editors and CI check too). */
export function checkManifest(json: unknown, path: string): ModelManifest {
  const fail = (pointer: string, msg: string): never => {
    throw new EditError(msg, { file: path, pointer });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('', 'must be a JSON object');
  const m = json as Record<string, unknown>;
  if (m.version !== 1) fail('/version', `unsupported manifest version ${JSON.stringify(m.version)} (expected 1)`);
  if (m.architecture !== 'gpt2') fail('/architecture', `unsupported architecture ${JSON.stringify(m.architecture)} (expected "gpt2")`);
  const cfg = m.config as Record<string, unknown> | undefined;
  if (typeof cfg !== 'object' || cfg === null) fail('/config', 'missing model config');
  for (const k of ['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead', 'nInner']) {
    const v = cfg![k];
    if (k === 'nInner' && v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`/config/${k}`, 'must be a positive integer');
  }
  for (const k of ['tokenizer', 'weights']) {
    const r = m[k] as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null) fail(`/${k}`, 'missing file reference');
    if (typeof r!.file !== 'string') fail(`/${k}/file`, 'must be a path relative to the model folder');
    if (typeof r!.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r!.sha256)) fail(`/${k}/sha256`, 'must be a hex sha256');
  }
  if (!Array.isArray(m.editableLayers)) fail('/editableLayers', 'must be a list of layer names');
  // The schema, too: an editor setting of the wrong type or a misspelt key is refused here, naming its
  // pointer, instead of reaching an editor (or showing up only as drift).
  const [first, ...more] = validateAgainst('model', json);
  if (first !== undefined) {
    const others = more.map((e) => `${e.pointer || '/'}: ${e.message}`);
    throw new EditError(first.message, { file: path, pointer: first.pointer, ...(others.length > 0 ? { hint: `also ${others.join('; ')}` } : {}) });
  }
  return m as unknown as ModelManifest;
}

function parseJsonBytes(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new EditError(`not valid JSON: ${(err as Error).message}`, { file });
  }
}

/** The tokenizer a manifest names, hash checked; no weights and no TensorFlow.js (validate counts tokens with it). */
export async function loadTokenizer(dir: string, manifest: ModelManifest): Promise<Tokenizer> {
  const tokBytes = await readChecked(dir, manifest.tokenizer, '/tokenizer');
  const tokJson = parseJsonBytes(tokBytes, join(dir, manifest.tokenizer.file));
  const tokenizer = Tokenizer.fromJson(tokJson, join(dir, manifest.tokenizer.file));
  if (tokenizer.vocabSize > manifest.config.vocabSize) {
    throw new EditError(`tokenizer has ${tokenizer.vocabSize} tokens but the model only ${manifest.config.vocabSize}`, { file: join(dir, MANIFEST), pointer: '/config/vocabSize' });
  }
  return tokenizer;
}

/** Load the manifest, tokenizer and base weights of a model folder, every hash checked. */
export async function loadModelFolder(dir: string): Promise<LoadedModel> {
  const manifest = await readManifest(dir);
  const tokenizer = await loadTokenizer(dir, manifest);
  const probesFile = manifest.probes === undefined ? undefined : join(dir, manifest.probes.file);
  const knownFacts = probesFile === undefined ? [] : parseKnownFacts(parseJsonBytes(await readChecked(dir, manifest.probes!, '/probes'), probesFile), probesFile);
  const wFile = join(dir, manifest.weights.file);
  // Imported here, not at the top: readManifest's callers (plan --structural, show, diff) need no TensorFlow.js.
  const [{ GPT }, { paramsFromReader }] = await Promise.all([import('./gpt2.js'), import('./weights.js')]);
  // Tensor by tensor from the hashed, still open file: the weights are held once, as tensors.
  const params = await paramsFromReader(await safetensorsReader(await openChecked(dir, manifest.weights, '/weights'), wFile), manifest.config, wFile);
  for (const layer of manifest.editableLayers) {
    if (params[`${layer}.weight`] === undefined) {
      throw new EditError(`editable layer "${layer}" is not a layer of this model`, { file: join(dir, MANIFEST), pointer: '/editableLayers' });
    }
  }
  const model = new GPT(manifest.config, params);
  model.outputVocab = Math.min(manifest.config.vocabSize, tokenizer.vocabSize);
  return { dir, manifest, model, tokenizer, knownFacts };
}
