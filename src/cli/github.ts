/**
 * GitHub Actions annotations: inside a workflow run (GITHUB_ACTIONS=true) `edit validate` and
 * `edit verify` also print workflow commands (`::error file=…,line=…,title=…::message`) on stdout,
 * so a pull request shows each problem on the edit file (and line) it is about. Paths are made
 * relative to GITHUB_WORKSPACE, the repository's checkout, since an editops project may sit in a
 * subfolder of it.
 */
import { isAbsolute, relative, resolve } from 'node:path';

export function inGithubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/** A workflow command's message: %, CR and LF escaped. */
function data(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A workflow command's property value: also ':' and ','. */
function property(text: string): string {
  return data(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** The path of `file` (relative to the project `root`) as the repository's checkout names it. */
export function workspacePath(root: string, file: string, env: NodeJS.ProcessEnv = process.env): string {
  const workspace = env.GITHUB_WORKSPACE;
  const abs = resolve(root, file);
  if (workspace === undefined || workspace === '') return file;
  const rel = relative(resolve(workspace), abs);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel.split('\\').join('/');
}

export function annotation(level: 'error' | 'warning', message: string, at: { file?: string; line?: number; title?: string } = {}): string {
  const props = [
    ...(at.file === undefined ? [] : [`file=${property(at.file)}`]),
    ...(at.line === undefined ? [] : [`line=${at.line}`]),
    ...(at.title === undefined ? [] : [`title=${property(at.title)}`]),
  ];
  return `::${level}${props.length > 0 ? ` ${props.join(',')}` : ''}::${data(message)}`;
}
