import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSubvolumeShow } from '../../../src/stores/btrfs/parse-subvolume-show.js';

const RECEIVED = `backup/one
\tName: \t\t\tone
\tUUID: \t\t\tde777360-66eb-684d-bf7b-337ce89a94dc
\tParent UUID: \t\t-
\tReceived UUID: \t\t4c38cedb-6e25-c944-bff7-ade613224759
\tCreation time: \t\t2026-11-28 23:49:26 +0130
\tSubvolume ID: \t\t259
\tGeneration: \t\t13
\tGen at creation: \t12
\tFlags: \t\t\treadonly
\tSnapshot(s):
`;

test('reads uuid, received uuid, read-only flag and the zoned creation time', () => {
  const show = parseSubvolumeShow(RECEIVED);
  assert.equal(show.uuid, 'de777360-66eb-684d-bf7b-337ce89a94dc');
  assert.equal(show.receivedUuid, '4c38cedb-6e25-c944-bff7-ade613224759');
  assert.equal(show.isReadOnly, true);
  assert.equal(show.parentUuid, null);
  assert.equal(show.generation, 13);
  assert.equal(show.creationGeneration, 12);
  assert.equal(show.createdAt?.toISOString(), '2026-11-28T22:19:26.000Z');
});

test('a writable subvolume without received uuid (a partial receive)', () => {
  const show = parseSubvolumeShow(RECEIVED.replace('4c38cedb-6e25-c944-bff7-ade613224759', '-').replace('readonly', '-'));
  assert.equal(show.receivedUuid, null);
  assert.equal(show.isReadOnly, false);
  // "Parent UUID" and "Received UUID" lines must not be mistaken for "UUID".
  assert.equal(show.uuid, 'de777360-66eb-684d-bf7b-337ce89a94dc');
});
