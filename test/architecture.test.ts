/** Imports go down only (STYLE.md): cli → apply → plan → {editor, assert, state, spec} → model → tensor. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');
const MIDDLE = ['editor', 'assert', 'state', 'spec'];
/** Rooms each room may import (besides itself); util and errors are leaves anyone may use. */
const ALLOWED: Record<string, string[]> = {
  cli: ['eval', 'apply', 'plan', ...MIDDLE, 'model', 'tensor'],
  eval: [...MIDDLE, 'model', 'tensor'],
  apply: ['plan', ...MIDDLE, 'model', 'tensor'],
  plan: [...MIDDLE, 'model', 'tensor'],
  editor: [...MIDDLE, 'model', 'tensor'],
  assert: [...MIDDLE, 'model', 'tensor'],
  state: [...MIDDLE, 'model', 'tensor'],
  spec: [...MIDDLE, 'model', 'tensor'],
  model: ['tensor'],
  tensor: [],
  util: [],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(n) ? [p] : [];
  });
}

function room(path: string): string {
  const rel = relative(SRC, path).split(/[\\/]/);
  return rel.length === 1 ? rel[0].replace(/\.(tsx?|js)$/, '') : rel[0];
}

describe('architecture', () => {
  it('every import goes down the rooms', () => {
    const bad: string[] = [];
    for (const file of files(SRC)) {
      const from = room(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = room(join(file, '..', m[1]));
        if (target === from || target === 'util' || target === 'errors') continue;
        if (!(ALLOWED[from] ?? []).includes(target)) bad.push(`${relative(SRC, file)} imports ${m[1]} (${from} → ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the middle rooms import each other without a cycle', () => {
    const edges = new Map<string, Set<string>>(MIDDLE.map((r) => [r, new Set<string>()]));
    for (const file of files(SRC)) {
      const from = room(file);
      if (!MIDDLE.includes(from)) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = room(join(file, '..', m[1]));
        if (target !== from && MIDDLE.includes(target)) edges.get(from)!.add(target);
      }
    }
    const cycles: string[] = [];
    const visit = (r: string, path: string[]) => {
      if (path.includes(r)) {
        cycles.push([...path.slice(path.indexOf(r)), r].join(' → '));
        return;
      }
      for (const next of edges.get(r)!) visit(next, [...path, r]);
    };
    for (const r of MIDDLE) visit(r, []);
    expect(cycles).toEqual([]);
  });

  it('TensorFlow.js is loaded in one place (src/tensor/tf.ts, by require: an ESM import of it costs a second per process)', () => {
    const roots = [SRC, join(SRC, '..', 'bench'), join(SRC, '..', 'scripts')];
    const bad = roots.flatMap((dir) => files(dir)).filter((file) => relative(SRC, file) !== join('tensor', 'tf.ts') && /^import (?!type )[^;]*'@tensorflow\/tfjs'/m.test(readFileSync(file, 'utf8')));
    expect(bad.map((f) => relative(join(SRC, '..'), f))).toEqual([]);
  });

  it('knows every room', () => {
    const rooms = new Set(files(SRC).map(room));
    rooms.delete('errors');
    expect([...rooms].filter((r) => !(r in ALLOWED))).toEqual([]);
  });
});
