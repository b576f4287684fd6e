import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../src/model/snapshot.js';
import { loadTokenKey, parentToken, withParentTokens } from '../../../src/remote/parent-uuid-tokens.js';

const LIVE = '526f2ff3-56b2-2a47-943d-125100006b62';
const OTHER = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const KEY = Buffer.alloc(32, 7);

function snap(name: string, uuid: string, parentUuid: string | null): Snapshot {
  return { name, uuid, parentUuid, receivedUuid: null, generation: 1, creationGeneration: 1, createdAt: null };
}

describe('parents outside the directory shown as tokens', () => {
  const a = snap('a', 'aaaaaaaa-0000-4000-8000-000000000001', LIVE);
  const b = snap('b', 'aaaaaaaa-0000-4000-8000-000000000002', LIVE);
  const c = snap('c', 'aaaaaaaa-0000-4000-8000-000000000003', a.uuid);
  const d = snap('d', 'aaaaaaaa-0000-4000-8000-000000000004', OTHER);
  const e = snap('e', 'aaaaaaaa-0000-4000-8000-000000000005', null);

  test('siblings share a token that is not the parent UUID; a listed parent and no parent stay as they are', () => {
    const [ta, tb, tc, td, te] = withParentTokens([a, b, c, d, e], KEY, '/srv/snaps');
    assert.equal(ta!.parentUuid, tb!.parentUuid);
    assert.notEqual(ta!.parentUuid, LIVE);
    assert.notEqual(td!.parentUuid, ta!.parentUuid);
    assert.equal(tc!.parentUuid, a.uuid);
    assert.equal(te!.parentUuid, null);
    assert.deepEqual({ ...ta!, parentUuid: LIVE }, a, 'nothing else changes');
  });

  test('a token is a version-8 UUID, stable for one key and directory, different for another', () => {
    const token = parentToken(LIVE, KEY, '/srv/snaps');
    assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parentToken(LIVE, KEY, '/srv/snaps'), token);
    assert.notEqual(parentToken(LIVE, Buffer.alloc(32, 8), '/srv/snaps'), token);
    assert.notEqual(parentToken(LIVE, KEY, '/srv/other'), token);
  });

  test('the key is made once, 0600, and read back; a key file others may read is not used', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-key-'));
    try {
      const file = path.join(dir, 'sub', 'parent-token.key');
      const key = await loadTokenKey(file);
      assert.equal(key.length, 32);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(await loadTokenKey(file), key);
      const readable = path.join(dir, 'readable.key');
      writeFileSync(readable, Buffer.alloc(32, 1), { mode: 0o644 });
      assert.notDeepEqual(await loadTokenKey(readable), Buffer.alloc(32, 1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
