import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  diffKey,
  formatInfoFile,
  infoKey,
  isStorableName,
  parseInfoFile,
  parseInventory,
  trashKey,
} from '../../../../src/stores/s3/s3-layout.js';

const A = '11111111-1111-1111-1111-111111111111';
const B = '22222222-2222-2222-2222-222222222222';
const C = '33333333-3333-3333-3333-333333333333';
const at = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

test('keys follow the original layout: prefix/name/to_from, None for a full stream', () => {
  assert.equal(diffKey('backup/host', 'daily/2026-11-28', A, null), `backup/host/daily/2026-11-28/${A}_None`);
  assert.equal(diffKey('', 's1', B, A), `s1/${B}_${A}`);
  assert.equal(infoKey('p', 's1'), 'p/s1.bs');
  assert.equal(trashKey(`p/s1/${A}_None`), `trash/p/s1/${A}_None`);
});

test('a listing becomes snapshots (effective UUID as uuid and received UUID) and diffs', () => {
  const inventory = parseInventory('p', [
    { key: `p/s2/${B}_${A}`, size: 10, lastModified: at(2), etag: null },
    { key: `p/s1/${A}_None`, size: 1000, lastModified: at(1), etag: null },
    { key: `p/s2/${B}_None`, size: 900, lastModified: at(3), etag: null },
    { key: 'p/s1.bs', size: 5, lastModified: at(1), etag: null },
    { key: 'p/README', size: 5, lastModified: at(1), etag: null },
    { key: `other/s3/${C}_None`, size: 5, lastModified: at(1), etag: null },
  ]);
  assert.deepEqual(
    inventory.snapshots.map((s) => [s.name, s.uuid, s.receivedUuid, s.creationGeneration]),
    [
      ['s1', A, A, 1],
      ['s2', B, B, 2],
    ],
  );
  assert.deepEqual(
    inventory.diffs.map((d) => [d.name, d.to, d.from, d.bytes]),
    [
      ['s1', A, null, 1000],
      ['s2', B, A, 10],
      ['s2', B, null, 900],
    ],
  );
  assert.deepEqual(inventory.ignored, ['p/README']);
});

test('nested snapshot names and the bucket root work; trash is never listed', () => {
  const inventory = parseInventory('', [
    { key: `daily/host/s1/${A}_None`, size: 1, lastModified: null, etag: null },
    { key: `trash/daily/host/s0/${C}_None`, size: 1, lastModified: null, etag: null },
  ]);
  assert.deepEqual(
    inventory.snapshots.map((s) => s.name),
    ['daily/host/s1'],
  );
  assert.equal(inventory.snapshots[0]!.createdAt, null);
});

test('names the layout could not read back are refused', () => {
  for (const bad of ['', 'a//b', '../x', 'a/./b', 'x.bs', 'a/']) assert.equal(isStorableName(bad), false, bad);
  for (const good of ['s1', 'daily/2026-11-28', 'with space', 'ünï']) assert.equal(isStorableName(good), true, good);
});

test('info files: the original format round-trips; unreadable lines are counted, not fatal', () => {
  const text = formatInfoFile([{ to: B, from: A, bytes: 1234 }]);
  assert.equal(text, `${B}\t${A}\t1234\n`);
  const parsed = parseInfoFile(`${text}garbage line\n${B}\t${C}\tnotanumber\n\n`);
  assert.deepEqual(parsed.sizes, [{ to: B, from: A, bytes: 1234 }]);
  assert.equal(parsed.bad, 2);
});
