/**
 * The package as a user gets it: `npm pack` of a fresh build, installed into a new project with no
 * network (dependencies from the npm cache that `npm ci` filled, pinned by this repository's
 * package-lock.json), then `npx edit init`, one edit, plan, apply, verify and generate there.
 *
 * The tarball is packed from a copy of the working tree's files (tracked and untracked, not ignored:
 * what a clean clone plus your changes holds) with dist/ compiled fresh into it, so neither a stale
 * dist/ nor leftovers in this checkout can hide a missing file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; license?: string; bin: Record<string, string>; dependencies: Record<string, string>; engines?: unknown };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((done) => {
    // No network: npm may only read its cache.
    const env = { ...process.env, EDIT_BACKEND: 'wasm', npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      done({ code, stdout, stderr });
    });
  });
}

function expectCode(r: Run, code: number, what: string): void {
  expect(r.code, `${what}: exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(code);
}

let tmp: string;
let tarball: string;
let packed: string[];
let project: string;
const timings: Array<[string, number]> = [];

async function timed<T>(phase: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([phase, (performance.now() - t0) / 1000]);
  }
}

const npx = (...args: string[]) => run('npx', ['--no', 'edit', ...args], project);

/** The lockfile a user's project would have after `npm install <tarball>`: this repository's runtime entries. */
function projectLockfile(tgz: string): unknown {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  const spec = `file:${tgz}`;
  const packages: Record<string, unknown> = {
    '': { name: 'user-project', version: '1.0.0', dependencies: { [PKG.name]: spec } },
    [`node_modules/${PKG.name}`]: { version: PKG.version, resolved: spec, license: PKG.license, dependencies: PKG.dependencies, bin: PKG.bin, engines: PKG.engines },
  };
  // Runtime dependencies only; the optional tfjs-node packages download a native library at install time.
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && entry.dev !== true && entry.optional !== true) packages[path] = entry;
  return { name: 'user-project', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'editops-pack-'));
  const stage = join(tmp, 'stage');
  await timed('copy + fresh tsc + npm pack', async () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!lstatSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile()) continue; // deleted in the working tree, or a symlink
      await mkdir(dirname(join(stage, f)), { recursive: true });
      await copyFile(join(ROOT, f), join(stage, f));
    }
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', join(stage, 'dist')], ROOT);
    expectCode(tsc, 0, 'tsc');
    // --ignore-scripts: `prepare` would compile again, without node_modules in the copy.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], stage);
    expectCode(pack, 0, 'npm pack');
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }>; size: number; entryCount: number }>;
    tarball = join(tmp, info.filename);
    packed = info.files.map((f) => f.path).sort();
    console.log(`package-install: ${info.filename} ${(info.size / 1e6).toFixed(2)} MB, ${info.entryCount} files`);
  });
  project = join(tmp, 'project');
  await mkdir(project);
  await timed('npm ci --offline', async () => {
    await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, dependencies: { [PKG.name]: `file:${tarball}` } }, null, 2)}\n`);
    await writeFile(join(project, 'package-lock.json'), `${JSON.stringify(projectLockfile(tarball), null, 2)}\n`);
    expectCode(await run('npm', ['ci', '--offline', '--omit=optional', '--no-audit', '--no-fund'], project, 300_000), 0, 'npm ci --offline');
  });
  for (const args of [['init', '--quiet'], ['config', 'user.name', 'Pack Test'], ['config', 'user.email', 'pack@example.com'], ['config', 'commit.gpgsign', 'false']]) {
    expectCode(await run('git', args, project), 0, `git ${args[0]}`);
  }
}, 400_000);

afterAll(async () => {
  if (timings.length > 0) console.log(`package-install\n${timings.map(([p, s]) => `  ${s.toFixed(1).padStart(6)} s  ${p}`).join('\n')}`);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the compiled CLI, schemas, docs and the shipped model base files, and nothing of the development tree', () => {
    for (const f of ['package.json', 'README.md', 'bin/edit.js', 'dist/src/cli/main.js', 'schemas/edit.schema.json', 'schemas/model.schema.json', 'models/default/model.json', '.github/workflows/edits.yml', 'data/bench.json']) {
      expect(packed, f).toContain(f);
    }
    // Every file the shipped manifest names, whatever the next editor adds (stats, editor weights, probes…).
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models/default/model.json'), 'utf8')) as Record<string, unknown>;
    const named = Object.values(manifest).flatMap((v) => (typeof v === 'object' && v !== null && typeof (v as { file?: unknown }).file === 'string' ? [(v as { file: string }).file] : []));
    expect(named.length).toBeGreaterThanOrEqual(2);
    for (const f of named) expect(packed, `models/default/${f} (named by model.json)`).toContain(`models/default/${f}`);
    const unwanted = packed.filter((p) => /^(test|bench|scripts|edits|src|\.ci)\/|^data\/(?!bench\.json$)|^dist\/(?!src\/)|^models\/default\/(state\.json|deltas\/|rows\/|\.lock)|\.map$|\.ts$|^tsconfig|^vitest/.test(p));
    expect(unwanted).toEqual([]);
  });
});

describe.sequential('installed into a new project (offline)', () => {
  it('npx edit init scaffolds the project with hints and paths that work there', () =>
    timed('init', async () => {
      const r = await npx('init');
      expectCode(r, 0, 'edit init');
      expect(r.stdout).toContain('run `npx editops plan` and `npx editops apply`');
      expect(existsSync(join(project, 'models/default/model.json'))).toBe(true);
      const readme = await readFile(join(project, 'edits/README.md'), 'utf8');
      const schema = /"\$schema": "([^"]+)"/.exec(readme)?.[1];
      expect(schema).toBe('../node_modules/editops/schemas/edit.schema.json');
      expect(existsSync(resolve(project, 'edits', schema!))).toBe(true);
      expect(readme).toContain('`npx editops plan`');
      const manifest = JSON.parse(await readFile(join(project, 'models/default/model.json'), 'utf8')) as { $schema: string };
      expect(existsSync(resolve(project, 'models/default', manifest.$schema))).toBe(true);
      expect((await readFile(join(project, '.gitignore'), 'utf8')).split('\n')).toEqual(expect.arrayContaining(['models/*/.lock', 'node_modules/']));
      const workflow = await readFile(join(project, '.github/workflows/edits.yml'), 'utf8');
      expect(workflow).toContain('npx editops verify');
      expect(workflow).not.toContain('bin/edit.js');
      expectCode(await run('git', ['add', '-A'], project), 0, 'git add');
      expectCode(await run('git', ['commit', '--quiet', '-m', 'editops init'], project), 0, 'git commit');
      // node_modules/ is ignored, so the scaffold commit holds the project's own files only.
      expect((await run('git', ['ls-files', 'node_modules'], project)).stdout).toBe('');
    }), 120_000);

  it('an edit file plans as a create, applies, verifies, and the installed model answers with it', () =>
    timed('plan + apply + verify + generate', async () => {
      const edit = {
        $schema: '../../node_modules/editops/schemas/edit.schema.json',
        version: 1,
        task: 'counterfact',
        prompt: 'The capital of France is',
        target: ' Lyon',
        rephrase: ["France's capital is"],
        locality: [{ prompt: 'The currency of France is' }],
        expect: [{ type: 'not-contains', prompt: 'The capital of France is', value: ' Paris' }],
        // This test is about the package, not the editor's side effects (test/e2e-workflow.test.ts and the editor tests judge those).
        thresholds: { locality: 0 },
      };
      await mkdir(join(project, 'edits/capitals'), { recursive: true });
      await writeFile(join(project, 'edits/capitals/france.json'), `${JSON.stringify(edit, null, 2)}\n`);
      expect(existsSync(resolve(project, 'edits/capitals', edit.$schema))).toBe(true);

      expectCode(await npx('validate'), 0, 'edit validate');
      const plan = await npx('plan', '--detailed-exitcode');
      expectCode(plan, 2, 'edit plan');
      expect(plan.stdout).toMatch(/^\s*\+ capitals\/france\s+create/m);
      expect(plan.stdout).toContain('Plan: 1 to create, 0 to update, 0 to destroy.');
      // GitOps: the edit file arrives through a commit; apply then commits the model's new state.
      expectCode(await run('git', ['add', 'edits'], project), 0, 'git add');
      expectCode(await run('git', ['commit', '--quiet', '-m', 'edit: France'], project), 0, 'git commit');

      const apply = await npx('apply', '--auto-approve');
      expectCode(apply, 0, 'edit apply');
      expect(apply.stdout).toMatch(/✓ capitals\/france\s+reliability 100%/);
      expect(apply.stdout).toMatch(/Apply complete: state serial 1, .*committed [0-9a-f]{10}\./);
      expect((await run('git', ['status', '--porcelain'], project)).stdout).toBe('');
      expect((await run('git', ['log', '-1', '--format=%s'], project)).stdout).toMatch(/^edit apply: 1 created/);

      const verify = await npx('verify', '--junit', 'results.xml');
      expectCode(verify, 0, 'edit verify');
      expect(verify.stdout).toMatch(/capitals\/france/);
      expect(await readFile(join(project, 'results.xml'), 'utf8')).toContain('failures="0"');

      const gen = await npx('generate', 'The capital of France is', '--json');
      expectCode(gen, 0, 'edit generate');
      expect((JSON.parse(gen.stdout) as { completion: string }).completion.startsWith(' Lyon')).toBe(true);

      // the benchmark ships with the package: eval runs in a project that has none of its own
      const evaluated = await npx('eval', '--editor', 'ft', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '1', '--settings', 'steps=0', '--json');
      expectCode(evaluated, 0, 'edit eval');
      const report = JSON.parse(evaluated.stdout) as { bench: { file: string }; results: Array<{ editor: string; task: string; edits: number }> };
      expect(report.bench.file).toBe('node_modules/editops/data/bench.json');
      expect(report.results).toMatchObject([{ editor: 'ft', task: 'counterfact', edits: 1 }]);
    }), 300_000);
});
