/**
 * Two-component PCA and its picture: what `edit analyze` draws. Pure arithmetic and SVG text, no
 * TensorFlow.js: points in, projections, explained variance and a task-separation score out.
 */

export interface PcaResult {
  /** Coordinates on the first two principal components, per point. */
  points: Array<[number, number]>;
  /** Fraction of the total variance each component explains. */
  explained: [number, number];
}

/** PCA of rows x [n, d] (row-major) onto two components, by power iteration on the covariance with deflation. */
export function pca2(x: Float64Array, n: number, d: number): PcaResult {
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += x[r * d + j] / n;
  const c = new Float64Array(d * d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      const xi = x[r * d + i] - mean[i];
      if (xi === 0) continue;
      for (let j = i; j < d; j++) c[i * d + j] += (xi * (x[r * d + j] - mean[j])) / n;
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) c[i * d + j] = c[j * d + i];
  let total = 0;
  for (let i = 0; i < d; i++) total += c[i * d + i];
  const comps: Float64Array[] = [];
  const values: number[] = [];
  for (let k = 0; k < 2; k++) {
    let v = new Float64Array(d).map((_, i) => Math.sin(i * 12.9898 + k * 78.233) + 0.5); // fixed start: same picture every run
    let lambda = 0;
    for (let it = 0; it < 500; it++) {
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += c[i * d + j] * v[j];
        w[i] = s;
      }
      for (const u of comps) {
        const dot = u.reduce((a, ui, i) => a + ui * w[i], 0);
        for (let i = 0; i < d; i++) w[i] -= dot * u[i];
      }
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      const next = w.map((wi) => wi / norm);
      const diff = next.reduce((a, ni, i) => a + Math.abs(ni - v[i]), 0);
      v = next;
      lambda = norm;
      if (diff < 1e-10) break;
    }
    // sign: the largest entry positive, so the picture does not flip between runs
    const big = v.reduce((a, vi, i) => (Math.abs(vi) > Math.abs(v[a]) ? i : a), 0);
    if (v[big] < 0) v = v.map((vi) => -vi);
    comps.push(v);
    values.push(lambda);
  }
  const points = Array.from({ length: n }, (_, r) => comps.map((u) => u.reduce((a, ui, j) => a + ui * (x[r * d + j] - mean[j]), 0)) as [number, number]);
  return { points, explained: [total > 0 ? values[0] / total : 0, total > 0 ? values[1] / total : 0] };
}

/**
 * How well the groups separate in the plane: between-group variance over total variance of the 2-D
 * points (0 = the groups' centres coincide, 1 = every point sits on its group's centre).
 */
export function separation(points: ReadonlyArray<[number, number]>, groups: readonly string[]): number {
  const n = points.length;
  if (n === 0) return 0;
  const centre = (ps: ReadonlyArray<[number, number]>): [number, number] => [ps.reduce((a, p) => a + p[0], 0) / ps.length, ps.reduce((a, p) => a + p[1], 0) / ps.length];
  const all = centre(points);
  let total = 0;
  for (const p of points) total += (p[0] - all[0]) ** 2 + (p[1] - all[1]) ** 2;
  let between = 0;
  for (const g of new Set(groups)) {
    const ps = points.filter((_, i) => groups[i] === g);
    const c = centre(ps);
    between += ps.length * ((c[0] - all[0]) ** 2 + (c[1] - all[1]) ** 2);
  }
  return total > 0 ? between / total : 0;
}

export interface PcaPanel {
  title: string;
  result: PcaResult;
  groups: string[];
  separation: number;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Panels side by side, each a scatter with axes, ticks and its separation score; one legend (a colour per group). */
export function renderPcaSvg(title: string, panels: readonly PcaPanel[]): string {
  const size = 320;
  const pad = 48;
  const width = panels.length * (size + pad) + pad;
  const groups = [...new Set(panels.flatMap((p) => p.groups))];
  const height = size + pad * 2 + 24 + groups.length * 0; // legend sits on one line under the panels
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 30}" viewBox="0 0 ${width} ${height + 30}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  panels.forEach((panel, k) => {
    const x0 = pad + k * (size + pad);
    const y0 = pad;
    const xs = panel.result.points.map((p) => p[0]);
    const ys = panel.result.points.map((p) => p[1]);
    const span = (v: number[]) => {
      const lo = Math.min(...v, 0);
      const hi = Math.max(...v, 0);
      const m = (hi - lo) * 0.08 || 1;
      return [lo - m, hi + m] as const;
    };
    const [xl, xh] = span(xs);
    const [yl, yh] = span(ys);
    const sx = (v: number) => x0 + ((v - xl) / (xh - xl)) * size;
    const sy = (v: number) => y0 + size - ((v - yl) / (yh - yl)) * size;
    out.push(`<g>`);
    out.push(`<text x="${x0 + size / 2}" y="${y0 - 10}" text-anchor="middle" font-size="12">${esc(panel.title)}</text>`);
    out.push(`<rect x="${x0}" y="${y0}" width="${size}" height="${size}" fill="none" stroke="#999"/>`);
    // axes through the origin, and tick labels at the ends
    out.push(`<line x1="${x0}" y1="${sy(0).toFixed(1)}" x2="${x0 + size}" y2="${sy(0).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<line x1="${sx(0).toFixed(1)}" y1="${y0}" x2="${sx(0).toFixed(1)}" y2="${y0 + size}" stroke="#ddd"/>`);
    out.push(`<text x="${x0}" y="${y0 + size + 14}">${xl.toPrecision(2)}</text><text x="${x0 + size}" y="${y0 + size + 14}" text-anchor="end">${xh.toPrecision(2)}</text>`);
    out.push(`<text x="${x0 - 4}" y="${y0 + size}" text-anchor="end">${yl.toPrecision(2)}</text><text x="${x0 - 4}" y="${y0 + 10}" text-anchor="end">${yh.toPrecision(2)}</text>`);
    out.push(`<text x="${x0 + size / 2}" y="${y0 + size + 28}" text-anchor="middle">PC1 (${(100 * panel.result.explained[0]).toFixed(1)}% of variance)</text>`);
    out.push(`<text x="${x0 - 30}" y="${y0 + size / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 30} ${y0 + size / 2})">PC2 (${(100 * panel.result.explained[1]).toFixed(1)}%)</text>`);
    out.push(`<text x="${x0 + size - 4}" y="${y0 + 14}" text-anchor="end" fill="#444">task separation ${panel.separation.toFixed(2)}</text>`);
    panel.result.points.forEach((p, i) => {
      const colour = COLOURS[groups.indexOf(panel.groups[i]) % COLOURS.length];
      out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${colour}" fill-opacity="0.7"><title>${esc(panel.groups[i])}</title></circle>`);
    });
    out.push(`</g>`);
  });
  let lx = pad;
  const ly = height + 8;
  for (const [i, g] of groups.entries()) {
    out.push(`<circle cx="${lx + 5}" cy="${ly - 4}" r="5" fill="${COLOURS[i % COLOURS.length]}"/><text x="${lx + 14}" y="${ly}">${esc(g)}</text>`);
    lx += 24 + g.length * 7;
  }
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
