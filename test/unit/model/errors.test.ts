import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toFsError } from '../../../src/fuse/fs-error.js';
import {
  BusyError,
  ExitCode,
  InterruptedError,
  messageOf,
  NoSuchSnapshotError,
  PermissionError,
  SnapshotExistsError,
  StillNeededError,
  StoreError,
  TransferError,
  UsageError,
  type ButtersinkError,
} from '../../../src/model/errors.js';
import { fromWireError, toWireError } from '../../../src/remote/wire-errors.js';

describe('error kinds: one table per boundary (exit code, errno, wire)', () => {
  const cases: [ButtersinkError, number, string, string][] = [
    [new UsageError('u'), ExitCode.Usage, 'EIO', 'usage'],
    [new PermissionError('p'), ExitCode.Permission, 'EACCES', 'permission'],
    [new StoreError('s'), ExitCode.Store, 'EIO', 'store'],
    [new StillNeededError('n', ['b']), ExitCode.Store, 'EBUSY', 'store'],
    [new SnapshotExistsError('e'), ExitCode.Store, 'EEXIST', 'store'],
    [new NoSuchSnapshotError('x'), ExitCode.Store, 'EPERM', 'store'],
    [new TransferError('t'), ExitCode.Transfer, 'EIO', 'transfer'],
    [new BusyError('b'), ExitCode.Busy, 'EBUSY', 'busy'],
    [new InterruptedError('i'), ExitCode.Interrupted, 'EINTR', 'interrupted'],
  ];
  for (const [error, exitCode, errno, wire] of cases) {
    test(`${error.name} (${error.kind}): exit ${exitCode}, ${errno} in the mount, "${wire}" on the wire`, () => {
      assert.equal(error.exitCode, exitCode);
      assert.equal(toFsError(error).errno, errno);
      assert.equal(toWireError(error).kind, wire);
      // Back on the client, the same exit code (a remote usage error means the ends disagree: a store error).
      assert.equal(fromWireError(toWireError(error), 'remote').exitCode, wire === 'usage' ? ExitCode.Store : exitCode);
    });
  }

  test('a full disk is ENOSPC in the mount, whatever error carried it; an untyped error is EIO', () => {
    assert.equal(toFsError(new TransferError('btrfs receive: ERROR: writing to f failed: No space left on device')).errno, 'ENOSPC');
    assert.equal(toFsError(new Error('boom')).errno, 'EIO');
    assert.equal(toWireError(new Error('boom')).kind, 'internal');
  });

  test('messageOf: the message of anything thrown', () => {
    assert.equal(messageOf(new Error('a')), 'a');
    assert.equal(messageOf('plain'), 'plain');
    assert.equal(messageOf(undefined), 'undefined');
    assert.equal(messageOf({ code: 'X' }), '[object Object]');
  });
});
