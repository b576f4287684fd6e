import assert from 'node:assert/strict';
import { test } from 'node:test';
import { storedDependents } from '../../../src/sync/stored-dependents.js';

test('a diff store needs a snapshot while some other one is stored only as diffs from it', () => {
  const diffs = [
    { to: 'a', from: null, bytes: 100 },
    { to: 'b', from: 'a', bytes: 10 },
    { to: 'c', from: 'b', bytes: 10 },
    { to: 'c', from: null, bytes: 100 },
    { to: 'd', from: 'a', bytes: 10 },
    { to: 'd', from: 'b', bytes: 10 },
  ];
  assert.deepEqual(storedDependents('a', diffs), ['b'], 'd has another parent, b has not');
  assert.deepEqual(storedDependents('b', diffs), [], 'c has a full stream, d comes from a too');
  assert.deepEqual(storedDependents('c', diffs), []);
  assert.deepEqual(storedDependents('x', []), []);
});
