import { describe, expect, it } from 'vitest';
import { CAPACITY_WARNING, makePlan, type PlanInput } from '../src/plan/make-plan.js';
import { planFromJson, planMarkdown, planToJson } from '../src/plan/json.js';
import { Action, hasChanges } from '../src/plan/plan.js';
import { renderPlanText, solveLines, summaryLine } from '../src/plan/render.js';
import { validateAgainst } from '../src/util/schemas.js';
import type { LoadedEdit } from '../src/spec/types.js';
import type { ModelState } from '../src/state/types.js';

const sha = (c: string) => c.repeat(64);
function edit(id: string, hash: string, target = ' Lyon'): LoadedEdit {
  return { id, file: `edits/${id}.json`, sha256: sha(hash), spec: { version: 1, task: 'counterfact', prompt: `prompt of ${id}`, target } };
}
function state(edits: Record<string, string>, method = 'memit'): ModelState {
  const applied: ModelState['edits'] = {};
  for (const [id, h] of Object.entries(edits)) {
    applied[id] = { specSha256: sha(h), method, rows: { file: `rows/${id}@${sha(h).slice(0, 12)}.safetensors`, sha256: sha(h), count: 2 }, metrics: { reliability: 1, generalization: null, locality: null, portability: null, passed: 1, total: 1 }, appliedAt: '2026-01-01T00:00:00Z' };
  }
  const delta = Object.keys(edits).length === 0 ? null : { file: `deltas/set@${sha('d').slice(0, 12)}.safetensors`, sha256: sha('d'), layers: ['h.2.mlp.c_proj', 'h.3.mlp.c_proj'], capacity: [] };
  return { version: 2, serial: 3, base: { sha256: sha('b') }, editor: null, stats: null, manifest: { sha256: sha('9') }, delta, effective: { sha256: sha('e') }, edits: applied };
}
const now = new Date('2026-11-25T00:00:00Z');

describe('makePlan', () => {
  it('diffs declared edits against state: create, update, destroy, unchanged', () => {
    const plan = makePlan({ model: 'models/default', edits: [edit('a', 'a'), edit('b', 'c'), edit('d', 'd')], state: state({ b: 'b', c: 'c', d: 'd' }), stateSha256: sha('f'), manifestSha256: sha('9'), drift: [], now });
    expect(plan.changes.map((c) => [c.id, c.action])).toEqual([['a', '+'], ['b', '~'], ['c', '-'], ['d', ' ']]);
    expect(summaryLine(plan)).toBe('Plan: 1 to create, 1 to update, 1 to destroy.');
    expect(hasChanges(plan)).toBe(true);
    expect(plan.state).toEqual({ serial: 3, sha256: sha('f'), manifestSha256: sha('9') });
  });

  it('says "No changes" when state matches and marks satisfied creates', () => {
    const same = makePlan({ model: 'm', edits: [edit('a', 'a')], state: state({ a: 'a' }), stateSha256: null, manifestSha256: sha('9'), drift: [], now });
    expect(summaryLine(same)).toBe('No changes. The model matches the edit files (1 applied).');
    expect(hasChanges(same)).toBe(false);
    // restricted by --target: it speaks of the targeted edits, not of every applied one
    const targeted = makePlan({ model: 'm', edits: [edit('a', 'a'), edit('b', 'b'), edit('c', 'c')], state: state({ a: 'a', b: 'b', c: 'c' }), stateSha256: null, manifestSha256: sha('9'), drift: [], now, targets: ['b'] });
    expect(summaryLine(targeted)).toBe('No changes. The --target edit matches its edit file (applied and unchanged).');
    const two = makePlan({ model: 'm', edits: [edit('a', 'a'), edit('b', 'b'), edit('c', 'c')], state: state({ a: 'a', b: 'b', c: 'c' }), stateSha256: null, manifestSha256: sha('9'), drift: [], now, targets: ['a', 'c'] });
    expect(summaryLine(two)).toBe('No changes. The --target edits match their edit files (2 applied and unchanged).');
    const sat = makePlan({ model: 'm', edits: [edit('a', 'a'), edit('x', 'x')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now, satisfied: new Set(['x']) });
    expect(sat.checkedSatisfied).toBe(true);
    expect(sat.changes.map((c) => c.action)).toEqual([Action.Create, Action.Satisfied]);
    expect(summaryLine(sat)).toBe('Plan: 1 to create, 0 to update, 0 to destroy, 1 already satisfied.');
  });

  it('edits a refresh recomputes are updates of what state.json held, or destroys without their file', () => {
    const held = state({ a: 'a', b: 'b', c: 'c' }).edits;
    const recomputed = new Map(['a', 'b', 'c'].map((id) => [id, { reason: 'model.json changed', applied: held[id] }]));
    const plan = makePlan({ model: 'm', edits: [edit('a', 'a'), edit('b', 'x')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now, recomputed });
    expect(plan.changes.map((c) => [c.id, c.action, c.reason])).toEqual([
      ['a', Action.Update, 'recomputed: model.json changed'],
      ['b', Action.Update, 'edit file changed since it was applied; recomputed: model.json changed'],
      ['c', Action.Destroy, 'edit file removed'],
    ]);
    expect(plan.changes[0].before?.specSha256).toBe(sha('a'));
    // an edit recorded without rows (the model passed it) that still passes stays rowless
    const rowless = new Map([['a', { reason: 'model.json changed', applied: { ...held.a, rows: null } }]]);
    const kept = makePlan({ model: 'm', edits: [edit('a', 'a')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now, recomputed: rowless, satisfied: new Set(['a']) });
    expect(kept.changes.map((c) => c.action)).toEqual([Action.Satisfied]);
    expect(makePlan({ model: 'm', edits: [edit('a', 'a')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now, recomputed: rowless, satisfied: new Set() }).changes.map((c) => c.action)).toEqual([Action.Update]);
    expect(renderPlanText(plan)).toMatch(/~ a {2}update +"prompt of a" → " Lyon" \(recomputed: model\.json changed\)\n/);
    const solved = makePlan({ model: 'm', edits: [edit('a', 'a')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now, recomputed, editor: { method: 'memit', joint: true, layers: ['h.2.mlp.c_proj'], keyDim: 512, estimateRows: () => 2 } });
    expect(solveLines(solved)[0]).toBe("Editor memit re-solves h.2.mlp.c_proj for the whole set of 1 edit: every edit's rows computed now.");
  });

  it('restricts to --target ids, including destroys', () => {
    const plan = makePlan({ model: 'm', edits: [edit('a', 'a'), edit('b', 'b')], state: state({ c: 'c' }), stateSha256: null, manifestSha256: sha('9'), drift: [], targets: ['b', 'c'], now });
    expect(plan.changes.map((c) => [c.id, c.action])).toEqual([['b', '+'], ['c', '-']]);
    expect(plan.targets).toEqual(['b', 'c']);
  });

  it('renders drift with "!" and counts it', () => {
    const plan = makePlan({ model: 'm', edits: [], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [{ file: 'm/deltas/x.safetensors', message: 'stray delta file' }], now });
    expect(renderPlanText(plan)).toContain('  ! m/deltas/x.safetensors  drift  stray delta file');
    expect(summaryLine(plan)).toContain('1 drifted');
  });

  it('renders stray delta files with "?" as a warning: not drift, no change to the model', () => {
    const stray = ['m/deltas/set@0123456789ab.safetensors'];
    const clean = makePlan({ model: 'm', edits: [edit('a', 'a')], state: state({ a: 'a' }), stateSha256: null, manifestSha256: sha('9'), drift: [], stray, now });
    expect(renderPlanText(clean)).toContain('  ? m/deltas/set@0123456789ab.safetensors  stray file  removed by the next apply');
    expect(summaryLine(clean)).toBe('No changes. The model matches the edit files (1 applied). 1 stray file to remove.');
    expect(hasChanges(clean)).toBe(false);
    expect(clean.drift).toEqual([]);
    const create = makePlan({ model: 'm', edits: [edit('b', 'b')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], stray: [...stray, 'm/rows/y@0123456789ab.safetensors'], now });
    expect(summaryLine(create)).toBe('Plan: 1 to create, 0 to update, 0 to destroy, 2 stray files to remove.');
    const json = JSON.parse(JSON.stringify(planToJson(create)));
    expect(validateAgainst('plan', json)).toEqual([]);
    expect(json.stray).toEqual(create.stray);
    expect(json.summary.stray).toBe(2);
    expect(planFromJson({ ...json, stray: undefined }, 'old.json').stray).toEqual([]);
  });
});

describe('plan JSON', () => {
  it('validates against schemas/plan.schema.json and round-trips', () => {
    const plan = makePlan({ model: 'models/default', edits: [edit('a', 'a'), edit('b', 'c')], state: state({ b: 'b', c: 'c' }), stateSha256: sha('f'), manifestSha256: sha('9'), drift: [], now });
    const json = JSON.parse(JSON.stringify(planToJson(plan)));
    expect(validateAgainst('plan', json)).toEqual([]);
    expect(json.summary).toEqual({ create: 1, update: 1, destroy: 1, satisfied: 0, unchanged: 0, drift: 0, stray: 0 });
    expect(planFromJson(json, 'p.json').changes).toEqual(plan.changes);
  });

  it('refuses a file that is not a plan, naming the pointer', () => {
    expect(() => planFromJson({ formatVersion: '2' }, 'p.json')).toThrow(/unsupported plan format "2"/);
    expect(() => planFromJson({ formatVersion: '1', model: 'm', state: { serial: 0 }, changes: [{ id: 'a', action: '?' }] }, 'p.json')).toThrow(/unknown action "\?"/);
  });

  it('renders markdown for job summaries', () => {
    const plan = makePlan({ model: 'models/default', edits: [edit('a', 'a')], state: state({}), stateSha256: null, manifestSha256: sha('9'), drift: [], now });
    expect(planMarkdown(plan)).toContain('| `+` | `a` | create | "prompt of a" → " Lyon" (counterfact) |');
  });
});

describe('the set\'s solve in a plan', () => {
  /** memit on the default model's shape: two c_proj layers of key dimension 512, one row per target token (here: per character). */
  const memit = (keyDim = 512): NonNullable<PlanInput['editor']> => ({ method: 'memit', joint: true, layers: ['h.2.mlp.c_proj', 'h.3.mlp.c_proj'], keyDim, estimateRows: (e) => e.spec.target.length });
  const base = { model: 'models/default', stateSha256: null, manifestSha256: sha('9'), drift: [], now };

  it('a create re-solves the whole set: kept edits keep their rows, new ones are estimated', () => {
    // applied b (2 rows, kept), c (2 rows, destroyed), d (2 rows, updated); a is new (5 rows: " Lyon"), d re-estimated (" Lyon")
    const plan = makePlan({ ...base, edits: [edit('a', 'a'), edit('b', 'b'), edit('d', 'x')], state: state({ b: 'b', c: 'c', d: 'd' }), editor: memit() });
    expect(plan.solve).toEqual({ method: 'memit', joint: true, resolves: true, edits: 3, kept: 1, layers: ['h.2.mlp.c_proj', 'h.3.mlp.c_proj'], rows: 2 + 5 + 5, keyDim: 512, warning: null });
    expect(solveLines(plan)).toEqual([
      'Editor memit re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 3 edits: 1 applied edit keeps its rows, but its weights change with the solve and every edit is verified again.',
      'Capacity: 12 rows per edited layer of 512 (2%).',
    ]);
    const text = renderPlanText(plan);
    expect(text).toContain('\n\nEditor memit re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 3 edits');
    expect(text.indexOf('Capacity: 12 rows per edited layer of 512 (2%).')).toBeLessThan(text.indexOf(summaryLine(plan)));
    expect(planMarkdown(plan)).toContain('Capacity: 12 rows per edited layer of 512 (2%).');
  });

  it('a destroy alone re-solves the rest of the set', () => {
    const plan = makePlan({ ...base, edits: [edit('b', 'b')], state: state({ b: 'b', c: 'c' }), editor: memit() });
    expect(plan.solve).toMatchObject({ resolves: true, edits: 1, kept: 1, rows: 2 });
    expect(solveLines(plan)[0]).toBe('Editor memit re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 1 edit: 1 applied edit keeps its rows, but its weights change with the solve and every edit is verified again.');
  });

  it('says so when the set becomes empty, and counts in the singular', () => {
    const gone = makePlan({ ...base, edits: [], state: state({ b: 'b' }), editor: memit() });
    expect(solveLines(gone)).toEqual(['Editor memit: no edit changes weights after this plan; h.2.mlp.c_proj, h.3.mlp.c_proj go back to the base weights.']);
    const fresh = makePlan({ ...base, edits: [edit('a', 'a', 'X')], state: state({}), editor: memit() });
    expect(solveLines(fresh)[0]).toBe('Editor memit re-solves h.2.mlp.c_proj, h.3.mlp.c_proj for the whole set of 1 edit: all of them new.');
    expect(solveLines(fresh)[1]).toMatch(/^Capacity: 1 row per edited layer of 512 \(0%\)\.$/);
  });

  it('a new edit the model already satisfies is recorded without rows: no re-solve, no capacity', () => {
    const only = makePlan({ ...base, edits: [edit('b', 'b'), edit('s', 's')], state: state({ b: 'b' }), editor: memit(), satisfied: new Set(['s']) });
    expect(only.changes.map((c) => [c.id, c.action])).toEqual([['b', Action.NoOp], ['s', Action.Satisfied]]);
    expect(only.solve).toMatchObject({ resolves: false, edits: 1, kept: 1, rows: 2 });
    expect(solveLines(only)).toEqual([]);
    const mixed = makePlan({ ...base, edits: [edit('a', 'a'), edit('s', 's')], state: state({}), editor: memit(), satisfied: new Set(['s']) });
    expect(mixed.solve).toMatchObject({ resolves: true, edits: 1, kept: 0, rows: 5 });
  });

  it('no change to the set: no solve section', () => {
    const plan = makePlan({ ...base, edits: [edit('b', 'b')], state: state({ b: 'b' }), editor: memit() });
    expect(plan.solve).toMatchObject({ resolves: false, edits: 1, kept: 1, rows: 2 });
    expect(solveLines(plan)).toEqual([]);
    expect(renderPlanText(plan)).not.toContain('re-solves');
    // A plan made without the editor's view (an old saved plan) has none either.
    const old = makePlan({ ...base, edits: [edit('a', 'a')], state: state({}) });
    expect(old.solve).toBeNull();
    expect(solveLines({ ...old, solve: undefined })).toEqual([]);
  });

  it('warns from the capacity threshold on, and past the key dimension', () => {
    const near = makePlan({ ...base, edits: [edit('a', 'a')], state: state({}), editor: memit(8) });
    expect(5 / 8).toBeGreaterThanOrEqual(CAPACITY_WARNING);
    expect(near.solve!.warning).toBe('5 rows per edited layer against a key dimension of 8 (63%): near the capacity of a joint solve on this model; expect edits or locality to fail (edit more layers or use a wider model)');
    expect(solveLines(near)[2]).toBe(`Warning: ${near.solve!.warning}.`);
    const past = makePlan({ ...base, edits: [edit('a', 'a')], state: state({}), editor: memit(4) });
    expect(past.solve!.warning).toContain('(125%): past the capacity');
    expect(makePlan({ ...base, edits: [edit('a', 'a')], state: state({}), editor: memit(9) }).solve!.warning).toBeNull();
  });

  it('the ft baseline sums per-edit changes: said so, no capacity', () => {
    const plan = makePlan({ ...base, edits: [edit('a', 'a'), edit('b', 'b')], state: state({ b: 'b' }, 'ft'), editor: { ...memit(4), method: 'ft', joint: false, layers: ['h.3.mlp.c_proj'] } });
    expect(plan.solve!.warning).toBeNull();
    expect(solveLines(plan)).toEqual(['Editor ft: per-edit changes are summed over h.3.mlp.c_proj (2 edits after this plan).']);
  });

  it('kept edits whose rows another editor computed: named instead of a solve it cannot make, with or without changes', () => {
    const ft = { ...memit(4), method: 'ft', joint: false, layers: ['h.3.mlp.c_proj'] };
    const plan = makePlan({ ...base, edits: [edit('a', 'a'), edit('b', 'b'), edit('c', 'c')], state: state({ b: 'b', c: 'c' }), editor: ft });
    expect(plan.solve!.otherEditor).toEqual({ methods: ['memit'], edits: ['b', 'c'] });
    expect(solveLines(plan)).toEqual(['Editor ft cannot reuse the rows of 2 applied edits: the memit editor computed them. `edit apply --refresh` recomputes them with ft and re-solves the set.']);
    const unchanged = makePlan({ ...base, edits: [edit('b', 'b')], state: state({ b: 'b' }), editor: ft });
    expect(unchanged.solve!.resolves).toBe(false);
    expect(solveLines(unchanged)[0]).toMatch(/^Editor ft cannot reuse the rows of 1 applied edit: .* recomputes it with ft/);
    // an updated or destroyed edit's rows are not reused: not named
    expect(makePlan({ ...base, edits: [edit('b', 'b2')], state: state({ b: 'b' }), editor: ft }).solve!.otherEditor).toBeUndefined();
    expect(makePlan({ ...base, edits: [edit('b', 'b')], state: state({ b: 'b' }, 'ft'), editor: ft }).solve!.otherEditor).toBeUndefined();
  });

  it('the solve section is in the plan JSON, valid against schemas/plan.schema.json, and round-trips', () => {
    const plan = makePlan({ ...base, edits: [edit('a', 'a')], state: state({ b: 'b' }), editor: memit() });
    const json = JSON.parse(JSON.stringify(planToJson(plan)));
    expect(json.solve).toEqual(plan.solve);
    expect(validateAgainst('plan', json)).toEqual([]);
    expect(planFromJson(json, 'p.json').solve).toEqual(plan.solve);
  });
});
