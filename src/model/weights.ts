/**
 * The one place that knows checkpoint layout. Our parameter names are Hugging Face GPT-2's
 * without a prefix; checkpoints may carry `transformer.`, an explicit `lm_head.weight` (tied to
 * wte in GPT-2), and the `attn.bias` / `attn.masked_bias` causal-mask buffers, which are not weights.
 */
import { tf } from '../tensor/tf.js';
import { EditError } from '../errors.js';
import { paramShapes, type GPTConfig, type Params } from './gpt2.js';
import type { DType, SafetensorsFile, SafetensorsReader, TensorInput } from './safetensors.js';

const BUFFER = /\.attn\.(bias|masked_bias)$/;
const FLOAT = new Set<DType>(['F32', 'F16', 'BF16']);

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Which tensor of a Hugging Face GPT-2 checkpoint gives each parameter, from its header alone:
 * prefix stripped, buffers skipped, float dtypes only, every tensor the config needs present with
 * its shape, nothing unexpected; `lmHead` names an explicit lm_head (it must equal wte: tied only).
 */
export function checkpointPlan(entries: ReadonlyMap<string, { dtype: DType; shape: number[] }>, config: GPTConfig, fileName: string): { params: Array<{ name: string; shape: number[]; source: string }>; lmHead?: string } {
  const byName = new Map<string, { shape: number[]; source: string }>();
  let lmHead: string | undefined;
  for (const [raw, t] of entries) {
    const name = raw.startsWith('transformer.') ? raw.slice('transformer.'.length) : raw;
    if (BUFFER.test(name)) continue;
    if (!FLOAT.has(t.dtype)) {
      throw new EditError(`tensor "${raw}" has dtype ${t.dtype}; weights must be F32, F16 or BF16`, { file: fileName });
    }
    if (name === 'lm_head.weight') {
      lmHead = raw;
      continue;
    }
    byName.set(name, { shape: t.shape, source: raw });
  }
  const expected = paramShapes(config);
  const known = new Set(expected.map(([n]) => n));
  const extra = [...byName.keys()].filter((n) => !known.has(n));
  if (extra.length > 0) {
    throw new EditError(`unexpected tensor "${extra[0]}"${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} for a GPT-2 with ${config.nLayer} layers`, { file: fileName });
  }
  const params = expected.map(([name, shape]) => {
    const t = byName.get(name);
    if (t === undefined) throw new EditError(`missing tensor "${name}" (shape [${shape}])`, { file: fileName });
    if (!sameShape(t.shape, shape)) throw new EditError(`tensor "${name}" has shape [${t.shape}], expected [${shape}] from the config`, { file: fileName });
    return { name, shape, source: t.source };
  });
  return { params, ...(lmHead === undefined ? {} : { lmHead }) };
}

/** Refuses an lm_head that is not wte's copy. */
export function checkTied(lmHead: Float32Array, wte: Float32Array, fileName: string): void {
  if (lmHead.length !== wte.length || lmHead.some((x, i) => x !== wte[i])) {
    throw new EditError('lm_head.weight differs from wte.weight; only tied GPT-2 checkpoints are supported', { file: fileName });
  }
}

/** The parameters of a Hugging Face GPT-2 checkpoint as plain arrays (checkpointPlan's checks; no tfjs). */
export function checkpointTensors(file: SafetensorsFile, config: GPTConfig, fileName: string): Record<string, TensorInput> {
  const plan = checkpointPlan(file.tensors, config, fileName);
  const data = (raw: string) => file.tensors.get(raw)!.data as Float32Array;
  const out: Record<string, TensorInput> = {};
  for (const p of plan.params) out[p.name] = { shape: p.shape, data: data(p.source) };
  if (plan.lmHead !== undefined) checkTied(data(plan.lmHead), out['wte.weight'].data as Float32Array, fileName);
  return out;
}

/**
 * The parameters as tfjs tensors read one at a time from `reader` (checkpointPlan's checks first),
 * which it closes: each decoded array is dropped once its tensor is made. The caller disposes them.
 */
export async function paramsFromReader(reader: SafetensorsReader, config: GPTConfig, fileName: string): Promise<Params> {
  const params: Params = {};
  try {
    const plan = checkpointPlan(reader.entries, config, fileName);
    const read = async (raw: string) => (await reader.read(raw)).data as Float32Array;
    for (const p of plan.params) {
      const data = await read(p.source);
      if (plan.lmHead !== undefined && p.name === 'wte.weight') checkTied(await read(plan.lmHead), data, fileName);
      params[p.name] = tf.tensor(data, p.shape);
    }
    return params;
  } catch (err) {
    tf.dispose(Object.values(params));
    throw err;
  } finally {
    await reader.close();
  }
}

/** checkpointTensors as tfjs tensors (the caller disposes them). */
export function paramsFromCheckpoint(file: SafetensorsFile, config: GPTConfig, fileName: string): Params {
  const tensors = checkpointTensors(file, config, fileName);
  const params: Params = {};
  for (const [name, t] of Object.entries(tensors)) params[name] = tf.tensor(t.data as Float32Array, t.shape);
  return params;
}

/** Hugging Face GPT-2 tensors (no prefix, tied lm_head omitted) from parameters. */
export async function checkpointFromParams(params: Params): Promise<Record<string, TensorInput>> {
  const out: Record<string, TensorInput> = {};
  for (const [name, t] of Object.entries(params)) out[name] = { shape: t.shape, data: (await t.data()) as Float32Array };
  return out;
}

/** The Hugging Face GPT2Config fields we read, mapped to ours. */
export function configFromHf(json: unknown, fileName: string): GPTConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new EditError('config.json is not a JSON object', { file: fileName });
  const c = json as Record<string, unknown>;
  if (c.model_type !== 'gpt2') throw new EditError(`model_type is ${JSON.stringify(c.model_type)}, expected "gpt2"`, { file: fileName, pointer: '/model_type' });
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new EditError(`${key} must be a positive integer`, { file: fileName, pointer: `/${key}` });
    return v;
  };
  const act = c.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new EditError(`activation_function ${JSON.stringify(act)} is not supported (gelu_new)`, { file: fileName, pointer: '/activation_function' });
  }
  const config: GPTConfig = {
    vocabSize: int('vocab_size'),
    nPositions: int('n_positions', c.n_ctx as number | undefined),
    nEmbd: int('n_embd'),
    nLayer: int('n_layer'),
    nHead: int('n_head'),
    layerNormEps: typeof c.layer_norm_epsilon === 'number' ? c.layer_norm_epsilon : 1e-5,
  };
  // n_inner null or absent means 4·n_embd; another width is kept (it is c_proj's key dimension).
  if (c.n_inner !== undefined && c.n_inner !== null) {
    const inner = int('n_inner');
    if (inner !== 4 * config.nEmbd) config.nInner = inner;
  }
  if (config.nEmbd % config.nHead !== 0) throw new EditError('n_embd must be divisible by n_head', { file: fileName, pointer: '/n_head' });
  return config;
}

export function configToHf(c: GPTConfig, eosId: number): Record<string, unknown> {
  return {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], activation_function: 'gelu_new',
    vocab_size: c.vocabSize, n_positions: c.nPositions, n_ctx: c.nPositions, n_embd: c.nEmbd, n_layer: c.nLayer, n_head: c.nHead,
    n_inner: c.nInner ?? null, layer_norm_epsilon: c.layerNormEps, bos_token_id: eosId, eos_token_id: eosId, tie_word_embeddings: true,
  };
}
