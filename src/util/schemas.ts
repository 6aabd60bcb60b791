/**
 * The one place that loads schemas/*.schema.json (JSON Schema 2020-12) and compiles them, once,
 * with ajv; and the one place that turns ajv's errors into sentences a person can act on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { packageRoot } from './package-root.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { InternalError } from '../errors.js';
import { cut } from './format.js';
import { linearRegExp } from './regex.js';
import { closest } from './closest.js';

const SHOW_CHARS = 60;

export type SchemaName = 'edit' | 'model' | 'state' | 'plan';

/** A schema violation: where (JSON pointer into the document) and what was expected. */
export interface SchemaError {
  pointer: string;
  message: string;
}

/** The package's schemas/ folder. */
export function schemasDir(): string {
  return join(packageRoot(), 'schemas');
}

/** The parsed schema document (e.g. for tests or for writing it next to a user's files). */
export function readSchema(name: SchemaName): Record<string, unknown> {
  const path = join(schemasDir(), `${name}.schema.json`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InternalError(`cannot load ${path}: ${(err as Error).message}`);
  }
}

const AJV_OPTIONS = { strict: true, strictRequired: false, allErrors: true, verbose: true } as const;

/** What the JSON Schema 2020-12 meta-schema and ajv's strict mode find wrong with a schema ([] when nothing). */
export function schemaProblems(schema: Record<string, unknown>): string[] {
  const checker = new Ajv2020(AJV_OPTIONS);
  addFormats.default(checker);
  checker.addFormat('regex', () => true);
  if (checker.validateSchema(schema) !== true) return (checker.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
  try {
    checker.compile(schema);
  } catch (err) {
    return [(err as Error).message];
  }
  return [];
}

let ajv: Ajv2020 | undefined;
const compiled = new Map<SchemaName, ValidateFunction>();

export function validatorFor(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name);
  if (validate === undefined) {
    if (ajv === undefined) {
      // strictRequired is off: it cannot see properties declared outside an if/then branch and
      // rejects `then: { anyOf: [{ required: ['min'] }, ...] }`. Every other strict check stays on.
      // Each command compiles these schemas once: not checking them against the meta-schema every
      // time (a test does, schemaProblems) and not optimizing the generated code (documents are
      // small) halve that, ~0.23 → ~0.12 s of every process that reads model.json, edits and state.
      ajv = new Ajv2020({ ...AJV_OPTIONS, validateSchema: false, code: { optimize: false } });
      addFormats.default(ajv);
      // Assertion regexes must run in bounded time (util/regex.ts).
      ajv.addFormat('regex', (s: string) => regexProblem(s) === undefined);
    }
    validate = ajv.compile(readSchema(name));
    compiled.set(name, validate);
  }
  return validate;
}

/** Validate a document; [] when it is valid. */
export function validateAgainst(name: SchemaName, data: unknown): SchemaError[] {
  const validate = validatorFor(name);
  return validate(data) ? [] : formatAjvErrors(validate.errors, data);
}

/**
 * All of a document's errors as sentences. Drops ajv's restatements ("must match \"then\" schema")
 * and folds each anyOf/oneOf's branch errors into one message. Branches are found by schema path,
 * so schemas here keep $refs out of anyOf/oneOf branches (type unions instead).
 */
export function formatAjvErrors(errors: readonly ErrorObject[] | null | undefined, document?: unknown): SchemaError[] {
  const list = errors ?? [];
  const combinators = list.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const inBranch = (e: ErrorObject, c: ErrorObject) => e !== c && e.schemaPath.startsWith(`${c.schemaPath}/`);
  const out: SchemaError[] = [];
  const seen = new Set<string>();
  for (const e of list) {
    if (e.keyword === 'if' || combinators.some((c) => inBranch(e, c))) continue;
    const f = e.keyword === 'anyOf' || e.keyword === 'oneOf' ? formatCombinator(e, list.filter((b) => inBranch(b, e))) : formatAjvError(e, document);
    const key = `${f.pointer}\u0000${f.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(f);
    }
  }
  return out;
}

/**
 * One ajv error as `{ pointer, message }`. Pass the validated document to name an assertion's
 * `type` when one of its properties is not allowed. Needs ajv's `verbose` for the allowed lists.
 */
export function formatAjvError(error: ErrorObject, document?: unknown): SchemaError {
  const at = error.instancePath;
  const p = error.params as Record<string, unknown>;
  const got = 'data' in error ? ` (got ${show(error.data)})` : '';
  switch (error.keyword) {
    case 'required':
      return { pointer: at, message: `must have required property '${String(p.missingProperty)}'` };
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const props = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
      const allowed = props ? Object.keys(props) : [];
      const near = closest(name, allowed);
      const list = allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : '';
      return { pointer: `${at}/${escapePointer(name)}`, message: `unknown property '${name}'${list}${near ? `; did you mean '${near}'?` : ''}` };
    }
    case 'false schema': {
      const name = unescapePointer(at.slice(at.lastIndexOf('/') + 1));
      const type = lookup(document, at.slice(0, at.lastIndexOf('/')));
      const owner = type !== null && typeof type === 'object' && typeof (type as { type?: unknown }).type === 'string' ? ` with type '${(type as { type: string }).type}'` : ' here';
      return { pointer: at, message: `property '${name}' is not allowed${owner}` };
    }
    case 'type':
      return { pointer: at, message: `must be ${typeList(p.type)}, got ${jsonType(error.data)}` };
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(show);
      const near = typeof error.data === 'string' ? closest(error.data, (p.allowedValues as unknown[]).filter((v): v is string => typeof v === 'string')) : undefined;
      return { pointer: at, message: `must be one of ${allowed.join(', ')}${got}${near ? `; did you mean '${near}'?` : ''}` };
    }
    case 'const':
      return { pointer: at, message: `must be ${show(p.allowedValue)}${got}` };
    case 'minLength':
      return { pointer: at, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters long` };
    case 'maxLength':
      return { pointer: at, message: `must be at most ${String(p.limit)} characters long${typeof error.data === 'string' ? ` (got ${codePoints(error.data)})` : ''}` };
    case 'minItems':
      return { pointer: at, message: p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items` };
    case 'maxItems':
      return { pointer: at, message: `must have at most ${String(p.limit)} items${Array.isArray(error.data) ? ` (got ${error.data.length})` : ''}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { pointer: at, message: `must be ${String(p.comparison)} ${String(p.limit)}${got}` };
    case 'pattern':
      return { pointer: at, message: `must match the pattern ${String(p.pattern)}${got}` };
    case 'format':
      if (p.format === 'regex') return { pointer: at, message: `is not a valid regular expression: ${regexProblem(error.data) ?? String(error.data)}` };
      return { pointer: at, message: `must be a valid ${String(p.format)}${got}` };
    case 'uniqueItems':
      return { pointer: at, message: `must not repeat items (items ${String(p.j)} and ${String(p.i)} are equal)` };
    case 'propertyNames':
      return { pointer: at, message: `has a property named ${show(p.propertyName)} that is not allowed` };
    default:
      return { pointer: at, message: error.message ?? `fails ${error.keyword}` };
  }
}

function formatCombinator(error: ErrorObject, branches: ErrorObject[]): SchemaError {
  const missing = branches.filter((b) => b.keyword === 'required' && b.instancePath === error.instancePath);
  if (missing.length === branches.length && missing.length > 0) {
    const names = missing.map((b) => `'${String((b.params as { missingProperty: unknown }).missingProperty)}'`);
    return { pointer: error.instancePath, message: `must have at least one of the properties ${names.join(', ')}` };
  }
  return { pointer: error.instancePath, message: error.keyword === 'oneOf' ? 'must match exactly one of the allowed forms' : 'must match one of the allowed forms' };
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function lookup(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  let node = document;
  for (const seg of pointer.slice(1).split('/').map(unescapePointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}

/** Characters as JSON Schema counts them (code points, not UTF-16 units). */
function codePoints(s: string): number {
  return s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
}

/** A value from the user's document, cut short: a schema message never echoes a whole prompt. */
function show(v: unknown): string {
  if (typeof v === 'string') return `'${cut(v, SHOW_CHARS)}'`;
  if (v === undefined) return 'nothing';
  return cut(JSON.stringify(v), SHOW_CHARS);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return { string: 'a string', boolean: 'a boolean', object: 'an object' }[typeof v as 'string'] ?? typeof v;
}

function typeList(t: unknown): string {
  const names = (Array.isArray(t) ? t : String(t).split(',')).map((x) => ({ string: 'a string', number: 'a number', integer: 'an integer', boolean: 'a boolean', object: 'an object', array: 'an array', null: 'null' })[String(x) as 'string'] ?? String(x));
  return names.join(' or ');
}

function regexProblem(v: unknown): string | undefined {
  try {
    linearRegExp(String(v));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
