import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decodeIndex, encodeIndex, InvalidIndexError } from '../../../src/sendstream/index-codec.js';
import { IndexingTap } from '../../../src/sendstream/indexing-tap.js';
import {
  EXTENT_FIELDS,
  Extent,
  lookup,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type SnapshotIndex,
} from '../../../src/sendstream/snapshot-index.js';
import { cmd, fullStream, incrementalStream, newUuid } from '../../support/send-stream-builder.js';

const T = (sec: number) => ({ sec, nsec: 500_000_000 });

/** Indexes `stream` passing through an IndexingTap in chunks of `chunk` bytes. */
async function indexOf(
  stream: Buffer,
  object: { to: string; from: string | null },
  known: SnapshotIndex[] = [],
  chunk = 4096,
): Promise<SnapshotIndex> {
  const tap = new IndexingTap(object, async (uuid) => known.find((i) => i.to === uuid));
  const pieces: Buffer[] = [];
  for (let at = 0; at < stream.length; at += chunk) pieces.push(stream.subarray(at, at + chunk));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    tap,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  assert.deepEqual(Buffer.concat(out), stream, 'the stream passes unchanged');
  return tap.index();
}

/** A file's bytes read the way the mount will: extents from the objects, holes as zeros. */
function contents(index: SnapshotIndex, objects: Map<string, Buffer>, path: string): Buffer {
  const found = lookup(index, path);
  assert.ok(found, `${path} exists`);
  const { inode } = found;
  assert.equal(inode.mode & S_IFMT, S_IFREG);
  const out = Buffer.alloc(inode.size);
  const e = inode.extents!;
  for (let at = 0; at < e.length; at += EXTENT_FIELDS) {
    const o = index.objects[e[at + Extent.Object]!]!;
    const object = objects.get(`${o.to}_${o.from}`)!;
    assert.equal(object.length, o.bytes);
    const start = e[at + Extent.DataStart]!;
    object.copy(out, e[at + Extent.FileOffset]!, start, start + e[at + Extent.Length]!);
  }
  return out;
}

const A = randomBytes(100_000);
const B = randomBytes(70_000);

function fullChain(): { uuid: string; stream: Buffer } {
  const uuid = newUuid();
  const stream = fullStream('snap', uuid, 1, [
    cmd.utimes('', T(10), T(11), T(12)),
    cmd.chmod('', 0o755),
    cmd.mkdir('o257-1-0', 257),
    cmd.rename('o257-1-0', 'dir'),
    cmd.mkfile('o258-1-0', 258),
    cmd.rename('o258-1-0', 'dir/a'),
    cmd.write('dir/a', 0, A.subarray(0, 49152)),
    cmd.write('dir/a', 49152, A.subarray(49152)),
    cmd.link('dir/a-link', 'dir/a'),
    cmd.mkfile('sparse', 259),
    cmd.write('sparse', 1_000_000, B.subarray(0, 10)),
    cmd.truncate('sparse', 2_000_000),
    cmd.symlink('lnk', '../outside/\xff', 260),
    cmd.mknod('null', S_IFCHR | 0o666, 0x103, 261),
    cmd.mkfifo('fifo', 262),
    cmd.setXattr('dir/a', 'user.k', Buffer.from([0, 1, 2])),
    cmd.chown('dir/a', 1000, 100),
    cmd.chmod('dir/a', 0o4750),
    cmd.utimes('dir/a', T(1), T(2), T(3)),
  ]);
  return { uuid, stream };
}

test('a full stream indexes to its complete tree: types, modes, owners, times, links, xattrs and bytes', async () => {
  const { uuid, stream } = fullChain();
  const index = await indexOf(stream, { to: uuid, from: null });
  assert.equal(index.unbrowsable, undefined);
  const objects = new Map([[`${uuid}_null`, stream]]);
  const root = lookup(index, '')!.inode;
  assert.equal(root.mode, S_IFDIR | 0o755);
  assert.deepEqual([root.atime, root.mtime, root.ctime], [10_500, 11_500, 12_500]);
  assert.deepEqual([...root.entries!.keys()].sort(), ['dir', 'fifo', 'lnk', 'null', 'sparse']);
  const a = lookup(index, 'dir/a')!;
  assert.equal(a.inode.mode, S_IFREG | 0o4750);
  assert.deepEqual([a.inode.uid, a.inode.gid, a.inode.mtime], [1000, 100, 2500]);
  assert.deepEqual(a.inode.xattrs, new Map([['user.k', Buffer.from([0, 1, 2])]]));
  assert.equal(lookup(index, 'dir/a-link')!.number, a.number, 'a hard link is the same inode');
  assert.deepEqual(contents(index, objects, 'dir/a'), A);
  const sparse = contents(index, objects, 'sparse');
  assert.equal(sparse.length, 2_000_000);
  assert.deepEqual(sparse.subarray(1_000_000, 1_000_010), B.subarray(0, 10));
  assert.equal(
    sparse.subarray(0, 1_000_000).some((b) => b !== 0),
    false,
    'the hole reads as zeros',
  );
  assert.equal(lookup(index, 'sparse')!.inode.extents!.length, EXTENT_FIELDS, 'holes take no extents');
  const lnk = lookup(index, 'lnk')!.inode;
  // Names and targets are bytes as latin1 characters: "ÿ" is the two UTF-8 bytes the builder wrote.
  assert.deepEqual([lnk.mode & S_IFMT, lnk.target, lnk.size], [S_IFLNK, '../outside/\xc3\xbf', 13]);
  assert.deepEqual([lookup(index, 'null')!.inode.mode, lookup(index, 'null')!.inode.rdev], [S_IFCHR | 0o666, 0x103]);
  assert.equal(lookup(index, 'fifo')!.inode.mode & S_IFMT, S_IFIFO);
});

test('an incremental stream applies renames, unlinks, overwrites, truncates and clones to its parent, which stays as it was', async () => {
  const { uuid: parentUuid, stream: parentStream } = fullChain();
  const parent = await indexOf(parentStream, { to: parentUuid, from: null });
  const before = await encodeIndex(parent);
  const uuid = newUuid();
  const C = randomBytes(5000);
  const stream = incrementalStream('snap2', uuid, 2, parentUuid, 1, [
    cmd.rename('dir', 'moved'),
    cmd.unlink('moved/a-link'),
    cmd.write('moved/a', 50_000, C), // overwrite in the middle
    cmd.mkfile('o300-2-0', 300),
    cmd.rename('o300-2-0', 'copy'),
    // from the parent (which still has dir/a unchanged) and from the snapshot being built
    cmd.clone('copy', 0, 65536, parentUuid, 1, 'dir/a', 0),
    cmd.clone('copy', 65536, 10_000, uuid, 2, 'moved/a', 45_000),
    cmd.truncate('moved/a', 60_000),
    cmd.rmdir('fifo'), // a fifo "rmdir" is refused by receive; here it just removes the name
    cmd.removeXattr('moved/a', 'user.k'),
  ]);
  const index = await indexOf(stream, { to: uuid, from: parentUuid }, [parent], 777);
  assert.equal(index.unbrowsable, undefined);
  const objects = new Map([
    [`${parentUuid}_null`, parentStream],
    [`${uuid}_${parentUuid}`, stream],
  ]);
  const expectedA = Buffer.concat([A.subarray(0, 50_000), C, A.subarray(55_000, 60_000)]);
  assert.deepEqual(contents(index, objects, 'moved/a'), expectedA);
  const expectedCopy = Buffer.concat([A.subarray(0, 65536), expectedA.subarray(45_000, 55_000)]);
  assert.deepEqual(contents(index, objects, 'copy'), expectedCopy);
  assert.equal(lookup(index, 'dir'), undefined);
  assert.equal(lookup(index, 'moved/a-link'), undefined);
  assert.equal(lookup(index, 'moved/a')!.inode.xattrs, undefined);
  assert.equal(index.objects.length, 2, 'extents point into both objects of the chain');
  assert.deepEqual(await encodeIndex(parent), before, 'the parent index is unchanged');
  assert.deepEqual(contents(parent, objects, 'dir/a'), A);
});

test('the stored form round-trips, and what a hostile bucket could put in it is refused', async () => {
  const { uuid, stream } = fullChain();
  const index = await indexOf(stream, { to: uuid, from: null });
  const decoded = await decodeIndex(await encodeIndex(index));
  assert.deepEqual(decoded, index);

  const tamper = async (edit: (lines: unknown[][]) => void): Promise<unknown> => {
    const text = (await import('node:zlib'))
      .gunzipSync(await encodeIndex(index))
      .toString('utf8')
      .trimEnd()
      .split('\n');
    const rows = text.map((l) => JSON.parse(l));
    edit(rows);
    return decodeIndex(gzipSync(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`)).catch((e: unknown) => e);
  };
  const dirRow = (rows: unknown[][]) => rows.findIndex((r, n) => n > 1 && Array.isArray(r) && ((r[0] as number) & S_IFMT) === S_IFDIR);
  const fileRow = (rows: unknown[][]) => rows.findIndex((r, n) => n > 0 && Array.isArray(r) && ((r[0] as number) & S_IFMT) === S_IFREG);
  const cases: [string, (rows: unknown[][]) => void][] = [
    [
      'a directory entry naming its own ancestor',
      (rows) => {
        const d = dirRow(rows);
        (rows[d]![8] as unknown[]).push('loop', 0 + 0, 'up', d - 1);
      },
    ],
    [
      'an extent outside its command',
      (rows) => {
        const f = fileRow(rows);
        (rows[f]![8] as number[])[Extent.DataStart] = 999_999_999;
      },
    ],
    [
      'a name with a slash',
      (rows) => {
        (rows[1]![8] as unknown[])[0] = 'a/b';
      },
    ],
    [
      'a name ".."',
      (rows) => {
        (rows[1]![8] as unknown[])[0] = '..';
      },
    ],
    [
      'an unknown type',
      (rows) => {
        rows[2]![0] = 0o170777;
      },
    ],
    [
      'a wrong inode count',
      (rows) => {
        (rows[0] as unknown as Record<string, number>).inodes = 3;
      },
    ],
  ];
  for (const [what, edit] of cases) assert.ok((await tamper(edit)) instanceof InvalidIndexError, what);
  assert.ok((await decodeIndex(Buffer.from('not gzip')).catch((e: unknown) => e)) instanceof InvalidIndexError);
});

test('what an index cannot serve makes it say so, and the stream still passes whole', async () => {
  const uuid = newUuid();
  const compressed = fullStream(
    's',
    uuid,
    1,
    [
      cmd.mkfile('f', 257),
      cmd.encodedWrite('f', 0, { unencodedFileLen: 4096, unencodedLen: 4096, unencodedOffset: 0, compression: 2 }, randomBytes(100)),
    ],
    { version: 2 },
  );
  assert.match((await indexOf(compressed, { to: uuid, from: null })).unbrowsable ?? '', /compressed extents/);
  const orphan = incrementalStream('s', uuid, 2, newUuid(), 1, [cmd.mkfile('f', 300)]);
  assert.match((await indexOf(orphan, { to: uuid, from: 'x' })).unbrowsable ?? '', /index of its parent .* is not available/);
  const cut = fullStream('s', uuid, 1, [cmd.mkfile('f', 257)], { withoutEnd: true });
  assert.match((await indexOf(cut, { to: uuid, from: null })).unbrowsable ?? '', /ended before its end command/);
  const bad = Buffer.from(fullStream('s', uuid, 1, [cmd.mkfile('f', 257), cmd.write('f', 0, 'hello')]));
  bad[bad.length - 20]! ^= 0xff;
  assert.match((await indexOf(bad, { to: uuid, from: null })).unbrowsable ?? '', /could not be parsed: .*bad CRC/);
  // A crafted stream cannot make the tree something a reader would loop in or refuse.
  const dirLink = fullStream('s', uuid, 1, [cmd.mkdir('d', 257), cmd.mkdir('d/e', 258), cmd.link('d/e/up', 'd')]);
  assert.match((await indexOf(dirLink, { to: uuid, from: null })).unbrowsable ?? '', /link of a directory/);
  const longName = fullStream('s', uuid, 1, [cmd.mkfile('x'.repeat(256), 257)]);
  assert.match((await indexOf(longName, { to: uuid, from: null })).unbrowsable ?? '', /longer than NAME_MAX/);
  const dotdot = fullStream('s', uuid, 1, [cmd.mkfile('../escape', 257)]);
  assert.match((await indexOf(dotdot, { to: uuid, from: null })).unbrowsable ?? '', /"\.\." component/);
  // A directory moved into itself leaves the tree (as rename(2) would refuse): nothing loops.
  const intoItself = await indexOf(fullStream('s', uuid, 1, [cmd.mkdir('a', 257), cmd.mkdir('a/b', 258), cmd.rename('a', 'a/b/a')]), {
    to: uuid,
    from: null,
  });
  assert.deepEqual(await decodeIndex(await encodeIndex(intoItself)), intoItself);
  assert.equal(lookup(intoItself, 'a'), undefined);
  const foreignClone = fullStream('s', uuid, 1, [cmd.mkfile('f', 257), cmd.clone('f', 0, 4096, newUuid(), 1, 'g', 0)]);
  assert.match((await indexOf(foreignClone, { to: uuid, from: null })).unbrowsable ?? '', /clones data from snapshot .* not available/);
});

test('fallocate punches holes and extends sizes as fallocate(2) does', async () => {
  const uuid = newUuid();
  const data = randomBytes(20_000);
  const stream = fullStream(
    's',
    uuid,
    1,
    [
      cmd.mkfile('f', 257),
      cmd.write('f', 0, data),
      cmd.fallocate('f', 3, 4096, 8192),
      cmd.fallocate('f', 0, 0, 50_000),
      cmd.fallocate('f', 1, 0, 90_000),
    ],
    { version: 2 },
  );
  const index = await indexOf(stream, { to: uuid, from: null });
  const bytes = contents(index, new Map([[`${uuid}_null`, stream]]), 'f');
  const expected = Buffer.alloc(50_000);
  data.copy(expected);
  expected.fill(0, 4096, 12_288);
  assert.deepEqual(bytes, expected);
});
