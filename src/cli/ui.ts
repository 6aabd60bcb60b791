/**
 * What commands show while they work. Plain lines when stdout is not a terminal (CI logs, pipes);
 * the ink UI (views/) in a terminal. `--json` output never goes through here.
 */
import type { Plan } from '../plan/plan.js';
import { renderPlanText } from '../plan/render.js';
import type { Io } from './command.js';

export interface Ui {
  plan(plan: Plan): void;
  progress(phase: string, done: number, total: number, detail?: string): void;
  /** Ask a yes/no question; resolves false when there is no terminal to ask. */
  confirm(question: string): Promise<boolean>;
  /** Free text (results, reports). */
  text(text: string): void;
  close(): Promise<void>;
}

export class PlainUi implements Ui {
  private last = new Map<string, number>();
  constructor(private readonly io: Io) {}

  plan(plan: Plan): void {
    this.io.out(renderPlanText(plan));
  }

  progress(phase: string, done: number, total: number, detail?: string): void {
    // One line per phase at 25% steps and at the end: readable in CI logs.
    const step = Math.floor((4 * done) / Math.max(1, total));
    if (this.last.get(phase) === step && done !== total) return;
    this.last.set(phase, step);
    this.io.err(`${phase}: ${done}/${total}${detail ? ` (${detail})` : ''}`);
  }

  async confirm(): Promise<boolean> {
    return false;
  }

  text(text: string): void {
    this.io.out(text);
  }

  async close(): Promise<void> {}
}

/** UIs a command opened; main closes what an error left open, so the error prints below the last frame. */
const open = new Set<Ui>();

export async function makeUi(io: Io): Promise<Ui> {
  let ui: Ui;
  if (!io.tty) ui = new PlainUi(io);
  else {
    const { InkUi } = await import('./views/ink-ui.js');
    ui = new InkUi(io);
  }
  open.add(ui);
  return ui;
}

export async function closeOpenUis(): Promise<void> {
  for (const ui of open) await ui.close();
  open.clear();
}
