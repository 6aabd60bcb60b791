/**
 * Judging threads for a command (verify, apply, plan, eval): a GeneratePool opened on the first
 * call that has enough to judge (judgeThreads: the setting when given; unset, by the prompts to
 * judge and free memory), said on stderr, closed once.
 */
import type { CommandContext } from './command.js';
import type { WorkersSetting } from './flags.js';
import { GeneratePool, judgeThreads, workerBytes, type PoolSource } from '../model/pool.js';
import type { GPT } from '../model/gpt2.js';

export class JudgingThreads implements PoolSource {
  private pool: GeneratePool | undefined;

  constructor(
    private readonly io: CommandContext['io'],
    private readonly workers: WorkersSetting,
    private readonly modelDir: string,
    private readonly model: GPT,
    private readonly quiet: boolean,
  ) {}

  /** The pool for judging about `prompts` prompts, or undefined (the calling thread alone). */
  async for(prompts: number): Promise<GeneratePool | undefined> {
    if (this.pool !== undefined) return this.pool;
    const threads = judgeThreads(this.workers.setting, this.workers.source, prompts, workerBytes(this.model));
    if (threads <= 1) return undefined;
    this.pool = await GeneratePool.open(this.modelDir, threads);
    if (!this.quiet) this.io.err(`judging on ${threads} threads`);
    return this.pool;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}
