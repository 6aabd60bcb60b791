// Placeholder until the ink views land: the terminal UI falls back to plain lines.
import { PlainUi } from '../ui.js';
export class InkUi extends PlainUi {}
