import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SnapshotFiles } from '../../../src/model/store.js';
import { localSnapshotFiles } from '../../../src/stores/btrfs/local-snapshot-files.js';
import { compareWithDirectory, treeXattrReader } from '../../support/compare-trees.js';
import { isCI } from '../../support/prerequisites.js';

/** Why this machine cannot run the test (no `attr` tools, no user xattrs in the temp dir), or false. */
function missing(directory: string): string | false {
  try {
    writeFileSync(path.join(directory, 'probe'), '');
    execFileSync('setfattr', ['-n', 'user.probe', '-v', '1', path.join(directory, 'probe')], { stdio: 'ignore' });
    rmSync(path.join(directory, 'probe'));
    return false;
  } catch {
    if (isCI) throw new Error('prerequisite missing in CI: setfattr/getfattr (package attr) with user xattrs in the temp dir');
    return 'setfattr/getfattr (package attr) or user xattrs in the temp dir are missing';
  }
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'buttersink-compare-'));
after(() => rmSync(directory, { recursive: true, force: true }));

// The integration test (test/integration/random-chain.test.ts) runs the comparator on random
// btrfs chains; this one needs no root, so CI's unit run proves the comparator too.
describe('compareWithDirectory: what a SnapshotFiles answers against the real tree', { skip: missing(directory) }, () => {
  const root = path.join(directory, 'tree');
  let files: SnapshotFiles;

  before(async () => {
    mkdirSync(path.join(root, 'dir with space/ünï'), { recursive: true });
    writeFileSync(path.join(root, 'big'), Buffer.alloc(300_000, 7).fill(9, 100_000, 100_001));
    writeFileSync(path.join(root, 'empty'), '');
    writeFileSync(path.join(root, 'dir with space/ünï/small'), 'hello');
    linkSync(path.join(root, 'big'), path.join(root, 'dir with space/hard link'));
    symlinkSync('../nowhere', path.join(root, 'dir with space/dangling'));
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    execFileSync('setfattr', ['-n', 'user.bin', '-v', '0x00ff00', path.join(root, 'big')]);
    execFileSync('setfattr', ['-n', 'user.empty', path.join(root, 'dir with space')]);
    files = localSnapshotFiles(root, await treeXattrReader(root));
  });

  test('equal trees have no differences', async () => {
    assert.deepEqual(await compareWithDirectory(files, root), []);
  });

  test('a byte wrong only through open() is found, and named by path and offset', async () => {
    const wrong: SnapshotFiles = {
      ...files,
      open: async (rel) => {
        const open = await files.open!(rel);
        return {
          read: async (buffer, length, position) => {
            const count = await open.read(buffer, length, position);
            if (rel === 'big' && position <= 200_000 && position + count > 200_000)
              buffer[200_000 - position] = buffer[200_000 - position]! ^ 1;
            return count;
          },
          close: () => open.close(),
        };
      },
    };
    const differences = await compareWithDirectory(wrong, root);
    assert.ok(differences.length > 0 && differences.every((d) => d.startsWith('big: open().read at ')), differences.join('\n'));
    assert.match(differences[0]!, /byte 200000 is 6, expected 7/);
  });

  test('an nlink, an extra xattr, a FIFO read that blocks and an answer for a missing name are found', async () => {
    const wrong: SnapshotFiles = {
      ...files,
      lstat: async (rel) => {
        if (rel.startsWith('not-in-the-snapshot')) return files.lstat('');
        const attributes = await files.lstat(rel);
        return rel === 'dir with space/hard link' ? { ...attributes, nlink: 1 } : attributes;
      },
      xattrs: async (rel) => (rel === 'empty' ? new Map([['user.extra', Buffer.from('x')]]) : files.xattrs!(rel)),
      read: (rel, offset, length) => (rel === 'fifo' ? new Promise(() => {}) : files.read(rel, offset, length)),
    };
    const differences = await compareWithDirectory(wrong, root, { refusalTimeout: 100 });
    assert.deepEqual(differences.map((d) => d.replace(/:.*/, '')).sort(), [
      'dir with space/hard link',
      'empty',
      'fifo',
      'not-in-the-snapshot \u{1f6ab}',
    ]);
    assert.deepEqual((await compareWithDirectory(wrong, root, { refusalTimeout: 100, limit: 2 })).length, 2);
  });
});
