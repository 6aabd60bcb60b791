/** How the refinement splits the known facts into per-step KL chunks (src/editor/mend/refine.ts). */
import { describe, expect, it } from 'vitest';
import { stridedChunks } from '../src/editor/mend/refine.js';

describe('stridedChunks', () => {
  it('gives every chunk a share of a list grouped by relation, each item once', () => {
    const facts = ['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'b3', 'b4', 'c1', 'c2', 'c3', 'c4'];
    // ceil(12 / 3) = 4 chunks; in list order chunk 0 would be a1, a2, a3 (one relation)
    expect(stridedChunks(facts, 3)).toEqual([
      ['a1', 'b1', 'c1'],
      ['a2', 'b2', 'c2'],
      ['a3', 'b3', 'c3'],
      ['a4', 'b4', 'c4'],
    ]);
    const uneven = stridedChunks(facts.slice(0, 7), 3); // 3 chunks of 3, 2, 2
    expect(uneven).toEqual([['a1', 'a4', 'b3'], ['a2', 'b1'], ['a3', 'b2']]);
    expect(uneven.flat().sort()).toEqual(facts.slice(0, 7).sort());
  });

  it('is one chunk when the size covers the list', () => {
    expect(stridedChunks(['x', 'y'], 32)).toEqual([['x', 'y']]);
    expect(stridedChunks(['x', 'y', 'z'], 1)).toEqual([['x'], ['y'], ['z']]);
    expect(stridedChunks([], 4)).toEqual([[]]);
  });
});
