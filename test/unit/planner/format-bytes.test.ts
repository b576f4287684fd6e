import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from '../../../src/util/format-bytes.js';

test('formatBytes uses IEC units with about three significant digits', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024 + 300, '10 KiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [1.2 * 1024 ** 3, '1.2 GiB'],
    [512 * 1024 ** 2, '512 MiB'],
    [1024 ** 2 - 1, '1 MiB'], // rounding up crosses into the next unit
    [1e13, '9.1 TiB'],
    [-2048, '-2 KiB'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, `${bytes}`);
});
