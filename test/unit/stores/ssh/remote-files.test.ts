import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermissionError } from '../../../../src/model/errors.js';
import { checkRelativePath } from '../../../../src/remote/browse.js';
import { BROWSE_BLOCK_BYTES, RemoteFiles } from '../../../../src/stores/ssh/remote-files.js';

/** A server answering browse requests from an in-memory file, counting requests. */
function fakeServer(file: Buffer) {
  const asked: Record<string, unknown>[] = [];
  let failNext = false;
  const request = async (args: Record<string, unknown>): Promise<unknown> => {
    asked.push(args);
    if (failNext) {
      failNext = false;
      throw new Error('connection lost');
    }
    if (args.path === 'missing') return { errno: 'ENOENT' };
    switch (args.action) {
      case 'read': {
        const offset = Number(args.offset);
        return { data: file.subarray(offset, offset + Number(args.length)) };
      }
      case 'readdir':
        return {
          entries: [
            { name: 'f', attributes: { mode: 0o100644, size: file.length } },
            { name: 'gone', attributes: null },
          ],
        };
      case 'lstat':
        return args.path === 'f' ? { mode: 0o100644, size: file.length } : { mode: 0o40755, size: 4096 };
      default:
        return {};
    }
  };
  return { request, asked, failOnce: () => (failNext = true) };
}

describe('RemoteFiles: an SSH snapshot read through the server, cached', () => {
  const file = Buffer.from(Array.from({ length: 2.5 * BROWSE_BLOCK_BYTES }, (_, i) => (i * 7) % 251));

  test('reads are served from whole blocks: across a boundary, short at the end, nothing past it', async () => {
    const server = fakeServer(file);
    const files = new RemoteFiles(server.request, 'nas').of('snap');
    assert.ok((await files.read('f', 0, file.length)).equals(file));
    assert.equal(server.asked.length, 3, 'three blocks, one request each (no size known: no read-ahead)');
    const at = BROWSE_BLOCK_BYTES - 100;
    assert.ok((await files.read('f', at, 300)).equals(file.subarray(at, at + 300)));
    assert.ok((await files.read('f', file.length - 10, 4096)).equals(file.subarray(file.length - 10)));
    assert.equal((await files.read('f', file.length + 5, 4096)).length, 0);
    assert.equal(server.asked.length, 3, 'all from the cache');
  });

  test('a file read in order gets its next blocks asked for ahead, never past its end', async () => {
    const big = Buffer.alloc(15 * BROWSE_BLOCK_BYTES, 7);
    const server = fakeServer(big);
    const files = new RemoteFiles(server.request, 'nas').of('snap');
    await files.lstat('f');
    const reads = () => server.asked.filter((a) => a.action === 'read').map((a) => Number(a.offset) / BROWSE_BLOCK_BYTES);
    assert.equal((await files.read('f', 0, 131072)).length, 131072);
    assert.deepEqual(reads(), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'the block needed, then eight ahead');
    for (let offset = 131072; offset < big.length; offset += 131072) assert.equal((await files.read('f', offset, 131072)).length, 131072);
    assert.deepEqual(reads(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], 'each block once, none past the end');
    // A read elsewhere (a seek) asks only for what it needs.
    const other = fakeServer(big);
    const seeking = new RemoteFiles(other.request, 'nas').of('snap');
    await seeking.lstat('f');
    await seeking.read('f', 5 * BROWSE_BLOCK_BYTES + 10, 100);
    assert.deepEqual(
      other.asked.filter((a) => a.action === 'read').map((a) => Number(a.offset) / BROWSE_BLOCK_BYTES),
      [5],
    );
  });

  test('a listing brings its entries attributes: lstat after readdir asks nothing', async () => {
    const server = fakeServer(file);
    const files = new RemoteFiles(server.request, 'nas').of('snap');
    assert.deepEqual(await files.readdir(''), ['f', 'gone']);
    assert.equal((await files.lstat('f')).size, file.length);
    assert.equal(server.asked.length, 1);
    await files.lstat('gone'); // no attributes came for it: asked
    assert.equal(server.asked.length, 2);
  });

  test('errno answers are kept and reject with that code; a failed request is asked again', async () => {
    const server = fakeServer(file);
    const files = new RemoteFiles(server.request, 'nas').of('snap');
    for (let i = 0; i < 2; i++) await assert.rejects(files.lstat('missing'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    assert.equal(server.asked.length, 1);
    server.failOnce();
    await assert.rejects(files.lstat('sub'), /connection lost/);
    assert.equal((await files.lstat('sub')).mode, 0o40755);
    assert.equal(server.asked.length, 3);
  });

  test('clear() forgets everything (after a delete)', async () => {
    const server = fakeServer(file);
    const remote = new RemoteFiles(server.request, 'nas');
    await remote.of('snap').lstat('sub');
    remote.clear();
    await remote.of('snap').lstat('sub');
    assert.equal(server.asked.length, 2);
  });

  test('the server path check refuses anything that could leave the snapshot', () => {
    for (const ok of ['', 'a', 'a/b c/ü', '.hidden', 'a..b']) checkRelativePath(ok);
    for (const bad of ['/etc', '..', 'a/../..', 'a/./b', './a', 'a//b', 'a/', 'a\0b', 'x'.repeat(20000)]) {
      assert.throws(() => checkRelativePath(bad), PermissionError, JSON.stringify(bad));
    }
  });
});
