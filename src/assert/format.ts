/** How assertion reasons show text and numbers: text JSON-quoted (leading spaces and newlines visible), numbers to 3 significant digits. */
import { excerpt } from '../util/format.js';

/** Long enough for a whole 16-token continuation; a longer text (a user's value, a 64-token output) is cut with "…". */
export const QUOTE_CHARS = 160;

export function quote(text: string): string {
  return excerpt(text, QUOTE_CHARS);
}

export function num(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x);
}
