import { describe, it, expect } from 'vitest';
import { readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../src/errors.js';
import {
  openSafetensors,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  writeSafetensorsStreaming,
  type SafetensorsFile,
} from '../src/model/safetensors.js';
import { sha256 } from '../src/util/hash.js';
import { editErrorOf } from './helpers/errors.js';
import { tempDir } from './helpers/cli.js';

const FILE = 'bad.safetensors';

/** A file built by hand: LE u64 length, the header text as given (padding included), then data. */
function handBuilt(header: string | object, data: number[] = [], headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}
function bitsF32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

/** The 2-byte elements of the single tensor in a serialized file. */
function halfBits(bytes: Uint8Array): number[] {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const data = bytes.subarray(8 + n);
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(data[i] | (data[i + 1] << 8));
  return out;
}

function roundTrip(dtype: 'F16' | 'BF16', values: number[]): { bits: number[]; decoded: number[] } {
  const bytes = serializeSafetensors({ t: { dtype, shape: [values.length], data: new Float32Array(values) } });
  const t = parseSafetensors(bytes, 'rt').tensors.get('t')!;
  expect(t.dtype).toBe(dtype);
  expect(t.data).toBeInstanceOf(Float32Array);
  return { bits: halfBits(bytes), decoded: [...(t.data as Float32Array)] };
}


describe('known files', () => {
  it('parses what safetensors.torch.save_file({"a": torch.tensor([1.0, 2.0])}) writes', () => {
    // prettier-ignore
    const bytes = new Uint8Array([
      56, 0, 0, 0, 0, 0, 0, 0, // header length 56: the 54-byte JSON plus 2 spaces of padding
      ...new TextEncoder().encode('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  '),
      0x00, 0x00, 0x80, 0x3f, // 1.0f
      0x00, 0x00, 0x00, 0x40, // 2.0f
    ]);
    expect(bytes.length).toBe(72);
    const file = parseSafetensors(bytes, 'a.safetensors');
    expect([...file.tensors.keys()]).toEqual(['a']);
    const a = file.tensors.get('a')!;
    expect(a.dtype).toBe('F32');
    expect(a.shape).toEqual([2]);
    expect(a.data).toEqual(new Float32Array([1, 2]));
    expect(file.metadata).toEqual({});
    // Our writer produces the same bytes as the reference writer.
    expect(serializeSafetensors({ a: { shape: [2], data: new Float32Array([1, 2]) } })).toEqual(bytes);
  });

  it('writes a tiny file byte for byte, header padded to a multiple of 8', () => {
    const header = '{"__metadata__":{"k":"v"},"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}';
    expect(header.length).toBe(79);
    // prettier-ignore
    const expected = new Uint8Array([
      80, 0, 0, 0, 0, 0, 0, 0,
      ...new TextEncoder().encode(header + ' '), // 1 space: 79 → 80
      0x01, 0x00, 0x00, 0x00, // 1
      0xff, 0xff, 0xff, 0xff, // -1
    ]);
    const bytes = serializeSafetensors(new Map([['x', { dtype: 'I32' as const, shape: [2], data: new Int32Array([1, -1]) }]]), {
      k: 'v',
    });
    expect(bytes).toEqual(expected);
  });

  it('lists names sorted, including integer-like names, and lays data out aligned with no gaps', () => {
    const bytes = serializeSafetensors({
      b: { dtype: 'F16', shape: [3], data: new Float32Array([1, 2, 3]) },
      '10': { dtype: 'F32', shape: [1], data: new Float32Array([4]) },
      a: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
      '2': { dtype: 'BF16', shape: [1], data: new Float32Array([6]) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const names = [...headerText.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(names).toEqual(['10', '2', 'a', 'b']);
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    // 8-byte dtypes first, then 4, then 2; by name within a size.
    expect(header.a.data_offsets).toEqual([0, 8]);
    expect(header['10'].data_offsets).toEqual([8, 12]);
    expect(header['2'].data_offsets).toEqual([12, 14]);
    expect(header.b.data_offsets).toEqual([14, 20]);
    expect(bytes.length).toBe(8 + n + 20);
    const back = parseSafetensors(bytes, 'mixed');
    expect(back.tensors.get('a')!.data).toEqual(new BigInt64Array([5n]));
    expect(back.tensors.get('b')!.data).toEqual(new Float32Array([1, 2, 3]));
    expect(back.tensors.get('10')!.data).toEqual(new Float32Array([4]));
    expect(back.tensors.get('2')!.data).toEqual(new Float32Array([6]));
  });
});

describe('round trips', () => {
  it('F32 keeps every bit, including NaN payloads and -0', () => {
    const data = new Float32Array([1 / 3, -0, 3.4028234663852886e38, 1e-45, Infinity, -Infinity]);
    const withPayload = new Uint32Array([0x7fa00001]);
    const all = new Float32Array(data.length + 1);
    all.set(data);
    new Uint32Array(all.buffer)[data.length] = withPayload[0];
    const back = parseSafetensors(serializeSafetensors({ t: { shape: [7], data: all } }), 'rt').tensors.get('t')!;
    expect(back.dtype).toBe('F32');
    expect(new Uint32Array((back.data as Float32Array).buffer)).toEqual(new Uint32Array(all.buffer));
  });

  it('F16: 1/3, 65504, overflow, subnormals, ties to even, Inf and NaN', () => {
    const { bits, decoded } = roundTrip('F16', [
      1 / 3,
      65504,
      65519, // below the midpoint to Inf: stays 65504
      65520, // the midpoint: ties to even, which is Inf
      2 ** -24, // smallest subnormal
      2 ** -25, // half of it: ties to even, which is 0
      3 * 2 ** -26, // above half: rounds up to the smallest subnormal
      1023 * 2 ** -24, // largest subnormal
      2 ** -14, // smallest normal
      1 + 2 ** -11, // tie between 1 and 1 + 2^-10: even is 1
      1 + 3 * 2 ** -11, // tie between 1 + 2^-10 and 1 + 2^-9: even is 1 + 2^-9
      -0,
      -2,
      Infinity,
      -Infinity,
      NaN,
    ]);
    // prettier-ignore
    expect(bits).toEqual([
      0x3555, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x03ff, 0x0400,
      0x3c00, 0x3c02, 0x8000, 0xc000, 0x7c00, 0xfc00, 0x7e00,
    ]);
    expect(decoded.slice(0, 15)).toEqual([
      0.333251953125,
      65504,
      65504,
      Infinity,
      2 ** -24,
      0,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      1,
      1 + 2 ** -9,
      -0,
      -2,
      Infinity,
      -Infinity,
    ]);
    expect(Object.is(decoded[11], -0)).toBe(true);
    expect(decoded[15]).toBeNaN();
  });

  it('F16 decodes every finite half exactly and re-encodes it to the same bits', () => {
    const all = new Uint8Array(65536 * 2);
    for (let h = 0; h < 65536; h++) {
      all[2 * h] = h & 0xff;
      all[2 * h + 1] = h >> 8;
    }
    const header = `{"t":{"dtype":"F16","shape":[65536],"data_offsets":[0,${all.length}]}}`;
    const file = handBuilt(header, [...all]);
    const values = parseSafetensors(file, 'all-f16').tensors.get('t')!.data as Float32Array;
    expect(values[0x3c00]).toBe(1);
    expect(values[0xc000]).toBe(-2);
    expect(values[0x0001]).toBe(2 ** -24);
    const again = halfBits(serializeSafetensors({ t: { dtype: 'F16', shape: [65536], data: values } }));
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (!isNaN && again[h] !== h) throw new Error(`half 0x${h.toString(16)} re-encoded as 0x${again[h].toString(16)}`);
    }
  });

  it('BF16 rounds to nearest, ties to even, and keeps Inf and NaN', () => {
    const { bits, decoded } = roundTrip('BF16', [
      1 / 3, // 0x3eaaaaab: the low half 0xaaab is above the midpoint
      bitsF32(0x3f808000), // 1 + 2^-8: a tie, 0x3f80 is even
      bitsF32(0x3f818000), // 1 + 3·2^-8: a tie, 0x3f81 is odd → 0x3f82
      bitsF32(0x3f808001), // just above the tie → 0x3f81
      bitsF32(0x3f807fff), // just below the tie → 0x3f80
      3.4028234663852886e38, // float32 max rounds up to Inf
      -1.5,
      Infinity,
      NaN,
    ]);
    expect(bits).toEqual([0x3eab, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0x7f80, 0xbfc0, 0x7f80, 0x7fc0]);
    expect(decoded.slice(0, 8)).toEqual([
      bitsF32(0x3eab0000),
      1,
      1.015625,
      1.0078125,
      1,
      Infinity,
      -1.5,
      Infinity,
    ]);
    expect(decoded[8]).toBeNaN();
    expect(f32Bits(decoded[0])).toBe(0x3eab0000);
  });

  it('I32 and I64 keep exact integers, beyond 2^53 for I64', () => {
    const i32 = new Int32Array([0, 1, -1, 2147483647, -2147483648]);
    const i64 = new BigInt64Array([0n, -1n, 9007199254740993n, 9223372036854775807n, -9223372036854775808n]);
    const back = parseSafetensors(
      serializeSafetensors({ i32: { dtype: 'I32', shape: [5], data: i32 }, i64: { dtype: 'I64', shape: [5], data: i64 } }),
      'ints',
    );
    expect(back.tensors.get('i32')).toEqual({ dtype: 'I32', shape: [5], data: i32 });
    expect(back.tensors.get('i64')).toEqual({ dtype: 'I64', shape: [5], data: i64 });
  });

  it('keeps shapes, including zero-size tensors and scalars', () => {
    const back = parseSafetensors(
      serializeSafetensors({
        empty: { shape: [0, 3], data: new Float32Array(0) },
        scalar: { dtype: 'I32', shape: [], data: new Int32Array([7]) },
        m: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      }),
      'shapes',
    );
    expect(back.tensors.get('empty')).toEqual({ dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });
    expect(back.tensors.get('scalar')).toEqual({ dtype: 'I32', shape: [], data: new Int32Array([7]) });
    expect(back.tensors.get('m')!.shape).toEqual([2, 3]);
  });

  it('round-trips metadata', () => {
    const metadata = { format: 'pt', 'editops.note': 'ünïcödé "quoted"\n', empty: '' };
    const back = parseSafetensors(serializeSafetensors({ t: { shape: [1], data: new Float32Array([1]) } }, metadata), 'md');
    expect(back.metadata).toEqual(metadata);
  });

  it('reads from an unaligned view and never aliases the input bytes', () => {
    const bytes = serializeSafetensors({ t: { shape: [2], data: new Float32Array([1, 2]) } });
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const view = shifted.subarray(1);
    const file = parseSafetensors(view, 'shifted');
    view.fill(0);
    expect(file.tensors.get('t')!.data).toEqual(new Float32Array([1, 2]));
  });

  it('accepts a header written with spaces and out-of-order entries', () => {
    const header = '{ "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},  "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} }   ';
    const file = parseSafetensors(handBuilt(header, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]), 'spaced');
    expect(file.tensors.get('a')!.data).toEqual(new Float32Array([1]));
    expect(file.tensors.get('b')!.data).toEqual(new Float32Array([2]));
  });
});

describe('malformed files', () => {
  const tensor = (fields: object) => ({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...fields } });
  const eight = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40];

  it('names the file in every error', () => {
    const err = editErrorOf(() => parseSafetensors(new Uint8Array(3), FILE));
    expect(err.options.file).toBe(FILE);
    expect(err.format()).toMatch(/^bad\.safetensors: truncated/);
  });

  it('rejects a file shorter than 8 bytes', () => {
    expect(() => parseSafetensors(new Uint8Array(5), FILE)).toThrow(
      'truncated safetensors file: 5 bytes, shorter than the 8-byte header length',
    );
  });

  it('rejects a header length beyond the end of the file', () => {
    const bytes = handBuilt('{}', [], 100);
    expect(() => parseSafetensors(bytes, FILE)).toThrow(
      'truncated safetensors file: header length 100 reaches beyond the end of the file (file has 10 bytes, needs 108)',
    );
  });

  it('rejects an absurd header length without allocating it', () => {
    const bytes = handBuilt('{}', [], 2 ** 40);
    expect(() => parseSafetensors(bytes, FILE)).toThrow(/header length 1099511627776 is absurd \(limit 100000000 bytes\)/);
    const max = new Uint8Array(16).fill(0xff);
    expect(() => parseSafetensors(max, FILE)).toThrow(/header length 18446744073709551615 is absurd/);
  });

  it('rejects a header that is not JSON or not UTF-8', () => {
    expect(() => parseSafetensors(handBuilt('{"t":'), FILE)).toThrow(/safetensors header is not valid JSON/);
    const bytes = handBuilt('{"\xff":1}');
    bytes[10] = 0xff; // a lone continuation byte: invalid UTF-8
    expect(() => parseSafetensors(bytes, FILE)).toThrow(/safetensors header is not valid JSON/);
  });

  it('rejects a header that is not an object', () => {
    expect(() => parseSafetensors(handBuilt('[1,2]'), FILE)).toThrow('safetensors header is not a JSON object (got an array)');
    expect(() => parseSafetensors(handBuilt('null'), FILE)).toThrow('safetensors header is not a JSON object (got null)');
    expect(() => parseSafetensors(handBuilt('{"t":[1]}'), FILE)).toThrow('tensor "t": header entry is not an object (got an array)');
  });

  it('rejects an unknown dtype, naming it and the supported ones', () => {
    expect(() => parseSafetensors(handBuilt(tensor({ dtype: 'F64' }), eight), FILE)).toThrow(
      'tensor "t": unknown dtype "F64"; supported: F32, F16, BF16, I32, I64',
    );
    expect(() => parseSafetensors(handBuilt({ t: { shape: [2], data_offsets: [0, 8] } }, eight), FILE)).toThrow(
      /tensor "t": unknown dtype undefined; supported/,
    );
  });

  it('rejects a shape that is not an array of non-negative integers', () => {
    for (const shape of [[-1], [1.5], ['2'], 2, null]) {
      expect(() => parseSafetensors(handBuilt(tensor({ shape }), eight), FILE)).toThrow(
        /tensor "t": shape .* is not an array of non-negative integers/,
      );
    }
  });

  it('rejects data_offsets that are not [begin, end] integers with begin <= end', () => {
    for (const data_offsets of [[8, 0], [0], [0, 8, 9], [0, '8'], [-1, 7], [0, 7.5], 'x']) {
      expect(() => parseSafetensors(handBuilt(tensor({ data_offsets }), eight), FILE)).toThrow(
        /tensor "t": data_offsets .* is not \[begin, end\] integers with begin <= end/,
      );
    }
  });

  it('rejects data_offsets beyond the data section, saying what the file has and needs', () => {
    const header = JSON.stringify(tensor({ shape: [4], data_offsets: [0, 16] }));
    const bytes = handBuilt(header, eight);
    const size = 8 + header.length;
    expect(() => parseSafetensors(bytes, FILE)).toThrow(
      `tensor "t": data_offsets end 16 is beyond the data section of 8 bytes (file has ${size + 8} bytes, needs ${size + 16})`,
    );
  });

  it('rejects a byte length that does not match the shape and dtype', () => {
    expect(() => parseSafetensors(handBuilt(tensor({ shape: [3] }), eight), FILE)).toThrow(
      'tensor "t": byte length 8 does not match shape [3] × 4 bytes (F32) = 12',
    );
    expect(() => parseSafetensors(handBuilt(tensor({ dtype: 'I64' }), eight), FILE)).toThrow(
      'tensor "t": byte length 8 does not match shape [2] × 8 bytes (I64) = 16',
    );
  });

  it('rejects overlapping tensor ranges but allows empty ranges anywhere', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    };
    expect(() => parseSafetensors(handBuilt(header, eight), FILE)).toThrow(
      'tensors "a" [0, 8) and "b" [4, 8) have overlapping data_offsets',
    );
    const empty = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
    };
    expect(parseSafetensors(handBuilt(empty, eight), FILE).tensors.get('z')).toEqual({
      dtype: 'F32',
      shape: [0],
      data: new Float32Array(0),
    });
  });

  it('rejects __metadata__ that is not a string-to-string map', () => {
    expect(() => parseSafetensors(handBuilt({ __metadata__: { step: 3 } }), FILE)).toThrow(
      '__metadata__ is not a map of strings to strings: "step" is number 3',
    );
    expect(() => parseSafetensors(handBuilt({ __metadata__: 'x' }), FILE)).toThrow(
      '__metadata__ is not a map of strings to strings (got a string)',
    );
    expect(() => parseSafetensors(handBuilt({ __metadata__: ['x'] }), FILE)).toThrow(
      '__metadata__ is not a map of strings to strings (got an array)',
    );
  });
});

describe('serializeSafetensors input checks', () => {
  it('throws InternalError for data that does not fit the shape or dtype', () => {
    expect(() => serializeSafetensors({ t: { shape: [3], data: new Float32Array(2) } })).toThrow(InternalError);
    expect(() => serializeSafetensors({ t: { shape: [3], data: new Float32Array(2) } })).toThrow(
      'tensor "t": shape [3] has 3 elements but data has 2',
    );
    expect(() => serializeSafetensors({ t: { dtype: 'I32', shape: [1], data: new Float32Array(1) } })).toThrow(
      'tensor "t": dtype I32 needs a Int32Array, got Float32Array',
    );
    expect(() => serializeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } })).toThrow(/reserved/);
  });
});

/** `fn` in a fresh temporary folder, removed afterwards whatever happens. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir('st');
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('readSafetensors / writeSafetensors', () => {
  it('writes atomically, overwrites, leaves no temporary file, and reads back', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'model.safetensors');
      await writeFile(path, 'old contents');
      const tensors = new Map([['w', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]]);
      await writeSafetensors(path, tensors, { step: '1' });
      expect(await readdir(dir)).toEqual(['model.safetensors']);
      expect(new Uint8Array(await readFile(path))).toEqual(serializeSafetensors(tensors, { step: '1' }));
      const back: SafetensorsFile = await readSafetensors(path);
      expect(back.metadata).toEqual({ step: '1' });
      expect(back.tensors.get('w')).toEqual({ dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
    });
  });

  it('turns a missing file or directory into an EditError naming the path', async () => {
    await inTempDir(async (dir) => {
      const missing = join(dir, 'nope.safetensors');
      await expect(readSafetensors(missing)).rejects.toThrow('cannot read safetensors file: ENOENT');
      await expect(readSafetensors(missing)).rejects.toMatchObject({ options: { file: missing } });
      const nested = join(dir, 'no-dir', 'x.safetensors');
      await expect(writeSafetensors(nested, {})).rejects.toThrow('cannot write safetensors file: ENOENT');
      expect(await readdir(dir)).toEqual([]);
    });
  });
});

describe('openSafetensors / writeSafetensorsStreaming (tensor by tensor)', () => {
  const tensors = {
    'b.weight': { dtype: 'F16' as const, shape: [3], data: new Float32Array([1, -2, 0.5]) },
    '10': { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    a: { dtype: 'I64' as const, shape: [2], data: new BigInt64Array([5n, -6n]) },
    z: { dtype: 'BF16' as const, shape: [1], data: new Float32Array([3]) },
    e: { shape: [0], data: new Float32Array(0) },
  };

  it('writes the bytes serializeSafetensors makes, asking for one tensor at a time, and returns their sha256', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'w.safetensors');
      const asked: string[] = [];
      const specs = Object.entries(tensors).map(([name, t]) => ({ name, shape: t.shape, dtype: 'dtype' in t ? t.dtype : undefined }));
      const digest = await writeSafetensorsStreaming(path, specs, async (name) => (asked.push(name), tensors[name as keyof typeof tensors].data), { format: 'pt' });
      const want = serializeSafetensors(tensors, { format: 'pt' });
      const got = new Uint8Array(await readFile(path));
      expect(got).toEqual(want);
      expect(digest).toBe(sha256(want));
      expect(asked.sort()).toEqual(Object.keys(tensors).sort()); // each once
      expect(await readdir(dir)).toEqual(['w.safetensors']);
      // a tensor of the wrong length is refused and leaves no file
      await expect(writeSafetensorsStreaming(join(dir, 'x.safetensors'), [{ name: 'w', shape: [3] }], async () => new Float32Array(2))).rejects.toThrow(/shape \[3\] has 3 elements but data has 2/);
      expect(await readdir(dir)).toEqual(['w.safetensors']);
    });
  });

  it('reads the header first and each tensor on demand, as parseSafetensors reads them; refuses what it refuses', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'w.safetensors');
      const bytes = serializeSafetensors(tensors, { step: '2' });
      await writeFile(path, bytes);
      const whole = parseSafetensors(bytes, path);
      const reader = await openSafetensors(path);
      try {
        expect(reader.metadata).toEqual({ step: '2' });
        expect([...reader.entries.keys()].sort()).toEqual([...whole.tensors.keys()].sort());
        for (const [name, t] of whole.tensors) {
          expect(reader.entries.get(name)).toEqual({ dtype: t.dtype, shape: t.shape });
          expect(await reader.read(name)).toEqual(t);
        }
      } finally {
        await reader.close();
      }
      await writeFile(path, bytes.subarray(0, bytes.length - 4));
      await expect(openSafetensors(path)).rejects.toThrow(/data_offsets end \d+ is beyond the data section/);
      await writeFile(path, handBuilt('{}', [], 2 ** 40));
      await expect(openSafetensors(path)).rejects.toThrow(/header length 1099511627776 is absurd/);
      await expect(openSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow('cannot read safetensors file: ENOENT');
    });
  });
});
