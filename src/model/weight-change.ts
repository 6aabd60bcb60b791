/**
 * Weight changes: the one place that knows what a change of named parameters is and how to combine
 * it — a dense tensor or low-rank factors per parameter ("h.3.mlp.c_proj.weight"), in Conv1D layout
 * [in, out]; a low-rank ΔW = A·B with A [in, r] and B [r, out]. Editors produce them, storage
 * (src/state/deltas.ts) only encodes them, apply/verify/generate/export add them to the base.
 */
import { EditError } from '../errors.js';

export interface DenseDelta {
  kind: 'dense';
  /** [in, out] for a weight, [out] for a bias. */
  shape: number[];
  data: Float32Array;
}

export interface LowRankDelta {
  kind: 'lowrank';
  /** [in, rank], row-major. */
  a: Float32Array;
  /** [rank, out], row-major. */
  b: Float32Array;
  in: number;
  out: number;
  rank: number;
}

export type DeltaTensor = DenseDelta | LowRankDelta;

export interface Delta {
  /** Per parameter name: "<layer>.weight" (dense or low-rank) or "<layer>.bias" (dense). */
  layers: Record<string, DeltaTensor>;
}

/** Metadata every delta file carries; extra string fields are kept. */

/** A plain tensor: a densified delta or a sum of them. */
export interface DenseTensor {
  shape: number[];
  data: Float32Array;
}


// Arithmetic (plain loops: the edited matrices are small)


/** The shape a delta tensor has once dense. */
export function deltaShape(t: DeltaTensor): number[] {
  return t.kind === 'dense' ? [...t.shape] : [t.in, t.out];
}

/** Every parameter's change as a dense tensor; low-rank factors multiplied out (A·B). */
export function densify(delta: Delta): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  for (const [param, t] of Object.entries(delta.layers)) {
    if (t.kind === 'dense') {
      out.set(param, { shape: [...t.shape], data: t.data });
      continue;
    }
    const w = new Float32Array(t.in * t.out);
    for (let i = 0; i < t.in; i++) {
      const row = i * t.out;
      for (let k = 0; k < t.rank; k++) {
        const aik = t.a[i * t.rank + k];
        if (aik === 0) continue;
        const bk = k * t.out;
        for (let j = 0; j < t.out; j++) w[row + j] += aik * t.b[bk + j];
      }
    }
    out.set(param, { shape: [t.in, t.out], data: w });
  }
  return out;
}

/** Σ deltas per parameter (the caller adds the result to the base weights). Shapes must agree. */
export function sumDeltas(deltas: Iterable<Delta>): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  for (const delta of deltas) {
    for (const [param, t] of densify(delta)) {
      const acc = out.get(param);
      if (acc === undefined) {
        out.set(param, { shape: t.shape, data: Float32Array.from(t.data) });
        continue;
      }
      if (acc.shape.length !== t.shape.length || acc.shape.some((n, i) => n !== t.shape[i])) {
        throw new EditError(`deltas disagree on the shape of "${param}": ${JSON.stringify(acc.shape)} vs ${JSON.stringify(t.shape)}`);
      }
      for (let i = 0; i < acc.data.length; i++) acc.data[i] += t.data[i];
    }
  }
  return out;
}

export interface DeltaLayerStats {
  param: string;
  kind: DeltaTensor['kind'];
  shape: number[];
  /** Frobenius norm ‖Δ‖. */
  norm: number;
  /** r for a low-rank delta; null for dense. */
  rank: number | null;
  /** ‖Δ‖ / ‖W‖ against the base parameter; null without base weights (or a zero base). */
  relative: number | null;
}

/** Per parameter: norm, rank and relative change, for `edit diff`. */
export function deltaStats(delta: Delta, baseParams?: Map<string, Float32Array> | Record<string, Float32Array>): DeltaLayerStats[] {
  const base = baseParams instanceof Map ? baseParams : baseParams !== undefined ? new Map(Object.entries(baseParams)) : undefined;
  return Object.keys(delta.layers)
    .sort()
    .map((param) => {
      const t = delta.layers[param];
      const norm = t.kind === 'dense' ? Math.sqrt(sumSquares(t.data)) : lowRankNorm(t);
      const w = base?.get(param);
      if (w !== undefined && w.length !== deltaShape(t).reduce((a, b) => a * b, 1)) {
        throw new EditError(`delta "${param}" has shape ${JSON.stringify(deltaShape(t))} but the base parameter has ${w.length} values`);
      }
      const wNorm = w === undefined ? 0 : Math.sqrt(sumSquares(w));
      return { param, kind: t.kind, shape: deltaShape(t), norm, rank: t.kind === 'lowrank' ? t.rank : null, relative: wNorm > 0 ? norm / wNorm : null };
    });
}

/**
 * How much a [in, out] matrix change moves the layer's output on the keys it sees, against the base
 * matrix: √(tr(ΔWᵀCΔW) / tr(WᵀCW)) = RMS ‖kᵀΔW‖ / RMS ‖kᵀW‖ over keys k with second moment C
 * [in, in] (the editor's key statistics). Unlike ‖ΔW‖/‖W‖ it does not count change along key
 * directions the model hardly uses. null for a zero base on those keys.
 */
export function keyWeightedRelative(delta: Float32Array, base: Float32Array, second: Float64Array, dim: number): number | null {
  const out = delta.length / dim;
  if (!Number.isInteger(out) || base.length !== delta.length || second.length !== dim * dim) {
    throw new EditError(`key statistics of ${Math.sqrt(second.length)} dims do not fit a change of ${delta.length} values and a base of ${base.length}`);
  }
  const quad = (x: Float32Array): number => {
    // Σ_j x_jᵀ C x_j over the columns j: C·X a row of C at a time
    let s = 0;
    const cx = new Float64Array(out);
    for (let i = 0; i < dim; i++) {
      cx.fill(0);
      for (let k = 0; k < dim; k++) {
        const c = second[i * dim + k];
        if (c === 0) continue;
        const row = k * out;
        for (let j = 0; j < out; j++) cx[j] += c * x[row + j];
      }
      const row = i * out;
      for (let j = 0; j < out; j++) s += x[row + j] * cx[j];
    }
    return s;
  };
  const b = quad(base);
  return b > 0 ? Math.sqrt(Math.max(0, quad(delta)) / b) : null;
}

function sumSquares(data: Float32Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return s;
}

/** ‖A·B‖_F² = Σ_kl (AᵀA)_kl (BBᵀ)_kl: r×r work instead of in×out. */
function lowRankNorm(t: LowRankDelta): number {
  const r = t.rank;
  let s = 0;
  for (let k = 0; k < r; k++) {
    for (let l = 0; l < r; l++) {
      let ata = 0;
      for (let i = 0; i < t.in; i++) ata += t.a[i * r + k] * t.a[i * r + l];
      let bbt = 0;
      for (let j = 0; j < t.out; j++) bbt += t.b[k * t.out + j] * t.b[l * t.out + j];
      s += ata * bbt;
    }
  }
  return Math.sqrt(Math.max(0, s));
}
