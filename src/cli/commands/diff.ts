/** `edit diff`: per edited matrix, the change the applied edits make — norm, rank, relative size. */
import { join } from 'node:path';
import { EditError } from '../../errors.js';
import { readManifest } from '../../model/folder.js';
import { parseSafetensors } from '../../model/safetensors.js';
import { readFile } from 'node:fs/promises';
import { deltaStats, densify, keyWeightedRelative } from '../../model/weight-change.js';
import { readKeyStats } from '../../editor/stats.js';
import { checkRecordedWeights, openWorkspace, readSetDelta } from '../../apply/workspace.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, modelDir, projectRoot, stringFlag } from '../flags.js';

export const diffCommand: Command = {
  name: 'diff',
  args: '[id]',
  summary: 'per edited matrix: the set\'s solved change (norm, relative size, size on the keys the layer sees, rows against the key dimension), and each edit\'s rows',
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
    checkRecordedWeights(ws, (line) => ctx.io.err(line));
    const id = ctx.args[0];
    if (id !== undefined && ws.state.edits[id] === undefined) throw new EditError(`no applied edit "${id}"`);
    // One solved change for the whole set: an edit has rows in it, not a matrix of its own.
    const delta = await readSetDelta(root, dir, ws.state);
    const manifest = await readManifest(join(root, dir));
    const baseFile = join(root, dir, manifest.weights.file);
    const base = parseSafetensors(await readFile(baseFile), baseFile);
    const baseParams: Record<string, Float32Array> = {};
    for (const [name, t] of base.tensors) if (t.data instanceof Float32Array) baseParams[name] = t.data;
    const capacity = ws.state.delta?.capacity ?? [];
    const stats = delta === null ? undefined : await readKeyStats(join(root, dir), manifest);
    const dense = delta === null || stats === undefined ? new Map() : densify(delta); // only for "on keys", which needs the statistics
    const total = delta === null ? [] : deltaStats(delta, baseParams).map((l) => {
      const cap = capacity.find((c) => `${c.layer}.weight` === l.param);
      const layerStats = stats?.layers[l.param.replace(/\.weight$/, '')];
      const d = dense.get(l.param);
      const onKeys = layerStats !== undefined && d !== undefined && baseParams[l.param] !== undefined ? keyWeightedRelative(d.data, baseParams[l.param], layerStats.second, layerStats.dim) : null;
      return { param: l.param, norm: l.norm, relative: l.relative, onKeys, rows: cap?.rows ?? null, keyDim: cap?.keyDim ?? null };
    });
    const edits = Object.entries(ws.state.edits)
      .filter(([eid]) => id === undefined || eid === id)
      .map(([eid, e]) => ({ id: eid, method: e.method, rows: e.rows?.count ?? 0 }));
    // the editor that solved this set (apply --method may differ from model.json's editor)
    const method = ws.state.delta?.solver?.method ?? ws.state.editor?.method ?? null;
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify({ model: dir, method, total, edits }, null, 2));
      return 0;
    }
    if (delta === null) {
      ctx.io.out('No weight changes: no applied edit changes a weight.');
      return 0;
    }
    const percent = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(2)}%`);
    const lines = [`The applied set's solved change (${method ?? 'editor'}; base + ΔW):`, `  ${'matrix'.padEnd(24)} ${'‖ΔW‖'.padStart(10)} ${'‖ΔW‖/‖W‖'.padStart(10)} ${'on keys'.padStart(8)}  rank ≤ rows / key dim`];
    for (const t of total) lines.push(`  ${t.param.padEnd(24)} ${t.norm.toFixed(4).padStart(10)} ${percent(t.relative).padStart(10)} ${percent(t.onKeys).padStart(8)}  ${t.rows === null ? 'dense' : `${t.rows} / ${t.keyDim}`}`);
    if (total.some((t) => t.onKeys !== null)) lines.push(`  (on keys: RMS ‖kᵀΔW‖ / RMS ‖kᵀW‖ over the key statistics — how far the layer's output moves on the inputs it sees; ‖ΔW‖/‖W‖ also counts directions they hardly use)`);
    lines.push('', `${id === undefined ? 'Rows per edit' : `Rows of ${id}`} (each edit's share of the solve):`);
    for (const e of edits) lines.push(`  ${e.id.padEnd(24)} ${String(e.rows).padStart(4)} row${e.rows === 1 ? '' : 's'}${e.rows === 0 ? ' (no change: already satisfied)' : ''}`);
    ctx.io.out(lines.join('\n'));
    return 0;
  },
};
