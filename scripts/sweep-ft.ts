/**
 * FT-L settings on 12 counterfactual capital edits: reliability, generalization (one rephrase),
 * locality (one other capital prompt unchanged) per edit alone, and reliability with all 12 deltas
 * summed (batch semantics). How FT_DEFAULTS in src/editor/ft.ts were chosen.
 *
 *   node dist/scripts/sweep-ft.js [model-dir] ['[{"steps":60,"lr":0.005,"epsilon":0.03,"stopLoss":0.02}]']
 */
import { tf } from '../src/tensor/tf.js';
import { sumDeltas } from '../src/model/weight-change.js';
import { readFileSync } from 'node:fs';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder } from '../src/model/folder.js';
import { FT_DEFAULTS, FtEditor, type FtOptions } from '../src/editor/ft.js';
import { ModelJudge } from '../src/assert/judge.js';
import { toDeltaTensors } from '../src/model/delta-tensors.js';

async function main(): Promise<void> {
  const backend = await initBackend();
  const loaded = await loadModelFolder(process.argv[2] ?? 'models/default');
  const settings = JSON.parse(process.argv[3] ?? JSON.stringify([FT_DEFAULTS])) as FtOptions[];
  const facts = (JSON.parse(readFileSync('data/facts.json', 'utf8')).facts as Array<{ subject: string; relation: string; object: string }>).filter((f) => f.relation === 'capital');
  const edits = Array.from({ length: 12 }, (_, i) => ({
    id: `e${i}`, task: 'counterfact', instruction: '', rephrase: [`${facts[i * 17].subject}'s capital is`],
    prompt: `The capital of ${facts[i * 17].subject} is`, target: ` ${facts[i * 17 + 5].object}`, neighbour: `The capital of ${facts[i * 17 + 9].subject} is`,
  }));
  const base = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer });
  for (const opts of settings) {
    const deltas = await new FtEditor(opts).computeDeltas({ model: loaded.model, tokenizer: loaded.tokenizer, layers: loaded.manifest.editableLayers }, edits);
    let rel = 0, gen = 0, loc = 0, summed = 0;
    for (const e of edits) {
      const t = toDeltaTensors(deltas.get(e.id)!, loaded);
      const j = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, deltas: t });
      rel += Number(j.generate(e.prompt, 4).startsWith(e.target));
      gen += Number(j.generate(e.rephrase[0], 4).startsWith(e.target));
      loc += Number(j.generate(e.neighbour, 8) === base.generate(e.neighbour, 8));
      tf.dispose(Object.values(t));
    }
    const sum = sumDeltas(deltas.values());
    const all = toDeltaTensors({ layers: Object.fromEntries([...sum].map(([p, t]) => [p, { kind: 'dense' as const, shape: t.shape, data: t.data }])) }, loaded);
    const jAll = new ModelJudge({ model: loaded.model, tokenizer: loaded.tokenizer, deltas: all });
    for (const e of edits) summed += Number(jAll.generate(e.prompt, 4).startsWith(e.target));
    tf.dispose(Object.values(all));
    console.log(`${JSON.stringify(opts)}  reliability ${rel}/12  generalization ${gen}/12  locality ${loc}/12  summed reliability ${summed}/12  (${backend})`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
