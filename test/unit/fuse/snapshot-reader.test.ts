import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FsError } from '../../../src/fuse/fs-error.js';
import { XattrReader } from '../../../src/fuse/read-xattrs.js';
import { snapshotReader } from '../../../src/fuse/snapshot-reader.js';
import type { SnapshotFiles, Store } from '../../../src/model/store.js';

describe('snapshotReader: one way to read a snapshot\'s files, whatever the store', () => {
  test('a local store: its real directory; a missing file compares as empty', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'reader-'));
    try {
      mkdirSync(`${dir}/snap/sub`, { recursive: true });
      writeFileSync(`${dir}/snap/sub/file`, 'hello world');
      symlinkSync('sub/file', `${dir}/snap/link`);
      const store = { snapshotDirectory: ({ name }: { name: string }) => path.join(dir, name) } as unknown as Store;
      const reader = snapshotReader(store, 'snap', new XattrReader())!;
      assert.deepEqual((await reader.readdir('')).sort(), ['link', 'sub']);
      assert.equal((await reader.lstat('sub/file')).size, 11);
      assert.equal(await reader.readlink('link'), 'sub/file');
      const file = await reader.open('sub/file');
      const buffer = Buffer.alloc(5);
      assert.equal(await file.read(buffer, 5, 6), 5);
      assert.equal(buffer.toString(), 'world');
      await file.close();
      await assert.rejects(reader.open('link'), { code: 'ELOOP' }, 'no symlink is followed');
      assert.equal((await reader.readToCompare('sub/file', 0, 5)).toString(), 'hello');
      assert.equal((await reader.readToCompare('no-such-file', 0, 5)).length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a store with files of its own (SSH): through them; directories are EISDIR to open', async () => {
    const files: SnapshotFiles = {
      lstat: async (relative) => ({ mode: relative === 'd' ? 0o040755 : 0o100644, uid: 0, gid: 0, size: 3, nlink: 1, rdev: 0, blksize: 4096, blocks: 1, atime: 0, mtime: 0, ctime: 0 }),
      readdir: async () => ['d', 'f'],
      readlink: async () => 'x',
      read: async (relative, offset, length) => {
        if (relative !== 'f') throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        return Buffer.from('abc').subarray(offset, offset + length);
      },
    };
    const store = { snapshotFiles: () => files } as unknown as Store;
    const reader = snapshotReader(store, 'snap', new XattrReader())!;
    assert.deepEqual(await reader.readdir(''), ['d', 'f']);
    await assert.rejects(reader.open('d'), (e: unknown) => e instanceof FsError && e.errno === 'EISDIR');
    const file = await reader.open('f');
    const buffer = Buffer.alloc(3);
    assert.equal(await file.read(buffer, 3, 0), 3);
    assert.equal(buffer.toString(), 'abc');
    assert.equal((await reader.readToCompare('gone', 0, 3)).length, 0);
    assert.deepEqual(await reader.xattrs('f'), new Map());
  });

  test('a store that shows no files (S3): no reader', () => {
    assert.equal(snapshotReader({} as Store, 'snap', new XattrReader()), undefined);
  });
});
