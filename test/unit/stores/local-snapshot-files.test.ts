import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { localSnapshotFiles } from '../../../src/stores/btrfs/local-snapshot-files.js';

describe('localSnapshotFiles: a local snapshot read without following the entry named', () => {
  test('lists, stats, reads and reads links; a link is never followed; a FIFO is not opened', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'local-files-'));
    try {
      mkdirSync(`${dir}/sub`);
      writeFileSync(`${dir}/sub/file`, 'hello world');
      symlinkSync('sub/file', `${dir}/link`);
      symlinkSync('sub', `${dir}/dirlink`);
      execFileSync('mkfifo', [`${dir}/fifo`]);
      const asked: string[] = [];
      const files = localSnapshotFiles(dir, async (file) => (asked.push(file), new Map([['user.k', Buffer.from('v')]])));
      assert.deepEqual((await files.readdir('')).sort(), ['dirlink', 'fifo', 'link', 'sub']);
      assert.equal((await files.lstat('sub/file')).size, 11);
      assert.equal((await files.lstat('link')).mode & 0o170000, 0o120000, 'lstat, not stat');
      assert.equal(await files.readlink('link'), 'sub/file');
      assert.equal((await files.read('sub/file', 6, 100)).toString(), 'world');
      assert.equal((await files.read('sub/file', 0, 5)).toString(), 'hello');
      await assert.rejects(files.read('link', 0, 5), { code: 'ELOOP' }, 'a link is not read through');
      await assert.rejects(files.readdir('dirlink'), { code: 'ENOTDIR' }, 'a link to a directory is not listed');
      await assert.rejects(files.read('sub', 0, 5), { code: 'EISDIR' });
      await assert.rejects(files.read('fifo', 0, 5), { code: 'EINVAL' }, 'a FIFO is refused, not opened (that would block)');
      const open = await files.open!('sub/file');
      const buffer = Buffer.alloc(5);
      assert.equal(await open.read(buffer, 5, 6), 5, 'an open file reads many times without naming it again');
      assert.equal(buffer.toString(), 'world');
      assert.equal(await open.read(buffer, 5, 11), 0, 'at its end');
      await open.close();
      await assert.rejects(files.open!('link'), { code: 'ELOOP' });
      await assert.rejects(files.open!('fifo'), { code: 'EINVAL' });
      await assert.rejects(files.open!('sub'), { code: 'EISDIR' });
      await assert.rejects(files.lstat('missing'), { code: 'ENOENT' });
      await assert.rejects(files.xattrs!('missing'), { code: 'ENOENT' });
      assert.deepEqual(await files.xattrs!('sub/file'), new Map([['user.k', Buffer.from('v')]]));
      assert.deepEqual(asked, [`${dir}/sub/file`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
