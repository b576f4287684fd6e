import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../src/model/snapshot.js';
import { lineageKeys } from '../../../src/sync/lineages.js';

function snap(uuid: string, f: { parent?: string; received?: string; gen?: number } = {}): Snapshot {
  const gen = f.gen ?? 1;
  return {
    name: `n-${uuid}`,
    uuid,
    parentUuid: f.parent ?? null,
    receivedUuid: f.received ?? null,
    generation: gen,
    creationGeneration: gen,
    createdAt: null,
  };
}

/** The lineages as sorted groups of UUIDs, independent of which key names them. */
function groups(snapshots: readonly Snapshot[]): string[][] {
  const keys = lineageKeys(snapshots);
  const byKey = new Map<string, string[]>();
  for (const s of snapshots) {
    const key = keys.get(s.uuid);
    assert.ok(key !== undefined, `no lineage for ${s.uuid}`);
    byKey.set(key, [...(byKey.get(key) ?? []), s.uuid]);
  }
  return [...byKey.values()].map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

describe('lineageKeys', () => {
  test('snapshots of one subvolume share its UUID as parent: one lineage, even when the subvolume is not listed', () => {
    const live = 'live-home';
    assert.deepEqual(groups([snap('a', { parent: live }), snap('b', { parent: live }), snap('c', { parent: live })]), [['a', 'b', 'c']]);
  });

  test('snapshots of different subvolumes are separate lineages', () => {
    assert.deepEqual(
      groups([
        snap('h1', { parent: 'home' }),
        snap('r1', { parent: 'root' }),
        snap('h2', { parent: 'home' }),
        snap('r2', { parent: 'root' }),
      ]),
      [
        ['h1', 'h2'],
        ['r1', 'r2'],
      ],
    );
  });

  test('a received chain links each snapshot to the previous one, in any listing order', () => {
    const chain = [snap('r1'), snap('r2', { parent: 'r1' }), snap('r3', { parent: 'r2' }), snap('r4', { parent: 'r3' })];
    assert.deepEqual(groups(chain), [['r1', 'r2', 'r3', 'r4']]);
    assert.deepEqual(groups([...chain].reverse()), [['r1', 'r2', 'r3', 'r4']]);
    assert.deepEqual(groups([chain[2]!, chain[0]!, chain[3]!, chain[1]!]), [['r1', 'r2', 'r3', 'r4']]);
  });

  test('a received snapshot joins the lineage of the snapshot it was received from', () => {
    const original = snap('orig', { parent: 'live' });
    const sibling = snap('sib', { parent: 'live' });
    const received = snap('recv', { received: 'orig' });
    assert.deepEqual(groups([original, sibling, received]), [['orig', 'recv', 'sib']]);
  });

  test('two snapshots received from the same, unlisted, original share a lineage', () => {
    assert.deepEqual(groups([snap('x1', { received: 'elsewhere' }), snap('x2', { received: 'elsewhere' }), snap('y')]), [
      ['x1', 'x2'],
      ['y'],
    ]);
  });

  test('parent and received links together bridge lineages', () => {
    // b1 was snapshotted from a received copy of a1's family; they are one lineage.
    const snapshots = [
      snap('a1', { parent: 'A' }),
      snap('a2', { parent: 'A' }),
      snap('copy', { received: 'a2' }),
      snap('b1', { parent: 'copy' }),
      snap('z', { parent: 'Z' }),
    ];
    assert.deepEqual(groups(snapshots), [['a1', 'a2', 'b1', 'copy'], ['z']]);
  });

  test('unrelated snapshots each form their own lineage', () => {
    assert.deepEqual(groups([snap('a'), snap('b'), snap('c')]), [['a'], ['b'], ['c']]);
  });

  test('returns exactly one key per listed snapshot', () => {
    const keys = lineageKeys([snap('a', { parent: 'p' }), snap('b', { received: 'q' })]);
    assert.deepEqual([...keys.keys()].sort(), ['a', 'b']);
    assert.deepEqual(lineageKeys([]), new Map());
  });

  test('a 20,000-long chain listed newest first', () => {
    const chain: Snapshot[] = [];
    for (let i = 0; i < 20_000; i++) chain.push(snap(`s${i}`, i === 0 ? {} : { parent: `s${i - 1}` }));
    const keys = lineageKeys(chain.reverse());
    assert.equal(new Set(keys.values()).size, 1);
    assert.equal(keys.size, 20_000);
  });
});
