/** How assertion reasons show text and numbers: text JSON-quoted (leading spaces and newlines visible), numbers to 3 significant digits. */

export function quote(text: string): string {
  return JSON.stringify(text);
}

export function num(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x);
}
