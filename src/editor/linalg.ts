/**
 * Small dense linear algebra in float64 for the joint least-squares solve (tfjs has no float64 and
 * no Cholesky). Matrices are row-major typed arrays with their sizes passed alongside; the edited
 * matrices are small (d ≤ a few thousand), so plain loops in a cache-friendly order are enough.
 */
import { InternalError } from '../errors.js';

export type Vec = Float32Array | Float64Array;

/** A += scale · XᵀX for X [n, d] (A is [d, d], symmetric; both triangles are written). */
export function addGram(a: Float64Array, x: Vec, n: number, d: number, scale = 1): void {
  if (a.length !== d * d || x.length !== n * d) throw new InternalError(`addGram: sizes ${a.length} / ${x.length} do not fit n=${n}, d=${d}`);
  const row = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) row[i] = x[r * d + i];
    for (let i = 0; i < d; i++) {
      const s = scale * row[i];
      if (s === 0) continue;
      const ai = i * d;
      for (let j = i; j < d; j++) a[ai + j] += s * row[j];
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) a[i * d + j] = a[j * d + i];
}

/** XᵀY for X [n, d], Y [n, m]: [d, m]. */
export function crossProduct(x: Vec, y: Vec, n: number, d: number, m: number): Float64Array {
  if (x.length !== n * d || y.length !== n * m) throw new InternalError(`crossProduct: sizes ${x.length} / ${y.length} do not fit n=${n}, d=${d}, m=${m}`);
  const out = new Float64Array(d * m);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      const xi = x[r * d + i];
      if (xi === 0) continue;
      const oi = i * m;
      const yr = r * m;
      for (let j = 0; j < m; j++) out[oi + j] += xi * y[yr + j];
    }
  }
  return out;
}

/**
 * In-place Cholesky factorisation A = L·Lᵀ of a symmetric positive definite [d, d] matrix; the
 * lower triangle of `a` becomes L (the upper is zeroed). Throws when A is not positive definite.
 */
export function cholesky(a: Float64Array, d: number): void {
  for (let j = 0; j < d; j++) {
    const aj = j * d;
    let s = a[aj + j];
    for (let k = 0; k < j; k++) s -= a[aj + k] * a[aj + k];
    if (!(s > 0)) throw new InternalError(`cholesky: matrix is not positive definite (pivot ${j} = ${s})`);
    const ljj = Math.sqrt(s);
    a[aj + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      const ai = i * d;
      let t = a[ai + j];
      for (let k = 0; k < j; k++) t -= a[ai + k] * a[aj + k];
      a[ai + j] = t / ljj;
    }
    for (let k = j + 1; k < d; k++) a[aj + k] = 0;
  }
}

/** Solve (L·Lᵀ) X = B for X [d, m], given the Cholesky factor L [d, d] (lower). B is overwritten with X. */
export function choleskySolve(l: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  if (l.length !== d * d || b.length !== d * m) throw new InternalError(`choleskySolve: sizes ${l.length} / ${b.length} do not fit d=${d}, m=${m}`);
  // forward: L Y = B
  for (let i = 0; i < d; i++) {
    const li = i * d;
    const bi = i * m;
    for (let k = 0; k < i; k++) {
      const lik = l[li + k];
      if (lik === 0) continue;
      const bk = k * m;
      for (let j = 0; j < m; j++) b[bi + j] -= lik * b[bk + j];
    }
    const lii = l[li + i];
    for (let j = 0; j < m; j++) b[bi + j] /= lii;
  }
  // backward: Lᵀ X = Y
  for (let i = d - 1; i >= 0; i--) {
    const bi = i * m;
    for (let k = i + 1; k < d; k++) {
      const lki = l[k * d + i];
      if (lki === 0) continue;
      const bk = k * m;
      for (let j = 0; j < m; j++) b[bi + j] -= lki * b[bk + j];
    }
    const lii = l[i * d + i];
    for (let j = 0; j < m; j++) b[bi + j] /= lii;
  }
  return b;
}

/** X = A⁻¹B for symmetric positive definite A [d, d] (copied, not changed) and B [d, m]. */
export function solveSpd(a: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  const l = Float64Array.from(a);
  cholesky(l, d);
  return choleskySolve(l, Float64Array.from(b), d, m);
}

/** The arrays one after another in one Float32Array (rows of several edits stacked). */
export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
