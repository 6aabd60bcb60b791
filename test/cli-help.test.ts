/**
 * Help, flag parsing and package scripts, all driven by each command's flag table: `--help` and
 * `edit help <command>` list every flag with a description and an example, typos get the nearest
 * flag or command, the README's command table is `edit help --markdown`, and every npm script
 * names something that exists.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCommands, parseFlags } from '../src/cli/main.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/edit.js');

function edit(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('help from the flag tables', () => {
  it('plan --help lists every flag of plan with its description, and examples', () => {
    const r = edit('plan', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: edit plan \[options\]$/m);
    expect(r.stdout).toMatch(/^ {6}--target <id> … +plan only this edit \(repeatable\)$/m);
    expect(r.stdout).toMatch(/^ {6}--markdown <file> +also write the plan as markdown/m);
    expect(r.stdout).toMatch(/^ {2}-m, --model <dir> +the model folder \(default: models\/default\)$/m);
    expect(r.stdout).toMatch(/^examples:\n {2}edit plan\n/m);
  });

  it('`edit help plan` prints the same as `edit plan --help`', () => {
    const viaHelp = edit('help', 'plan');
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(edit('plan', '--help').stdout);
    expect(viaHelp.stdout).not.toContain('commands:');
  });

  it('`edit help --help` and `edit help -h` print the overview, exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = edit('help', flag);
      expect(r.code, flag).toBe(0);
      expect(r.stdout).toBe(edit('help').stdout);
    }
  });

  it('every command: each flag has a description, there is an example, and the parser accepts each flag', async () => {
    for (const c of await loadCommands()) {
      expect(c.examples.length, `${c.name} examples`).toBeGreaterThan(0);
      for (const ex of c.examples) expect(ex, `${c.name} example`).toMatch(new RegExp(`(^| )edit ${c.name}( |$)`));
      for (const [name, f] of Object.entries(c.options)) {
        expect(f.description.trim(), `${c.name} --${name}`).not.toBe('');
        const value = f.type === 'string' ? ['v'] : [];
        const parsed = parseFlags(c, [`--${name}`, ...value]);
        expect(parsed.flags[name], `${c.name} --${name}`).toEqual(f.multiple ? (f.type === 'string' ? ['v'] : [true]) : f.type === 'string' ? 'v' : true);
        if (f.short !== undefined) expect(parseFlags(c, [`-${f.short}`, ...value]).flags[name]).toEqual(parsed.flags[name]);
      }
    }
  });

  it('`edit help` lists every command', async () => {
    const r = edit('help');
    expect(r.code).toBe(0);
    for (const c of await loadCommands()) expect(r.stdout).toMatch(new RegExp(`^  ${c.name}\\b`, 'm'));
  });

  it("the README's command table is `edit help --markdown`", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const m = /<!-- commands:[^\n]*-->\n([\s\S]*?)\n<!-- \/commands -->/.exec(readme);
    expect(m, 'README.md has the <!-- commands --> section').not.toBeNull();
    const table = edit('help', '--markdown').stdout.trimEnd();
    expect(m![1], 'README.md is out of date: paste the output of `npx edit help --markdown` between the markers').toBe(table);
  });
});

describe('typos', () => {
  it('a misspelt flag gets the nearest flag of that command, not the parser message', () => {
    const r = edit('plan', '--tagret', 'capitals/france');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: unknown flag --tagret for `edit plan`; did you mean --target?\n  hint: `edit plan --help` lists its flags\n');
  });

  it('a long flag typed with one dash is read as the long flag it resembles', () => {
    expect(edit('apply', '-auto-approve').stderr).toContain('unknown flag -auto-approve for `edit apply`; did you mean --auto-approve?');
  });

  it('a flag far from every flag gets no guess', () => {
    const r = edit('verify', '--frobnicate');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: unknown flag --frobnicate for `edit verify`\n  hint: `edit verify --help` lists its flags\n');
  });

  it('a missing value and a value given to a switch', () => {
    expect(edit('plan', '--out').stderr).toContain('error: --out needs a value: --out <file>\n');
    expect(edit('validate', '--json=yes').stderr).toContain('error: --json takes no value\n');
  });

  it('an unknown command gets the nearest command', () => {
    const r = edit('aply', '--auto-approve');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: unknown command "aply"; did you mean "apply"?\n  hint: run `edit help` for the list\n');
    expect(edit('help', 'verfy').stderr).toContain('did you mean "verify"?');
  });
});

describe('package.json scripts', () => {
  it('every script runs a file or a command that exists', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const commands = new Set((await loadCommands()).map((c) => c.name));
    for (const [name, line] of Object.entries(pkg.scripts)) {
      for (const part of line.split('&&').map((p) => p.trim())) {
        const m = /^node (\S+)(?: (\S+))?/.exec(part);
        if (m === null) continue;
        if (m[1] === 'bin/edit.js') expect(commands.has(m[2] ?? ''), `script ${name}: edit ${m[2]}`).toBe(true);
        else {
          // dist/<dir>/<file>.js is compiled from <dir>/<file>.ts
          const src = m[1].replace(/^dist\//, '').replace(/\.js$/, '.ts');
          expect(existsSync(join(ROOT, src)), `script ${name}: ${m[1]} (from ${src})`).toBe(true);
        }
      }
    }
  });
});
