/**
 * safetensors reader/writer (format: https://github.com/huggingface/safetensors#format):
 * u64 little-endian header length N, N bytes of UTF-8 JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`,
 * then the raw little-endian data; offsets are relative to the start of the data section.
 * Every header number is checked against the file size before anything is allocated from it.
 */
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
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
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), dataStart, bytes.length, fail);
  const tensors = new Map<string, TensorData>();
  for (const e of entries) {
    const raw = new Uint8Array(e.end - e.begin); // own buffer: aligned, and independent of `bytes`
    raw.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, raw) });
  }
  return { tensors, metadata };
}

/** The header's JSON, every entry checked against a file of `fileLength` bytes whose data starts at `dataStart`. */
function parseHeader(json: Uint8Array, dataStart: number, fileLength: number, fail: (m: string) => never): { entries: Entry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
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
    else entries.push(checkEntry(name, raw, fileLength - dataStart, dataStart, fileLength, fail));
  }
  checkOverlap(entries, fail);
  return { entries, metadata };
}

/** A safetensors file read tensor by tensor: the header (checked as parseSafetensors checks it) now, each tensor's data when asked. */
export interface SafetensorsReader {
  /** Name → dtype and shape, in header order. */
  entries: Map<string, { dtype: DType; shape: number[] }>;
  metadata: Record<string, string>;
  /** One tensor, decoded (its own buffer). */
  read(name: string): Promise<TensorData>;
  close(): Promise<void>;
}

export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EditError(`cannot read safetensors file: ${e.code ?? e.message}`, { file: path });
  }
  return safetensorsReader(fh, path);
}

/** A reader over an open file (closed by the reader's close(), or here when the header is refused). */
export async function safetensorsReader(fh: FileHandle, path: string): Promise<SafetensorsReader> {
  const fail: (message: string) => never = (message) => {
    throw new EditError(message, { file: path });
  };
  try {
    const size = (await fh.stat()).size;
    if (size < 8) fail(`truncated safetensors file: ${size} bytes, shorter than the 8-byte header length`);
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const headerLength = head.readBigUInt64LE(0);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`safetensors header length ${headerLength} is absurd (limit ${MAX_HEADER_BYTES} bytes); the file is corrupt`);
    const n = Number(headerLength);
    if (8 + n > size) fail(`truncated safetensors file: header length ${n} reaches beyond the end of the file (file has ${size} bytes, needs ${8 + n})`);
    const json = Buffer.alloc(n);
    await fh.read(json, 0, n, 8);
    const dataStart = 8 + n;
    const { entries, metadata } = parseHeader(json, dataStart, size, fail);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return {
      entries: new Map(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])),
      metadata,
      async read(name) {
        const e = byName.get(name);
        if (e === undefined) throw new InternalError(`no tensor "${name}" in ${path}`);
        const raw = new Uint8Array(e.end - e.begin);
        const { bytesRead } = await fh.read(raw, 0, raw.length, dataStart + e.begin);
        if (bytesRead !== raw.length) fail(`truncated safetensors file: tensor "${name}" ends past the end of the file`);
        return { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, raw) };
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
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

interface Layout {
  /** 8-byte length, the JSON header, space padding to 8 bytes. */
  head: Uint8Array;
  /** Tensors in data order, with their offsets from the data section's start. */
  order: Array<{ name: string; dtype: DType; begin: number; end: number }>;
  dataLength: number;
}

/**
 * The header and data layout of a file of these tensors: the header lists tensors by name; the data
 * section holds 8-byte dtypes first, then 4-byte, then 2-byte (by name within each), so every tensor
 * is aligned to its element size with no gaps (the upstream reader rejects gaps).
 */
function layoutOf(specs: Array<{ name: string; dtype: DType; shape: number[] }>, metadata?: Record<string, string>): Layout {
  const named = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const layout = [...named].sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype]); // stable: keeps name order
  const offsets = new Map<string, [number, number]>();
  let dataLength = 0;
  for (const { name, dtype, shape } of layout) {
    const end = dataLength + shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
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
  for (const { name, dtype, shape } of named) fields.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: offsets.get(name) })}`);
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8; // padded with spaces so the data starts 8-aligned
  const head = new Uint8Array(8 + headerLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);
  return { head, order: layout.map(({ name, dtype }) => ({ name, dtype, begin: offsets.get(name)![0], end: offsets.get(name)![1] })), dataLength };
}

/** Encode tensors as a safetensors file (layout: layoutOf). */
export function serializeSafetensors(
  tensors: Map<string, TensorInput> | Record<string, TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const byName = new Map(tensors instanceof Map ? tensors : Object.entries(tensors));
  const specs = [...byName].map(([name, t]) => {
    const dtype = t.dtype ?? 'F32';
    checkInput(name, dtype, t);
    return { name, dtype, shape: t.shape };
  });
  const { head, order, dataLength } = layoutOf(specs, metadata);
  const out = new Uint8Array(head.length + dataLength);
  out.set(head);
  for (const { name, dtype, begin, end } of order) {
    const region = out.subarray(head.length + begin, head.length + end);
    region.set(encode(dtype, byName.get(name)!.data));
    hostOrderInPlace(region, DTYPE_SIZE[dtype]);
  }
  return out;
}

/**
 * Writes the same bytes as serializeSafetensors, atomically, one tensor at a time: `data(name)` is
 * asked for each tensor in data order and its array can be dropped once written, so a file is never
 * held whole in memory. Returns the file's sha256.
 */
export async function writeSafetensorsStreaming(
  path: string,
  specs: Array<{ name: string; dtype?: DType; shape: number[] }>,
  data: (name: string) => Promise<TensorInput['data']>,
  metadata?: Record<string, string>,
): Promise<string> {
  const { head, order } = layoutOf(specs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'F32', shape: t.shape })), metadata);
  const shapes = new Map(specs.map((t) => [t.name, t.shape]));
  const hash = createHash('sha256');
  await writeFileAtomic(path, async (fh) => {
    await fh.write(head);
    hash.update(head);
    for (const { name, dtype } of order) {
      const values = await data(name);
      checkInput(name, dtype, { dtype, shape: shapes.get(name)!, data: values });
      const encoded = encode(dtype, values);
      const bytes = HOST_IS_LITTLE_ENDIAN ? encoded : Uint8Array.from(encoded); // a big-endian host swaps a copy
      hostOrderInPlace(bytes, DTYPE_SIZE[dtype]);
      await fh.write(bytes);
      hash.update(bytes);
    }
  });
  return hash.digest('hex');
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
