/**
 * Edit files: schema messages (exact pointers and text), JSON syntax errors with line/column,
 * the walk of edits/ (nested ids, dotfiles, symlinks), conflicts, the canonical hash, and the
 * schemas kept in step with the TypeScript types.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EditError } from '../src/errors.js';
import type { ModelManifest } from '../src/model/folder.js';
import type { GPTConfig } from '../src/model/gpt2.js';
import { importHfFolder } from '../src/model/hf.js';
import { findConflicts } from '../src/spec/conflicts.js';
import { canonicalJson, describeJsonError, loadEdits, parseEditFile, pointerLine, specSha256 } from '../src/spec/load.js';
import { readSchema, schemaProblems, schemasDir, validateAgainst, type SchemaName } from '../src/util/schemas.js';
import type { AssertionSpec, EditSpec, LoadedEdit, SpecProblem } from '../src/spec/types.js';
import { emptyState } from '../src/state/state.js';
import type { AppliedEdit, EditMetrics, LayerCapacityRecord, ModelState, SolverRecord } from '../src/state/types.js';
import { EDITOR_METHODS, type FtSettings, type MemitSettings } from '../src/editor/settings.js';
import { initBackend } from '../src/tensor/backend.js';
import { sha256 } from '../src/util/hash.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FILE = 'edits/x.json';
const BASE = { version: 1, task: 'counterfact', prompt: 'The capital of France is', target: ' Lyon' };

/** Problems of one edit document, as `pointer: message` lines. */
function problemsOf(doc: unknown): string[] {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
  return parseEditFile(text, { id: 'x', file: FILE }).problems.map((p) => `${p.pointer}: ${p.message}`);
}

function edit(id: string, spec: Partial<EditSpec>): LoadedEdit {
  const full = { ...BASE, ...spec } as EditSpec;
  return { id, file: `edits/${id}.json`, spec: full, sha256: specSha256(full) };
}

describe('edit schema messages', () => {
  it('accepts a complete edit and keeps it as loaded', () => {
    const doc: EditSpec = {
      $schema: '../schemas/edit.schema.json',
      ...BASE,
      version: 1,
      instruction: 'Rewrite the stated fact.',
      subject: 'France',
      relation: 'capital',
      rephrase: ["France's capital is"],
      locality: [{ prompt: 'The capital of Spain is' }, { prompt: 'The capital of Italy is', answer: ' Rome' }],
      portability: [{ prompt: 'The capital of France lies on the river', answer: ' Rhône' }],
      expect: [
        { type: 'not-contains', prompt: 'The capital of France is', value: ' Paris', maxTokens: 4 },
        { type: 'prob', prompt: 'The capital of France is', value: ' Lyon', min: 0.5 },
        { type: 'rank', prompt: 'The capital of France is', value: ' Lyon', k: 3 },
        { type: 'regex', prompt: 'The capital of France is', value: '^ Ly' },
      ],
      thresholds: { generalization: 0.5 },
      metadata: { ticket: 'KB-1', nested: { anything: [1, 2] } },
    };
    const { edit: loaded, problems } = parseEditFile(JSON.stringify(doc), { id: 'capitals/france', file: 'edits/capitals/france.json' });
    expect(problems).toEqual([]);
    expect(loaded).toEqual({ id: 'capitals/france', file: 'edits/capitals/france.json', spec: doc, sha256: specSha256(doc), source: JSON.stringify(doc) });
  });

  it('missing target', () => {
    const { target: _t, ...doc } = BASE;
    expect(problemsOf(doc)).toEqual([": must have required property 'target'"]);
    expect(parseEditFile(JSON.stringify(doc), { id: 'x', file: FILE }).problems[0]).toEqual({ file: FILE, pointer: '', kind: 'schema', message: "must have required property 'target'" });
  });

  it('misspelled key: unknown property, the allowed list and a suggestion', () => {
    const { target: _t, ...rest } = BASE;
    expect(problemsOf({ ...rest, tagret: ' Lyon' })).toEqual([
      ": must have required property 'target'",
      "/tagret: unknown property 'tagret' (allowed: $schema, version, task, instruction, subject, relation, prompt, target, rephrase, locality, neighbours, portability, expect, thresholds, metadata); did you mean 'target'?",
    ]);
    expect(problemsOf({ ...BASE, locality: [{ prompt: 'a', anwser: ' b' }] })).toEqual([
      "/locality/0/anwser: unknown property 'anwser' (allowed: prompt, answer); did you mean 'answer'?",
    ]);
  });

  it('wrong type in rephrase[1]', () => {
    expect(problemsOf({ ...BASE, rephrase: ["France's capital is", 3] })).toEqual(['/rephrase/1: must be a string, got an integer']);
    expect(problemsOf({ ...BASE, rephrase: 'one string' })).toEqual(['/rephrase: must be an array, got a string']);
    expect(problemsOf({ ...BASE, rephrase: [''] })).toEqual(['/rephrase/0: must not be empty']);
  });

  it('bad assertion type lists the allowed values', () => {
    expect(problemsOf({ ...BASE, expect: [{ type: 'contians', prompt: 'p', value: 'v' }] })).toEqual([
      "/expect/0/type: must be one of 'equals', 'contains', 'icontains', 'regex', 'starts-with', 'not-equals', 'not-contains', 'not-icontains', 'not-regex', 'not-starts-with', 'prob', 'rank' (got 'contians'); did you mean 'contains'?",
    ]);
  });

  it('prob needs min or max; min/max/k only where they mean something', () => {
    expect(problemsOf({ ...BASE, expect: [{ type: 'prob', prompt: 'p', value: ' v' }] })).toEqual(["/expect/0: must have at least one of the properties 'min', 'max'"]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'prob', prompt: 'p', value: ' v', max: 0.1 }] })).toEqual([]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'prob', prompt: 'p', value: ' v', min: 1.5, k: 2 }] })).toEqual([
      "/expect/0/k: property 'k' is not allowed with type 'prob'",
      '/expect/0/min: must be <= 1 (got 1.5)',
    ]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'contains', prompt: 'p', value: 'v', min: 0.5 }] })).toEqual(["/expect/0/min: property 'min' is not allowed with type 'contains'"]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'not-equals', prompt: 'p', value: 'v', k: 1 }] })).toEqual(["/expect/0/k: property 'k' is not allowed with type 'not-equals'"]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'rank', prompt: 'p', value: ' v', k: 0 }] })).toEqual(['/expect/0/k: must be >= 1 (got 0)']);
    expect(problemsOf({ ...BASE, expect: [{ type: 'rank', prompt: 'p', value: ' v', max: 0.5 }] })).toEqual(["/expect/0/max: property 'max' is not allowed with type 'rank'"]);
    expect(problemsOf({ ...BASE, expect: [{ type: 'contains', prompt: 'p', value: 'v', maxTokens: 65 }] })).toEqual(['/expect/0/maxTokens: must be <= 64 (got 65)']);
    expect(problemsOf({ ...BASE, expect: [{ type: 'contains', prompt: 'p', value: 'v', maxTokens: 2.5 }] })).toEqual(['/expect/0/maxTokens: must be an integer, got a number']);
  });

  it('regex values must compile', () => {
    expect(problemsOf({ ...BASE, expect: [{ type: 'not-regex', prompt: 'p', value: '(' }] })).toEqual([
      '/expect/0/value: is not a valid regular expression: Invalid regular expression: /(/: Unterminated group',
    ]);
  });

  it('version, task pattern, empty prompt, thresholds, a non-object', () => {
    expect(problemsOf({ ...BASE, version: 2 })).toEqual(['/version: must be 1 (got 2)']);
    expect(problemsOf({ ...BASE, task: 'Counter Fact' })).toEqual(["/task: must match the pattern ^[a-z0-9][a-z0-9-]*$ (got 'Counter Fact')"]);
    expect(problemsOf({ ...BASE, prompt: '' })).toEqual(['/prompt: must not be empty']);
    expect(problemsOf({ ...BASE, thresholds: { locality: -0.1, reliabilty: 1 } })).toEqual([
      "/thresholds/reliabilty: unknown property 'reliabilty' (allowed: reliability, generalization, locality, portability); did you mean 'reliability'?",
      '/thresholds/locality: must be >= 0 (got -0.1)',
    ]);
    expect(problemsOf([BASE])).toEqual([': must be an object, got an array']);
  });

  it('JSON syntax errors give line and column', () => {
    expect(problemsOf('{\n  "version": 1,\n  "task": "x",\n  "prompt": }')).toEqual([": invalid JSON: Unexpected token '}' at line 4, column 13"]);
    expect(problemsOf('{\n  "version": 1,\n  "target": " a",\n}\n')).toEqual([': invalid JSON: Expected double-quoted property name at line 4, column 1 (a comma before a closing bracket: JSON allows no trailing comma)']);
    expect(problemsOf('{\n  "rephrase": ["a", "b", ]\n}')).toEqual([": invalid JSON: Unexpected token ']' at line 2, column 26 (a comma before a closing bracket: JSON allows no trailing comma)"]);
    expect(problemsOf('{\n  "prompt": "a"\n  "target": "b"\n}')).toEqual([": invalid JSON: Expected ',' or '}' after property value at line 3, column 3"]);
    expect(problemsOf('')).toEqual([': invalid JSON: Unexpected end of JSON input at line 1, column 1']);
    const problem = parseEditFile('{"a": tru}', { id: 'x', file: FILE }).problems[0];
    expect(problem).toEqual({ file: FILE, pointer: '', kind: 'json', message: "invalid JSON: Unexpected token '}' at line 1, column 10" });
    // Node 22+ says where itself: "(line L column C)".
    expect(describeJsonError('{}', new SyntaxError("Unexpected token 'x', \"{x}\" is not valid JSON (line 7 column 2)"))).toBe("invalid JSON: Unexpected token 'x' at line 7, column 2");
  });

  it('a byte-order mark is not an error', () => {
    expect(problemsOf(`\ufeff${JSON.stringify(BASE)}`)).toEqual([]);
  });
});

describe('the schemas themselves', () => {
  it.each(['edit', 'model', 'state', 'plan'] as const)('%s.schema.json is valid JSON Schema 2020-12 and passes ajv\'s strict mode', (name) => {
    expect(schemaProblems(readSchema(name))).toEqual([]);
  });
  it('a schema the meta-schema or strict mode refuses is reported', () => {
    expect(schemaProblems({ type: 'object', properties: { a: { type: 'strng' } } }).length).toBeGreaterThan(0);
    expect(schemaProblems({ type: 'object', properties: { a: { type: 'string', minimun: 1 } } })).toEqual([expect.stringContaining('minimun')]);
  });
});

describe('the line of a JSON pointer (schema problems name it)', () => {
  const text = '{"version": 1,\n  "a/b~c": {"x": [1,\n    "two", {"k":\n  3}]},\n  "rephrase": "no",\n  "esc\\"aped": [[], {}]\n}\n';
  it('finds members by key (escaped ~1 ~0), items by index, and nested values', () => {
    expect(JSON.parse(text)).toBeTypeOf('object');
    expect(pointerLine(text, '/version')).toBe(1);
    expect(pointerLine(text, '/a~1b~0c')).toBe(2);
    expect(pointerLine(text, '/a~1b~0c/x/0')).toBe(2);
    expect(pointerLine(text, '/a~1b~0c/x/1')).toBe(3);
    expect(pointerLine(text, '/a~1b~0c/x/2/k')).toBe(3);
    expect(pointerLine(text, '/rephrase')).toBe(5);
    expect(pointerLine(text, '/esc"aped/1')).toBe(6);
  });
  it('is undefined for the whole file and for what the text does not hold', () => {
    expect(pointerLine(text, '')).toBeUndefined();
    expect(pointerLine(text, '/missing')).toBeUndefined();
    expect(pointerLine(text, '/a~1b~0c/x/3')).toBeUndefined();
    expect(pointerLine(text, '/version/0')).toBeUndefined();
  });
  it('is given with each schema problem of an edit file', () => {
    const file = '{\n  "version": 1,\n  "task": "counterfact",\n  "prompt": "The capital of France is",\n  "target": " Lyon",\n  "rephrase": "France\'s capital is"\n}\n';
    const { problems } = parseEditFile(file, { id: 'x', file: 'edits/x.json' });
    expect(problems.map((p) => [p.pointer, p.line])).toEqual([['/rephrase', 6]]);
  });
});

describe('canonical hash', () => {
  it('is independent of key order and whitespace', () => {
    const a = '{"version":1,"task":"counterfact","prompt":"p","target":" t","locality":[{"prompt":"l","answer":" a"}],"metadata":{"b":1,"a":[2,{"y":1,"x":0}]}}';
    const b = `{
      "metadata": { "a": [2, { "x": 0, "y": 1 }], "b": 1.0 },
      "target": " t",   "prompt": "p",
      "locality": [ { "answer": " a", "prompt": "l" } ],
      "task": "counterfact", "version": 1
    }`;
    const ea = parseEditFile(a, { id: 'a', file: 'a' }).edit!;
    const eb = parseEditFile(b, { id: 'b', file: 'b' }).edit!;
    expect(ea.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(eb.sha256).toBe(ea.sha256);
    expect(canonicalJson({ b: [1, { d: null, c: 'x' }], a: '\u00e9"' })).toBe('{"a":"é\\"","b":[1,{"c":"x","d":null}]}');
  });

  it('excludes $schema and changes with any content', () => {
    const plain = specSha256(BASE as EditSpec);
    expect(specSha256({ ...BASE, $schema: '../schemas/edit.schema.json' } as EditSpec)).toBe(plain);
    expect(plain).toBe(sha256(canonicalJson(BASE)));
    expect(specSha256({ ...BASE, target: ' Nice' } as EditSpec)).not.toBe(plain);
    expect(specSha256({ ...BASE, metadata: { note: 'x' } } as EditSpec)).not.toBe(plain);
    expect(specSha256({ ...BASE, rephrase: ['a', 'b'] } as EditSpec)).not.toBe(specSha256({ ...BASE, rephrase: ['b', 'a'] } as EditSpec));
  });
});

describe('loadEdits', () => {
  let repo: string;
  beforeAll(async () => {
    repo = await mkdtemp(join(tmpdir(), 'editops-spec-'));
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  async function put(path: string, content: unknown): Promise<void> {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }

  it('no edits/ folder: nothing to load and no problem; a file instead of a folder is an error', async () => {
    expect(await loadEdits(repo)).toEqual({ edits: [], problems: [] });
    await put('notadir', 'x');
    await expect(loadEdits(repo, 'notadir')).rejects.toThrow(EditError);
    await expect(loadEdits(repo, 'notadir')).rejects.toThrow('is not a directory');
    await expect(loadEdits(repo, '../elsewhere')).rejects.toThrow('must be inside the repository');
  });

  it('walks subfolders: ids are paths without .json, sorted; dotfiles and other files are skipped', async () => {
    await put('edits/capitals/france.json', { ...BASE, subject: 'France', relation: 'capital' });
    await put('edits/capitals/europe/spain.json', { ...BASE, prompt: 'The capital of Spain is', target: ' Seville' });
    await put('edits/opinions/esperanto.json', { ...BASE, task: 'convsent', prompt: 'I think Esperanto is', target: ' wonderful' });
    await put('edits/a.b-c_d.json', { ...BASE, prompt: 'x', target: ' y' });
    await put('edits/.hidden.json', '{ not json');
    await put('edits/.drafts/draft.json', '{ not json');
    await put('edits/README.md', '# notes');
    const { edits, problems } = await loadEdits(repo);
    expect(problems).toEqual([]);
    expect(edits.map((e) => [e.id, e.file])).toEqual([
      ['a.b-c_d', 'edits/a.b-c_d.json'],
      ['capitals/europe/spain', 'edits/capitals/europe/spain.json'],
      ['capitals/france', 'edits/capitals/france.json'],
      ['opinions/esperanto', 'edits/opinions/esperanto.json'],
    ]);
    expect(edits[2].spec.subject).toBe('France');
    expect(edits[2].sha256).toBe(specSha256(edits[2].spec));
  });

  it('reports bad files with their path, keeps loading the good ones', async () => {
    await put('edits/bad/syntax.json', '{\n  "version": 1,\n  "task": "x"\n  "prompt": "p"\n}');
    await put('edits/bad/schema.json', { ...BASE, tagret: 'x' });
    await put('edits/bad/has space.json', BASE);
    const { edits, problems } = await loadEdits(repo);
    expect(edits.map((e) => e.id)).toEqual(['a.b-c_d', 'capitals/europe/spain', 'capitals/france', 'opinions/esperanto']);
    expect(problems.map((p) => [p.file, p.pointer, p.kind])).toEqual([
      ['edits/bad/has space.json', '', 'schema'],
      ['edits/bad/schema.json', '/tagret', 'schema'],
      ['edits/bad/syntax.json', '', 'json'],
    ]);
    expect(problems[0].message).toContain('the file name gives the edit id "bad/has space", which must match');
    expect(problems[2].message).toBe("invalid JSON: Expected ',' or '}' after property value at line 4, column 3");
    await rm(join(repo, 'edits/bad'), { recursive: true });
  });

  it('follows symlinks inside the repository, refuses ones that leave it, and flags case collisions', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'editops-outside-'));
    try {
      await writeFile(join(outside, 'secret.json'), JSON.stringify(BASE));
      await put('shared/linked.json', { ...BASE, prompt: 'linked', target: ' z' });
      await symlink(join(repo, 'shared/linked.json'), join(repo, 'edits/linked.json'));
      await symlink(join(outside, 'secret.json'), join(repo, 'edits/escape.json'));
      await symlink(outside, join(repo, 'edits/escapedir'));
      await symlink(join(repo, 'edits'), join(repo, 'edits/capitals/loop'));
      await put('edits/Capitals/France.json', { ...BASE, prompt: 'Q: capital of France?', target: ' Lyon' });
      const { edits, problems } = await loadEdits(repo);
      expect(edits.map((e) => e.id)).toContain('linked');
      expect(edits.map((e) => e.id)).not.toContain('escape');
      expect(edits.some((e) => e.id.startsWith('capitals/loop'))).toBe(false);
      expect(problems.map((p) => [p.file, p.kind])).toEqual([
        ['edits/capitals/france.json', 'duplicate'],
        ['edits/escape.json', 'io'],
        ['edits/escapedir', 'io'],
      ]);
      expect(problems[0].message).toBe('edit id "capitals/france" differs from "Capitals/France" (edits/Capitals/France.json) only in letter case; the files collide on case-insensitive file systems');
      expect(problems[1].message).toMatch(/^symbolic link leads outside the repository \(.*secret\.json\); not loaded$/);
    } finally {
      await rm(outside, { recursive: true, force: true });
      for (const p of ['edits/linked.json', 'edits/escape.json', 'edits/escapedir', 'edits/capitals/loop', 'edits/Capitals']) await rm(join(repo, p), { recursive: true, force: true });
    }
  });
});

describe('findConflicts', () => {
  const kinds = (ps: SpecProblem[]) => ps.map((p) => `${p.kind} ${p.file}: ${p.pointer}: ${p.message}`);

  it('no conflict between unrelated edits', () => {
    expect(findConflicts([edit('a', {}), edit('b', { prompt: 'The capital of Spain is', target: ' Seville' })])).toEqual([]);
  });

  it('same prompt (trimmed, case-sensitive), different targets: names both files', () => {
    const ps = findConflicts([edit('b', { prompt: 'The capital of France is ', target: ' Nice' }), edit('a', {}), edit('c', { prompt: 'the capital of France is', target: ' Nice' })]);
    expect(kinds(ps)).toEqual(['conflict edits/b.json: /prompt: same prompt as edits/a.json with a different target: " Nice" here, " Lyon" there']);
  });

  it('same subject + relation (case-insensitive), different targets', () => {
    const a = edit('capitals/france', { subject: 'France', relation: 'capital' });
    const b = edit('capitals/france-q', { subject: 'france', relation: 'Capital ', prompt: 'Q: What is the capital of France? A:', target: ' Marseille' });
    const c = edit('capitals/france-r', { subject: 'France', relation: 'capital', prompt: "France's capital is", target: ' Lyon' });
    expect(kinds(findConflicts([a, b, c]))).toEqual([
      'conflict edits/capitals/france-q.json: /subject: same subject and relation (france / Capital ) as edits/capitals/france.json with a different target: " Marseille" here, " Lyon" there',
    ]);
  });

  it('one problem per pair even when both rules match; same prompt and target is a duplicate', () => {
    const a = edit('a', { subject: 'France', relation: 'capital' });
    const b = edit('b', { subject: 'France', relation: 'capital', target: ' Nice' });
    expect(kinds(findConflicts([a, b]))).toEqual(['conflict edits/b.json: /prompt: same prompt as edits/a.json with a different target: " Nice" here, " Lyon" there']);
    expect(kinds(findConflicts([a, edit('z', {})]))).toEqual(['duplicate edits/z.json: /prompt: same prompt and target as edits/a.json: the edit is declared twice']);
  });

  it("a rephrase equal to the edit's prompt or to another rephrase", () => {
    const e = edit('a', { rephrase: ["France's capital is", ' The capital of France is', "France's capital is"] });
    expect(kinds(findConflicts([e]))).toEqual([
      "duplicate edits/a.json: /rephrase/1: repeats the edit's prompt; a rephrasing must differ from it",
      'duplicate edits/a.json: /rephrase/2: repeats rephrase 0',
    ]);
  });

  it('a locality prompt that an edit changes', () => {
    const france = edit('france', { locality: [{ prompt: 'The capital of Spain is' }, { prompt: 'The capital of Italy is', answer: ' Rome' }] });
    const spain = edit('spain', { prompt: 'The capital of Spain is', target: ' Seville' });
    const italy = edit('italy', { prompt: 'Italy has its capital in', rephrase: ['The capital of Italy is'], target: ' Rome' });
    expect(kinds(findConflicts([france, spain, italy]))).toEqual([
      'conflict edits/france.json: /locality/0/prompt: must not change, but it is a prompt of edits/spain.json, whose target for it is " Seville"',
    ]);
    const self = edit('self', { locality: [{ prompt: 'The capital of France is' }] });
    expect(kinds(findConflicts([self]))).toEqual([
      `conflict edits/self.json: /locality/0/prompt: must not change, but it is this edit's own prompt or rephrasing, whose target for it is " Lyon"`,
    ]);
  });

  it('the shipped example edits validate and do not conflict', async () => {
    const { edits, problems } = await loadEdits(ROOT);
    expect(problems).toEqual([]);
    expect(edits.map((e) => e.id)).toEqual(expect.arrayContaining(['capitals/france', 'opinions/esperanto']));
    expect(findConflicts(edits)).toEqual([]);
  });
});

describe('schemas', () => {
  const names: SchemaName[] = ['edit', 'model', 'state'];

  it('live in the package schemas/ folder', () => {
    expect(schemasDir()).toBe(join(ROOT, 'schemas'));
    for (const n of names) expect(readSchema(n).$id).toBe(`https://editops.dev/schemas/${n}.schema.json`);
  });

  it('describe every property and close every object that is not free-form', () => {
    const freeForm = new Set(['/properties/metadata', '/properties/provenance', '/properties/knowledge', '/properties/edits', '/properties/stats/properties/source']);
    const missing: string[] = [];
    const walk = (node: unknown, path: string, defs: Record<string, { description?: string }>) => {
      if (node === null || typeof node !== 'object') return;
      const s = node as Record<string, unknown>;
      if (/\/(if|then)(\/|$)/.test(path)) return; // conditions and their consequences declare no properties
      if (s.properties !== undefined) {
        if (s.additionalProperties !== false && !freeForm.has(path)) missing.push(`${path}: additionalProperties`);
        for (const [k, v] of Object.entries(s.properties as Record<string, Record<string, unknown>>)) {
          if ((v as unknown) === false || path.includes('/then')) continue;
          const ref = typeof v.$ref === 'string' ? defs[v.$ref.replace('#/$defs/', '')] : undefined;
          if (typeof v.description !== 'string' && typeof ref?.description !== 'string') missing.push(`${path}/properties/${k}: description`);
        }
      } else if (s.type === 'object' && !freeForm.has(path)) {
        missing.push(`${path}: an object without properties`);
      }
      for (const [k, v] of Object.entries(s)) if (typeof v === 'object') walk(v, `${path}/${k}`, defs);
    };
    for (const n of names) {
      const schema = readSchema(n);
      walk(schema, '', (schema.$defs ?? {}) as Record<string, { description?: string }>);
    }
    expect(missing).toEqual([]);
  });

  // Records keyed by the types' keys: adding a field to a type without the schema fails to compile or here.
  const props = (n: SchemaName, pointer: string[] = []) => {
    let node: Record<string, unknown> = readSchema(n);
    for (const p of pointer) node = node[p] as Record<string, unknown>;
    return Object.keys(node.properties as object).sort();
  };
  const keys = (r: Record<string, true>) => Object.keys(r).sort();

  it('match the TypeScript types', () => {
    const editKeys: Record<keyof EditSpec, true> = { $schema: true, version: true, task: true, instruction: true, subject: true, relation: true, prompt: true, target: true, rephrase: true, locality: true, neighbours: true, portability: true, expect: true, thresholds: true, metadata: true };
    const assertionKeys: Record<keyof AssertionSpec, true> = { type: true, prompt: true, value: true, maxTokens: true, min: true, max: true, k: true, description: true };
    const manifestKeys: Record<keyof ModelManifest, true> = { $schema: true, version: true, name: true, architecture: true, config: true, tokenizer: true, weights: true, editableLayers: true, editor: true, stats: true, tasks: true, hypernetworks: true, editorSettings: true, thresholds: true, provenance: true, knowledge: true, probes: true };
    const configKeys: Record<keyof GPTConfig, true> = { vocabSize: true, nPositions: true, nEmbd: true, nLayer: true, nHead: true, layerNormEps: true, nInner: true };
    const stateKeys: Record<keyof ModelState, true> = { $schema: true, version: true, serial: true, base: true, editor: true, stats: true, manifest: true, delta: true, backend: true, effective: true, edits: true };
    const setDeltaKeys: Record<keyof NonNullable<ModelState['delta']>, true> = { file: true, sha256: true, layers: true, capacity: true, solver: true };
    const capacityKeys: Record<keyof LayerCapacityRecord, true> = { layer: true, rows: true, keyDim: true };
    const solverKeys: Record<keyof SolverRecord, true> = { method: true, revision: true };
    const appliedKeys: Record<keyof AppliedEdit, true> = { specSha256: true, prompt: true, target: true, method: true, rows: true, metrics: true, appliedAt: true };
    const rowsKeys: Record<keyof NonNullable<AppliedEdit['rows']>, true> = { file: true, sha256: true, count: true };
    const memitKeys: Record<keyof MemitSettings, true> = { method: true, layers: true, lambda: true, residualSteps: true, residualLr: true, normPenalty: true, preserveWeight: true };
    const ftKeys: Record<keyof FtSettings, true> = { method: true, steps: true, lr: true, epsilon: true, stopLoss: true, layers: true, rank: true };
    const editorKeys: Record<keyof NonNullable<ModelManifest['editor']>, true> = { method: true, settings: true, file: true, sha256: true };
    const metricKeys: Record<keyof EditMetrics, true> = { reliability: true, generalization: true, locality: true, portability: true, passed: true, total: true };
    expect(props('edit')).toEqual(keys(editKeys));
    expect(props('edit', ['$defs', 'assertion'])).toEqual(keys(assertionKeys));
    expect(props('model')).toEqual(keys(manifestKeys));
    expect(props('model', ['properties', 'config'])).toEqual(keys(configKeys));
    expect(props('model', ['properties', 'editor'])).toEqual(keys(editorKeys));
    expect(props('model', ['$defs', 'memitSettings'])).toEqual(keys(memitKeys));
    expect(props('model', ['$defs', 'ftSettings'])).toEqual(keys(ftKeys));
    const calibratedKeys: Record<keyof NonNullable<ModelManifest['editorSettings']>, true> = { memit: true, ft: true };
    expect(props('model', ['properties', 'editorSettings'])).toEqual(keys(calibratedKeys));
    expect((readSchema('model').properties as { editor: { properties: { method: { enum: string[] } } } }).editor.properties.method.enum.sort()).toEqual([...EDITOR_METHODS].sort());
    expect(props('state')).toEqual(keys(stateKeys));
    expect(props('state', ['properties', 'delta'])).toEqual(keys(setDeltaKeys));
    expect(props('state', ['properties', 'delta', 'properties', 'capacity', 'items'])).toEqual(keys(capacityKeys));
    expect(props('state', ['properties', 'delta', 'properties', 'solver'])).toEqual(keys(solverKeys));
    expect(props('state', ['$defs', 'appliedEdit'])).toEqual(keys(appliedKeys));
    expect(props('state', ['$defs', 'appliedEdit', 'properties', 'rows'])).toEqual(keys(rowsKeys));
    expect(props('state', ['$defs', 'appliedEdit', 'properties', 'metrics'])).toEqual(keys(metricKeys));
  });

  it('accept a real imported manifest and states, and say what is wrong with bad ones', async () => {
    await initBackend('cpu');
    const dir = await mkdtemp(join(tmpdir(), 'editops-manifest-'));
    try {
      const manifest = await importHfFolder(join(ROOT, 'test/fixtures/tiny-gpt2'), dir, 'tiny');
      expect(validateAgainst('model', manifest)).toEqual([]);
      expect(manifest.editor).toBeNull();
      const stats = { file: 'stats.safetensors', sha256: 'f'.repeat(64), layers: ['h.1.mlp.c_proj'], source: { texts: 100 } };
      expect(validateAgainst('model', { ...manifest, editor: { method: 'memit', settings: { lambda: 30, layers: ['h.1.mlp.c_proj'] } }, stats, knowledge: { heldIn: 0.99 } })).toEqual([]);
      expect(validateAgainst('model', { ...manifest, editor: { method: 'ft', settings: { steps: 20, rank: 4 } } })).toEqual([]);
      expect(validateAgainst('model', { ...manifest, editor: { method: 'memit' } })).toEqual([]);
      // a trained editor names its weights file
      expect(validateAgainst('model', { ...manifest, editor: { method: 'memit', file: 'editor.safetensors', sha256: 'a'.repeat(64) } })).toEqual([]);
      // each method's settings are its own, with a precise message (not "one of the allowed forms")
      expect(validateAgainst('model', { ...manifest, editor: { method: 'ft', settings: { lambda: 30 } } })).toEqual([
        { pointer: '/editor/settings/lambda', message: "unknown property 'lambda' (allowed: method, steps, lr, epsilon, stopLoss, layers, rank)" },
      ]);
      expect(validateAgainst('model', { ...manifest, editor: { method: 'memit', settings: { lambda: 0, residualSteps: 2.5 } } })).toEqual([
        { pointer: '/editor/settings/lambda', message: 'must be > 0 (got 0)' },
        { pointer: '/editor/settings/residualSteps', message: 'must be an integer, got a number' },
      ]);
      expect(validateAgainst('model', { ...manifest, editor: { method: 'rome' } })).toEqual([{ pointer: '/editor/method', message: "must be one of 'ft', 'memit', 'mend', 'instructedit' (got 'rome')" }]);
      // a hypernetwork editor names its trained network
      expect(validateAgainst('model', { ...manifest, editor: { method: 'instructedit' } })).toEqual([
        { pointer: '/editor', message: "must have required property 'file'" },
        { pointer: '/editor', message: "must have required property 'sha256'" },
      ]);
      expect(validateAgainst('model', { ...manifest, stats: { file: 'stats.safetensors' } })).toEqual([{ pointer: '/stats', message: "must have required property 'sha256'" }]);
      // the shipped model
      expect(validateAgainst('model', JSON.parse(await readFile(join(ROOT, 'models/default/model.json'), 'utf8')))).toEqual([]);
      expect(validateAgainst('state', JSON.parse(await readFile(join(ROOT, 'models/default/state.json'), 'utf8')))).toEqual([]);
      expect(validateAgainst('model', { ...manifest, config: { ...manifest.config, nLayer: 0 }, weights: { ...manifest.weights, dtype: 'F16' } })).toEqual([
        { pointer: '/config/nLayer', message: 'must be >= 1 (got 0)' },
        { pointer: '/weights/dtype', message: "must be 'F32' (got 'F16')" },
      ]);
      const state = emptyState(manifest, manifest.weights.sha256);
      expect(validateAgainst('state', state)).toEqual([]);
      const applied: ModelState = {
        ...state,
        serial: 1,
        editor: { method: 'memit', sha256: 'a'.repeat(64) },
        stats: { sha256: 'f'.repeat(64) },
        delta: { file: 'deltas/set@eeeeeeeeeeee.safetensors', sha256: 'e'.repeat(64), layers: ['h.1.mlp.c_proj'], capacity: [{ layer: 'h.1.mlp.c_proj', rows: 1, keyDim: 128 }] },
        edits: {
          'capitals/france': {
            specSha256: 'b'.repeat(64),
            method: 'memit',
            rows: { file: 'rows/capitals/france@cccccccccccc.safetensors', sha256: 'c'.repeat(64), count: 1 },
            metrics: { reliability: 1, generalization: 0.5, locality: null, portability: null, passed: 3, total: 4 },
            appliedAt: '2025-01-01T00:00:00.000Z',
          },
          'opinions/esperanto': { specSha256: 'd'.repeat(64), method: 'none', rows: null, metrics: { reliability: 1, generalization: 1, locality: 1, portability: null, passed: 2, total: 2 }, appliedAt: '2025-01-01T00:00:00Z' },
        },
      };
      expect(validateAgainst('state', applied)).toEqual([]);
      const broken = JSON.parse(JSON.stringify(applied)) as ModelState & { edits: Record<string, Record<string, unknown>> };
      broken.edits['capitals/france'].appliedAt = 'yesterday';
      (broken.edits['capitals/france'].metrics as unknown as Record<string, unknown>).locality = 2;
      (broken as unknown as { base: unknown }).base = { sha256: 'XYZ' };
      (broken.edits['capitals/france'].rows as unknown as Record<string, unknown>).count = -1;
      (broken.delta as unknown as Record<string, unknown>).rank = 2;
      expect(validateAgainst('state', broken)).toEqual([
        { pointer: '/base/sha256', message: "must match the pattern ^[0-9a-f]{64}$ (got 'XYZ')" },
        { pointer: '/delta/rank', message: "unknown property 'rank' (allowed: file, sha256, layers, capacity, solver)" },
        { pointer: '/edits/capitals~1france/rows/count', message: 'must be >= 0 (got -1)' },
        { pointer: '/edits/capitals~1france/metrics/locality', message: 'must be <= 1 (got 2)' },
        { pointer: '/edits/capitals~1france/appliedAt', message: "must be a valid date-time (got 'yesterday')" },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
