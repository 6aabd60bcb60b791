/** A 0..1 fraction as a whole percentage ("83%"); "–" for a metric that does not apply (null). */
export function pct(x: number | null): string {
  return x === null ? '–' : `${Math.round(x * 100)}%`;
}
