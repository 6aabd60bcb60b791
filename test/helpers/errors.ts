import { expect } from 'vitest';
import { EditError } from '../../src/errors.js';

/** The EditError `fn` throws (fails the test when it throws something else or nothing). */
export function editErrorOf(fn: () => unknown): EditError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EditError);
    return err as EditError;
  }
  throw new Error('expected an EditError');
}
