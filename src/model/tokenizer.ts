/**
 * Byte-level BPE exactly like GPT-2 (Radford et al. 2019; openai/gpt-2 `encoder.py`): text is split by
 * GPT-2's pre-tokenization regex, each piece is turned into bytes shown as printable characters
 * (`bytes_to_unicode`), and merges are applied lowest rank first. The file format is Hugging Face's
 * `tokenizer.json` (huggingface/tokenizers), so a file we train also loads in `@huggingface/tokenizers`,
 * and a real GPT-2 `tokenizer.json` loads here.
 */
import { readFile } from 'node:fs/promises';
import { EditError } from '../errors.js';
import { escapeRegExp } from '../util/regex.js';

// ---------------------------------------------------------------------------------------------
// tokenizer.json, the subset we read and write

/** A ByteLevel pre-tokenizer, post-processor or decoder entry. */
export interface ByteLevelJson {
  type: 'ByteLevel';
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

/** An entry of `added_tokens`: matched as a whole in raw text before pre-tokenization. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BpeModelJson {
  type: 'BPE';
  dropout: number | null;
  unk_token: string | null;
  continuing_subword_prefix: string | null;
  end_of_word_suffix: string | null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
  /** Byte-level token string → id. */
  vocab: Record<string, number>;
  /** In rank order; older files write `"a b"`, newer ones `["a", "b"]`. */
  merges: string[] | Array<[string, string]>;
}

/** The Hugging Face `tokenizer.json` object of a byte-level BPE tokenizer. */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: ByteLevelJson;
  post_processor: ByteLevelJson | null;
  decoder: ByteLevelJson;
  model: BpeModelJson;
}

export const EOS_TOKEN = '<|endoftext|>';

// ---------------------------------------------------------------------------------------------
// GPT-2's byte ↔ character map and pre-tokenization regex

/** GPT-2's pre-tokenization regex (identical in openai/gpt-2, tiktoken `gpt2`, HF ByteLevel). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 onwards. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return chars;
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** The 256 byte tokens in GPT-2's id order (that order is the characters' code order). */
const BYTE_TOKENS: readonly string[] = [...BYTE_TO_CHAR].sort();

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function toByteLevel(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

/** Splits on whole added tokens: even indices are plain text, odd indices are added tokens. */
function makeAddedSplitter(contents: string[]): ((text: string) => string[]) {
  if (contents.length === 0) return (text) => [text];
  const sorted = [...contents].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  const re = new RegExp(`(${sorted.map(escapeRegExp).join('|')})`, 'u');
  return (text) => text.split(re);
}

// ---------------------------------------------------------------------------------------------
// Training

/** Pair of token ids as one number; ids stay below 2^21. */
const PAIR_BASE = 2 ** 21;
const pairKey = (a: number, b: number) => a * PAIR_BASE + b;

interface PairEntry {
  count: number;
  a: number;
  b: number;
}

/** Binary heap; `before(x, y)` true when x must come out first. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (x: T, y: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

/**
 * Trains a GPT-2-style byte-level BPE. Vocabulary: the 256 byte tokens, then one token per merge
 * (most frequent adjacent pair over the counted pre-tokenized words; ties go to the
 * lexicographically smaller pair), then the special tokens. `vocabSize` counts all three.
 * `minFrequency` (default 2): a pair seen fewer times is not merged. Same input → same JSON.
 */
export function trainBpe(
  texts: Iterable<string>,
  opts: { vocabSize: number; minFrequency?: number; specialTokens?: string[] },
): TokenizerJson {
  const specials = [...new Set(opts.specialTokens ?? [EOS_TOKEN])];
  const minFrequency = Math.max(1, opts.minFrequency ?? 2);
  if (!specials.includes(EOS_TOKEN)) {
    throw new EditError(`specialTokens must include ${EOS_TOKEN} (the end-of-text id every model needs)`);
  }
  if (specials.some((s) => s === '')) throw new EditError('specialTokens must not contain an empty string');
  const minSize = BYTE_TOKENS.length + specials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minSize || opts.vocabSize >= PAIR_BASE) {
    throw new EditError(`vocabSize must be an integer from ${minSize} (256 bytes + special tokens) to ${PAIR_BASE - 1}, got ${opts.vocabSize}`);
  }

  // 1. Count unique pre-tokenized words; special tokens in the text are not learned from.
  const wordCounts = new Map<string, number>();
  const splitAdded = makeAddedSplitter(specials);
  for (const text of texts) {
    const sections = splitAdded(text);
    for (let s = 0; s < sections.length; s += 2) {
      for (const m of sections[s]!.matchAll(GPT2_SPLIT)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + 1);
    }
  }

  // 2. Words as token-id sequences; pair counts and where each pair occurs.
  const tokens: string[] = [...BYTE_TOKENS];
  const ids = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const byteId = BYTE_TO_CHAR.map((c) => ids.get(c)!);
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push(Array.from(utf8.encode(word), (b) => byteId[b]!));
    counts.push(count);
  }
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  for (let w = 0; w < words.length; w++) {
    const word = words[w]!;
    for (let i = 0; i + 1 < word.length; i++) {
      const key = pairKey(word[i]!, word[i + 1]!);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[w]!);
      let where = pairWords.get(key);
      if (where === undefined) pairWords.set(key, (where = new Set()));
      where.add(w);
    }
  }

  // 3. Merge the best pair until the vocabulary is full. The heap may hold stale counts (a count
  // that only went down is refreshed when popped; every increase pushes a fresh entry).
  const before = (x: PairEntry, y: PairEntry) => {
    if (x.count !== y.count) return x.count > y.count;
    if (x.a !== y.a) return tokens[x.a]! < tokens[y.a]!;
    return tokens[x.b]! < tokens[y.b]!;
  };
  const heap = new Heap<PairEntry>(before);
  for (const [key, count] of pairCounts) heap.push({ count, a: Math.floor(key / PAIR_BASE), b: key % PAIR_BASE });

  const specialSet = new Set(specials);
  const merges: Array<[string, string]> = [];
  const targetTokens = opts.vocabSize - specials.length;
  while (tokens.length < targetTokens && heap.size > 0) {
    const top = heap.pop()!;
    const key = pairKey(top.a, top.b);
    const count = pairCounts.get(key) ?? 0;
    if (count !== top.count) {
      if (count > 0 && count < top.count) heap.push({ count, a: top.a, b: top.b });
      continue;
    }
    if (count < minFrequency) break;
    const merged = tokens[top.a]! + tokens[top.b]!;
    pairCounts.delete(key);
    if (specialSet.has(merged)) continue; // would collide with a special token's vocab entry
    let id = ids.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      ids.set(merged, id);
    }
    merges.push([tokens[top.a]!, tokens[top.b]!]);

    // Replace the pair in every word holding it; apply the net change in pair counts.
    const delta = new Map<number, number>();
    const gained = new Map<number, number[]>();
    const bump = (k: number, by: number) => delta.set(k, (delta.get(k) ?? 0) + by);
    for (const w of pairWords.get(key) ?? []) {
      const word = words[w]!;
      const next: number[] = [];
      let changed = false;
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === top.a && word[i + 1] === top.b) {
          next.push(id);
          i++;
          changed = true;
        } else {
          next.push(word[i]!);
        }
      }
      if (!changed) continue;
      const c = counts[w]!;
      for (let i = 0; i + 1 < word.length; i++) bump(pairKey(word[i]!, word[i + 1]!), -c);
      for (let i = 0; i + 1 < next.length; i++) {
        const k = pairKey(next[i]!, next[i + 1]!);
        bump(k, c);
        let list = gained.get(k);
        if (list === undefined) gained.set(k, (list = []));
        list.push(w);
      }
      words[w] = next;
    }
    pairWords.delete(key);
    for (const [k, d] of delta) {
      if (d === 0 || k === key) continue;
      const now = (pairCounts.get(k) ?? 0) + d;
      if (now > 0) pairCounts.set(k, now);
      else pairCounts.delete(k);
      if (d > 0) heap.push({ count: now, a: Math.floor(k / PAIR_BASE), b: k % PAIR_BASE });
    }
    // A word can gain a pair whose total did not rise (another word lost it).
    for (const [k, list] of gained) {
      if (k === key) continue;
      let where = pairWords.get(k);
      if (where === undefined) pairWords.set(k, (where = new Set()));
      for (const w of list) where.add(w);
    }
  }

  for (const s of specials) {
    if (ids.has(s)) throw new EditError(`special token ${JSON.stringify(s)} equals a byte token; choose another`);
  }
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const added_tokens = specials.map((content, k): AddedTokenJson => {
    vocab[content] = tokens.length + k;
    return { id: tokens.length + k, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  const byteLevel = (): ByteLevelJson => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: byteLevel(),
    post_processor: { ...byteLevel(), trim_offsets: false },
    decoder: byteLevel(),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Loading and encoding

/** Reads tokenizer.json fields with errors that name the file and the JSON pointer. */
class JsonReader {
  constructor(private readonly file: string | undefined) {}

  fail(pointer: string, message: string): never {
    throw new EditError(message, { file: this.file, pointer });
  }

  object(value: unknown, pointer: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(pointer, `expected an object, got ${describe(value)}`);
    return value as Record<string, unknown>;
  }

  /** Checks a ByteLevel entry; returns its add_prefix_space. */
  byteLevel(value: unknown, pointer: string, what: string): boolean {
    const o = this.object(value, pointer);
    if (o['type'] !== 'ByteLevel') this.fail(`${pointer}/type`, `expected a ByteLevel ${what} (GPT-2 style byte-level BPE), got ${describe(o['type'])}`);
    // Only the pre-tokenizer's flag changes ids (Tokenizer.encode); GPT-2's own file sets it true on the decoder and post-processor.
    if (o['add_prefix_space'] !== undefined && typeof o['add_prefix_space'] !== 'boolean') this.fail(`${pointer}/add_prefix_space`, `expected true or false, got ${describe(o['add_prefix_space'])}`);
    if (o['use_regex'] === false) this.fail(`${pointer}/use_regex`, 'use_regex false is not supported; expected GPT-2\'s pre-tokenization regex');
    return o['add_prefix_space'] === true;
  }

  id(value: unknown, pointer: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= PAIR_BASE) {
      this.fail(pointer, `expected a token id (an integer from 0 to ${PAIR_BASE - 1}), got ${describe(value)}`);
    }
    return value;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** JSON pointer segment escaping (RFC 6901). */
const pointerSegment = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** Words encoded so far; cleared when full so memory stays bounded on endless text. */
const CACHE_LIMIT = 200_000;

export class Tokenizer {
  readonly vocabSize: number;
  readonly eosId: number;

  private readonly json: TokenizerJson;
  private readonly ids: Map<string, number>;
  private readonly tokens: Array<string | undefined>;
  /** UTF-8 bytes of each id's text, for decode. */
  private readonly tokenBytes: Array<Uint8Array | undefined>;
  private readonly byteIds: Int32Array;
  /** Pair key → merge rank, and rank → merged token id. */
  private readonly ranks: Map<number, number>;
  private readonly mergedIds: Int32Array;
  private readonly ignoreMerges: boolean;
  /**
   * The pre-tokenizer's add_prefix_space (as in Hugging Face tokenizers): every stretch of text
   * between added tokens that does not start with a space gets one, so a word at the start of a
   * prompt is the same tokens as inside a sentence (" Paris", never "Paris").
   */
  readonly prefixSpace: boolean;
  private readonly addedIds: Map<string, number>;
  private readonly splitAdded: (text: string) => string[];
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(json: TokenizerJson, file: string | undefined) {
    const r: JsonReader = new JsonReader(file);
    const root = r.object(json, '');
    const model = r.object(root['model'], '/model');
    if (model['type'] !== 'BPE') r.fail('/model/type', `expected a byte-level BPE tokenizer ("BPE"), got ${describe(model['type'])}`);
    if (root['normalizer'] !== null && root['normalizer'] !== undefined) r.fail('/normalizer', `expected no normalizer (GPT-2 has none), got ${describe(root['normalizer'])}`);
    this.prefixSpace = r.byteLevel(root['pre_tokenizer'], '/pre_tokenizer', 'pre-tokenizer');
    r.byteLevel(root['decoder'], '/decoder', 'decoder');
    if (typeof model['dropout'] === 'number' && model['dropout'] > 0) r.fail('/model/dropout', 'BPE dropout is not supported (encoding must be deterministic)');
    for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      const v = model[field];
      if (v !== null && v !== undefined && v !== '') r.fail(`/model/${field}`, `expected none for byte-level BPE, got ${describe(v)}`);
    }

    // Vocabulary.
    const vocab = r.object(model['vocab'], '/model/vocab');
    this.ids = new Map();
    this.tokens = [];
    for (const [token, value] of Object.entries(vocab)) {
      const id = r.id(value, `/model/vocab/${pointerSegment(token)}`);
      if (this.tokens[id] !== undefined) r.fail(`/model/vocab/${pointerSegment(token)}`, `id ${id} is already used by ${JSON.stringify(this.tokens[id])}`);
      this.ids.set(token, id);
      this.tokens[id] = token;
    }
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(BYTE_TO_CHAR[b]!);
      if (id === undefined) r.fail('/model/vocab', `missing the byte token ${JSON.stringify(BYTE_TO_CHAR[b])} (byte ${b}); not a byte-level vocabulary`);
      this.byteIds[b] = id;
    }

    // Added tokens: matched whole in raw text; their text is not byte-level encoded.
    const added = root['added_tokens'] ?? [];
    if (!Array.isArray(added)) r.fail('/added_tokens', `expected an array, got ${describe(added)}`);
    this.addedIds = new Map();
    added.forEach((entry: unknown, i: number) => {
      const o = r.object(entry, `/added_tokens/${i}`);
      const id = r.id(o['id'], `/added_tokens/${i}/id`);
      const content = o['content'];
      if (typeof content !== 'string' || content === '') r.fail(`/added_tokens/${i}/content`, `expected a non-empty string, got ${describe(content)}`);
      const known = this.tokens[id];
      if (known !== undefined && known !== content) r.fail(`/added_tokens/${i}/id`, `id ${id} is ${JSON.stringify(known)} in /model/vocab`);
      this.addedIds.set(content, id);
      this.ids.set(content, id);
      this.tokens[id] = content;
    });
    this.splitAdded = makeAddedSplitter([...this.addedIds.keys()]);

    this.tokenBytes = this.tokens.map((token, id) => {
      if (token === undefined) return undefined;
      if (this.addedIds.get(token) === id) return utf8.encode(token);
      const bytes = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const b = CHAR_TO_BYTE.get(token[i]!);
        if (b === undefined) r.fail(`/model/vocab/${pointerSegment(token)}`, `${JSON.stringify(token)} is not a byte-level token (character ${JSON.stringify(token[i])})`);
        bytes[i] = b;
      }
      return bytes;
    });

    // Merges, in rank order.
    const merges = model['merges'];
    if (!Array.isArray(merges)) r.fail('/model/merges', `expected an array, got ${describe(merges)}`);
    this.ranks = new Map();
    this.mergedIds = new Int32Array(merges.length);
    merges.forEach((m: unknown, rank: number) => {
      const pointer = `/model/merges/${rank}`;
      let pair: unknown[] | undefined;
      if (typeof m === 'string') pair = m.split(' ');
      else if (Array.isArray(m)) pair = m;
      if (pair?.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        r.fail(pointer, `expected "left right" or ["left", "right"], got ${describe(m)}`);
      }
      const [left, right] = pair as [string, string];
      const a = this.ids.get(left);
      const b = this.ids.get(right);
      const c = this.ids.get(left + right);
      if (a === undefined || b === undefined || c === undefined) {
        const missing = [left, right, left + right].find((t) => !this.ids.has(t));
        r.fail(pointer, `${JSON.stringify(missing)} is not in /model/vocab`);
      }
      const key = pairKey(a, b);
      if (!this.ranks.has(key)) this.ranks.set(key, rank); // a repeated merge keeps its first rank
      this.mergedIds[rank] = c;
    });
    this.ignoreMerges = model['ignore_merges'] === true;

    const eos = this.ids.get(EOS_TOKEN);
    if (eos === undefined) r.fail('/added_tokens', `no ${EOS_TOKEN} token; the model needs an end-of-text id`);
    this.eosId = eos;
    this.vocabSize = this.tokens.length;
    this.json = json;
  }

  /** Validates a parsed tokenizer.json; `file` only names it in errors. */
  static fromJson(json: unknown, file?: string): Tokenizer {
    return new Tokenizer(json as TokenizerJson, file);
  }

  static async load(path: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new EditError(code === 'ENOENT' ? 'tokenizer file not found' : `cannot read tokenizer file (${code ?? String(e)})`, { file: path });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new EditError(`not valid JSON: ${(e as Error).message}`, { file: path });
    }
    return Tokenizer.fromJson(json, path);
  }

  encode(text: string): number[] {
    const out: number[] = [];
    const sections = this.splitAdded(text);
    for (let s = 0; s < sections.length; s++) {
      const section = sections[s]!;
      if (s % 2 === 1) {
        out.push(this.addedIds.get(section)!);
        continue;
      }
      const piece = this.prefixSpace && section.length > 0 && !section.startsWith(' ') ? ` ${section}` : section;
      for (const m of piece.matchAll(GPT2_SPLIT)) {
        const word = m[0];
        let ids = this.cache.get(word);
        if (ids === undefined) {
          ids = this.bpe(utf8.encode(word));
          if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
          this.cache.set(word, ids);
        }
        for (const id of ids) out.push(id);
      }
    }
    return out;
  }

  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const bytes = this.tokenBytes[id];
      if (bytes === undefined) throw new EditError(`token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const p of parts) {
      all.set(p, offset);
      offset += p.length;
    }
    return utf8Decoder.decode(all);
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  toJson(): TokenizerJson {
    return structuredClone(this.json);
  }

  /**
   * Merges one pre-tokenized word: repeatedly the adjacent pair of lowest rank, leftmost first
   * (what GPT-2's loop over `bpe_ranks` and HF's priority queue both compute), over a linked list.
   */
  private bpe(bytes: Uint8Array): readonly number[] {
    const n = bytes.length;
    const sym = new Int32Array(n);
    for (let i = 0; i < n; i++) sym[i] = this.byteIds[bytes[i]!]!;
    if (n < 2) return Array.from(sym);
    if (this.ignoreMerges) {
      const whole = this.ids.get(toByteLevel(bytes));
      if (whole !== undefined) return [whole];
    }
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Min-heap of rank * 2^31 + position.
    const heap: number[] = [];
    const POS = 2 ** 31;
    const push = (v: number) => {
      let i = heap.length;
      heap.push(v);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= v) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = v;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= heap.length) break;
          const c = l + 1 < heap.length && heap[l + 1]! < heap[l]! ? l + 1 : l;
          if (heap[c]! >= last) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const consider = (i: number) => {
      const j = next[i]!;
      if (j < 0) return;
      const rank = this.ranks.get(pairKey(sym[i]!, sym[j]!));
      if (rank !== undefined) push(rank * POS + i);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.length > 0) {
      const v = pop();
      const rank = Math.floor(v / POS);
      const i = v - rank * POS;
      const j = next[i]!;
      // Stale entry: the left symbol was merged away or changed, or its right neighbour did.
      if (sym[i]! < 0 || j < 0 || this.ranks.get(pairKey(sym[i]!, sym[j]!)) !== rank) continue;
      sym[i] = this.mergedIds[rank]!;
      sym[j] = -1;
      const k = next[j]!;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      if (prev[i]! >= 0) consider(prev[i]!);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
    return out;
  }
}

/**
 * Token ids a sentence-level generation stops at: end of text, any token whose text holds a newline
 * (the training corpus ends sentences there), and ids past the tokenizer's vocabulary (a padded model's).
 */
const stopCache = new WeakMap<Tokenizer, Map<number, number[]>>();
export function sentenceStopIds(tokenizer: Tokenizer, modelVocab: number): number[] {
  let byVocab = stopCache.get(tokenizer);
  if (byVocab === undefined) stopCache.set(tokenizer, (byVocab = new Map()));
  let ids = byVocab.get(modelVocab);
  if (ids === undefined) {
    ids = [tokenizer.eosId];
    for (let i = 0; i < tokenizer.vocabSize; i++) if (i !== tokenizer.eosId && tokenizer.decode([i]).includes('\n')) ids.push(i);
    // The model's vocabulary may be padded past the tokenizer's: those ids mean nothing.
    for (let i = tokenizer.vocabSize; i < modelVocab; i++) ids.push(i);
    byVocab.set(modelVocab, ids);
  }
  return ids;
}
