import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermissionError } from '../../../src/model/errors.js';
import { checkReadRange, checkRelativePath, MAX_BROWSE_READ_BYTES } from '../../../src/remote/browse.js';

describe('what a browse request may ask', () => {
  test('read ranges are safe non-negative integers, at most one block long', () => {
    assert.deepEqual(checkReadRange(0, MAX_BROWSE_READ_BYTES), { offset: 0, length: MAX_BROWSE_READ_BYTES });
    assert.deepEqual(checkReadRange(2 ** 52, 0), { offset: 2 ** 52, length: 0 });
    const bad: [unknown, unknown][] = [
      [2 ** 53, 1], // not exact as a double: was read as offset 0
      [Number.MAX_SAFE_INTEGER, 1], // the end is past 2^53
      [-1, 1],
      [0.5, 1],
      [Number.NaN, 1],
      [Infinity, 1],
      ['0', 1],
      [null, 1],
      [0, -1],
      [0, MAX_BROWSE_READ_BYTES + 1],
      [0, 2 ** 53],
      [0, undefined],
    ];
    for (const [offset, length] of bad) {
      assert.throws(
        () => checkReadRange(offset, length),
        (e: unknown) => e instanceof PermissionError && !/\n/.test(e.message),
        `${String(offset)}, ${String(length)}`,
      );
    }
  });

  test('paths inside a snapshot may hold control characters (user files), never `..` or a leading /', () => {
    checkRelativePath('new\nline');
    checkRelativePath('dir/tab\there');
    for (const bad of ['..', 'a/../b', '/etc', 'a//b', 'a\0b']) {
      assert.throws(
        () => checkRelativePath(bad),
        (e: unknown) => e instanceof PermissionError && !/[\n\0]/.test(e.message),
        JSON.stringify(bad),
      );
    }
  });
});
