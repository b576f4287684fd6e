import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermissionError } from '../../../src/model/errors.js';
import { requestId, toServerRequest } from '../../../src/remote/server-request.js';

const SNAPSHOT = {
  name: 'one',
  uuid: '11111111-2222-4333-8444-555555555555',
  parentUuid: null,
  receivedUuid: null,
  generation: 3,
  creationGeneration: 2,
  createdAt: '2026-01-02T03:04:05.000Z',
};

describe('requests as the server keeps them', () => {
  test('only the fields an operation reads survive, each of its type', () => {
    const request = toServerRequest({
      id: 7,
      op: 'browse',
      snapshot: 'one',
      path: 'a/b',
      action: 'read',
      offset: 5,
      length: '10',
      junk: [{}, {}, {}],
      __proto__: { evil: true },
    });
    assert.deepEqual(request, { id: 7, op: 'browse', snapshot: 'one', path: 'a/b', action: 'read', offset: 5 });
  });

  test('snapshots are re-encoded from their checked fields; a malformed one becomes {} (refused when used)', () => {
    const request = toServerRequest({ id: 1, op: 'measure', snapshot: { ...SNAPSHOT, extra: 'x'.repeat(1000) }, parent: { name: 'p' } });
    assert.deepEqual(request.snapshot, SNAPSHOT);
    assert.deepEqual(request.parent, {});
    assert.equal(toServerRequest({ id: 1, op: 'measure', snapshot: SNAPSHOT, parent: null }).parent, null);
  });

  test('an id that is not a safe integer is answered as null, not echoed', () => {
    for (const id of ['x', { a: 1 }, 1.5, 2 ** 60, null, undefined]) assert.equal(requestId({ id }), null, JSON.stringify(id));
    assert.equal(requestId({ id: 42 }), 42);
  });

  test('more clone sources than any client sends are refused', () => {
    assert.throws(
      () => toServerRequest({ id: 1, op: 'send', snapshot: SNAPSHOT, cloneSources: Array.from({ length: 17 }, () => SNAPSHOT) }),
      PermissionError,
    );
    assert.equal(toServerRequest({ id: 1, op: 'send', snapshot: SNAPSHOT, cloneSources: [SNAPSHOT, SNAPSHOT] }).cloneSources?.length, 2);
  });
});
