/**
 * withRefineSteps: the manifest copy loop tests and BENCH_QUICK use, with every hypernetwork
 * editor's refinement cut and everything else as it was.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { editorSettings, withRefineSteps } from '../src/editor/settings.js';
import type { ModelManifest } from '../src/model/folder.js';
import { ROOT } from './helpers/cli.js';

const shipped = JSON.parse(readFileSync(join(ROOT, 'models/default/model.json'), 'utf8')) as ModelManifest;

describe('withRefineSteps', () => {
  it('cuts the refinement of the editor and of every shipped hypernetwork, keeping their other settings', () => {
    const before = JSON.stringify(shipped);
    const cut = withRefineSteps(shipped, 4);
    expect(JSON.stringify(shipped), 'the manifest given is not changed').toBe(before);
    for (const method of ['instructedit', 'mend']) {
      const own = editorSettings(shipped, method) as unknown as Record<string, unknown>;
      const quick = editorSettings(cut, method) as unknown as Record<string, unknown>;
      expect(own.refineSteps).toBeGreaterThan(4);
      expect(quick).toEqual({ ...own, refineSteps: 4 });
    }
    const { editor, hypernetworks, ...rest } = cut;
    const { editor: e0, hypernetworks: h0, ...rest0 } = shipped;
    expect(rest).toEqual(rest0);
    expect({ ...editor, settings: undefined }).toEqual({ ...e0, settings: undefined });
    expect(Object.keys(hypernetworks ?? {})).toEqual(Object.keys(h0 ?? {}));
  });

  it('with a number of known facts, cuts the KL\'s facts as well', () => {
    for (const method of ['instructedit', 'mend']) {
      const own = editorSettings(shipped, method) as unknown as Record<string, unknown>;
      expect(own.refineKnown).toBeGreaterThan(100);
      expect(editorSettings(withRefineSteps(shipped, 4, 100), method)).toEqual({ ...own, refineSteps: 4, refineKnown: 100 });
    }
  });

  it('leaves an editor without a network as it is', () => {
    const memit = { ...shipped, editor: { method: 'memit', settings: { lambda: 20 } } } as ModelManifest;
    expect(withRefineSteps(memit, 4).editor).toEqual({ method: 'memit', settings: { lambda: 20 } });
    expect(editorSettings(withRefineSteps(memit, 4))).toEqual(editorSettings(memit));
    const none = { ...shipped, editor: null } as ModelManifest;
    expect(withRefineSteps(none, 4).editor).toBeNull();
  });
});
