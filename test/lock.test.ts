import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EditError } from '../src/errors.js';
import { acquireLock, forceUnlock, readLock, withLock, type LockInfo } from '../src/state/lock.js';

/** The child processes run the compiled module (`npm test` runs tsc first). */
const LOCK_JS = resolve('dist/src/state/lock.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'editops-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that certainly is not running: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

async function rejection(p: Promise<unknown>): Promise<EditError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EditError);
  return err as EditError;
}

describe('lock', () => {
  it('a second acquire fails and names the holder', async () => {
    const lock = await acquireLock(dir, 'edit apply');
    expect(lock.info).toMatchObject({ pid: process.pid, host: hostname(), command: 'edit apply' });
    expect(lock.info.id).toMatch(/^[0-9a-f-]{36}$/);
    const err = await rejection(acquireLock(dir, 'edit apply --auto-approve'));
    expect(err.message).toBe(`model is locked by pid ${process.pid} on host ${hostname()} running "edit apply" since ${lock.info.startedAt}`);
    expect(err.exitCode).toBe(1);
    expect(err.options.hint).toContain(`edit force-unlock ${lock.info.id}`);
    expect(await readLock(dir)).toEqual(lock.info);
    await lock.release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
    expect(await readLock(dir)).toBeNull();
    const again = await acquireLock(dir, 'edit apply');
    await again.release();
  });

  it('reports a lock whose holder is dead as stale and does not take it over', async () => {
    const stale: LockInfo = { id: 'stale-id', pid: deadPid(), host: hostname(), command: 'edit apply', startedAt: '2025-01-01T00:00:00.000Z' };
    await writeFile(join(dir, '.lock'), JSON.stringify(stale));
    const err = await rejection(acquireLock(dir, 'edit apply'));
    expect(err.message).toContain(`model is locked by pid ${stale.pid} on host ${hostname()} running "edit apply" since 2025-01-01T00:00:00.000Z`);
    expect(err.message).toContain('stale');
    expect(err.options.hint).toBe('remove it with: edit force-unlock stale-id');
    expect(JSON.parse(await readFile(join(dir, '.lock'), 'utf8'))).toEqual(stale);
  });

  it('does not call a lock from another host stale', async () => {
    await writeFile(join(dir, '.lock'), JSON.stringify({ id: 'x', pid: deadPid(), host: 'elsewhere.example', command: 'edit apply', startedAt: 't' }));
    const err = await rejection(acquireLock(dir, 'edit apply'));
    expect(err.message).not.toContain('stale');
    expect(err.message).toContain('on host elsewhere.example');
  });

  it('force-unlock needs the right id and returns the holder', async () => {
    const lock = await acquireLock(dir, 'edit apply');
    const wrong = await rejection(forceUnlock(dir, 'nope'));
    expect(wrong.message).toContain(`lock id "nope" does not match the lock's id "${lock.info.id}"`);
    expect(existsSync(join(dir, '.lock'))).toBe(true);
    expect(await forceUnlock(dir, lock.info.id)).toEqual(lock.info);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
    expect((await rejection(forceUnlock(dir, lock.info.id))).message).toContain('not locked');
  });

  it('release removes only its own lock', async () => {
    const first = await acquireLock(dir, 'edit apply');
    await forceUnlock(dir, first.info.id);
    const second = await acquireLock(dir, 'edit apply');
    await first.release(); // not ours any more
    expect(await readLock(dir)).toEqual(second.info);
    await second.release();
    await second.release(); // twice is fine
    expect(await readLock(dir)).toBeNull();
  });

  it('withLock releases after success and after a throw', async () => {
    expect(await withLock(dir, 'edit apply', async (lock) => (await readLock(dir))?.id === lock.info.id)).toBe(true);
    expect(await readLock(dir)).toBeNull();
    await expect(
      withLock(dir, 'edit apply', async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await readLock(dir)).toBeNull();
  });

  it('an unreadable lock file is reported with a hint', async () => {
    await writeFile(join(dir, '.lock'), 'garbage');
    const err = await rejection(acquireLock(dir, 'edit apply'));
    expect(err.message).toContain('unreadable');
    expect(err.options.hint).toContain('rm ');
  });

  it('a missing model folder is an EditError', async () => {
    const err = await rejection(acquireLock(join(dir, 'nope'), 'edit apply'));
    expect(err.message).toContain('does not exist');
  });
});

describe('lock held by another process', () => {
  beforeAll(() => {
    if (!existsSync(LOCK_JS)) throw new Error(`${LOCK_JS} is missing: run \`npx tsc -p tsconfig.json\` first (npm test does)`);
  });

  /** A node process that takes the lock (plain or via withLock) and waits; resolves once it holds it. */
  async function holder(mode: 'acquire' | 'withLock'): Promise<{ child: ChildProcess; info: LockInfo }> {
    const script = `
      import { acquireLock, withLock } from ${JSON.stringify(LOCK_JS)};
      const dir = ${JSON.stringify(dir)};
      if (${JSON.stringify(mode)} === 'acquire') {
        const lock = await acquireLock(dir, 'edit apply');
        console.log(JSON.stringify(lock.info));
        setInterval(() => {}, 1000);
      } else {
        await withLock(dir, 'edit apply', async (lock) => {
          console.log(JSON.stringify(lock.info));
          await new Promise(() => setInterval(() => {}, 1000));
        });
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const info = await new Promise<LockInfo>((resolveInfo, reject) => {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) resolveInfo(JSON.parse(out.split('\n')[0]) as LockInfo);
      });
      child.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
    });
    return { child, info };
  }

  function exited(child: ChildProcess): Promise<void> {
    return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on('exit', () => r())));
  }

  it('a killed holder leaves a stale lock that force-unlock clears', async () => {
    const { child, info } = await holder('acquire');
    try {
      expect(info.pid).toBe(child.pid);
      const live = await rejection(acquireLock(dir, 'edit apply'));
      expect(live.message).toContain(`model is locked by pid ${child.pid}`);
      expect(live.message).not.toContain('stale');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    const stale = await rejection(acquireLock(dir, 'edit apply'));
    expect(stale.message).toContain('stale');
    expect(stale.options.hint).toBe(`remove it with: edit force-unlock ${info.id}`);
    expect(await forceUnlock(dir, info.id)).toEqual(info);
    const lock = await acquireLock(dir, 'edit apply');
    await lock.release();
  });

  it('a holder inside withLock releases on SIGTERM and still dies of it', async () => {
    const { child, info } = await holder('withLock');
    expect((await readLock(dir))?.id).toBe(info.id);
    child.kill('SIGTERM');
    await exited(child);
    expect(child.signalCode).toBe('SIGTERM');
    expect(await readLock(dir)).toBeNull();
  });
});
