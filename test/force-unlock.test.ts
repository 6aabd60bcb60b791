/** End to end: `edit force-unlock` through the real binary (compiled: `npm test` runs tsc first). */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve('bin/edit.js');
const MAIN_JS = resolve('dist/src/cli/main.js');

let root: string;
beforeAll(() => {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npx tsc -p tsconfig.json\` first (npm test does)`);
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'editops-unlock-'));
  spawnSync('git', ['init', '--quiet'], { cwd: root });
  await mkdir(join(root, 'models/default'), { recursive: true });
  await mkdir(join(root, 'models/other'), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function edit(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A lock left by an apply that was killed: its pid is gone. */
async function staleLock(model: string, id: string) {
  const pid = spawnSync(process.execPath, ['-e', '0']).pid!;
  const info = { id, pid, host: hostname(), command: 'edit apply --auto-approve', startedAt: '2025-05-01T12:00:00.000Z' };
  await writeFile(join(root, model, '.lock'), JSON.stringify(info, null, 2));
  return info;
}

describe('edit force-unlock', () => {
  it('removes the lock with the right id and says who held it', async () => {
    const info = await staleLock('models/default', 'abc-123');
    const r = edit('force-unlock', 'abc-123');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`unlocked models/default: the lock abc-123 was held by pid ${info.pid} on host ${hostname()} running "edit apply --auto-approve" since 2025-05-01T12:00:00.000Z\n`);
    expect(existsSync(join(root, 'models/default/.lock'))).toBe(false);
  });

  it('refuses a wrong id and shows the real one', async () => {
    await staleLock('models/default', 'abc-123');
    const r = edit('force-unlock', 'wrong');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('lock id "wrong" does not match the lock\'s id "abc-123"');
    expect(r.stderr).toContain('hint: to remove this lock: edit force-unlock abc-123');
    expect(r.stderr).not.toContain('    at '); // no stack trace
    expect(existsSync(join(root, 'models/default/.lock'))).toBe(true);
  });

  it('takes --model and prints JSON with --json', async () => {
    const info = await staleLock('models/other', 'xyz');
    const r = edit('force-unlock', 'xyz', '--model', 'models/other', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ unlocked: true, model: 'models/other', holder: info, holderRunning: false });
    expect(existsSync(join(root, 'models/other/.lock'))).toBe(false);
  });

  it('says so when there is no lock, or no id', () => {
    const none = edit('force-unlock', 'abc');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('the model is not locked');
    const noId = edit('force-unlock');
    expect(noId.code).toBe(1);
    expect(noId.stderr).toContain('edit force-unlock <lock-id>');
  });

  it('is listed in help', () => {
    expect(edit('help').stdout).toContain('force-unlock <lock-id>');
  });
});
