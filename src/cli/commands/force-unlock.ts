import { EditError } from '../../errors.js';
import { describeHolder, forceUnlock, holderStatus } from '../../state/lock.js';
import type { Command } from '../command.js';
import { join } from 'node:path';
import { MODEL_OPTION, modelDir, projectRoot } from '../flags.js';

export const forceUnlockCommand: Command = {
  name: 'force-unlock',
  args: '<lock-id>',
  summary: 'remove a stale lock (the id is shown in the "model is locked" error), naming who held it',
  options: {
    ...MODEL_OPTION,
    json: { type: 'boolean', description: 'print the removed lock as JSON' },
  },
  examples: ['edit force-unlock 3f2a9c1e'],
  async run(ctx) {
    if (ctx.args.length !== 1) throw new EditError('force-unlock takes the lock id from the "model is locked" error: edit force-unlock <lock-id>');
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const holder = await forceUnlock(join(root, dir), ctx.args[0]);
    const alive = holderStatus(holder) === 'running';
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ unlocked: true, model: dir, holder, holderRunning: alive }));
      return 0;
    }
    ctx.io.out(`unlocked ${dir}: the lock ${holder.id} was held by ${describeHolder(holder)}`);
    if (alive) ctx.io.err(`warning: pid ${holder.pid} is still running on this host; if it is editops, it may still write to ${dir}`);
    return 0;
  },
};
