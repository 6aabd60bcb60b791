/**
 * deltas/<id>@<hash>.safetensors: one edit's weight change, computed against the base weights.
 * Effective weights = base + Σ densify(delta) (DESIGN §3: batch semantics, order-independent).
 *
 * Keys are parameter names ("h.3.mlp.c_fc.weight", "h.3.mlp.c_fc.bias"), the same names the
 * model's params and run-time `Deltas` use. Weights are in Conv1D layout [in, out]; a low-rank
 * weight delta is ΔW = A·B with A [in, r] and B [r, out] (MEND's Σ_t ũ_t δ̃_tᵀ, stored as factors).
 *
 * File layout: dense `<param>`, low-rank `<param>.A` and `<param>.B`;
 * metadata {"format": "editops-delta", "version": "1", "id", "method", ...}.
 */
import { EditError } from '../errors.js';
import { insideFolder } from '../model/folder.js';
import { parseSafetensors, serializeSafetensors, type TensorInput } from '../model/safetensors.js';

export interface DenseDelta {
  kind: 'dense';
  /** [in, out] for a weight, [out] for a bias. */
  shape: number[];
  data: Float32Array;
}

export interface LowRankDelta {
  kind: 'lowrank';
  /** [in, rank], row-major. */
  a: Float32Array;
  /** [rank, out], row-major. */
  b: Float32Array;
  in: number;
  out: number;
  rank: number;
}

export type DeltaTensor = DenseDelta | LowRankDelta;

export interface Delta {
  /** Per parameter name: "<layer>.weight" (dense or low-rank) or "<layer>.bias" (dense). */
  layers: Record<string, DeltaTensor>;
}

/** Metadata every delta file carries; extra string fields are kept. */
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

/** A plain tensor: a densified delta or a sum of them. */
export interface DenseTensor {
  shape: number[];
  data: Float32Array;
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

// ---------------------------------------------------------------------------------------------
// Arithmetic (plain loops: the edited matrices are small)

/** The shape a delta tensor has once dense. */
export function deltaShape(t: DeltaTensor): number[] {
  return t.kind === 'dense' ? [...t.shape] : [t.in, t.out];
}

/** Every parameter's change as a dense tensor; low-rank factors multiplied out (A·B). */
export function densify(delta: Delta): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  for (const [param, t] of Object.entries(delta.layers)) {
    if (t.kind === 'dense') {
      out.set(param, { shape: [...t.shape], data: t.data });
      continue;
    }
    const w = new Float32Array(t.in * t.out);
    for (let i = 0; i < t.in; i++) {
      const row = i * t.out;
      for (let k = 0; k < t.rank; k++) {
        const aik = t.a[i * t.rank + k];
        if (aik === 0) continue;
        const bk = k * t.out;
        for (let j = 0; j < t.out; j++) w[row + j] += aik * t.b[bk + j];
      }
    }
    out.set(param, { shape: [t.in, t.out], data: w });
  }
  return out;
}

/** Σ deltas per parameter (the caller adds the result to the base weights). Shapes must agree. */
export function sumDeltas(deltas: Iterable<Delta>): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  for (const delta of deltas) {
    for (const [param, t] of densify(delta)) {
      const acc = out.get(param);
      if (acc === undefined) {
        out.set(param, { shape: t.shape, data: Float32Array.from(t.data) });
        continue;
      }
      if (acc.shape.length !== t.shape.length || acc.shape.some((n, i) => n !== t.shape[i])) {
        throw new EditError(`deltas disagree on the shape of "${param}": ${JSON.stringify(acc.shape)} vs ${JSON.stringify(t.shape)}`);
      }
      for (let i = 0; i < acc.data.length; i++) acc.data[i] += t.data[i];
    }
  }
  return out;
}

export interface DeltaLayerStats {
  param: string;
  kind: DeltaTensor['kind'];
  shape: number[];
  /** Frobenius norm ‖Δ‖. */
  norm: number;
  /** r for a low-rank delta; null for dense. */
  rank: number | null;
  /** ‖Δ‖ / ‖W‖ against the base parameter; null without base weights (or a zero base). */
  relative: number | null;
}

/** Per parameter: norm, rank and relative change, for `edit diff`. */
export function deltaStats(delta: Delta, baseParams?: Map<string, Float32Array> | Record<string, Float32Array>): DeltaLayerStats[] {
  const base = baseParams instanceof Map ? baseParams : baseParams !== undefined ? new Map(Object.entries(baseParams)) : undefined;
  return Object.keys(delta.layers)
    .sort()
    .map((param) => {
      const t = delta.layers[param];
      const norm = t.kind === 'dense' ? Math.sqrt(sumSquares(t.data)) : lowRankNorm(t);
      const w = base?.get(param);
      if (w !== undefined && w.length !== deltaShape(t).reduce((a, b) => a * b, 1)) {
        throw new EditError(`delta "${param}" has shape ${JSON.stringify(deltaShape(t))} but the base parameter has ${w.length} values`);
      }
      const wNorm = w === undefined ? 0 : Math.sqrt(sumSquares(w));
      return { param, kind: t.kind, shape: deltaShape(t), norm, rank: t.kind === 'lowrank' ? t.rank : null, relative: wNorm > 0 ? norm / wNorm : null };
    });
}

function sumSquares(data: Float32Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return s;
}

/** ‖A·B‖_F² = Σ_kl (AᵀA)_kl (BBᵀ)_kl: r×r work instead of in×out. */
function lowRankNorm(t: LowRankDelta): number {
  const r = t.rank;
  let s = 0;
  for (let k = 0; k < r; k++) {
    for (let l = 0; l < r; l++) {
      let ata = 0;
      for (let i = 0; i < t.in; i++) ata += t.a[i * r + k] * t.a[i * r + l];
      let bbt = 0;
      for (let j = 0; j < t.out; j++) bbt += t.b[k * t.out + j] * t.b[l * t.out + j];
      s += ata * bbt;
    }
  }
  return Math.sqrt(Math.max(0, s));
}
