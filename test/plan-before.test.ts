/** Terraform's `Before`: updates and destroys show what they replace, from what state.json recorded at apply. */
import { describe, expect, it } from 'vitest';
import { makePlan } from '../src/plan/make-plan.js';
import { planMarkdown } from '../src/plan/json.js';
import { renderPlanText } from '../src/plan/render.js';
import { validateAgainst } from '../src/util/schemas.js';
import { planToJson } from '../src/plan/json.js';
import type { LoadedEdit } from '../src/spec/types.js';
import type { ModelState } from '../src/state/types.js';

const sha = (c: string) => c.repeat(64);
const metrics = { reliability: 1, generalization: null, locality: null, portability: null, passed: 1, total: 1 };
const applied = (h: string, prompt?: string, target?: string): ModelState['edits'][string] => ({
  specSha256: sha(h),
  ...(prompt !== undefined ? { prompt } : {}),
  ...(target !== undefined ? { target } : {}),
  method: 'memit',
  rows: { file: `rows/x@${sha(h).slice(0, 12)}.safetensors`, sha256: sha(h), count: 1 },
  metrics,
  appliedAt: '2026-01-01T00:00:00Z',
});
const state = (edits: ModelState['edits']): ModelState => ({ version: 2, serial: 1, base: { sha256: sha('b') }, editor: null, stats: null, manifest: { sha256: sha('9') }, delta: null, effective: { sha256: sha('e') }, edits });
const declared = (id: string, h: string, prompt: string, target: string): LoadedEdit => ({ id, file: `edits/${id}.json`, sha256: sha(h), spec: { version: 1, task: 'counterfact', prompt, target } });

describe('plan before', () => {
  const s = state({ 'capitals/france': applied('a', 'The capital of France is', ' Lyon'), 'capitals/spain': applied('c', 'The capital of Spain is', ' Porto'), legacy: applied('d') });
  const plan = makePlan({ model: 'm', edits: [declared('capitals/france', 'f', 'The capital of France is', ' Nice')], state: s, stateSha256: sha('f'), manifestSha256: sha('9'), drift: [], now: new Date(0) });

  it('carries the applied prompt and target in `before` and shows them for updates and destroys', () => {
    expect(plan.changes.find((c) => c.id === 'capitals/france')!.before).toEqual({ specSha256: sha('a'), prompt: 'The capital of France is', target: ' Lyon' });
    const text = renderPlanText(plan);
    expect(text).toContain('~ capitals/france  update   "The capital of France is" → " Nice" (edit file changed since it was applied, was "The capital of France is" → " Lyon")');
    expect(text).toContain('- capitals/spain   destroy  "The capital of Spain is" → " Porto" (edit file removed: the set is solved without it)');
    expect(planMarkdown(plan)).toContain('was \\"The capital of France is\\" → \\" Lyon\\"'.replaceAll('\\"', '"'));
  });

  it('falls back to the reason when state.json recorded no prompt (older states), and the JSON validates', () => {
    expect(renderPlanText(plan)).toContain('- legacy           destroy  edit file removed');
    expect(validateAgainst('plan', planToJson(plan))).toEqual([]);
  });
});
