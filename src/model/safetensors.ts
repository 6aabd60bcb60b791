/**
 * safetensors reader/writer (format: https://github.com/huggingface/safetensors#format):
 * u64 little-endian header length N, N bytes of UTF-8 JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`,
 * then the raw little-endian data; offsets are relative to the start of the data section.
 * Every header number is checked against the file size before anything is allocated from it.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';
import { EditError, InternalError } from '../errors.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

/** One tensor as read: F32/F16/BF16 decode to Float32Array; I32 → Int32Array; I64 → BigInt64Array. */
export interface TensorData {
  dtype: DType;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/** One tensor to write; dtype defaults to F32, and F16/BF16 are encoded from a Float32Array. */
export interface TensorInput {
  dtype?: DType;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorData>;
  metadata: Record<string, string>;
}

const DTYPE_SIZE: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };
const DTYPES = Object.keys(DTYPE_SIZE) as DType[];
/** The upstream Rust reader's limit; a longer header is a corrupt length field, not a real header. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EditError(`cannot read safetensors file: ${e.code ?? e.message}`, { file: path });
  }
  return parseSafetensors(bytes, path);
}

/** Decode a whole safetensors file; `file` only names it in errors. The result never aliases `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const fail: (message: string) => never = (message) => {
    throw new EditError(message, { file });
  };
  if (bytes.length < 8) {
    fail(`truncated safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`safetensors header length ${headerLength} is absurd (limit ${MAX_HEADER_BYTES} bytes); the file is corrupt`);
  }
  const n = Number(headerLength);
  if (8 + n > bytes.length) {
    fail(`truncated safetensors file: header length ${n} reaches beyond the end of the file (file has ${bytes.length} bytes, needs ${8 + n})`);
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (err) {
    fail(`safetensors header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) {
    fail(`safetensors header is not a JSON object (got ${describe(header)})`);
  }

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) metadata = checkMetadata(raw, fail);
    else entries.push(checkEntry(name, raw, dataLength, dataStart, bytes.length, fail));
  }
  checkOverlap(entries, fail);

  const tensors = new Map<string, TensorData>();
  for (const e of entries) {
    const raw = new Uint8Array(e.end - e.begin); // own buffer: aligned, and independent of `bytes`
    raw.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, raw) });
  }
  return { tensors, metadata };
}

function checkMetadata(raw: unknown, fail: (m: string) => never): Record<string, string> {
  if (!isPlainObject(raw)) fail(`${METADATA_KEY} is not a map of strings to strings (got ${describe(raw)})`);
  const pairs = Object.entries(raw as Record<string, unknown>);
  for (const [key, value] of pairs) {
    if (typeof value !== 'string') {
      fail(`${METADATA_KEY} is not a map of strings to strings: "${key}" is ${describe(value)}`);
    }
  }
  return Object.fromEntries(pairs) as Record<string, string>;
}

function checkEntry(
  name: string,
  raw: unknown,
  dataLength: number,
  dataStart: number,
  fileLength: number,
  fail: (m: string) => never,
): Entry {
  const where = `tensor "${name}"`;
  if (!isPlainObject(raw)) fail(`${where}: header entry is not an object (got ${describe(raw)})`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(DTYPES as string[]).includes(dtype)) {
    fail(`${where}: unknown dtype ${JSON.stringify(dtype) ?? 'undefined'}; supported: ${DTYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(`${where}: shape ${JSON.stringify(shape) ?? 'undefined'} is not an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`${where}: data_offsets ${JSON.stringify(offsets) ?? 'undefined'} is not [begin, end] integers with begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    fail(`${where}: data_offsets end ${end} is beyond the data section of ${dataLength} bytes (file has ${fileLength} bytes, needs ${dataStart + end})`);
  }
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const size = DTYPE_SIZE[dtype as DType];
  if (numel * size !== end - begin) {
    fail(`${where}: byte length ${end - begin} does not match shape ${JSON.stringify(shape)} × ${size} bytes (${dtype}) = ${numel * size}`);
  }
  return { name, dtype: dtype as DType, shape: [...(shape as number[])], begin, end };
}

function checkOverlap(entries: Entry[], fail: (m: string) => never): void {
  const ranges = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    if (cur.begin < prev.end) {
      fail(`tensors "${prev.name}" [${prev.begin}, ${prev.end}) and "${cur.name}" [${cur.begin}, ${cur.end}) have overlapping data_offsets`);
    }
  }
}

function decode(dtype: DType, raw: Uint8Array): TensorData['data'] {
  hostOrderInPlace(raw, DTYPE_SIZE[dtype]);
  switch (dtype) {
    case 'F32':
      return new Float32Array(raw.buffer);
    case 'I32':
      return new Int32Array(raw.buffer);
    case 'I64':
      return new BigInt64Array(raw.buffer);
    case 'F16': {
      const half = new Uint16Array(raw.buffer);
      const table = f16Table();
      const out = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) out[i] = table[half[i]];
      return out;
    }
    case 'BF16': {
      const half = new Uint16Array(raw.buffer);
      const out = new Float32Array(half.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16; // bf16 is the top half of an f32
      return out;
    }
  }
}

let F16_TABLE: Float32Array | undefined;

/** All 65536 half-precision values as float32; a lookup beats bit-twiddling per element. */
function f16Table(): Float32Array {
  if (F16_TABLE !== undefined) return F16_TABLE;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) table[h] = mant === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  F16_TABLE = table;
  return table;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Encode tensors as a safetensors file. The header lists tensors by name; the data section
 * holds 8-byte dtypes first, then 4-byte, then 2-byte (by name within each), so every tensor
 * is aligned to its element size with no gaps (the upstream reader rejects gaps).
 */
export function serializeSafetensors(
  tensors: Map<string, TensorInput> | Record<string, TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const named = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).map(([name, t]) => {
    const dtype = t.dtype ?? 'F32';
    checkInput(name, dtype, t);
    return { name, dtype, tensor: t };
  });
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const layout = [...named].sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype]); // stable: keeps name order

  const offsets = new Map<string, [number, number]>();
  let dataLength = 0;
  for (const { name, dtype, tensor } of layout) {
    const end = dataLength + tensor.data.length * DTYPE_SIZE[dtype];
    offsets.set(name, [dataLength, end]);
    dataLength = end;
  }

  // Built by hand, not JSON.stringify(object): that would move integer-like names to the front.
  const fields: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const keys = Object.keys(metadata).sort();
    for (const key of keys) {
      if (typeof metadata[key] !== 'string') throw new InternalError(`${METADATA_KEY} value for "${key}" is not a string`);
    }
    fields.push(`"${METADATA_KEY}":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  for (const { name, dtype, tensor } of named) {
    const entry = { dtype, shape: tensor.shape, data_offsets: offsets.get(name) };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8; // padded with spaces so the data starts 8-aligned

  const out = new Uint8Array(8 + headerLength + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  const dataStart = 8 + headerLength;
  for (const { name, dtype, tensor } of layout) {
    const [begin, end] = offsets.get(name)!;
    const region = out.subarray(dataStart + begin, dataStart + end);
    region.set(encode(dtype, tensor.data));
    hostOrderInPlace(region, DTYPE_SIZE[dtype]);
  }
  return out;
}

/** Write atomically: a temporary file in the same directory, fsync, then rename over `path`. */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, TensorInput> | Record<string, TensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EditError(`cannot write safetensors file: ${e.code ?? e.message}`, { file: path });
  }
}

function checkInput(name: string, dtype: DType, t: TensorInput): void {
  if (name === METADATA_KEY) throw new InternalError(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
  if (!(DTYPES as string[]).includes(dtype)) {
    throw new InternalError(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)}; supported: ${DTYPES.join(', ')}`);
  }
  const want = dtype === 'I32' ? Int32Array : dtype === 'I64' ? BigInt64Array : Float32Array;
  if (!(t.data instanceof want)) {
    throw new InternalError(`tensor "${name}": dtype ${dtype} needs a ${want.name}, got ${t.data.constructor.name}`);
  }
  if (!t.shape.every(isCount)) {
    throw new InternalError(`tensor "${name}": shape ${JSON.stringify(t.shape)} is not an array of non-negative integers`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new InternalError(`tensor "${name}": shape ${JSON.stringify(t.shape)} has ${numel} elements but data has ${t.data.length}`);
  }
}

/** Host-order bytes of `data` in `dtype`. */
function encode(dtype: DType, data: TensorInput['data']): Uint8Array {
  if (dtype === 'F16' || dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    const half = new Uint16Array(data.length);
    const round = dtype === 'F16' ? f32ToF16 : f32ToBf16;
    for (let i = 0; i < bits.length; i++) half[i] = round(bits[i]);
    return new Uint8Array(half.buffer);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** float32 bits → float16 bits, round to nearest, ties to even (IEEE 754 default rounding). */
function f32ToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // Inf, or a quiet NaN
  const e = exp - 127 + 15; // the half-precision biased exponent
  if (e >= 31) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mant | 0x800000; // 24-bit significand with the implicit 1
    const shift = 14 - e;
    const halfway = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > halfway || (rest === halfway && (h & 1) === 1)) h++; // a carry makes the smallest normal, correctly
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry into exponent 31 is Inf, correctly
  return sign | h;
}

/** float32 bits → bfloat16 bits, round to nearest, ties to even. */
function f32ToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays a quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** safetensors data is little-endian; swap each element in place on a big-endian host. */
function hostOrderInPlace(bytes: Uint8Array, size: number): void {
  if (HOST_IS_LITTLE_ENDIAN || size === 1) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? 'a string' : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}
