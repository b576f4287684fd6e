import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FsError } from '../../../src/fuse/fs-error.js';
import { snapshotReader } from '../../../src/fuse/snapshot-reader.js';
import type { SnapshotFiles } from '../../../src/model/store.js';

describe("snapshotReader: one way to read a snapshot's files, whatever the store", () => {
  test("through the store's own files (local, SSH); directories are EISDIR to open, other types EINVAL", async () => {
    const files: SnapshotFiles = {
      lstat: async (relative) => ({
        mode: relative === 'd' ? 0o040755 : relative === 'l' ? 0o120777 : 0o100644,
        uid: 0,
        gid: 0,
        size: 3,
        nlink: 1,
        rdev: 0,
        blksize: 4096,
        blocks: 1,
        atime: 0,
        mtime: 0,
        ctime: 0,
      }),
      readdir: async () => ['d', 'f'],
      readlink: async () => 'x',
      read: async (relative, offset, length) => {
        if (relative !== 'f') throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        return Buffer.from('abc').subarray(offset, offset + length);
      },
    };
    const reader = snapshotReader({ snapshotFiles: () => files }, 'snap')!;
    assert.deepEqual(await reader.readdir(''), ['d', 'f']);
    await assert.rejects(reader.open('d'), (e: unknown) => e instanceof FsError && e.errno === 'EISDIR');
    await assert.rejects(reader.open('l'), (e: unknown) => e instanceof FsError && e.errno === 'EINVAL');
    const file = await reader.open('f');
    const buffer = Buffer.alloc(3);
    assert.equal(await file.read(buffer, 3, 0), 3);
    assert.equal(buffer.toString(), 'abc');
    assert.equal((await reader.readToCompare('gone', 0, 3)).length, 0);
    assert.deepEqual(await reader.xattrs('f'), new Map());
  });

  test('a store that shows no files (S3): no reader', () => {
    assert.equal(snapshotReader({}, 'snap'), undefined);
  });
});
