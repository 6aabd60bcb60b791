/** `edit diff`: per edited matrix, the change the applied edits make — norm, rank, relative size. */
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { readManifest } from '../../model/folder.js';
import { parseSafetensors } from '../../model/safetensors.js';
import { readFile } from 'node:fs/promises';
import { deltaStats, sumDeltas, type Delta } from '../../state/deltas.js';
import { openWorkspace, readAppliedDeltas, driftError } from '../../apply/workspace.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, modelDir, projectRoot, stringFlag } from '../flags.js';

function frob(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s);
}

export const diffCommand: Command = {
  name: 'diff',
  args: '[id]',
  summary: 'per edited matrix: delta norm, rank and change relative to the base weights',
  options: {
    ...MODEL_OPTION,
    ...EDITS_DIR_OPTION,
    json: { type: 'boolean', description: 'print the numbers as JSON' },
  },
  examples: ['edit diff', 'edit diff capitals/france --json'],
  async run(ctx) {
    const root = projectRoot(ctx);
    const dir = modelDir(ctx, root);
    const ws = await openWorkspace(root, dir, stringFlag(ctx, 'dir', 'edits'));
    if (ws.drift.length > 0) throw driftError(ws.drift);
    const id = ctx.args[0];
    if (id !== undefined && ws.state.edits[id] === undefined) throw new EditError(`no applied edit "${id}"`);
    const deltas = await readAppliedDeltas(ws, id === undefined ? undefined : [id]);
    const manifest = await readManifest(join(root, dir));
    const baseFile = join(root, dir, manifest.weights.file);
    const base = parseSafetensors(await readFile(baseFile), baseFile);
    const baseParams: Record<string, Float32Array> = {};
    for (const [name, t] of base.tensors) if (t.data instanceof Float32Array) baseParams[name] = t.data;
    const perEdit = [...deltas].map(([eid, d]) => ({ id: eid, layers: deltaStats(d, baseParams) }));
    const total = [...sumDeltas(deltas.values() as Iterable<Delta>)].map(([param, t]) => {
      const n = frob(t.data);
      const b = baseParams[param];
      const rankBound = perEdit.reduce((a, e) => a + (e.layers.find((l) => l.param === param)?.rank ?? Number.NaN), 0);
      return { param, norm: n, relative: b ? n / frob(b) : null, rankUpperBound: Number.isNaN(rankBound) ? null : rankBound };
    });
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ model: dir, edits: perEdit, total }, null, 2));
      return 0;
    }
    if (deltas.size === 0) {
      ctx.io.out('No weight changes: no applied edit has a delta.');
      return 0;
    }
    const lines = ['Combined change (base + Σ deltas):', `  ${'matrix'.padEnd(24)} ${'‖Δ‖'.padStart(10)} ${'‖Δ‖/‖W‖'.padStart(10)}  rank`];
    for (const t of total) lines.push(`  ${t.param.padEnd(24)} ${t.norm.toFixed(4).padStart(10)} ${(t.relative === null ? '–' : `${(100 * t.relative).toFixed(2)}%`).padStart(10)}  ${t.rankUpperBound === null ? 'dense' : `≤ ${t.rankUpperBound}`}`);
    for (const e of perEdit) {
      lines.push('', `${e.id}:`);
      for (const l of e.layers) lines.push(`  ${l.param.padEnd(24)} ${l.norm.toFixed(4).padStart(10)} ${(l.relative === null ? '–' : `${(100 * l.relative).toFixed(2)}%`).padStart(10)}  ${l.rank === null ? 'dense' : l.rank}`);
    }
    ctx.io.out(lines.join('\n'));
    return 0;
  },
};
