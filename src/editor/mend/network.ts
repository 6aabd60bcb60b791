/**
 * The hypernetwork of the `mend` and `instructedit` editors: per edited layer, a small MLP that maps
 * one row's (u, δ[, instruction vector]) to a value shift v — the row's target change of the layer's
 * output, which the joint solve (solve.ts) turns into ΔW (MALMEN, Tan et al. 2024, "Massive Editing
 * for Large Language Models via Meta Learning"; MEND, Mitchell et al. 2022). Recipe calibrated on the
 * default model (FACTS, hypernetwork editors):
 *   x = [(u − μ)/σ, δ̂·√d, log‖δ‖, c] → Linear(→ hidden) → GELU → Linear(hidden → d, zero init)
 *   v = s·(−δ̂ + MLP(x)),  δ̂ = δ/‖δ‖,  s = exp(log_scale)
 * μ, σ are fixed per-layer statistics of u; c is the instruction vector (condDim 0: plain MEND).
 * The −δ̂ path makes the untrained network a normalised gradient step (FACTS: without it training
 * is slow). Stored as safetensors (editor.safetensors in a model folder).
 */
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import { parseSafetensors, serializeSafetensors, type TensorInput } from '../../model/safetensors.js';
import { gelu, linear, rowSum } from '../../tensor/ops.js';
import { Rng } from '../../util/random.js';

export const HYPERNET_FORMAT = 'editops-hypernet';

/** The network's sizes: everything needed to rebuild it from its tensors. */
export interface HyperNetShape {
  /** Edited layers in forward order ("h.3.mlp.c_proj"). */
  layers: string[];
  /** Width of each layer's input u (the key dimension: the MLP width for c_proj). */
  keyDims: Record<string, number>;
  /** Width of δ and v (the layer's output: nEmbd for c_proj). */
  valueDim: number;
  hidden: number;
  /** Width of the conditioning vector; 0 = no conditioning (`mend`, or instructions by wrapping). */
  condDim: number;
  /**
   * How the network reads an edit's instruction: 'none' (`mend`), 'condition' (an instruction
   * vector as extra input, condDim = the model's width) or 'wrap' (u and δ captured on the prompt
   * wrapped in InstructEdit's template). Files without it: 'condition' when condDim > 0, else 'none'.
   */
  instruction?: InstructionMode;
}

export type InstructionMode = 'none' | 'condition' | 'wrap';

/** The shape's instruction mode, with the default of files that do not record it. */
export function instructionMode(shape: HyperNetShape): InstructionMode {
  return shape.instruction ?? (shape.condDim > 0 ? 'condition' : 'none');
}

/** Fixed statistics of one layer's u, [keyDim] each (σ already floored). */
export interface InputStats {
  mean: Float32Array;
  std: Float32Array;
}

export interface HyperNetInit {
  seed: number;
  /** Initial log edit scale per layer (FACTS: 1.5). */
  logScaleInit?: number;
}

/** Tensor names inside the file, per layer: stable across versions of the code. */
const TRAINABLE = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias', 'log_scale'] as const;
const FIXED = ['u_mean', 'u_std'] as const;

/** Per-layer σ floor relative to the layer's mean σ: a unit that never moves must not blow up x. */
const STD_FLOOR = 1e-3;

export class HyperNet {
  private constructor(
    readonly shape: HyperNetShape,
    /** Stable name ("h.3.mlp.c_proj.fc1.weight") → variable (trainable) or tensor (fixed statistics). */
    private readonly tensors: Map<string, tf.Tensor>,
  ) {}

  /** A fresh network: fc1 ~ N(0, 1/in), fc2 and biases zero, log_scale = logScaleInit. */
  static init(given: HyperNetShape, stats: Record<string, InputStats>, opts: HyperNetInit): HyperNet {
    checkShape(given);
    const shape = { ...given, instruction: instructionMode(given) };
    const tensors = new Map<string, tf.Tensor>();
    const rng = new Rng(opts.seed);
    for (const l of shape.layers) {
      const k = shape.keyDims[l];
      const s = stats[l];
      if (s === undefined || s.mean.length !== k || s.std.length !== k) throw new EditError(`input statistics for "${l}" must have ${k} entries`);
      const nIn = inputDim(shape, l);
      const w1 = new Float32Array(nIn * shape.hidden);
      const std = 1 / Math.sqrt(nIn);
      for (let i = 0; i < w1.length; i++) w1[i] = rng.normal() * std;
      tensors.set(`${l}.fc1.weight`, variable(tf.tensor2d(w1, [nIn, shape.hidden])));
      tensors.set(`${l}.fc1.bias`, variable(tf.zeros([shape.hidden])));
      tensors.set(`${l}.fc2.weight`, variable(tf.zeros([shape.hidden, shape.valueDim])));
      tensors.set(`${l}.fc2.bias`, variable(tf.zeros([shape.valueDim])));
      tensors.set(`${l}.log_scale`, variable(tf.tensor1d([opts.logScaleInit ?? 1.5])));
      tensors.set(`${l}.u_mean`, tf.tensor1d(s.mean));
      tensors.set(`${l}.u_std`, tf.tensor1d(floorStd(s.std)));
    }
    return new HyperNet(shape, tensors);
  }

  /** The network in an editor.safetensors file (format checked, every tensor's shape checked). */
  static parse(bytes: Uint8Array, file: string): HyperNet {
    const { tensors, metadata } = parseSafetensors(bytes, file);
    if (metadata.format !== HYPERNET_FORMAT) throw new EditError(`not an editops hypernetwork file (metadata format is ${JSON.stringify(metadata.format) ?? 'missing'}, expected "${HYPERNET_FORMAT}")`, { file });
    let shape: HyperNetShape;
    try {
      shape = {
        layers: JSON.parse(metadata.layers) as string[],
        keyDims: JSON.parse(metadata.keyDims) as Record<string, number>,
        valueDim: Number(metadata.valueDim),
        hidden: Number(metadata.hidden),
        condDim: Number(metadata.condDim),
        ...(metadata.instruction === undefined ? {} : { instruction: metadata.instruction as InstructionMode }),
      };
      checkShape(shape);
      shape.instruction = instructionMode(shape);
    } catch (err) {
      throw new EditError(`hypernetwork metadata is malformed: ${(err as Error).message}`, { file });
    }
    const expected = expectedShapes(shape);
    if (tensors.size !== expected.size) throw new EditError(`hypernetwork file has ${tensors.size} tensors, expected ${expected.size}`, { file });
    const out = new Map<string, tf.Tensor>();
    for (const [name, want] of expected) {
      const t = tensors.get(name);
      if (t === undefined || !(t.data instanceof Float32Array) || t.shape.join(',') !== want.join(',')) {
        tf.dispose([...out.values()]);
        throw new EditError(`hypernetwork tensor "${name}" is missing or not F32 [${want.join(', ')}]`, { file });
      }
      const tensor = tf.tensor(t.data, want);
      out.set(name, isFixed(name) ? tensor : variable(tensor));
    }
    return new HyperNet(shape, out);
  }

  /** safetensors bytes: every tensor F32 under its stable name, the shape as metadata. Deterministic. */
  serialize(meta: Record<string, string> = {}): Uint8Array {
    const tensors: Record<string, TensorInput> = {};
    for (const [name, t] of this.tensors) tensors[name] = { shape: t.shape, data: t.dataSync() as Float32Array };
    return serializeSafetensors(tensors, {
      ...meta,
      format: HYPERNET_FORMAT,
      layers: JSON.stringify(this.shape.layers),
      keyDims: JSON.stringify(Object.fromEntries(this.shape.layers.map((l) => [l, this.shape.keyDims[l]]))),
      valueDim: String(this.shape.valueDim),
      hidden: String(this.shape.hidden),
      condDim: String(this.shape.condDim),
      instruction: instructionMode(this.shape),
    });
  }

  /** Trainable variables with their stable names, in a fixed order. */
  trainable(): Array<{ name: string; variable: tf.Variable }> {
    const out: Array<{ name: string; variable: tf.Variable }> = [];
    for (const [name, t] of this.tensors) if (t instanceof tf.Variable) out.push({ name, variable: t });
    return out;
  }

  /** A tensor by stable name (tests, inspection). */
  tensor(name: string): tf.Tensor {
    const t = this.tensors.get(name);
    if (t === undefined) throw new EditError(`the hypernetwork has no tensor "${name}"`);
    return t;
  }

  /** The learned edit scale s_l = exp(log_scale) of each layer. */
  scales(): Record<string, number> {
    return Object.fromEntries(this.shape.layers.map((l) => [l, Math.exp(this.tensor(`${l}.log_scale`).dataSync()[0])]));
  }

  /**
   * Value shifts V [n, valueDim] of `layer` for rows u [n, keyDim], δ [n, valueDim] and, when the
   * network is conditioned, c [n, condDim]. Differentiable w.r.t. the network's variables.
   */
  shift(layer: string, u: tf.Tensor2D, delta: tf.Tensor2D, cond?: tf.Tensor2D): tf.Tensor2D {
    const t = (name: string) => this.tensor(`${layer}.${name}`);
    const { condDim, valueDim } = this.shape;
    if (condDim > 0 && (cond === undefined || cond.shape[1] !== condDim)) throw new EditError(`the hypernetwork for "${layer}" needs a conditioning vector of width ${condDim}`);
    return tf.tidy(() => {
      const un = tf.div(tf.sub(u, t('u_mean')), t('u_std')) as tf.Tensor2D; // (n, keyDim)
      const norm = tf.maximum(tf.sqrt(rowSum(tf.mul(delta, delta) as tf.Tensor2D)), 1e-30); // (n, 1)
      const unit = tf.div(delta, norm) as tf.Tensor2D; // δ̂ (n, d)
      const parts = [un, tf.mul(unit, Math.sqrt(valueDim)), tf.log(norm)] as tf.Tensor2D[];
      if (condDim > 0) parts.push(cond!);
      const x = tf.concat(parts, 1) as tf.Tensor2D; // (n, in)
      const h = gelu(linear(x, t('fc1.weight') as tf.Tensor2D, t('fc1.bias') as tf.Tensor1D)) as tf.Tensor2D; // (n, hidden)
      const m = linear(h, t('fc2.weight') as tf.Tensor2D, t('fc2.bias') as tf.Tensor1D); // (n, d)
      return tf.mul(tf.exp(t('log_scale')), tf.sub(m, unit)) as tf.Tensor2D;
    });
  }

  dispose(): void {
    tf.dispose([...this.tensors.values()]);
    this.tensors.clear();
  }
}

/** μ and σ of u over rows [n, dim] (float64 sums), for HyperNet.init. */
export function inputStats(u: Float32Array, n: number, dim: number): InputStats {
  if (n === 0 || u.length !== n * dim) throw new EditError(`input statistics need rows: got ${u.length} values for ${n} × ${dim}`);
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) {
      const x = u[r * dim + i];
      sum[i] += x;
      sq[i] += x * x;
    }
  }
  const mean = new Float32Array(dim);
  const std = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    const m = sum[i] / n;
    mean[i] = m;
    std[i] = Math.sqrt(Math.max(sq[i] / n - m * m, 0));
  }
  return { mean, std: floorStd(std) };
}

function floorStd(std: Float32Array): Float32Array {
  const avg = std.reduce((a, x) => a + x, 0) / Math.max(std.length, 1);
  const floor = Math.max(STD_FLOOR * avg, 1e-6);
  return std.map((x) => Math.max(x, floor));
}

/** A trainable variable from t; t itself is released (the variable holds its own reference to the data). */
function variable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

function inputDim(shape: HyperNetShape, layer: string): number {
  return shape.keyDims[layer] + shape.valueDim + 1 + shape.condDim;
}

function isFixed(name: string): boolean {
  return FIXED.some((f) => name.endsWith(`.${f}`));
}

function expectedShapes(shape: HyperNetShape): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const l of shape.layers) {
    const k = shape.keyDims[l];
    const sizes: Record<(typeof TRAINABLE)[number] | (typeof FIXED)[number], number[]> = {
      'fc1.weight': [inputDim(shape, l), shape.hidden],
      'fc1.bias': [shape.hidden],
      'fc2.weight': [shape.hidden, shape.valueDim],
      'fc2.bias': [shape.valueDim],
      log_scale: [1],
      u_mean: [k],
      u_std: [k],
    };
    for (const [name, s] of Object.entries(sizes)) out.set(`${l}.${name}`, s);
  }
  return out;
}

function checkShape(s: HyperNetShape): void {
  const posInt = (x: number) => Number.isInteger(x) && x > 0;
  if (!Array.isArray(s.layers) || s.layers.length === 0 || new Set(s.layers).size !== s.layers.length) throw new EditError('a hypernetwork needs distinct edited layers');
  for (const l of s.layers) if (!posInt(s.keyDims?.[l])) throw new EditError(`key dimension of "${l}" must be a positive integer`);
  if (!posInt(s.valueDim) || !posInt(s.hidden) || !(Number.isInteger(s.condDim) && s.condDim >= 0)) throw new EditError('valueDim and hidden must be positive integers, condDim a non-negative one');
  if (s.instruction !== undefined && !['none', 'condition', 'wrap'].includes(s.instruction)) throw new EditError(`instruction mode must be "none", "condition" or "wrap" (got ${JSON.stringify(s.instruction)})`);
  if ((instructionMode(s) === 'condition') !== s.condDim > 0) throw new EditError(`a network with instruction mode "${instructionMode(s)}" must ${s.condDim > 0 ? 'not ' : ''}have a conditioning vector`);
}
