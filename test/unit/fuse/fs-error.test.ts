import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toFsError } from '../../../src/fuse/fs-error.js';
import { BusyError, InterruptedError, TransferError } from '../../../src/model/errors.js';

describe('toFsError: the one place errors become errnos', () => {
  test('typed errors keep their message; a full destination is ENOSPC, a failed transfer EIO', () => {
    const full = toFsError(
      new TransferError('receiving t1: btrfs receive failed: ERROR: writing to bulk.bin failed: No space left on device'),
    );
    assert.equal(full.errno, 'ENOSPC');
    assert.match(full.message, /No space left on device/);
    const nodeFull = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
    assert.equal(toFsError(nodeFull).errno, 'ENOSPC');
    assert.equal(toFsError(new TransferError('the connection to nas was lost')).errno, 'EIO');
    assert.equal(toFsError(new BusyError('locked')).errno, 'EBUSY');
    assert.equal(toFsError(new InterruptedError('stopped')).errno, 'EINTR');
    assert.equal(toFsError(new Error('anything else')).errno, 'EIO');
  });
});
