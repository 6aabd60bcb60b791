/**
 * Reading edit files: walk edits/, parse, check against schemas/edit.schema.json, hash.
 * Every problem with a file is data (SpecProblem); only an unusable edits/ root throws.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { EditError } from '../errors.js';
import { sha256 } from '../util/hash.js';
import { escapePointer, validateAgainst } from '../util/schemas.js';
import type { EditSpec, LoadedEdit, SpecProblem } from './types.js';

/** Edit ids (paths under edits/ without .json) are written into plans, state keys and file names. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

/** An edit file is a few KB; anything this large is a mistake, not an edit. */
export const MAX_EDIT_FILE_BYTES = 1024 * 1024;

/** Objects and arrays nested deeper than this are refused (the checks that follow recurse). */
export const MAX_EDIT_DEPTH = 64;

export interface LoadResult {
  /** The files that passed every check, sorted by id. */
  edits: LoadedEdit[];
  /** Everything wrong, in file order. */
  problems: SpecProblem[];
}

/**
 * All edit files under `<repoRoot>/<editsDir>`. No such folder means no edits. Dotfiles and dot
 * folders are skipped; symbolic links are followed only while they stay inside the repository.
 */
export async function loadEdits(repoRoot: string, editsDir = 'edits'): Promise<LoadResult> {
  const rootAbs = resolve(repoRoot, editsDir);
  if (!inside(resolve(repoRoot), rootAbs)) throw new EditError(`the edits folder must be inside the repository`, { file: editsDir });
  let rootStat;
  try {
    rootStat = await stat(rootAbs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { edits: [], problems: [] };
    throw new EditError(`cannot read the edits folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: editsDir });
  }
  if (!rootStat.isDirectory()) throw new EditError('is not a directory (edit files live in a folder)', { file: editsDir });

  try {
    await readdir(rootAbs);
  } catch (err) {
    throw new EditError(`cannot read the edits folder: ${(err as NodeJS.ErrnoException).code}`, { file: editsDir });
  }
  const repoReal = await realpath(repoRoot);
  const rootReal = await realpath(rootAbs);
  if (!inside(repoReal, rootReal)) throw new EditError(`the edits folder leads outside the repository (${rootReal})`, { file: editsDir });
  const walk: Walk = { repoRoot: resolve(repoRoot), repoReal, files: [], problems: [], visited: new Set([rootReal]) };
  walkDir(walk, rootAbs, '');

  const problems = walk.problems;
  const edits: LoadedEdit[] = [];
  for (const f of walk.files) {
    const file = display(walk.repoRoot, f.abs);
    const id = f.rel.slice(0, -'.json'.length);
    const text = readEditFile(f.abs, file, problems);
    if (text === undefined) continue;
    const parsed = parseEditFile(text, { id, file });
    problems.push(...parsed.problems);
    if (!ID_PATTERN.test(id)) {
      problems.push({ file, pointer: '', kind: 'schema', message: `the file name gives the edit id "${id}", which must match ${ID_PATTERN.source} (letters, digits, '.', '_', '-', '/')` });
    } else if (parsed.edit !== undefined) {
      edits.push(parsed.edit);
    }
  }
  edits.sort((a, b) => compare(a.id, b.id));
  problems.push(...caseCollisions(edits));
  problems.sort((a, b) => compare(a.file, b.file));
  return { edits, problems };
}

/** Parse and check one edit file's text. Pure: the id and file are only used in results and messages. */
export function parseEditFile(text: string, where: { id: string; file: string }): { edit?: LoadedEdit; problems: SpecProblem[] } {
  const { file } = where;
  // A byte-order mark is invisible in editors and harmless: drop it rather than report it (docs/edit-files.md).
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { problems: [{ file, pointer: '', kind: 'json', message: describeJsonError(body, err as Error) }] };
  }
  const shape = structureProblem(body);
  if (shape !== undefined) return { problems: [{ file, pointer: shape.pointer, kind: 'json', message: shape.message }] };
  const errors: SpecProblem[] = [
    ...characterProblems(json, file),
    ...validateAgainst('edit', json).map((e): SpecProblem => ({ file, pointer: e.pointer, kind: 'schema', message: e.message })),
  ];
  if (errors.length > 0) return { problems: errors.map((e) => withLine(e, body)) };
  const spec = json as EditSpec;
  return { edit: { id: where.id, file, spec, sha256: specSha256(spec), source: body }, problems: [] };
}

/** The edit's content hash: canonical JSON without `$schema` (which says where the schema is, not what the edit is). */
export function specSha256(spec: EditSpec): string {
  const { $schema: _ignored, ...rest } = spec;
  return sha256(canonicalJson(rest));
}

/** JSON with object keys sorted (by UTF-16 code units) and no whitespace: equal data, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort(compare);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/**
 * "invalid JSON: <what> at line L, column C". V8 says where in most messages ("at position N";
 * Node 22+ adds "(line L column C)"); for "Unexpected token" it does not, so a small scanner finds it.
 */
export function describeJsonError(text: string, err: Error): string {
  const msg = err.message;
  let line: number;
  let column: number;
  const lc = /\(line (\d+) column (\d+)\)/.exec(msg);
  const pos = /at position (\d+)/.exec(msg);
  if (lc) {
    line = Number(lc[1]);
    column = Number(lc[2]);
  } else {
    const offset = pos ? Number(pos[1]) : /end of JSON input/.test(msg) ? text.length : syntaxErrorOffset(text);
    ({ line, column } = lineColumn(text, offset));
  }
  const what = msg
    .replace(/\s*\(line \d+ column \d+\)/, '')
    .replace(/\s*in JSON at position \d+/, '')
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/^JSON\.parse: /, '');
  return `invalid JSON: ${what} at line ${line}, column ${column}${trailingComma(text, line, column) ? ' (a comma before a closing bracket: JSON allows no trailing comma)' : ''}`;
}

/** Whether the character at line/column closes an object or array right after a comma. */
function trailingComma(text: string, line: number, column: number): boolean {
  const lines = text.split('\n');
  if (line < 1 || line > lines.length) return false;
  const offset = lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0) + column - 1;
  if (text[offset] !== '}' && text[offset] !== ']') return false;
  const before = text.slice(0, offset).trimEnd();
  return before.endsWith(',');
}

/**
 * What JSON.parse accepts but an edit file must not hold: a key twice in one object (JSON.parse
 * keeps the last one silently) and nesting deeper than MAX_EDIT_DEPTH. `text` is valid JSON.
 * Iterative, so absurd nesting cannot overflow the stack.
 */
export function structureProblem(text: string): { pointer: string; message: string } | undefined {
  // One frame per open object or array: its keys so far (objects), its current key or index.
  const frames: Array<{ keys?: Set<string>; at: string | number; expectKey: boolean }> = [];
  const pointer = () => frames.map((f) => `/${typeof f.at === 'number' ? f.at : escapePointer(f.at)}`).join('');
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = frames[frames.length - 1];
    if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (top?.keys !== undefined && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        top.at = key;
        top.expectKey = false;
        if (top.keys.has(key)) {
          const { line, column } = lineColumn(text, start);
          return { pointer: pointer(), message: `duplicate key "${key}" at line ${line}, column ${column} (JSON would keep only the last one)` };
        }
        top.keys.add(key);
      }
    } else if (c === '{' || c === '[') {
      if (frames.length >= MAX_EDIT_DEPTH) return { pointer: pointer(), message: `nests objects and arrays deeper than ${MAX_EDIT_DEPTH} levels` };
      frames.push(c === '{' ? { keys: new Set(), at: '', expectKey: true } : { at: 0, expectKey: false });
    } else if (c === '}' || c === ']') {
      frames.pop();
    } else if (c === ',' && top !== undefined) {
      if (top.keys !== undefined) top.expectKey = true;
      else top.at = (top.at as number) + 1;
    }
  }
  return undefined;
}

/**
 * Problems found after parsing (conflicts, lengths, tasks) with the line of their pointer in their
 * edit's file, where the edit kept its text and the pointer names a member or item there.
 */
export function withLines(problems: readonly SpecProblem[], edits: readonly LoadedEdit[]): SpecProblem[] {
  const sources = new Map(edits.flatMap((e) => (e.source === undefined ? [] : [[e.file, e.source] as const])));
  return problems.map((p) => {
    const text = p.line === undefined ? sources.get(p.file) : undefined;
    return text === undefined ? p : withLine(p, text);
  });
}

/** The problem with the line of its pointer in `text` (valid JSON), when the pointer names a member or item there. */
function withLine(p: SpecProblem, text: string): SpecProblem {
  const line = pointerLine(text, p.pointer);
  return line === undefined ? p : { ...p, line };
}

/**
 * The 1-based line where the member (its key) or array item a JSON pointer names starts in `text`,
 * valid JSON no deeper than MAX_EDIT_DEPTH (structureProblem passed); undefined for "" (the whole
 * file) or a pointer the text does not hold (a missing property).
 */
export function pointerLine(text: string, pointer: string): number | undefined {
  if (pointer === '') return undefined;
  const want = pointer.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let found: number | undefined;
  const space = (i: number): number => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
    return i;
  };
  const string = (i: number): number => {
    for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
    return i + 1;
  };
  // The value starting at i (nesting `depth`, on the pointer's path so far: `on`); returns the index after it.
  const value = (i: number, depth: number, on: boolean): number => {
    const open = text[i];
    if (open === '"') return string(i);
    if (open !== '{' && open !== '[') {
      while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++;
      return i;
    }
    const close = open === '{' ? '}' : ']';
    i = space(i + 1);
    for (let index = 0; text[i] !== close; index++) {
      let key = String(index);
      const start = i;
      if (open === '{') {
        const end = string(i);
        key = JSON.parse(text.slice(i, end)) as string;
        i = space(space(end) + 1); // past the colon
      }
      const match = on && want[depth] === key;
      if (match && depth + 1 === want.length) found ??= start;
      i = space(value(i, depth + 1, match));
      if (text[i] === ',') i = space(i + 1);
    }
    return i + 1;
  };
  value(space(0), 0, true);
  return found === undefined ? undefined : lineColumn(text, found).line;
}

/** 1-based line and column (in UTF-16 code units) of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** Offset of the first JSON syntax error (a strict RFC 8259 scanner), or -1 if there is none. */
function syntaxErrorOffset(s: string): number {
  let i = 0;
  const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = () => {
    i++;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        if (s[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (i >= s.length || !'"\\/bfnrt'.includes(s[i])) fail();
      }
      i++;
    }
    fail();
  };
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++;
      ws();
      if (s[i] === '}') return void i++;
      for (;;) {
        ws();
        if (s[i] !== '"') fail();
        str();
        ws();
        if (s[i] !== ':') fail();
        i++;
        value();
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === '}') return void i++;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (s[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === ']') return void i++;
        else fail();
      }
    }
    if (c === '"') return str();
    const lit = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : undefined;
    if (lit !== undefined) {
      // Like V8: a broken literal ("tru}") is reported at the first character that does not fit.
      for (let k = 0; k < lit.length; k++, i++) if (s[i] !== lit[k]) fail();
      return;
    }
    num.lastIndex = i;
    const m = num.exec(s);
    if (m === null) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < s.length) fail();
    return -1;
  } catch (e) {
    return typeof e === 'number' ? e : 0; // a RangeError from absurd nesting: point at the start
  }
}

interface Walk {
  repoRoot: string;
  repoReal: string;
  files: Array<{ abs: string; rel: string }>;
  problems: SpecProblem[];
  /** Real paths of folders already walked: a symlink loop is walked once. */
  visited: Set<string>;
}

/** Synchronous, like readEditFile: one await per folder and link adds up over thousands of files. */
function walkDir(w: Walk, dir: string, rel: string): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    w.problems.push({ file: display(w.repoRoot, dir), pointer: '', kind: 'io', message: `cannot read folder: ${(err as NodeJS.ErrnoException).code}` });
    return;
  }
  entries.sort((a, b) => compare(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const abs = join(dir, entry.name);
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    const isJson = entry.name.endsWith('.json');
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(abs);
      } catch {
        if (isJson) w.problems.push({ file: display(w.repoRoot, abs), pointer: '', kind: 'io', message: 'broken symbolic link' });
        continue;
      }
      const target = statOrUndefined(real);
      isDir = target?.isDirectory() === true;
      isFile = target?.isFile() === true;
      if (!inside(w.repoReal, real)) {
        if (isJson || isDir) w.problems.push({ file: display(w.repoRoot, abs), pointer: '', kind: 'io', message: `symbolic link leads outside the repository (${real}); not loaded` });
        continue;
      }
    }
    if (isDir) {
      const real = realpathSync(abs);
      if (w.visited.has(real)) continue;
      w.visited.add(real);
      walkDir(w, abs, childRel);
    } else if (isFile && isJson) {
      w.files.push({ abs, rel: childRel });
    }
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Synchronous on purpose: thousands of small files read one await at a time cost a thread-pool
 * round trip per call (10,000 files: ~9 s on a busy 2-core machine, against ~0.4 s read synchronously).
 */
function readEditFile(abs: string, file: string, problems: SpecProblem[]): string | undefined {
  try {
    const link = lstatSync(abs);
    const info = link.isSymbolicLink() ? statSync(abs) : link;
    if (info.size > MAX_EDIT_FILE_BYTES) {
      problems.push({ file, pointer: '', kind: 'io', message: `file is ${info.size} bytes; an edit file must be under ${MAX_EDIT_FILE_BYTES} bytes` });
      return undefined;
    }
    const decoded = decodeEditFile(readFileSync(abs));
    if ('message' in decoded) {
      problems.push({ file, pointer: '', kind: 'encoding', message: decoded.message });
      return undefined;
    }
    return decoded.text;
  } catch (err) {
    problems.push({ file, pointer: '', kind: 'io', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return undefined;
  }
}

/**
 * An edit file's bytes as text. Edit files are UTF-8: invalid bytes would silently become U+FFFD in
 * prompts and targets, so they are refused with their byte offset, and so is a NUL byte (binary data,
 * or UTF-16 read as bytes). A UTF-8 byte-order mark is accepted and dropped. Pure.
 */
export function decodeEditFile(bytes: Uint8Array): { text: string } | { message: string } {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return { message: `is UTF-16 (byte-order mark ${hexByte(bytes[0])} ${hexByte(bytes[1])}); save it as UTF-8` };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) return { message: `has a NUL byte at byte offset ${nul} (${lineOfByte(bytes, nul)}); an edit file is UTF-8 text` };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    const at = invalidUtf8Offset(bytes);
    return { message: `is not valid UTF-8: byte ${hexByte(bytes[at])} at byte offset ${at} (${lineOfByte(bytes, at)}) does not start a complete UTF-8 character; save the file as UTF-8` };
  }
}

/** Offset of the first byte that does not begin a well-formed UTF-8 sequence (RFC 3629, table 3-7 of Unicode); -1 when all are. */
export function invalidUtf8Offset(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= b.length) return i;
    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

function hexByte(b: number): string {
  return `0x${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** "line N" of a byte offset (1-based, counting LF bytes before it). */
function lineOfByte(bytes: Uint8Array, offset: number): string {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return `line ${line}`;
}

/**
 * Strings that JSON escapes can hold but UTF-8 text cannot carry faithfully: a NUL character
 * ("\u0000") and a lone surrogate ("\ud800", which encoding turns into U+FFFD), with their pointer.
 */
function characterProblems(value: unknown, file: string, pointer = ''): SpecProblem[] {
  if (typeof value === 'string') {
    const nul = value.indexOf('\u0000');
    if (nul >= 0) return [{ file, pointer, kind: 'encoding', message: `has a NUL character (\\u0000) at character ${nul}` }];
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(value);
    if (lone !== null) {
      const code = lone[0].charCodeAt(0).toString(16).padStart(4, '0');
      return [{ file, pointer, kind: 'encoding', message: `has a lone surrogate (\\u${code}) at character ${lone.index}: not a Unicode character` }];
    }
    return [];
  }
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => characterProblems(v, file, `${pointer}/${i}`));
  return Object.entries(value).flatMap(([k, v]) => characterProblems(v, file, `${pointer}/${escapePointer(k)}`));
}

/** Ids that differ only in letter case collide on macOS and Windows checkouts. */
function caseCollisions(edits: LoadedEdit[]): SpecProblem[] {
  const first = new Map<string, LoadedEdit>();
  const out: SpecProblem[] = [];
  for (const e of edits) {
    const key = e.id.toLowerCase();
    const seen = first.get(key);
    if (seen === undefined) first.set(key, e);
    else out.push({ file: e.file, pointer: '', kind: 'duplicate', message: `edit id "${e.id}" differs from "${seen.id}" (${seen.file}) only in letter case; the files collide on case-insensitive file systems` });
  }
  return out;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** A path relative to the repository root, with '/' separators (stable in messages and JSON). */
function display(repoRoot: string, abs: string): string {
  return relative(repoRoot, abs).split(sep).join('/');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
