/**
 * The terminal Ui: one ink app for the whole command. Finished output (plans, text, answered
 * prompts, progress bars that are done with) goes to <Static> and scrolls away like plain lines;
 * the live region below it holds the current progress bars and the open prompt.
 */
import { Box, render, Static, Text, useStdout, type Instance } from 'ink';
import { InternalError } from '../../errors.js';
import type { Plan } from '../../plan/plan.js';
import type { Io } from '../command.js';
import type { Ui } from '../ui.js';
import { PlanView } from './PlanView.js';
import { Progress } from './Progress.js';
import { Confirm, Question } from './Confirm.js';

interface Bar {
  phase: string;
  done: number;
  total: number;
  detail?: string;
}

type Block =
  | { key: number; kind: 'plan'; plan: Plan }
  | { key: number; kind: 'text'; text: string }
  | { key: number; kind: 'bar'; bar: Bar; phaseWidth: number }
  | { key: number; kind: 'answer'; question: string; typed: string };

/** A block before it gets its key (Omit over each member of the union). */
type BlockContent = Block extends infer B ? (B extends unknown ? Omit<B, 'key'> : never) : never;

interface Prompt {
  question: string;
  answer: (yes: boolean, typed: string) => void;
}

/** Everything on screen; replaced, never mutated. */
interface Screen {
  blocks: Block[];
  bars: Bar[];
  prompt?: Prompt;
}

function phaseWidth(bars: Bar[]): number {
  return Math.max(0, ...bars.map((b) => b.phase.length));
}

function BlockView({ block }: { block: Block }) {
  switch (block.kind) {
    case 'plan':
      return <PlanView plan={block.plan} />;
    case 'text':
      // An empty Text renders no line at all; a blank line is what `text('')` means.
      return <Text>{block.text === '' ? ' ' : block.text}</Text>;
    case 'bar':
      return <Progress {...block.bar} phaseWidth={block.phaseWidth} />;
    case 'answer':
      return <Question question={block.question} value={block.typed} cursor={false} />;
  }
}

function ScreenView({ screen }: { screen: Screen }) {
  // <Static> is laid out outside the live tree: without a width its lines would not wrap.
  const columns = useStdout().stdout.columns || 80;
  const width = phaseWidth(screen.bars);
  return (
    <>
      <Static items={screen.blocks}>
        {(block) => (
          <Box key={block.key} width={columns}>
            <BlockView block={block} />
          </Box>
        )}
      </Static>
      {screen.bars.map((bar) => (
        <Progress key={bar.phase} {...bar} phaseWidth={width} />
      ))}
      {screen.prompt && <Confirm question={screen.prompt.question} onAnswer={screen.prompt.answer} />}
    </>
  );
}

export interface InkUiOptions {
  /** Default process.stdout / process.stdin / process.stderr; tests pass their own. */
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
  /** Route console.* above the live region (default true; vitest's console cannot be patched). */
  patchConsole?: boolean;
}

export class InkUi implements Ui {
  private screen: Screen = { blocks: [], bars: [] };
  private nextKey = 0;
  private instance: Instance | undefined;

  /** `io` is PlainUi's channel; ink writes to the terminal streams itself. */
  constructor(_io: Io, private readonly options: InkUiOptions = {}) {}

  /**
   * Every change re-renders synchronously (ink's rerender flushes React's work), so bars move while
   * a command computes without yielding, and a text() right before close() is never dropped —
   * a store read through useSyncExternalStore would defer both to a later tick.
   */
  private show(screen: Screen): void {
    this.screen = screen;
    const node = <ScreenView screen={screen} />;
    if (this.instance) {
      this.instance.rerender(node);
      return;
    }
    // Mounted on first use, so a command that fails before showing anything leaves the terminal alone.
    this.instance = render(node, {
      stdout: this.options.stdout ?? process.stdout,
      stdin: this.options.stdin ?? process.stdin,
      stderr: this.options.stderr ?? process.stderr,
      // Ctrl+C at the prompt answers "no" (Confirm); elsewhere stdin is not raw and it is a plain SIGINT.
      exitOnCtrlC: false,
      patchConsole: this.options.patchConsole ?? true,
    });
  }

  /** Static output lands above the live region, so the bars go there first to keep the order on screen. */
  private append(s: Screen, ...content: BlockContent[]): Screen {
    const width = phaseWidth(s.bars);
    const bars: Block[] = s.bars.map((bar) => ({ key: this.nextKey++, kind: 'bar', bar, phaseWidth: width }));
    const blocks = content.map((c) => ({ ...c, key: this.nextKey++ }) as Block);
    return { ...s, bars: [], blocks: [...s.blocks, ...bars, ...blocks] };
  }

  plan(plan: Plan): void {
    this.show(this.append(this.screen, { kind: 'plan', plan }));
  }

  progress(phase: string, done: number, total: number, detail?: string): void {
    const s = this.screen;
    const bar: Bar = { phase, done, total, detail };
    const i = s.bars.findIndex((b) => b.phase === phase);
    this.show({ ...s, bars: i < 0 ? [...s.bars, bar] : s.bars.map((b, j) => (j === i ? bar : b)) });
  }

  confirm(question: string): Promise<boolean> {
    if ((this.options.stdin ?? process.stdin).isTTY !== true) {
      this.text(`${question} No: stdin is not a terminal to answer on (pass --auto-approve).`);
      return Promise.resolve(false);
    }
    if (this.screen.prompt !== undefined) throw new InternalError('confirm() while another question is open');
    return new Promise((resolve) => {
      const answer = (yes: boolean, typed: string) => {
        this.show(this.append({ ...this.screen, prompt: undefined }, { kind: 'answer', question, typed }));
        resolve(yes);
      };
      this.show({ ...this.append(this.screen), prompt: { question, answer } });
    });
  }

  text(text: string): void {
    this.show(this.append(this.screen, { kind: 'text', text }));
  }

  /** Unmounts (the last frame stays on screen) and waits until ink has written it. */
  async close(): Promise<void> {
    const instance = this.instance;
    if (instance === undefined) return;
    this.screen.prompt?.answer(false, '');
    // The last bars become ordinary lines; the then-empty live region is a blank line ink would leave behind.
    if (this.screen.bars.length > 0) this.show(this.append(this.screen));
    instance.clear();
    const exited = instance.waitUntilExit();
    instance.unmount();
    await exited;
    this.instance = undefined;
  }
}
