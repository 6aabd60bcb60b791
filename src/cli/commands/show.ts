/** `edit show [id]`: what is applied — edits, their metrics, the base and editor hashes. */
import { innerDim } from '../../model/config.js';
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { isMethod, needsNetwork } from '../../editor/settings.js';
import { readManifest } from '../../model/folder.js';
import { readState } from '../../state/state.js';
import type { Command } from '../command.js';
import { MODEL_OPTION, modelDir, projectRoot } from '../flags.js';
import { pct } from '../../util/format.js';


export const showCommand: Command = {
  name: 'show',
  args: '[id]',
  summary: 'applied edits with their metrics, and the base and editor hashes',
  options: {
    ...MODEL_OPTION,
    json: { type: 'boolean', description: 'print the state (or the one edit) as JSON' },
  },
  examples: ['edit show', 'edit show capitals/france --json'],
  async run(ctx) {
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const manifest = await readManifest(join(root, dir));
    const { state, sha256 } = await readState(join(root, dir), manifest);
    const id = ctx.args[0];
    if (id !== undefined) {
      const e = state.edits[id];
      if (e === undefined) throw new EditError(`no applied edit "${id}" in ${dir}/state.json (applied: ${Object.keys(state.edits).join(', ') || 'none'})`);
      if (ctx.flags.json === true) ctx.io.out(JSON.stringify({ id, ...e }, null, 2));
      else {
        ctx.io.out([
          `edit ${id}`,
          `  applied      ${e.appliedAt} by ${e.method}`,
          `  spec sha256  ${e.specSha256}`,
          `  rows         ${e.rows === null ? 'none (the model already satisfied it)' : `${e.rows.file} (${e.rows.count} row${e.rows.count === 1 ? '' : 's'} in the set's solve)`}`,
          `  metrics      reliability ${pct(e.metrics.reliability)}, generalization ${pct(e.metrics.generalization)}, locality ${pct(e.metrics.locality)}, portability ${pct(e.metrics.portability)} (${e.metrics.passed}/${e.metrics.total} checks)`,
        ].join('\n'));
      }
      return 0;
    }
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ model: dir, stateSha256: sha256, ...state }, null, 2));
      return 0;
    }
    const ids = Object.keys(state.edits).sort();
    const lines = [
      `model    ${dir} (${manifest.name}: GPT-2, ${manifest.config.nLayer} layers, d=${manifest.config.nEmbd}, MLP ${innerDim(manifest.config)})`,
      `base     ${state.base.sha256}`,
      `editor   ${state.editor ? `${state.editor.method} (${networkMethod(state.editor.method) ? 'network' : 'settings'} ${(state.editor.sha256 ?? '').slice(0, 12)})` : manifest.editor ? manifest.editor.method : 'default'}`,
      `delta    ${state.delta === null ? 'none' : `${state.delta.file}: ${state.delta.capacity.map((c) => `${c.layer} ${c.rows}/${c.keyDim} rows`).join(', ') || state.delta.layers.join(', ')}`}`,
      `state    serial ${state.serial}, effective weights ${state.effective.sha256.slice(0, 16)}…`,
      '',
    ];
    if (ids.length === 0) lines.push('No edits applied.');
    else {
      const w = Math.max(...ids.map((i) => i.length));
      const mw = Math.max('method'.length, ...ids.map((i) => state.edits[i].method.length));
      lines.push(`${'edit'.padEnd(w)}  ${'method'.padEnd(mw)}  rel   gen   loc   port  applied`);
      for (const i of ids) {
        const e = state.edits[i];
        const m = e.metrics;
        lines.push(`${i.padEnd(w)}  ${e.method.padEnd(mw)}  ${pct(m.reliability).padEnd(4)}  ${pct(m.generalization).padEnd(4)}  ${pct(m.locality).padEnd(4)}  ${pct(m.portability).padEnd(4)}  ${e.appliedAt}`);
      }
      lines.push('', `${ids.length} edit${ids.length === 1 ? '' : 's'} applied.`);
    }
    ctx.io.out(lines.join('\n'));
    return 0;
  },
};

/** A hypernetwork editor, whose state records its network's hash (the others: their settings'). */
function networkMethod(method: string): boolean {
  return isMethod(method) && needsNetwork(method);
}
