import assert from 'node:assert/strict';
import { test } from 'node:test';
import { soleParents, storedDependents } from '../../../src/model/stored-dependents.js';

const diffs = [
  { to: 'a', from: null, bytes: 100 },
  { to: 'b', from: 'a', bytes: 10 },
  { to: 'c', from: 'b', bytes: 10 },
  { to: 'c', from: null, bytes: 100 },
  { to: 'd', from: 'a', bytes: 10 },
  { to: 'd', from: 'b', bytes: 10 },
  { to: 'e', from: 'b', bytes: 10 },
  { to: 'e', from: 'b', bytes: 10 },
];

test('a diff store needs a snapshot while some other one is stored only as diffs from it', () => {
  assert.deepEqual(storedDependents('a', diffs), ['b'], 'd has another parent, b has not');
  assert.deepEqual(storedDependents('b', diffs), ['e'], 'c has a full stream, d comes from a too; e only from b');
  assert.deepEqual(storedDependents('c', diffs), []);
  assert.deepEqual(storedDependents('x', []), []);
});

test('soleParents: the snapshots restorable from exactly one parent, and that parent', () => {
  assert.deepEqual([...soleParents(diffs)].sort(), [
    ['b', 'a'],
    ['e', 'b'],
  ]);
  assert.deepEqual([...soleParents([{ to: 'f', from: null, bytes: 1 }])], [], 'a full stream needs nothing');
  assert.deepEqual([...soleParents([])], []);
});

test('a snapshot is never its own dependent', () => {
  assert.deepEqual(storedDependents('z', [{ to: 'z', from: 'z', bytes: 1 }]), []);
});

test('storedDependents agrees with soleParents on random stores', () => {
  let seed = 7;
  const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const uuids = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (let round = 0; round < 200; round++) {
    const random_diffs = Array.from({ length: random(10) }, () => {
      const to = uuids[random(uuids.length)]!;
      const from = random(3) === 0 ? null : uuids[random(uuids.length)]!;
      return { to, from, bytes: 1 };
    });
    for (const parent of uuids) {
      // By definition: every diff of `to` starts at parent, and there is at least one.
      const expected = uuids.filter((to) => {
        const own = random_diffs.filter((d) => d.to === to);
        return to !== parent && own.length > 0 && own.every((d) => d.from === parent);
      });
      assert.deepEqual(storedDependents(parent, random_diffs), expected, JSON.stringify({ parent, random_diffs }));
    }
  }
});
