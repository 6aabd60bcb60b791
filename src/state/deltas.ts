/**
 * Storage of weight changes (types and arithmetic: src/model/weight-change.ts):
 * deltas/set@<hash>.safetensors, the solved change of the applied edit set, and the
 * content-addressed naming rows/ files share. Keys are parameter names ("h.3.mlp.c_fc.weight"),
 * the same names the model's params and run-time `Deltas` use.
 *
 * File layout: dense `<param>`, low-rank `<param>.A` and `<param>.B`;
 * metadata {"format": "editops-delta", "version": "1", "id", "method", ...}.
 */
import { EditError } from '../errors.js';
import { insideFolder } from '../model/folder.js';
import { parseSafetensors, serializeSafetensors, type TensorInput } from '../model/safetensors.js';
import type { Delta, DeltaTensor } from '../model/weight-change.js';

export interface DeltaMeta {
  id: string;
  method: string;
  [key: string]: string;
}

export interface ParsedDelta extends Delta {
  meta: DeltaMeta;
  /** The file it was read from, as given to parseDelta (errors name it). */
  file: string;
}

export const DELTAS_DIR = 'deltas';
export const DELTA_FORMAT = 'editops-delta';
export const DELTA_VERSION = '1';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
/** A parameter name: dotted path segments ending in .weight or .bias. */
const PARAM_PATTERN = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\.(weight|bias)$/;

// ---------------------------------------------------------------------------------------------
// Paths

/** Hex digits of the file's sha256 that a delta file's name carries. */
export const DELTA_NAME_HASH = 12;

/**
 * `<dir>/<name>@<first 12 hex of the file's sha256>.safetensors`, relative to the model folder;
 * names may nest ("geo/france"). Content-addressed, so a new file never overwrites one the current
 * state.json names and a killed apply leaves that state usable (DESIGN §8); "@" cannot occur in a name.
 */
export function contentFileName(dir: string, name: string, fileSha256: string): string {
  const segments = name.split('/');
  if (!ID_PATTERN.test(name) || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new EditError(`edit id "${name}" cannot name a file: use letters, digits, ".", "_", "-" and "/" between non-empty segments, no ".." or "."`);
  }
  if (!/^[0-9a-f]{64}$/.test(fileSha256)) throw new EditError(`file of "${name}": "${fileSha256}" is not a hex sha256`);
  return `${dir}/${name}@${fileSha256.slice(0, DELTA_NAME_HASH)}.safetensors`;
}

/** The set's solved change: deltas/set@<sha12>.safetensors. */
export const SET_DELTA_NAME = 'set';

export function deltaFileName(name: string, fileSha256: string): string {
  return contentFileName(DELTAS_DIR, name, fileSha256);
}

/** Absolute path of a delta file, refused if it would leave the model folder. */
export function deltaPath(modelDir: string, name: string, fileSha256: string): string {
  return insideFolder(modelDir, deltaFileName(name, fileSha256), '/delta');
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function serializeDelta(delta: Delta, meta: DeltaMeta): Uint8Array {
  const params = Object.keys(delta.layers);
  if (params.length === 0) throw new EditError(`delta of edit "${meta.id}" changes no parameter`);
  const tensors: Record<string, TensorInput> = {};
  for (const param of params) {
    const t = delta.layers[param];
    checkTensor(param, t, (m) => new EditError(`delta of edit "${meta.id}": ${m}`));
    if (t.kind === 'dense') {
      tensors[param] = { shape: [...t.shape], data: t.data };
    } else {
      tensors[`${param}.A`] = { shape: [t.in, t.rank], data: t.a };
      tensors[`${param}.B`] = { shape: [t.rank, t.out], data: t.b };
    }
  }
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') throw new EditError(`delta of edit "${meta.id}": metadata "${k}" must be a string`);
  }
  return serializeSafetensors(tensors, { ...meta, format: DELTA_FORMAT, version: DELTA_VERSION, id: meta.id, method: meta.method });
}

/** Decode and validate a delta file; `file` names it in errors, `expectId` (if given) must match its metadata. */
export function parseDelta(bytes: Uint8Array, file: string, expectId?: string): ParsedDelta {
  const fail = (message: string): never => {
    throw new EditError(message, { file });
  };
  const { tensors, metadata } = parseSafetensors(bytes, file);
  if (metadata.format !== DELTA_FORMAT) fail(`not an editops delta file (metadata format is ${JSON.stringify(metadata.format) ?? 'missing'}, expected "${DELTA_FORMAT}")`);
  if (metadata.version !== DELTA_VERSION) fail(`unsupported delta version ${JSON.stringify(metadata.version) ?? '(missing)'} (expected "${DELTA_VERSION}")`);
  if (typeof metadata.id !== 'string' || metadata.id === '') fail('delta metadata has no edit "id"');
  if (typeof metadata.method !== 'string' || metadata.method === '') fail('delta metadata has no "method"');
  if (expectId !== undefined && metadata.id !== expectId) fail(`delta belongs to edit "${metadata.id}", expected "${expectId}"`);
  if (tensors.size === 0) fail('delta file holds no tensors');

  const layers: Record<string, DeltaTensor> = {};
  const factors = new Map<string, { a?: Float32Array; aShape?: number[]; b?: Float32Array; bShape?: number[] }>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array)) fail(`tensor "${name}": dtype ${t.dtype} is not a float type`);
    const data = t.data as Float32Array;
    const factor = /^(.*)\.(A|B)$/.exec(name);
    if (factor !== null) {
      const param = factor[1];
      if (!PARAM_PATTERN.test(param) || !param.endsWith('.weight')) fail(`tensor "${name}": low-rank factors belong to a "<layer>.weight" parameter`);
      const f = factors.get(param) ?? {};
      if (factor[2] === 'A') Object.assign(f, { a: data, aShape: t.shape });
      else Object.assign(f, { b: data, bShape: t.shape });
      factors.set(param, f);
    } else {
      if (!PARAM_PATTERN.test(name)) fail(`tensor "${name}": not a parameter name ("<layer>.weight", "<layer>.weight.A/.B" or "<layer>.bias")`);
      layers[name] = { kind: 'dense', shape: [...t.shape], data };
    }
  }
  for (const [param, f] of factors) {
    if (layers[param] !== undefined) fail(`"${param}" is stored both dense and as low-rank factors`);
    if (f.a === undefined || f.b === undefined) fail(`"${param}" has factor ${f.a === undefined ? 'B' : 'A'} but not ${f.a === undefined ? 'A' : 'B'}`);
    const [aShape, bShape] = [f.aShape!, f.bShape!];
    if (aShape.length !== 2 || bShape.length !== 2 || aShape[1] !== bShape[0]) {
      fail(`"${param}": factors A ${JSON.stringify(aShape)} and B ${JSON.stringify(bShape)} are not [in, r] and [r, out]`);
    }
    layers[param] = { kind: 'lowrank', a: f.a!, b: f.b!, in: aShape[0], out: bShape[1], rank: aShape[1] };
  }
  for (const param of Object.keys(layers).sort()) {
    checkTensor(param, layers[param], (m) => new EditError(m, { file }));
  }
  return { layers: sortedLayers(layers), meta: metadata as DeltaMeta, file };
}

/** Shape and value checks shared by writing and reading. */
function checkTensor(param: string, t: DeltaTensor, error: (message: string) => Error): void {
  if (!PARAM_PATTERN.test(param)) throw error(`"${param}" is not a parameter name ("<layer>.weight" or "<layer>.bias")`);
  const isBias = param.endsWith('.bias');
  if (t.kind === 'dense') {
    const want = isBias ? 1 : 2;
    if (t.shape.length !== want || !t.shape.every((n) => Number.isSafeInteger(n) && n > 0)) {
      throw error(`"${param}": shape ${JSON.stringify(t.shape)} is not ${isBias ? '[out]' : '[in, out]'}`);
    }
    const numel = t.shape.reduce((x, y) => x * y, 1);
    if (t.data.length !== numel) throw error(`"${param}": shape ${JSON.stringify(t.shape)} needs ${numel} values, data has ${t.data.length}`);
    if (!allFinite(t.data)) throw error(`"${param}" contains NaN or infinite values`);
    return;
  }
  if (isBias) throw error(`"${param}": a bias delta must be dense`);
  if (![t.in, t.out, t.rank].every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw error(`"${param}": low-rank sizes in=${t.in}, out=${t.out}, rank=${t.rank} must be positive integers`);
  }
  if (t.a.length !== t.in * t.rank) throw error(`"${param}": factor A needs [${t.in}, ${t.rank}] = ${t.in * t.rank} values, has ${t.a.length}`);
  if (t.b.length !== t.rank * t.out) throw error(`"${param}": factor B needs [${t.rank}, ${t.out}] = ${t.rank * t.out} values, has ${t.b.length}`);
  if (!allFinite(t.a) || !allFinite(t.b)) throw error(`"${param}" contains NaN or infinite values`);
}

function allFinite(data: Float32Array): boolean {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false;
  return true;
}

function sortedLayers(layers: Record<string, DeltaTensor>): Record<string, DeltaTensor> {
  return Object.fromEntries(Object.keys(layers).sort().map((k) => [k, layers[k]]));
}
