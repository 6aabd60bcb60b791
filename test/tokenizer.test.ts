import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { getEncoding } from 'js-tiktoken';
import { afterAll, describe, expect, it } from 'vitest';
import { EditError } from '../src/errors.js';
import { Tokenizer, trainBpe, type TokenizerJson } from '../src/model/tokenizer.js';
import { gpt2TokenizerJson } from './helpers/gpt2-tokenizer.js';

const SAMPLES = [
  'Hello world',
  'The capital of France is Paris.',
  "I'm sure it's fine; they're here, we've won, you'll see, he'd go, she's OK. Don't!",
  "IT'S LOUD. 'Quoted' and ''double''",
  'Numbers: 1, 22, 333, 4444, 55555, 3.14159, -42, 1,000,000 and 2024-06-01.',
  'Punctuation!!! ??? ... --- (parens) [brackets] {braces} <angle> @#$%^&*_+=~`|\\/',
  'multiple   spaces    here     and a tab\tand\ttabs\t\there',
  'line one\nline two\n\nline four\r\nwindows line\n   indented\n',
  '   leading and trailing spaces   ',
  'Zürich, Genève, São Paulo, Kraków, Ελλάδα, Москва',
  '東京 is the capital of 日本. 北京, 서울',
  'Emoji: 😀 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ end',
  'Q: What is the currency of Japan? A: the yen',
  'text<|endoftext|>more text <|endoftext|> and again<|endoftext|>',
  '',
  ' ',
  '\n\n\n',
  'a',
  '='.repeat(3000) + ' ' + 'ab'.repeat(2000),
  'mixed123numbers456and789letters and_under_scores CamelCaseWords snake_case',
];

function hfTokenizer(json: TokenizerJson): HfTokenizer {
  return new HfTokenizer(json, { clean_up_tokenization_spaces: false });
}

/** English-like text from a fixed seed. */
function syntheticText(sentences: number, seed = 1): string {
  const words = ['the', 'capital', 'of', 'France', 'is', 'Paris', 'river', 'mountain', 'city', "it's", 'currency',
    'language', 'spoken', 'in', 'Japan', 'yen', 'and', 'a', 'large', 'small', 'north', 'of', 'Zürich', '2024', 'people'];
  let s = seed;
  const rand = () => { s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const out: string[] = [];
  for (let i = 0; i < sentences; i++) {
    const n = 4 + Math.floor(rand() * 10);
    const sentence = Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]!).join(' ');
    out.push(sentence[0]!.toUpperCase() + sentence.slice(1) + (rand() < 0.2 ? '?' : '.'));
  }
  return out.join(rand() < 0.5 ? ' ' : '\n');
}

/** The textbook trainer: recount every pair before each merge; same tie-break and stop rules. */
function naiveMerges(texts: string[], tokenLimit: number, minFrequency: number): Array<[string, string]> {
  const json = trainBpe([], { vocabSize: 257 });
  const tok = Tokenizer.fromJson(json); // bytes only: encode gives one token per byte
  const words: string[][] = [];
  for (const text of texts) {
    for (const m of text.matchAll(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu)) {
      words.push(tok.encode(m[0]).map((id) => tok.idToToken(id)!));
    }
  }
  const vocab = new Set(Object.keys(json.model.vocab).filter((t) => t !== '<|endoftext|>'));
  const merges: Array<[string, string]> = [];
  while (vocab.size < tokenLimit) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]} ${w[i + 1]}`, (counts.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    let best: [string, string] | undefined;
    let bestCount = 0;
    for (const [key, count] of counts) {
      const [a, b] = key.split(' ') as [string, string];
      if (count > bestCount || (count === bestCount && best !== undefined && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = count;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    merges.push(best);
    vocab.add(best[0] + best[1]);
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === best[0] && w[i + 1] === best[1]) w.splice(i, 2, best[0] + best[1]);
    }
  }
  return merges;
}

describe('GPT-2 tokenizer.json', () => {
  const ours = Tokenizer.fromJson(gpt2TokenizerJson(), 'gpt2/tokenizer.json');
  const tiktoken = getEncoding('gpt2');
  const hf = hfTokenizer(gpt2TokenizerJson());

  it('loads with GPT-2 sizes and ids', () => {
    expect(ours.vocabSize).toBe(50257);
    expect(ours.eosId).toBe(50256);
    expect(ours.tokenToId('<|endoftext|>')).toBe(50256);
    expect(ours.tokenToId('Ġthe')).toBe(262);
    expect(ours.idToToken(262)).toBe('Ġthe');
    expect(ours.idToToken(0)).toBe('!');
    expect(ours.idToToken(99999)).toBeUndefined();
  });

  it.each(SAMPLES.map((s) => [JSON.stringify(s).slice(0, 50), s]))('encodes %s like tiktoken and HF', (_name, text) => {
    const ids = ours.encode(text);
    expect(ids).toEqual(tiktoken.encode(text, 'all'));
    expect(ids).toEqual(text === '' ? [] : hf.encode(text).ids);
    expect(ours.decode(ids)).toBe(text);
  });

  it('encodes a long synthetic text like tiktoken', () => {
    const text = syntheticText(3000) + SAMPLES.join('\n');
    expect(ours.encode(text)).toEqual(tiktoken.encode(text, 'all'));
  });

  it('accepts merges in pair form too', () => {
    const json = gpt2TokenizerJson();
    json.model.merges = (json.model.merges as string[]).map((m) => m.split(' ') as [string, string]);
    const pairs = Tokenizer.fromJson(json);
    for (const text of SAMPLES) expect(pairs.encode(text)).toEqual(ours.encode(text));
  });

  it('returns its json', () => {
    expect(ours.toJson()).toEqual(gpt2TokenizerJson());
  });
});

describe('trainBpe', () => {
  const corpus = [syntheticText(400, 7), syntheticText(400, 8), 'first document<|endoftext|>second document', ...SAMPLES];
  const json = trainBpe(corpus, { vocabSize: 400 });

  it('is deterministic', () => {
    const again = trainBpe(corpus, { vocabSize: 400 });
    expect(again).toEqual(json);
    expect(JSON.stringify(again)).toBe(JSON.stringify(json));
  });

  it('fills the vocabulary: 256 bytes, merges, then <|endoftext|>', () => {
    const tok = Tokenizer.fromJson(json);
    expect(tok.vocabSize).toBe(400);
    expect(Object.keys(json.model.vocab)).toHaveLength(400);
    expect(json.model.merges.length).toBeGreaterThanOrEqual(400 - 257);
    expect(tok.eosId).toBe(399);
    expect(tok.idToToken(399)).toBe('<|endoftext|>');
    expect(json.added_tokens).toEqual([
      { id: 399, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ]);
    expect(tok.idToToken(0)).toBe('!');
    expect(tok.idToToken(188)).toBe('Ā'); // byte 0, as in GPT-2
    // The most frequent pairs of the corpus were merged.
    expect(tok.tokenToId('Ġthe')).toBeDefined();
    expect(tok.encode(' capital')).toHaveLength(1);
  });

  it('stops early when no pair reaches minFrequency', () => {
    const small = trainBpe(['abab abab'], { vocabSize: 1000, minFrequency: 2 });
    // Words: "abab" and "Ġabab", once each; ("Ġ", "abab") is then seen only once.
    expect(small.model.merges).toEqual([['a', 'b'], ['ab', 'ab']]);
    expect(Tokenizer.fromJson(small).vocabSize).toBe(256 + 2 + 1);
  });

  it('merges the same pairs as recounting everything per merge', () => {
    const texts = [syntheticText(300, 3), 'aaaa aaaaa abab bababab', SAMPLES[10]!];
    const vocabSize = 256 + 150 + 1;
    expect(trainBpe(texts, { vocabSize }).model.merges).toEqual(naiveMerges(texts, vocabSize - 1, 2));
  });

  it('breaks ties lexicographically', () => {
    const tied = trainBpe(['zy ba'], { vocabSize: 258, minFrequency: 1 });
    expect(tied.model.merges).toEqual([['b', 'a']]);
  });

  it('round-trips and matches @huggingface/tokenizers on the trained json', () => {
    const tok = Tokenizer.fromJson(json);
    const hf = hfTokenizer(structuredClone(json));
    for (const text of [...SAMPLES, syntheticText(50, 99)]) {
      const ids = tok.encode(text);
      expect(tok.decode(ids)).toBe(text);
      if (text !== '') {
        expect(ids).toEqual(hf.encode(text).ids);
        expect(hf.decode(ids)).toBe(text);
      }
    }
  });

  it('with add_prefix_space, gives every stretch between added tokens a leading space, as @huggingface/tokenizers does', () => {
    const prefixed: TokenizerJson = { ...structuredClone(json), pre_tokenizer: { ...json.pre_tokenizer, add_prefix_space: true } };
    const tok = Tokenizer.fromJson(prefixed);
    const plain = Tokenizer.fromJson(json);
    expect(tok.prefixSpace).toBe(true);
    expect(plain.prefixSpace).toBe(false);
    const hf = hfTokenizer(structuredClone(prefixed));
    for (const text of [...SAMPLES, syntheticText(50, 99)]) {
      const ids = tok.encode(text);
      if (text !== '') expect(ids, JSON.stringify(text.slice(0, 40))).toEqual(hf.encode(text).ids);
    }
    // a word at the start reads as inside a sentence; a text that starts with a space is unchanged
    expect(tok.encode('Paris is')).toEqual(plain.encode(' Paris is'));
    expect(tok.encode(' Paris is')).toEqual(plain.encode(' Paris is'));
    expect(tok.encode('Paris is')).not.toEqual(plain.encode('Paris is'));
    expect(tok.encode('')).toEqual([]);
    expect(Tokenizer.fromJson(tok.toJson()).prefixSpace).toBe(true);
  });

  it('rejects a vocabSize below 256 bytes + special tokens', () => {
    expect(() => trainBpe(['x'], { vocabSize: 100 })).toThrow(EditError);
    expect(() => trainBpe(['x'], { vocabSize: 300, specialTokens: ['<pad>'] })).toThrow(/<\|endoftext\|>/);
  });
});

describe('Tokenizer.load errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'editops-tokenizer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function loadError(path: string): Promise<EditError> {
    const err = await Tokenizer.load(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EditError);
    return err as EditError;
  }

  it('loads a trained tokenizer from disk', async () => {
    const json = trainBpe(['hello hello world'], { vocabSize: 270, minFrequency: 1 });
    const file = join(dir, 'trained.json');
    writeFileSync(file, JSON.stringify(json));
    const tok = await Tokenizer.load(file);
    expect(tok.toJson()).toEqual(json);
    expect(tok.decode(tok.encode('hello world<|endoftext|>'))).toBe('hello world<|endoftext|>');
  });

  it('names the file and /model/type for a WordPiece tokenizer', async () => {
    const file = join(dir, 'wordpiece.json');
    const json = { ...gpt2TokenizerJson(), model: { type: 'WordPiece', vocab: { a: 0 }, unk_token: '[UNK]' } };
    writeFileSync(file, JSON.stringify(json));
    const err = await loadError(file);
    expect(err.options).toMatchObject({ file, pointer: '/model/type' });
    expect(err.format()).toContain(file);
    expect(err.format()).toContain('/model/type');
    expect(err.format()).toContain('WordPiece');
    expect(() => Tokenizer.fromJson(json, 'x.json')).toThrow(/BPE/);
  });

  it('names the file for text that is not JSON', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{"version": "1.0", oops');
    const err = await loadError(file);
    expect(err.options.file).toBe(file);
    expect(err.format()).toContain(file);
    expect(err.format()).toMatch(/not valid JSON/);
  });

  it('names the file when it is missing', async () => {
    const file = join(dir, 'missing.json');
    const err = await loadError(file);
    expect(err.format()).toBe(`${file}: tokenizer file not found`);
  });

  it('points at a bad merge and a non-byte-level pre-tokenizer', () => {
    const badMerge = gpt2TokenizerJson();
    (badMerge.model.merges as string[])[5] = 'nothere atall';
    expect(() => Tokenizer.fromJson(badMerge, 'f.json')).toThrow(expect.objectContaining({ options: { file: 'f.json', pointer: '/model/merges/5' } }));
    const badPre = { ...gpt2TokenizerJson(), pre_tokenizer: { type: 'Whitespace' } };
    const badFlag = { ...gpt2TokenizerJson(), pre_tokenizer: { type: 'ByteLevel', add_prefix_space: 'yes', trim_offsets: true, use_regex: true } };
    expect(() => Tokenizer.fromJson(badFlag, 'f.json')).toThrow(expect.objectContaining({ options: { file: 'f.json', pointer: '/pre_tokenizer/add_prefix_space' } }));
    expect(() => Tokenizer.fromJson(badPre, 'f.json')).toThrow(expect.objectContaining({ options: { file: 'f.json', pointer: '/pre_tokenizer/type' } }));
  });
});
