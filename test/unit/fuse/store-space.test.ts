import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { statfsReply, UNKNOWN_SPACE } from '../../../src/fuse/store-space.js';

describe('statfsReply: what df shows for a store', () => {
  test('a local filesystem: 4 KiB blocks, size, free and available as they are', () => {
    const reply = statfsReply({ totalBytes: 1024 ** 3, freeBytes: 512 * 1024 ** 2, availableBytes: 500 * 1024 ** 2 }, false);
    assert.equal(reply.frsize, 4096);
    assert.equal(reply.blocks * reply.frsize, 1024 ** 3);
    assert.equal(reply.bfree * reply.frsize, 512 * 1024 ** 2);
    assert.equal(reply.bavail * reply.frsize, 500 * 1024 ** 2);
    assert.equal(reply.flag, 0);
    assert.equal(reply.namemax, 255);
  });

  test('sizes beyond 32-bit block counts grow the block size instead (fuse-native passes u32)', () => {
    const reply = statfsReply(UNKNOWN_SPACE, true);
    assert.ok(reply.blocks <= 0xffffffff && reply.blocks > 0);
    assert.equal(reply.blocks * reply.frsize, 2 ** 50, 'df shows 1 PiB');
    assert.equal(reply.bavail, reply.blocks, 'all of it free');
    assert.equal(reply.flag, 1, 'ST_RDONLY on a read-only mount');
  });
});
