/**
 * What edit files may hold (issue 9, items 3, 6, 7): UTF-8 only (offset of the first bad byte), no
 * NUL, a BOM dropped; capped string sizes and list lengths; prompts that fit the model's context;
 * targets not glued to their prompt; and user text in messages cut to an excerpt.
 */
import { describe, it, expect } from 'vitest';
import { decodeEditFile, invalidUtf8Offset, parseEditFile } from '../src/spec/load.js';
import { contextProblems } from '../src/spec/lengths.js';
import { spacingWarnings } from '../src/spec/spacing.js';
import type { EditSpec, LoadedEdit } from '../src/spec/types.js';
import { cut, excerpt, idList, shellWord } from '../src/util/format.js';

const enc = (s: string) => new TextEncoder().encode(s);
const bytes = (...parts: Array<string | number[]>) => Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...enc(p)] : p)));

describe('edit file bytes', () => {
  it('UTF-8 text decodes; a UTF-8 byte-order mark is dropped', () => {
    expect(decodeEditFile(enc('{"a":"Zürich"}'))).toEqual({ text: '{"a":"Zürich"}' });
    expect(decodeEditFile(bytes([0xef, 0xbb, 0xbf], '{}'))).toEqual({ text: '{}' });
  });

  it('invalid UTF-8 is refused with the byte offset and line of the first bad byte', () => {
    // Latin-1 "é" (0xE9) where UTF-8 needs C3 A9: the classic file saved in the wrong encoding.
    expect(decodeEditFile(bytes('{\n  "prompt": "Caf', [0xe9], '"\n}'))).toEqual({
      message: 'is not valid UTF-8: byte 0xE9 at byte offset 18 (line 2) does not start a complete UTF-8 character; save the file as UTF-8',
    });
    expect(decodeEditFile(bytes('{"a":"', [0x80], '"}'))).toEqual({
      message: 'is not valid UTF-8: byte 0x80 at byte offset 6 (line 1) does not start a complete UTF-8 character; save the file as UTF-8',
    });
  });

  it('finds the first ill-formed sequence (Unicode table 3-7): overlongs, surrogates, past U+10FFFF, truncated', () => {
    expect(invalidUtf8Offset(enc('plain ascii and ü € 𝄞'))).toBe(-1);
    expect(invalidUtf8Offset(bytes('ab', [0xc0, 0xaf]))).toBe(2); // overlong "/"
    expect(invalidUtf8Offset(bytes('ab', [0xe0, 0x80, 0xaf]))).toBe(2); // overlong 3-byte
    expect(invalidUtf8Offset(bytes('a', [0xed, 0xa0, 0x80]))).toBe(1); // U+D800 encoded
    expect(invalidUtf8Offset(bytes('a', [0xf4, 0x90, 0x80, 0x80]))).toBe(1); // U+110000
    expect(invalidUtf8Offset(bytes('a', [0xf5, 0x80, 0x80, 0x80]))).toBe(1);
    expect(invalidUtf8Offset(bytes('abc', [0xe2, 0x82]))).toBe(3); // "€" cut at end of file
    expect(invalidUtf8Offset(bytes('x', [0xe2, 0x82, 0x41]))).toBe(1); // bad continuation
    expect(invalidUtf8Offset(bytes('€', [0xe2, 0x82, 0xac]))).toBe(-1);
  });

  it('a NUL byte is refused with its offset; UTF-16 is named', () => {
    expect(decodeEditFile(bytes('{"a":\n"b', [0], '"}'))).toEqual({ message: 'has a NUL byte at byte offset 8 (line 2); an edit file is UTF-8 text' });
    expect(decodeEditFile(bytes([0xff, 0xfe], [0x7b, 0]))).toEqual({ message: 'is UTF-16 (byte-order mark 0xFF 0xFE); save it as UTF-8' });
    expect(decodeEditFile(bytes([0xfe, 0xff], [0, 0x7b]))).toEqual({ message: 'is UTF-16 (byte-order mark 0xFE 0xFF); save it as UTF-8' });
  });

  it('escaped NUL characters and lone surrogates in strings are refused with their pointer', () => {
    const where = { id: 'x', file: 'edits/x.json' };
    const base = { version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon' };
    expect(parseEditFile(JSON.stringify({ ...base, target: ' Ly\u0000on' }), where).problems).toEqual([
      { file: 'edits/x.json', pointer: '/target', line: 1, kind: 'encoding', message: 'has a NUL character (\\u0000) at character 3' },
    ]);
    const lone = JSON.stringify({ ...base, rephrase: ['fine', 'bad '] }).replace('bad ', 'bad \\ud83d');
    expect(parseEditFile(lone, where).problems).toEqual([
      { file: 'edits/x.json', pointer: '/rephrase/1', line: 1, kind: 'encoding', message: 'has a lone surrogate (\\ud83d) at character 4: not a Unicode character' },
    ]);
    expect(parseEditFile(JSON.stringify({ ...base, target: ' 🦁' }), where).problems).toEqual([]);
  });
});

describe('schema caps', () => {
  const where = { id: 'x', file: 'edits/x.json' };
  const base = { version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon' };
  const messages = (spec: Record<string, unknown>) => parseEditFile(JSON.stringify(spec), where).problems.map((p) => `${p.pointer}: ${p.message}`);

  it('a 400 KB prompt is refused with its length, never echoed', () => {
    const huge = 'The capital of France is '.repeat(16_000);
    const m = messages({ ...base, prompt: huge });
    expect(m).toEqual([`/prompt: must be at most 4096 characters long (got ${huge.length})`]);
    expect(m.join('').length).toBeLessThan(100);
  });

  it('strings and lists have limits, counted in characters (code points) and items', () => {
    expect(messages({ ...base, target: ` ${'🦁'.repeat(1023)}` })).toEqual([]);
    expect(messages({ ...base, target: ` ${'🦁'.repeat(1024)}` })).toEqual(['/target: must be at most 1024 characters long (got 1025)']);
    expect(messages({ ...base, rephrase: Array.from({ length: 101 }, (_, i) => `p${i}`) })).toEqual(['/rephrase: must have at most 100 items (got 101)']);
    expect(messages({ ...base, subject: 's'.repeat(257), relation: 'r'.repeat(257), instruction: 'i'.repeat(2049), task: `t${'-'.repeat(64)}` })).toEqual([
      '/task: must be at most 64 characters long (got 65)',
      '/instruction: must be at most 2048 characters long (got 2049)',
      '/subject: must be at most 256 characters long (got 257)',
      '/relation: must be at most 256 characters long (got 257)',
    ]);
    expect(messages({ ...base, expect: [{ type: 'contains', prompt: 'p', value: 'v'.repeat(1025) }] })).toEqual(['/expect/0/value: must be at most 1024 characters long (got 1025)']);
  });

  it('a long value in a message is cut to an excerpt', () => {
    const m = messages({ ...base, task: `Counterfact ${'x'.repeat(500)}` });
    expect(m).toEqual([
      '/task: must be at most 64 characters long (got 512)',
      `/task: must match the pattern ^[a-z0-9][a-z0-9-]*$ (got 'Counterfact ${'x'.repeat(48)}…')`,
    ]);
  });
});

describe('excerpt', () => {
  it('quotes short text whole and cuts long text with "…" and its length', () => {
    expect([shellWord('models/default'), shellWord('calling code'), shellWord("it's"), shellWord('a=b,c')]).toEqual(['models/default', "'calling code'", "'it'\\''s'", 'a=b,c']);
    expect(excerpt(' Lyon')).toBe('" Lyon"');
    expect(excerpt('a'.repeat(80))).toBe(JSON.stringify('a'.repeat(80)));
    expect(excerpt('a'.repeat(400_000))).toBe(`"${'a'.repeat(80)}…" (400000 characters)`);
    expect(excerpt('line\nbreak', 4)).toBe('"line…" (10 characters)');
  });

  it('never splits a surrogate pair', () => {
    expect(cut('ab🦁cd', 3)).toBe('ab…');
    expect(cut('ab🦁cd', 4)).toBe('ab🦁…');
  });
});

const loaded = (spec: Partial<EditSpec>, file = 'edits/x.json'): LoadedEdit => ({
  id: 'x',
  file,
  sha256: '',
  spec: { version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon', ...spec },
});

describe('idList', () => {
  it('lists up to five ids, then says how many more', () => {
    expect(idList(['a', 'b'])).toBe('a, b');
    expect(idList(['a', 'b', 'c', 'd', 'e'])).toBe('a, b, c, d, e');
    expect(idList(['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toBe('a, b, c, d, e and 2 more');
  });
});

describe('context lengths', () => {
  const words = (text: string) => text.split(/(?= )/).filter((w) => w !== '').length; // a word per token
  const limit = { countTokens: words, context: 8, model: 'models/default' };

  it('prompt + target must fit; the message names length, limit and model', () => {
    expect(contextProblems([loaded({})], limit)).toEqual([]);
    const long = 'one two three four five six seven'; // 7 tokens
    expect(contextProblems([loaded({ prompt: long, target: ' eight nine' })], limit)).toEqual([
      { file: 'edits/x.json', pointer: '/prompt', kind: 'length', message: 'is 7 tokens + 2 of the target " eight nine": 9 > 8, the context of models/default; shorten it' },
    ]);
    expect(contextProblems([loaded({ prompt: long, target: ' eight' })], limit)).toEqual([]);
  });

  it('every prompt is checked with what follows it, on its own pointer', () => {
    const nine = 'a b c d e f g h i';
    const spec: Partial<EditSpec> = {
      rephrase: ['fine', nine],
      locality: [{ prompt: 'a b c d e f g h' }, { prompt: 'a b c d e f g', answer: ' x y' }],
      portability: [{ prompt: 'a b c d e f g', answer: ' x' }],
      expect: [
        { type: 'not-contains', prompt: 'a b c d e f g', value: 'zzz zzz zzz' },
        { type: 'prob', prompt: 'a b c d e f g', value: ' x y', min: 0.1 },
        { type: 'prob', prompt: 'a b c d e f g', value: ' x y z', min: 0.1 },
        { type: 'starts-with', prompt: 'a b c d e f g', value: ' x y' },
      ],
    };
    expect(contextProblems([loaded(spec)], limit).map((p) => `${p.pointer}: ${p.message}`)).toEqual([
      '/rephrase/1: is 9 tokens + 1 of the target " Lyon": 10 > 8, the context of models/default; shorten it',
      '/locality/0/prompt: is 8 tokens, and generation needs 1 more: 9 > 8, the context of models/default; shorten it',
      '/locality/1/prompt: is 7 tokens + 2 of its answer " x y": 9 > 8, the context of models/default; shorten it',
      // a scored completion's last token is never fed: 7 + 2 - 1 fits, 7 + 3 - 1 does not
      '/expect/2/prompt: is 7 tokens + 3 of its value " x y z": 9 > 8, the context of models/default; shorten it',
      '/expect/3/prompt: is 7 tokens + 2 of its value " x y": 9 > 8, the context of models/default; shorten it',
    ]);
  });

  it('a long prompt is never echoed; a long target is an excerpt', () => {
    const [p] = contextProblems([loaded({ prompt: `w${' w'.repeat(99)}`, target: ` ${'t'.repeat(500)}` })], limit);
    expect(p.message).toBe(`is 100 tokens + 1 of the target " ${'t'.repeat(79)}…" (501 characters): 101 > 8, the context of models/default; shorten it`);
  });

  it('counts each distinct text once', () => {
    let calls = 0;
    const counting = { ...limit, countTokens: (t: string) => (calls++, words(t)) };
    contextProblems([loaded({ rephrase: ['a', 'b'] }), loaded({ rephrase: ['a', 'b'] }, 'edits/y.json')], counting);
    expect(calls).toBe(4); // prompt, target, 'a', 'b'
  });
});

describe('spacing warnings', () => {
  it('prompt and target glued: a warning on /target naming the glued word and the fix', () => {
    expect(spacingWarnings([loaded({ prompt: 'The capital of Portugal is', target: 'Lisbon' })])).toEqual([
      {
        file: 'edits/x.json',
        pointer: '/target',
        kind: 'spacing',
        message: 'neither the prompt ends with a space nor the target starts with one, so the model is asked for "isLisbon"; start the target with a space (" Lisbon")',
      },
    ]);
  });

  it('no warning when either side supplies the space, or the glue is punctuation or an opening quote', () => {
    const fine: Array<Partial<EditSpec>> = [
      { prompt: 'The capital of Portugal is', target: ' Lisbon' },
      { prompt: 'The capital of Portugal is ', target: 'Lisbon' },
      { prompt: 'Q: capital of Portugal?\n', target: 'Lisbon' },
      { prompt: 'The capital of Portugal is', target: ', of course, Lisbon' },
      { prompt: 'He called the capital "', target: 'Lisbon"' },
      { prompt: 'The capital (', target: 'Lisbon)' },
    ];
    for (const f of fine) expect(spacingWarnings([loaded(f)]), JSON.stringify(f)).toEqual([]);
  });

  it('rephrasings, answers and starts-with values are checked too, each on its pointer', () => {
    const spec: Partial<EditSpec> = {
      prompt: 'The capital of Portugal is ',
      target: 'Lisbon',
      rephrase: ["Portugal's capital:"],
      locality: [{ prompt: 'The capital of Spain is', answer: 'Madrid' }, { prompt: 'x' }],
      portability: [{ prompt: 'Lisbon lies on the river', answer: 'Tagus' }],
      expect: [{ type: 'starts-with', prompt: 'The capital of Portugal is', value: 'Lisbon' }, { type: 'contains', prompt: 'a', value: 'b' }],
    };
    expect(spacingWarnings([loaded(spec)]).map((w) => `${w.pointer}: ${w.message}`)).toEqual([
      '/target: neither rephrasing 0 ends with a space nor the target starts with one, so the model is asked for "capital:Lisbon"; start the target with a space (" Lisbon")',
      '/locality/0/answer: neither the prompt ends with a space nor the answer starts with one, so the model is asked for "isMadrid"; start the answer with a space (" Madrid")',
      '/portability/0/answer: neither the prompt ends with a space nor the answer starts with one, so the model is asked for "riverTagus"; start the answer with a space (" Tagus")',
      '/expect/0/value: neither the prompt ends with a space nor the value starts with one, so the model is asked for "isLisbon"; start the value with a space (" Lisbon")',
    ]);
  });
});
