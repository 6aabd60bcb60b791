/**
 * models/<name>/.lock: one writer at a time (DESIGN §8). Written whole to a temp name, then linked
 * into place (link fails if the lock exists), so a killed process never leaves an empty lock file;
 * never taken over automatically, even when its holder is dead: the user removes a stale lock with
 * `edit force-unlock <id>`, naming the lock's id as Terraform's force-unlock does.
 */
import { link, open, readFile, unlink } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { EditError } from '../errors.js';
import { processExists } from '../util/process.js';
import { testKill } from '../util/test-hooks.js';

export const LOCK_FILE = '.lock';

export interface LockInfo {
  /** Random id the user names to force-unlock it. */
  id: string;
  pid: number;
  host: string;
  /** The command line that holds it, e.g. "edit apply". */
  command: string;
  startedAt: string;
}

export interface Lock {
  path: string;
  info: LockInfo;
  /** Remove the lock file if it is still ours (it may have been force-unlocked and re-taken). */
  release(): Promise<void>;
}

export function lockPath(modelDir: string): string {
  return join(modelDir, LOCK_FILE);
}

export async function acquireLock(modelDir: string, command: string): Promise<Lock> {
  const path = lockPath(modelDir);
  const info: LockInfo = { id: randomUUID(), pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  // The temp name is writeFileAtomic's, so the next apply removes it if this process dies before the link.
  const tmp = join(modelDir, `.${LOCK_FILE}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(`${JSON.stringify(info, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EditError('model folder does not exist', { file: modelDir });
    throw new EditError(`cannot write lock file: ${code ?? (err as Error).message}`, { file: path });
  }
  testKill('lock:temp-written');
  try {
    await link(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw await lockedError(path);
    throw new EditError(`cannot create lock file: ${code ?? (err as Error).message}`, { file: path });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return {
    path,
    info,
    async release() {
      const holder = await readHolder(path);
      if (holder?.id === info.id) await unlink(path).catch(() => undefined);
    },
  };
}

/** The lock's holder, or null when the model is not locked. */
export async function readLock(modelDir: string): Promise<LockInfo | null> {
  const path = lockPath(modelDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EditError(`cannot read lock file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
  }
  const holder = parseHolder(text);
  if (holder === null) throw new EditError('lock file is unreadable (not the JSON editops writes)', { file: path, hint: `if no editops command is running, delete it: rm ${path}` });
  return holder;
}

/** Remove the lock whose id is `id`; returns who held it. */
export async function forceUnlock(modelDir: string, id: string): Promise<LockInfo> {
  const path = lockPath(modelDir);
  const holder = await readLock(modelDir);
  if (holder === null) throw new EditError('the model is not locked', { file: path });
  if (holder.id !== id) {
    throw new EditError(`lock id "${id}" does not match the lock's id "${holder.id}" (${describeHolder(holder)})`, {
      file: path,
      hint: `to remove this lock: edit force-unlock ${holder.id}`,
    });
  }
  await unlink(path);
  return holder;
}

/** Run `fn` under the lock; released afterwards, on error, and on SIGINT/SIGTERM. */
export async function withLock<T>(modelDir: string, command: string, fn: (lock: Lock) => Promise<T>): Promise<T> {
  const lock = await acquireLock(modelDir, command);
  const onSignal = (signal: NodeJS.Signals) => {
    releaseSync(lock);
    removeHandlers();
    process.kill(process.pid, signal); // the default action again, now that the lock is gone
  };
  const removeHandlers = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(lock);
  } finally {
    removeHandlers();
    testKill('lock:releasing');
    await lock.release();
  }
}

/** `pid 123 on host x running "edit apply" since <time>`. */
export function describeHolder(h: LockInfo): string {
  return `pid ${h.pid} on host ${h.host} running "${h.command}" since ${h.startedAt}`;
}

/** Whether the holder's process runs: only knowable on this host ("unknown" for another machine). */
export function holderStatus(h: LockInfo): 'running' | 'dead' | 'unknown' {
  if (h.host !== hostname()) return 'unknown';
  return processExists(h.pid) ? 'running' : 'dead';
}

/** The holder is on this host and its process is gone: the lock is certainly stale. */
export function isStale(h: LockInfo): boolean {
  return holderStatus(h) === 'dead';
}

async function lockedError(path: string): Promise<EditError> {
  // The holder may have created the file and not yet written it: look again briefly.
  let holder: LockInfo | null = null;
  for (let i = 0; i < 5 && holder === null; i++) {
    holder = await readHolder(path);
    if (holder === null) await new Promise((r) => setTimeout(r, 20));
  }
  if (holder === null) {
    return new EditError('model is locked, and the lock file is unreadable', { file: path, hint: `if no editops command is running, delete it: rm ${path}` });
  }
  const stale = isStale(holder);
  return new EditError(`model is locked by ${describeHolder(holder)}${stale ? `; that process is no longer running: the lock is stale` : ''}`, {
    file: path,
    exitCode: 1,
    hint: stale
      ? `remove it with: edit force-unlock ${holder.id}`
      : `wait for it to finish; if you are sure it is gone: edit force-unlock ${holder.id}`,
  });
}

async function readHolder(path: string): Promise<LockInfo | null> {
  try {
    return parseHolder(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

function parseHolder(text: string): LockInfo | null {
  try {
    const j = JSON.parse(text) as Partial<LockInfo>;
    if (typeof j.id !== 'string' || typeof j.pid !== 'number' || typeof j.host !== 'string' || typeof j.command !== 'string' || typeof j.startedAt !== 'string') return null;
    return { id: j.id, pid: j.pid, host: j.host, command: j.command, startedAt: j.startedAt };
  } catch {
    return null;
  }
}

/** For signal handlers, which cannot await. */
function releaseSync(lock: Lock): void {
  try {
    if (parseHolder(readFileSync(lock.path, 'utf8'))?.id === lock.info.id) unlinkSync(lock.path);
  } catch {
    // already gone
  }
}
