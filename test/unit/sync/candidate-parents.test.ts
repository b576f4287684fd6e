import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../src/model/snapshot.js';
import { candidatePairs, DEFAULT_CANDIDATE_POLICY, type CandidatePair } from '../../../src/sync/candidate-parents.js';

function snap(name: string, cgen: number, parentUuid: string | null = 'live', f: { uuid?: string; received?: string } = {}): Snapshot {
  return {
    name,
    uuid: f.uuid ?? `uuid-${name}`,
    parentUuid,
    receivedUuid: f.received ?? null,
    generation: cgen + 1000,
    creationGeneration: cgen,
    createdAt: null,
  };
}

/** `snapshot <- parent` or `snapshot <- full`, sorted. */
function show(pairs: readonly CandidatePair[]): string[] {
  return pairs.map((p) => `${p.snapshot.name} <- ${p.parent?.name ?? 'full'}`).sort();
}

function pairsOf(pairs: readonly CandidatePair[], name: string): string[] {
  return show(pairs.filter((p) => p.snapshot.name === name));
}

/** d01..d10 of one subvolume, creation generations 10, 20, ... */
const daily = Array.from({ length: 10 }, (_, i) => snap(`d${String(i + 1).padStart(2, '0')}`, (i + 1) * 10));
const d = (n: number): Snapshot => daily[n - 1]!;

describe('candidatePairs', () => {
  test('the default policy is 2 older and 1 newer', () => {
    assert.deepEqual(DEFAULT_CANDIDATE_POLICY, { olderParents: 2, newerParents: 1 });
  });

  test('full, the two nearest older and the nearest newer of the same lineage', () => {
    const pairs = candidatePairs(
      [d(6)],
      daily.filter((s) => s !== d(6)),
    );
    assert.deepEqual(show(pairs), ['d06 <- d04', 'd06 <- d05', 'd06 <- d07', 'd06 <- full'].sort());
  });

  test('exactly one full pair per needed snapshot, and it comes first for it', () => {
    const pairs = candidatePairs([d(2), d(9)], daily);
    for (const name of ['d02', 'd09']) {
      const own = pairs.filter((p) => p.snapshot.name === name);
      assert.equal(own.filter((p) => p.parent === null).length, 1);
      assert.equal(own[0]?.parent, null);
    }
  });

  test('at the edges of a lineage: fewer older or no newer', () => {
    const pairs = candidatePairs([d(1), d(2), d(10)], daily);
    // d02 is passed as usable (as if already there), so it is d01's newer candidate.
    assert.deepEqual(pairsOf(pairs, 'd01'), ['d01 <- d02', 'd01 <- full']);
    assert.deepEqual(pairsOf(pairs, 'd02'), ['d02 <- d01', 'd02 <- d03', 'd02 <- full']);
    assert.deepEqual(pairsOf(pairs, 'd10'), ['d10 <- d08', 'd10 <- d09', 'd10 <- full']);
  });

  test('a lone snapshot only gets a full send', () => {
    assert.deepEqual(show(candidatePairs([snap('only', 5)], [])), ['only <- full']);
  });

  test('orders by creation generation, not by input order or name', () => {
    // Names sort the other way round from creation.
    const s = [snap('z', 1), snap('y', 2), snap('x', 3), snap('w', 4), snap('v', 5), snap('u', 6)];
    const shuffled = [s[3]!, s[0]!, s[5]!, s[2]!, s[1]!];
    const pairs = candidatePairs([s[4]!], shuffled);
    assert.deepEqual(show(pairs), ['v <- u', 'v <- full', 'v <- w', 'v <- x'].sort());
  });

  test('other needed snapshots count as parents too', () => {
    const pairs = candidatePairs([d(4), d(5), d(6)], [d(1)]);
    assert.deepEqual(pairsOf(pairs, 'd04'), ['d04 <- d01', 'd04 <- full']);
    assert.deepEqual(pairsOf(pairs, 'd05'), ['d05 <- d01', 'd05 <- d04', 'd05 <- full']);
    assert.deepEqual(pairsOf(pairs, 'd06'), ['d06 <- d04', 'd06 <- d05', 'd06 <- full']);
  });

  test('never crosses lineages, even when generations interleave', () => {
    const home = [1, 3, 5, 7, 9].map((g) => snap(`home${g}`, g, 'HOME'));
    const root = [2, 4, 6, 8, 10].map((g) => snap(`root${g}`, g, 'ROOT'));
    const pairs = candidatePairs([home[2]!, root[2]!], [...home, ...root]);
    assert.deepEqual(pairsOf(pairs, 'home5'), ['home5 <- full', 'home5 <- home1', 'home5 <- home3', 'home5 <- home7']);
    assert.deepEqual(pairsOf(pairs, 'root6'), ['root6 <- full', 'root6 <- root2', 'root6 <- root4', 'root6 <- root8']);
    for (const p of pairs) {
      if (p.parent) assert.equal(p.parent.parentUuid, p.snapshot.parentUuid, `${p.snapshot.name} <- ${p.parent.name}`);
    }
  });

  test('received snapshots are of the lineage they were received from', () => {
    const here = [snap('a', 1, 'L'), snap('b', 2, 'L')];
    const received = snap('c', 3, null, { received: 'uuid-b' });
    const stranger = snap('s', 4, 'OTHER');
    const pairs = candidatePairs([received], [...here, stranger]);
    assert.deepEqual(show(pairs), ['c <- a', 'c <- b', 'c <- full']);
  });

  test('never pairs a snapshot with itself, even when it is also listed as a usable parent', () => {
    const pairs = candidatePairs([d(5), d(6)], daily);
    for (const p of pairs) assert.notEqual(p.parent?.uuid, p.snapshot.uuid, `${p.snapshot.name} <- itself`);
    // And nothing twice.
    const shown = pairs.map((p) => `${p.snapshot.uuid}<${p.parent?.uuid ?? ''}`);
    assert.equal(new Set(shown).size, shown.length);
    assert.deepEqual(pairsOf(pairs, 'd05'), ['d05 <- d03', 'd05 <- d04', 'd05 <- d06', 'd05 <- full']);
  });

  test('a newer snapshot is a candidate only once it is at the destination', () => {
    const needed = [d(4), d(5), d(6)];
    const there = [d(1), d(8)];
    const pairs = candidatePairs(needed, there);
    // d06's nearest newer at the destination is d08 (d07 is nowhere); d04 and d05 get it too.
    assert.deepEqual(pairsOf(pairs, 'd06'), ['d06 <- d04', 'd06 <- d05', 'd06 <- d08', 'd06 <- full']);
    assert.deepEqual(pairsOf(pairs, 'd04'), ['d04 <- d01', 'd04 <- d08', 'd04 <- full']);
  });

  test('a custom policy', () => {
    assert.deepEqual(show(candidatePairs([d(5)], daily, { olderParents: 0, newerParents: 0 })), ['d05 <- full']);
    assert.deepEqual(show(candidatePairs([d(5)], daily, { olderParents: 1, newerParents: 2 })), [
      'd05 <- d04',
      'd05 <- d06',
      'd05 <- d07',
      'd05 <- full',
    ]);
  });

  test('equal creation generations: the result does not depend on input order', () => {
    const same = [snap('b', 7), snap('a', 7), snap('c', 7), snap('d', 7), snap('e', 7)];
    const one = show(candidatePairs([same[2]!], same));
    const other = show(candidatePairs([same[2]!], [...same].reverse()));
    assert.deepEqual(one, other);
    assert.deepEqual(one, ['c <- a', 'c <- b', 'c <- d', 'c <- full']);
  });

  test('10,000 snapshots in one lineage, all needed', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => snap(`s${i}`, i + 1));
    // Not in creation order: newest first, with a few swapped.
    many.reverse();
    for (let i = 0; i + 997 < many.length; i += 991) [many[i], many[i + 997]] = [many[i + 997]!, many[i]!];
    const pairs = candidatePairs(many, []);
    // full + min(2, older) each; no newer: none is at the destination yet.
    assert.equal(pairs.length, 10_000 + (2 * 10_000 - (2 + 1)));
    for (const p of pairs) {
      if (p.parent === null) continue;
      assert.notEqual(p.parent, p.snapshot);
      const distance = p.parent.creationGeneration - p.snapshot.creationGeneration;
      assert.ok(distance >= -2 && distance < 0, `${p.snapshot.name} <- ${p.parent.name}`);
    }
  });
});
