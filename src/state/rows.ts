/**
 * rows/<id>@<sha12>.safetensors: what an editor computed for one edit against the base weights
 * (for memit its keys, residuals and target shifts; for ft its own delta). Cached so adding one
 * edit to a large set computes one edit; the set's change is solved from all of them (DESIGN §3).
 */
import { EditError } from '../errors.js';
import { parseSafetensors, serializeSafetensors, type TensorInput } from '../model/safetensors.js';
import type { EditRows } from '../editor/editor.js';
import { contentFileName } from './deltas.js';

export const ROWS_DIR = 'rows';
export const ROWS_FORMAT = 'editops-rows';
export const ROWS_VERSION = '1';

export interface RowsMeta {
  id: string;
  method: string;
  specSha256: string;
}

export function rowsFileName(id: string, fileSha256: string): string {
  return contentFileName(ROWS_DIR, id, fileSha256);
}

export function serializeRows(rows: EditRows, meta: RowsMeta): Uint8Array {
  const names = Object.keys(rows.tensors);
  if (names.length === 0) throw new EditError(`rows of edit "${meta.id}" hold no tensor`);
  const tensors: Record<string, TensorInput> = {};
  for (const name of names) {
    const t = rows.tensors[name];
    if (t.dtype === 'F32') {
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new EditError(`rows of edit "${meta.id}": "${name}" contains NaN or infinite values`);
    }
    tensors[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data };
  }
  return serializeSafetensors(tensors, { format: ROWS_FORMAT, version: ROWS_VERSION, id: meta.id, method: meta.method, specSha256: meta.specSha256 });
}

/** Decode a rows file; `file` names it in errors; its metadata must name `expectId` and `expectMethod`. */
export function parseRows(bytes: Uint8Array, file: string, expectId: string, expectMethod: string): EditRows {
  const fail = (message: string): never => {
    throw new EditError(message, { file });
  };
  const { tensors, metadata } = parseSafetensors(bytes, file);
  if (metadata.format !== ROWS_FORMAT) fail(`not an editops rows file (metadata format is ${JSON.stringify(metadata.format) ?? 'missing'}, expected "${ROWS_FORMAT}")`);
  if (metadata.version !== ROWS_VERSION) fail(`unsupported rows version ${JSON.stringify(metadata.version) ?? '(missing)'} (expected "${ROWS_VERSION}")`);
  if (metadata.id !== expectId) fail(`rows belong to edit ${JSON.stringify(metadata.id)}, expected "${expectId}"`);
  if (metadata.method !== expectMethod) fail(`rows were computed by editor ${JSON.stringify(metadata.method)}, the model's editor is "${expectMethod}": run \`edit apply --refresh\``);
  const out: EditRows = { tensors: {} };
  for (const [name, t] of tensors) {
    if (t.data instanceof Float32Array) out.tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
    else if (t.data instanceof Int32Array) out.tensors[name] = { dtype: 'I32', shape: t.shape, data: t.data };
    else fail(`tensor "${name}": dtype ${t.dtype} is not F32 or I32`);
  }
  return out;
}

/** Rows a file holds for capacity: the first dimension of its "positions" tensor (memit), else 0. */
export function rowCount(rows: EditRows): number {
  return rows.tensors.positions?.shape[0] ?? 0;
}
