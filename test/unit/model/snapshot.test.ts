import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CorrelationIndex, effectiveUuid, isCorrelated, type Snapshot } from '../../../src/model/snapshot.js';

function snap(name: string, uuid: string, receivedUuid: string | null = null): Snapshot {
  return { name, uuid, parentUuid: null, receivedUuid, generation: 1, creationGeneration: 1, createdAt: null };
}

describe('effectiveUuid', () => {
  test('received UUID when set, else own UUID', () => {
    assert.equal(effectiveUuid(snap('a', 'U')), 'U');
    assert.equal(effectiveUuid(snap('a', 'U', 'R')), 'R');
  });
});

describe('isCorrelated', () => {
  const original = snap('orig', 'O');
  const copy = snap('copy', 'C', 'O'); // received from `original`
  const copy2 = snap('copy2', 'C2', 'O'); // another copy of it, elsewhere
  const relay = snap('relay', 'Z', 'C'); // received from `copy` if `copy` were not itself received

  test('the same snapshot', () => {
    assert.equal(isCorrelated(original, original), true);
    assert.equal(isCorrelated(snap('x', 'O'), snap('y', 'O')), true);
  });

  test("one's uuid is the other's receivedUuid, either way round", () => {
    assert.equal(isCorrelated(original, copy), true);
    assert.equal(isCorrelated(copy, original), true);
    assert.equal(isCorrelated(copy, relay), true);
    assert.equal(isCorrelated(relay, copy), true);
  });

  test('a shared receivedUuid', () => {
    assert.equal(isCorrelated(copy, copy2), true);
    assert.equal(isCorrelated(copy2, copy), true);
  });

  test('no false positives', () => {
    assert.equal(isCorrelated(snap('a', 'A'), snap('b', 'B')), false);
    // Both never received: null received UUIDs do not match each other.
    assert.equal(isCorrelated(snap('a', 'A', null), snap('b', 'B', null)), false);
    // Received from different originals.
    assert.equal(isCorrelated(snap('a', 'A', 'X'), snap('b', 'B', 'Y')), false);
    // Correlation is not transitive through a third snapshot: relay ~ copy ~ original, but relay !~ original.
    assert.equal(isCorrelated(relay, original), false);
    assert.equal(isCorrelated(original, relay), false);
    // A received UUID equal to the other's received UUID only counts when non-null.
    assert.equal(isCorrelated({ uuid: 'A', receivedUuid: null }, { uuid: 'B', receivedUuid: null }), false);
  });
});

describe('CorrelationIndex', () => {
  test('finds by own uuid and by receivedUuid, either way', () => {
    const destination = [snap('d1', 'D1', 'S1'), snap('d2', 'D2', 'S2'), snap('d3', 'D3')];
    const index = new CorrelationIndex(destination);
    // A source snapshot whose uuid is a destination's receivedUuid.
    assert.deepEqual(index.find(snap('s1', 'S1')), [destination[0]]);
    // A source snapshot received from a destination snapshot.
    assert.deepEqual(index.find(snap('back', 'B', 'D3')), [destination[2]]);
    // Its own uuid.
    assert.deepEqual(index.find(snap('d2 again', 'D2', 'S2')), [destination[1]]);
  });

  test('a shared receivedUuid, and two snapshots sharing it are both found, in inventory order', () => {
    const a = snap('a', 'A', 'ORIG');
    const other = snap('other', 'X', 'ELSE');
    const b = snap('b', 'B', 'ORIG');
    const index = new CorrelationIndex([a, other, b]);
    assert.deepEqual(index.find(snap('q', 'Q', 'ORIG')), [a, b]);
    assert.deepEqual(index.find(snap('orig', 'ORIG')), [a, b]);
    assert.equal(index.has(snap('q', 'Q', 'ORIG')), true);
  });

  test('each match once, even when it answers to both keys', () => {
    const d = snap('d', 'D', 'S');
    const index = new CorrelationIndex([d]);
    // `s` has uuid S (= d.receivedUuid) and receivedUuid D (= d.uuid): both keys lead to d.
    assert.deepEqual(index.find(snap('s', 'S', 'D')), [d]);
    // And one snapshot listed whose received UUID is its own UUID.
    const odd = snap('odd', 'O', 'O');
    assert.deepEqual(new CorrelationIndex([odd]).find(snap('x', 'O')), [odd]);
  });

  test('no false positives', () => {
    const index = new CorrelationIndex([snap('a', 'A', 'R1'), snap('b', 'B'), snap('c', 'C', 'R2')]);
    assert.deepEqual(index.find(snap('x', 'X')), []);
    assert.deepEqual(index.find(snap('x', 'X', 'R3')), []);
    assert.equal(index.has(snap('x', 'X', null)), false);
    // Only direct matches: y's received UUID is a's own UUID; r1copy shares a's received UUID
    // but nothing with y.
    const index2 = new CorrelationIndex([snap('r1copy', 'K', 'R1'), snap('a', 'A', 'R1')]);
    assert.deepEqual(
      index2.find(snap('y', 'Y', 'A')).map((s) => s.name),
      ['a'],
    );
  });

  test('agrees with isCorrelated on random inventories', () => {
    const ids = ['A', 'B', 'C', 'D', 'E', 'F'];
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const randomSnap = (i: number): Snapshot =>
      snap(`s${i}`, ids[random(ids.length)]! + (random(2) ? '' : `${i}`), random(3) === 0 ? null : ids[random(ids.length)]!);
    for (let round = 0; round < 200; round++) {
      const among = Array.from({ length: 1 + random(6) }, (_, i) => randomSnap(i));
      const index = new CorrelationIndex(among);
      const probe = randomSnap(99);
      const found = index.find(probe);
      assert.equal(new Set(found).size, found.length, 'no duplicates');
      assert.deepEqual(
        found.map((s) => s.name).sort(),
        among.filter((s) => isCorrelated(probe, s)).map((s) => s.name),
        JSON.stringify({ probe, among }),
      );
    }
  });

  test('find lists matches in inventory order, whichever key found them', () => {
    // The documented contract: "Every snapshot correlated with `s`, in inventory order".
    const x = snap('x', 'A'); // matches the probe through probe.receivedUuid
    const y = snap('y', 'C', 'B'); // matches the probe through probe.uuid
    const index = new CorrelationIndex([x, y]);
    assert.deepEqual(
      index.find(snap('probe', 'B', 'A')).map((s) => s.name),
      ['x', 'y'],
    );
  });

  test('an empty index finds nothing', () => {
    assert.deepEqual(new CorrelationIndex([]).find(snap('a', 'A', 'B')), []);
  });
});
