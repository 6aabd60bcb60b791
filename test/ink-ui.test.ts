// The ink views and the terminal Ui. Plain `.test.ts` (vitest's include): React.createElement, no JSX.
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import { createElement as h } from 'react';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from 'ink-testing-library';
import { Action, type Plan } from '../src/plan/plan.js';
import { PlanView } from '../src/cli/views/PlanView.js';
import { Progress } from '../src/cli/views/Progress.js';
import { Confirm } from '../src/cli/views/Confirm.js';
import { InkUi } from '../src/cli/views/ink-ui.js';

afterEach(() => cleanup());

/** Effects (where useInput subscribes to stdin) run after the render returns. */
const tick = () => new Promise((r) => setTimeout(r, 20));

const sha = (c: string) => c.repeat(64);

function plan(): Plan {
  return {
    formatVersion: '1',
    model: 'models/default',
    state: { serial: 3, sha256: sha('a'), manifestSha256: sha('9') },
    targets: [],
    changes: [
      { id: 'capitals/france', action: Action.Create, reason: 'new edit file', file: 'edits/capitals/france.yaml', after: { specSha256: sha('1'), prompt: 'The capital of France is', target: ' Lyon', task: 'capital' } },
      { id: 'capitals/italy', action: Action.Update, reason: 'target changed: " Milan" → " Naples"', file: 'edits/capitals/italy.yaml', before: { specSha256: sha('2'), target: ' Milan' }, after: { specSha256: sha('3'), prompt: 'The capital of Italy is', target: ' Naples', task: 'capital' } },
      { id: 'capitals/spain', action: Action.Destroy, reason: 'edit file removed', before: { specSha256: sha('4'), target: ' Porto' } },
      { id: 'opinions/tea', action: Action.Satisfied, reason: 'the model already passes', file: 'edits/opinions/tea.yaml', after: { specSha256: sha('5'), prompt: 'Tea is', target: ' good', task: 'opinion' } },
      { id: 'capitals/peru', action: Action.NoOp, reason: 'unchanged', file: 'edits/capitals/peru.yaml', after: { specSha256: sha('6'), prompt: 'The capital of Peru is', target: ' Lima', task: 'capital' } },
    ],
    drift: [{ file: 'models/default/deltas/x.safetensors', message: 'sha256 differs from state.json' }],
    stray: [],
    checkedSatisfied: true,
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}

describe('PlanView', () => {
  it('renders the header, a row per change and drift, and the summary; long details wrap in their column', () => {
    const { lastFrame } = render(h(PlanView, { plan: plan() }));
    // ink-testing-library's stdout is 100 columns wide.
    expect(stripVTControlCharacters(lastFrame()!)).toBe(
      [
        'Model models/default (state serial 3)',
        '',
        '  + capitals/france                      create             "The capital of France is" → " Lyon"',
        '                                                            (capital)',
        '  ~ capitals/italy                       update             "The capital of Italy is" → " Naples"',
        '                                                            (target changed: " Milan" → " Naples")',
        '  - capitals/spain                       destroy            edit file removed',
        '  = opinions/tea                         already satisfied  "Tea is" → " good" (opinion)',
        '  ! models/default/deltas/x.safetensors  drift              sha256 differs from state.json',
        '',
        'Plan: 1 to create, 1 to update, 1 to destroy, 1 already satisfied, 1 drifted (run `edit apply',
        '--refresh` or restore the files).',
      ].join('\n'),
    );
  });

  it('shows the re-solve of the set and its capacity before the summary, a capacity warning in its own line', () => {
    const solve = { method: 'memit', joint: true, resolves: true, edits: 3, kept: 1, layers: ['h.2.mlp.c_proj', 'h.3.mlp.c_proj'], rows: 320, keyDim: 512, warning: 'near the capacity' };
    const p: Plan = { ...plan(), drift: [], solve };
    const frame = stripVTControlCharacters(render(h(PlanView, { plan: p })).lastFrame()!);
    const lines = frame.split('\n');
    const at = lines.findIndex((l) => l.startsWith('Editor memit re-solves'));
    expect(at).toBeGreaterThan(0);
    expect(lines[at - 1]).toBe('');
    expect(frame).toContain('Capacity: 320 rows per edited layer of 512 (63%).');
    expect(frame).toContain('Warning: near the capacity.');
    expect(frame.indexOf('Warning: near the capacity.')).toBeLessThan(frame.indexOf('Plan: 1 to create'));
    // no change to the set: no solve section
    const same = stripVTControlCharacters(render(h(PlanView, { plan: { ...p, solve: { ...solve, resolves: false } } })).lastFrame()!);
    expect(same).not.toContain('re-solves');
    expect(same).not.toContain('Capacity');
  });

  it('says when the plan is structural and when there is nothing to do', () => {
    const p: Plan = { ...plan(), changes: plan().changes.filter((c) => c.action === Action.NoOp), drift: [], checkedSatisfied: false };
    const { lastFrame } = render(h(PlanView, { plan: p }));
    expect(stripVTControlCharacters(lastFrame()!)).toBe(
      ['Model models/default (state serial 3) — structural plan: assertions not run', '', 'No changes. The model matches the edit files (1 applied).'].join('\n'),
    );
  });
});

describe('Progress', () => {
  it('draws done/total as a bar with the detail', () => {
    const { lastFrame, rerender } = render(h(Progress, { phase: 'computing rows', done: 3, total: 8, detail: 'capitals/france', width: 16 }));
    expect(stripVTControlCharacters(lastFrame()!)).toBe('computing rows ██████░░░░░░░░░░ 3/8 capitals/france');
    rerender(h(Progress, { phase: 'computing rows', done: 8, total: 8 }));
    expect(stripVTControlCharacters(lastFrame()!)).toBe(`computing rows ${'█'.repeat(24)} 8/8`);
  });

  it('pads the phase so bars line up, and survives total 0', () => {
    const { lastFrame } = render(h(Progress, { phase: 'verifying', done: 0, total: 0, width: 4, phaseWidth: 16 }));
    expect(stripVTControlCharacters(lastFrame()!)).toBe('verifying        ████ 0/0');
  });
});

describe('Confirm', () => {
  async function answer(keys: string[]): Promise<{ yes: boolean; typed: string; frame: string }> {
    let resolve!: (a: { yes: boolean; typed: string }) => void;
    const answered = new Promise<{ yes: boolean; typed: string }>((r) => (resolve = r));
    const { stdin, lastFrame } = render(h(Confirm, { question: 'Apply these changes to the model?', onAnswer: (yes: boolean, typed: string) => resolve({ yes, typed }) }));
    await tick();
    for (const k of keys) {
      stdin.write(k);
      await tick();
    }
    return { ...(await answered), frame: stripVTControlCharacters(lastFrame()!) };
  }

  it('shows the question and what is typed', async () => {
    const { stdin, lastFrame } = render(h(Confirm, { question: 'Apply these changes to the model?', onAnswer: () => {} }));
    await tick();
    stdin.write('ye');
    await tick();
    // The cursor is an inverse space; without colours ink trims it as trailing blank.
    expect(stripVTControlCharacters(lastFrame()!).trimEnd()).toBe("\nApply these changes to the model? (only 'yes' is accepted)\n  Enter a value: ye");
  });

  it('resolves true only for "yes"', async () => {
    expect(await answer(['yes\r'])).toMatchObject({ yes: true, typed: 'yes' });
    expect(await answer(['y', 'e', 's', '\r'])).toMatchObject({ yes: true, typed: 'yes' });
    expect(await answer(['no\r'])).toMatchObject({ yes: false, typed: 'no' });
    expect(await answer(['Yes\r'])).toMatchObject({ yes: false, typed: 'Yes' });
    expect(await answer(['\r'])).toMatchObject({ yes: false, typed: '' });
  });

  it('edits with backspace, and Ctrl+C answers no', async () => {
    expect(await answer(['yess', '\x7f', '\r'])).toMatchObject({ yes: true, typed: 'yes' });
    expect(await answer(['ye', '\x03'])).toMatchObject({ yes: false, typed: 'ye' });
    expect(await answer(['yes\x03'])).toMatchObject({ yes: false, typed: 'yes' });
  });
});

/** A terminal stand-in for InkUi: everything written, in order. */
class FakeStdout extends EventEmitter {
  isTTY = true;
  columns = 100;
  rows = 40;
  written = '';
  write(chunk: string, cb?: () => void): boolean {
    this.written += chunk;
    cb?.();
    return true;
  }
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  write(data: string): void {
    this.data = data;
    this.emit('readable');
  }
  read(): string | null {
    const d = this.data;
    this.data = null;
    return d;
  }
  setEncoding(): void {}
  setRawMode(): void {}
  ref(): void {}
  unref(): void {}
}

function inkUi(stdinIsTty = true) {
  const stdout = new FakeStdout();
  const stdin = new FakeStdin();
  stdin.isTTY = stdinIsTty;
  const io = { out: () => {}, err: () => {}, tty: true };
  const ui = new InkUi(io, { stdout: stdout as unknown as NodeJS.WriteStream, stdin: stdin as unknown as NodeJS.ReadStream, stderr: stdout as unknown as NodeJS.WriteStream, patchConsole: false });
  /** Lines as they end up on the screen: ink erases and redraws the live region, the fake keeps every write. */
  const screen = () => stripVTControlCharacters(stdout.written);
  return { ui, stdout, stdin, screen };
}

describe('InkUi', () => {
  it('prints plan and text above the live bars, asks, and resolves with the answer', async () => {
    const { ui, stdin, screen } = inkUi();
    ui.progress('checking the current model', 1, 2, 'capitals/france');
    ui.progress('checking the current model', 2, 2, 'capitals/italy');
    ui.plan(plan());
    const answer = ui.confirm('Apply these changes to the model?');
    await tick();
    stdin.write('yes\r');
    expect(await answer).toBe(true);
    // No await from here on: every update renders synchronously, nothing is lost by close().
    ui.progress('computing rows', 3, 8, 'capitals/france');
    ui.text('done.');
    expect(screen()).toContain('done.');
    await ui.close();
    const out = screen();
    // Static blocks wrap at the terminal's width like the live region.
    expect(out).toContain(`"The capital of France is" → " Lyon"\n${' '.repeat(60)}(capital)`);
    const order = ['checking the current model', '2/2 capitals/italy', '+ capitals/france', 'Plan: 1 to create', "Apply these changes to the model? (only 'yes' is accepted)", 'Enter a value: yes', 'computing rows', '3/8 capitals/france', 'done.'];
    const at = order.map((s) => out.lastIndexOf(s));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('answers no when stdin is not a terminal, and close() is safe twice', async () => {
    const { ui, screen } = inkUi(false);
    expect(await ui.confirm('Apply these changes to the model?')).toBe(false);
    await ui.close();
    await ui.close();
    expect(screen()).toContain('stdin is not a terminal');
  });

  it('close() without output writes nothing', async () => {
    const { ui, stdout } = inkUi();
    await ui.close();
    expect(stdout.written).toBe('');
  });
});
