/**
 * model.json's `editorSettings`: the settings a weight-free editor (memit, ft) was calibrated with
 * on this model, used when it is not the model's `editor` (`apply --method memit`, eval, bench).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MEMIT_DEFAULTS, editorSettings } from '../src/editor/settings.js';
import type { ModelManifest } from '../src/model/folder.js';
import { validateAgainst } from '../src/util/schemas.js';
import { ROOT, edit, expectCode } from './helpers/cli.js';

const shipped = JSON.parse(readFileSync(join(ROOT, 'models/default/model.json'), 'utf8')) as ModelManifest;
const calibrated = shipped.editorSettings?.memit as Record<string, number>;

describe('editorSettings in model.json', () => {
  it('the shipped manifest is valid against the model schema, and calibrates memit away from its defaults', () => {
    expect(validateAgainst('model', shipped)).toEqual([]);
    expect(shipped.editor?.method).not.toBe('memit');
    expect(calibrated.lambda).not.toBe(MEMIT_DEFAULTS.lambda);
  });

  it('the schema refuses an unknown editor or a setting out of range, naming the pointer', () => {
    const bad = (editorSettings: unknown) => validateAgainst('model', { ...shipped, editorSettings }).map((e) => e.pointer);
    expect(bad({ memit: { lambda: -1 } })).toContain('/editorSettings/memit/lambda');
    expect(bad({ memit: { lamda: 60 } }).some((p) => p.startsWith('/editorSettings/memit'))).toBe(true);
    expect(bad({ rome: {} }).length).toBeGreaterThan(0);
  });

  it('memit runs with them over its defaults when it is not the editor; the editor entry wins when it is', () => {
    expect(editorSettings(shipped, 'memit')).toEqual({ ...MEMIT_DEFAULTS, ...calibrated, method: 'memit' });
    const own = { ...shipped, editor: { method: 'memit', settings: { lambda: 20 } } } as ModelManifest;
    expect(editorSettings(own)).toEqual({ ...MEMIT_DEFAULTS, lambda: 20, method: 'memit' });
    const none = { ...shipped, editorSettings: undefined } as ModelManifest;
    expect(editorSettings(none, 'memit')).toEqual(MEMIT_DEFAULTS);
  });

  it('edit eval reports and uses them, and --settings still overrides', async () => {
    const args = ['eval', '--editor', 'memit', '--task', 'counterfact', '--sizes', '1', '--singles', '1', '--neighbours', '1', '--json'];
    const r = await edit(ROOT, ...args);
    expectCode(r, 0);
    expect(JSON.parse(r.stdout).editors.memit).toMatchObject(calibrated);
    const o = await edit(ROOT, ...args, '--settings', 'lambda=45');
    expectCode(o, 0);
    expect(JSON.parse(o.stdout).editors.memit).toMatchObject({ ...calibrated, lambda: 45 });
  }, 120_000);
});
