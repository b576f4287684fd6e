import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../../src/model/snapshot.js';
import { receiveSources } from '../../../../src/stores/btrfs/receive-sources.js';

const snap = (name: string, uuid: string, receivedUuid: string | null = null): Snapshot => ({
  name,
  uuid,
  receivedUuid,
  parentUuid: null,
  generation: 1,
  creationGeneration: 1,
  createdAt: null,
});
const sub = (uuid: string, receivedUuid: string | null = null) => ({ uuid, receivedUuid });

describe('receiveSources: UUIDs that btrfs receive resolves to exactly one of the directory`s snapshots', () => {
  test('a received snapshot answers to its received UUID and its own; a local one to its own', () => {
    const a = snap('a', 'ua', 'ra');
    const b = snap('b', 'ub');
    const { byUuid, ambiguous } = receiveSources([a, b], [sub('ua', 'ra'), sub('ub'), sub('live')]);
    assert.deepEqual([...byUuid].map(([k, s]) => [k, s.name]).sort(), [
      ['ra', 'a'],
      ['ua', 'a'],
      ['ub', 'b'],
    ]);
    assert.equal(ambiguous.size, 0);
  });

  test('a subvolume outside the directory is never a source, read-only or not', () => {
    const { byUuid } = receiveSources([snap('a', 'ua')], [sub('ua'), sub('outside-ro'), sub('outside-rw')]);
    assert.equal(byUuid.has('outside-ro'), false);
    assert.equal(byUuid.has('outside-rw'), false);
  });

  test('a received UUID that another subvolume also carries is ambiguous: receive could take either', () => {
    const a = snap('a', 'ua', 'r');
    const { byUuid, ambiguous } = receiveSources([a], [sub('ua', 'r'), sub('copy-elsewhere', 'r')]);
    assert.equal(byUuid.has('r'), false);
    assert.match(ambiguous.get('r')!, /2 subvolumes on this filesystem carry received UUID r/);
    assert.equal(byUuid.get('ua')?.name, 'a');
  });

  test("a snapshot's own UUID that a subvolume elsewhere carries as received UUID resolves there, so it is refused", () => {
    // receive looks among received UUIDs first: a backup of `a` elsewhere on the filesystem wins.
    const { byUuid, ambiguous } = receiveSources([snap('a', 'ua')], [sub('ua'), sub('backup-of-a', 'ua')]);
    assert.equal(byUuid.has('ua'), false);
    assert.match(ambiguous.get('ua')!, /outside the receiving directory/);
  });
});
