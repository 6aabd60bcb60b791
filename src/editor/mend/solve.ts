/**
 * The joint least-squares solve for hypernetwork rows (MALMEN, Tan et al. 2024): per edited layer,
 * ΔW = (λC + μ·KpᵀKp + KᵀK)⁻¹ KᵀV with the memit editor's convention (joint.ts): C the layer's key
 * second moment from stats.ts (corpus tokens + weighted fact-prompt last tokens), λ on C, every
 * edit row with weight 1, Kp optional preserved keys with weight μ, memit's ridge as the fallback.
 * Keys K [n, dk] come from the base model and do not depend on the hypernetwork, so A is a constant
 * of the set: M = A⁻¹Kᵀ [dk, n] is factored once in float64, and ΔW = M·V is a plain matmul through
 * which meta-training's gradients reach V (and the network).
 * Unlike memit, every layer's keys are the base model's (memit recomputes later layers' keys under
 * the earlier layers' change and splits one target residual by share); the hypernetwork gives each
 * layer its own V and meta-training sees the layers' changes together.
 */
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import { linear } from '../../tensor/ops.js';
import { solveRidged } from '../joint.js';
import { addGram, crossProduct, solveSpd } from '../linalg.js';

export interface SolveWeights {
  /** Weight λ of the key statistics C (memit's `lambda`). */
  lambda: number;
  /** Weight μ of preserved keys Kp; 0 or absent = none (the calibrated hypernetwork recipe). */
  preserveWeight?: number;
  /**
   * A floor under C: λ·keyFloor·mean(diag C) is added to the diagonal, so a key direction the corpus
   * almost never uses (a neuron that does not fire) is not free to carry an arbitrarily large change.
   * 0 or absent = none.
   */
  keyFloor?: number;
}

/** Keys a solve keeps still: [n, dk] row-major. */
export interface PreservedKeys {
  keys: Float32Array;
  n: number;
}

/** A = λC + μ·KpᵀKp + KᵀK [dk, dk], float64. */
export function systemMatrix(keys: Float32Array, n: number, dk: number, second: Float64Array, w: SolveWeights, preserve?: PreservedKeys): Float64Array {
  if (second.length !== dk * dk) throw new EditError(`key statistics are ${Math.sqrt(second.length)} wide, the keys ${dk}: recompute them with \`edit model stats\``);
  if (keys.length !== n * dk) throw new EditError(`keys: ${keys.length} values for ${n} rows of ${dk}`);
  const a = new Float64Array(dk * dk);
  for (let i = 0; i < a.length; i++) a[i] = w.lambda * second[i];
  const floor = w.keyFloor ?? 0;
  if (floor > 0) {
    let trace = 0;
    for (let i = 0; i < dk; i++) trace += second[i * dk + i];
    for (let i = 0; i < dk; i++) a[i * dk + i] += w.lambda * floor * (trace / dk);
  }
  addGram(a, keys, n, dk);
  const mu = w.preserveWeight ?? 0;
  if (mu > 0 && preserve !== undefined && preserve.n > 0) addGram(a, preserve.keys, preserve.n, dk, mu);
  return a;
}

/** M = A⁻¹Kᵀ [dk, n] (float64 solve, float32 result): ΔW = M·V for any values V [n, d]. */
export function solveOperator(keys: Float32Array, n: number, dk: number, second: Float64Array, w: SolveWeights, preserve?: PreservedKeys): Float32Array {
  const a = systemMatrix(keys, n, dk, second, w, preserve);
  const kt = new Float64Array(dk * n);
  for (let r = 0; r < n; r++) for (let i = 0; i < dk; i++) kt[i * n + r] = keys[r * dk + i];
  return Float32Array.from(solveExact(a, kt, dk, n));
}

/** ΔW = M·V [dk, d], differentiable w.r.t. V (explicit-transpose gradient: ops.linear). */
export function weightChange(m: tf.Tensor2D, v: tf.Tensor2D): tf.Tensor2D {
  return linear(m, v);
}

/** ΔW = A⁻¹KᵀV entirely in float64 (the editor's solve at apply time), [dk, d] as float32. */
export function solveValues(keys: Float32Array, values: Float32Array, n: number, dk: number, d: number, second: Float64Array, w: SolveWeights, preserve?: PreservedKeys): Float32Array {
  const a = systemMatrix(keys, n, dk, second, w, preserve);
  return Float32Array.from(solveExact(a, crossProduct(keys, values, n, dk, d), dk, d));
}

/**
 * A⁻¹B by Cholesky as it stands; only when A is not numerically positive definite, memit's ridged
 * solve. (memit always adds its ridge, 1e-6 of A's mean diagonal: on an ill-conditioned A that
 * moves ΔW measurably — ~1% on the tiny fixture — so the exact solve comes first here.)
 */
function solveExact(a: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  try {
    return solveSpd(a, b, d, m);
  } catch {
    return solveRidged(a, b, d, m);
  }
}

/**
 * The solve operator for many batches against one layer's statistics, without preserved keys (the
 * hypernetwork recipe): with P = (λC)⁻¹ factored once (C with the key floor, when given), A⁻¹Kᵀ = PKᵀ(I + KPKᵀ)⁻¹ (Woodbury) — an
 * n×n solve per batch instead of a dk×dk one. Meta-training solves thousands of batches.
 */
export class BatchOperator {
  private readonly p: Float64Array;

  constructor(
    second: Float64Array,
    readonly dk: number,
    lambda: number,
    keyFloor = 0,
  ) {
    if (second.length !== dk * dk) throw new EditError(`key statistics are ${Math.sqrt(second.length)} wide, the keys ${dk}`);
    const a = systemMatrix(new Float32Array(0), 0, dk, second, { lambda, keyFloor }); // λC (+ the floor), no keys
    const eye = new Float64Array(dk * dk);
    for (let i = 0; i < dk; i++) eye[i * dk + i] = 1;
    this.p = solveExact(a, eye, dk, dk);
    // symmetrise: P is symmetric in exact arithmetic, and PKᵀ below reads its rows as columns
    for (let i = 0; i < dk; i++) {
      for (let j = i + 1; j < dk; j++) {
        const m = (this.p[i * dk + j] + this.p[j * dk + i]) / 2;
        this.p[i * dk + j] = m;
        this.p[j * dk + i] = m;
      }
    }
  }

  private p32?: tf.Tensor2D;

  private pTensor(): tf.Tensor2D {
    this.p32 ??= tf.tensor2d(Float32Array.from(this.p), [this.dk, this.dk]);
    return this.p32;
  }

  dispose(): void {
    this.p32?.dispose();
    this.p32 = undefined;
  }

  /** M = A⁻¹Kᵀ [dk, n] for keys [n, dk] (as solveOperator with preserveWeight 0 and the same keyFloor), float32. */
  operator(keys: Float32Array, n: number): Float32Array {
    const dk = this.dk;
    if (keys.length !== n * dk) throw new EditError(`keys: ${keys.length} values for ${n} rows of ${dk}`);
    // Q = K·P [n, dk] (= (PKᵀ)ᵀ, P symmetric): the dk² part, as one float32 matmul
    const p = this.pTensor(); // made outside the tidy: it outlives this call
    const qt = tf.tidy(() => tf.matMul(tf.tensor2d(keys, [n, dk]), p));
    const q = Float64Array.from(qt.dataSync());
    qt.dispose();
    // S = I + Q·Kᵀ [n, n]
    const s = new Float64Array(n * n);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        let t = r === c ? 1 : 0;
        for (let i = 0; i < dk; i++) t += q[r * dk + i] * keys[c * dk + i];
        s[r * n + c] = t;
      }
    }
    for (let r = 0; r < n; r++) for (let c = r + 1; c < n; c++) s[r * n + c] = s[c * n + r] = (s[r * n + c] + s[c * n + r]) / 2;
    // X = S⁻¹Q [n, dk]; M = Xᵀ
    const x = solveExact(s, q, n, dk);
    const m = new Float32Array(dk * n);
    for (let r = 0; r < n; r++) for (let i = 0; i < dk; i++) m[i * n + r] = x[r * dk + i];
    return m;
  }
}
