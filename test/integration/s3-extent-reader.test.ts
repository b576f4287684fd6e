import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ExtentReader, type ReadableFile } from '../../src/stores/s3/extent-reader.js';
import { FaultProxy, s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { extentsOf, streamWithFiles } from '../support/stream-extents.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'extents';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('reading file bytes out of stored send streams with ranged GETs (s3rver)', s3Suite(), () => {
  let server: S3Server;
  let proxy: FaultProxy;
  let client: S3Client;
  const objects = new Map<string, Buffer>();
  const contents = new Map<string, Buffer>();
  const files = new Map<string, ReadableFile>();

  const put = (key: string, body: Buffer) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const gets = (key: string) => proxy.requests.filter((r) => r.method === 'GET' && r.url.includes(key)).length;
  const reader = (options: { readAheadBytes?: number; onCorrupt?: (m: string) => void } = {}) =>
    new ExtentReader({ client, bucket: BUCKET, endpoint: proxy.endpoint, backoffMs: 5, ...options });

  before(async () => {
    server = await startS3Server([BUCKET]);
    proxy = await new FaultProxy(server.endpoint).start();
    client = server.client(proxy.endpoint);
    // A large object (a 6 MiB file before the others), and a version 2 one.
    const layouts = {
      'p/a/1_None': streamWithFiles(
        [
          { path: 'large', size: 6 * MiB, writes: [{ offset: 0, length: 6 * MiB }] },
          { path: 'one', size: MiB, writes: [{ offset: 0, length: MiB }] },
          {
            path: 'holes',
            size: 2 * MiB + 5,
            writes: [
              { offset: 100, length: 200 * KiB },
              { offset: 512 * KiB, length: 48 * KiB },
              { offset: 700 * KiB + 3, length: 700 * KiB },
            ],
          },
          { path: 'odd', size: 100 * KiB, writes: [{ offset: 0, length: 100 * KiB }], chunk: 1000 },
        ],
        1,
      ),
      'p/b/2_None': streamWithFiles([{ path: 'v2', size: MiB + 77, writes: [{ offset: 77, length: MiB }] }], 2),
    };
    for (const [key, { stream, contents: made }] of Object.entries(layouts)) {
      await put(key, stream);
      objects.set(key, stream);
      for (const [path, { size, extents }] of extentsOf(stream, key)) {
        files.set(path, { id: `${key}:${path}`, size, extents });
        contents.set(path, made.get(path)!);
      }
    }
  });
  after(async () => {
    client?.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  test("bytes read at many offsets and lengths are the files' bytes, holes zeros, short at the end", async () => {
    const r = reader();
    const next = random(42);
    for (const path of ['large', 'one', 'holes', 'odd', 'v2']) {
      const file = files.get(path)!;
      const content = contents.get(path)!;
      assert.ok((await r.read(file, 0, file.size + 100)).equals(content), `${path} whole`);
      for (let i = 0; i < 60; i++) {
        const offset = Math.floor(next() * (file.size + 10));
        const length = [1, 7, 4096, 128 * KiB, 300 * KiB][i % 5]!;
        const got = await r.read(file, offset, length);
        assert.ok(got.equals(content.subarray(offset, offset + length)), `${path} at ${offset}+${length}`);
      }
      assert.equal((await r.read(file, file.size, 10)).length, 0);
      assert.equal((await r.read(file, 5, 0)).length, 0);
    }
  });

  test('a 1 MiB file out of a large object costs under 2 MiB; a random read of a few bytes about one command', async () => {
    const one = files.get('one')!;
    let r = reader();
    const parts: Buffer[] = [];
    for (let at = 0; at < one.size; at += 128 * KiB) parts.push(await r.read(one, at, 128 * KiB));
    assert.ok(Buffer.concat(parts).equals(contents.get('one')!));
    assert.ok(r.fetchedBytes < 2 * MiB, `fetched ${r.fetchedBytes} bytes`);
    assert.ok(r.fetchedBytes >= MiB);

    r = reader();
    assert.ok((await r.read(one, 0, MiB)).equals(contents.get('one')!));
    assert.ok(r.fetchedBytes < 2 * MiB, `fetched ${r.fetchedBytes} bytes in one read`);

    r = reader();
    const large = files.get('large')!;
    const got = await r.read(large, 3 * MiB + 12345, 5);
    assert.ok(got.equals(contents.get('large')!.subarray(3 * MiB + 12345, 3 * MiB + 12350)));
    assert.ok(r.fetchedBytes <= 48 * KiB + 100, `fetched ${r.fetchedBytes} bytes for 5`);
  });

  test('a file read in order (128 KiB at a time, as through the mount) is read ahead: fewer GETs than reads', async () => {
    const large = files.get('large')!;
    const r = reader();
    const before = gets('p/a/1_None');
    let reads = 0;
    const parts: Buffer[] = [];
    for (let at = 0; at < large.size; at += 128 * KiB, reads++) parts.push(await r.read(large, at, 128 * KiB));
    const requests = gets('p/a/1_None') - before;
    assert.ok(Buffer.concat(parts).equals(contents.get('large')!));
    assert.ok(requests * 4 <= reads, `${requests} GETs for ${reads} reads`);
    assert.ok(r.fetchedBytes < large.size + 256 * KiB, `fetched ${r.fetchedBytes} of ${large.size}`);
  });

  test('a body cut short and a 503 are retried; the bytes are still right', async () => {
    const holes = files.get('holes')!;
    const r = reader();
    let faults = 0;
    proxy.rule = (method, url) => {
      if (method !== 'GET' || !url.includes('p/a/1_None') || faults >= 2) return undefined;
      faults++;
      return faults === 1 ? { kind: 'cut-response', afterBytes: 70 * KiB } : { kind: 'status', status: 503 };
    };
    try {
      assert.ok((await r.read(holes, 0, holes.size)).equals(contents.get('holes')!));
      assert.equal(faults, 2);
    } finally {
      proxy.rule = () => undefined;
    }
  });

  test('a corrupted byte in one command answers EIO for reads of that command only, says where, and the rest reads', async () => {
    const key = 'p/a/1_None';
    const large = files.get('large')!;
    const victim = large.extents[20]!;
    const damaged = Buffer.from(objects.get(key)!);
    damaged[victim.dataStart + 1000] = damaged[victim.dataStart + 1000]! ^ 0x20;
    await put(key, damaged);
    try {
      const reasons: string[] = [];
      const r = reader({ onCorrupt: (m) => reasons.push(m) });
      await assert.rejects(r.read(large, victim.fileOffset + 10, 100), (error: NodeJS.ErrnoException) => {
        assert.equal(error.code, 'EIO');
        assert.match(
          error.message,
          new RegExp(`s3://${BUCKET}/${key} is corrupt: the write command at byte ${victim.commandStart} .*CRC32C`),
        );
        return true;
      });
      assert.equal(reasons.length, 1);
      assert.match(reasons[0]!, new RegExp(`at byte ${victim.commandStart}`));
      // A read across it fails too; reads around it, and of other files in the same object, work.
      await assert.rejects(r.read(large, victim.fileOffset - 10, 100), { code: 'EIO' });
      const content = contents.get('large')!;
      const beforeIt = await r.read(large, victim.fileOffset - 128 * KiB, 128 * KiB);
      assert.ok(beforeIt.equals(content.subarray(victim.fileOffset - 128 * KiB, victim.fileOffset)));
      const afterIt = victim.fileOffset + victim.length;
      assert.ok((await r.read(large, afterIt, 128 * KiB)).equals(content.subarray(afterIt, afterIt + 128 * KiB)));
      assert.ok((await r.read(files.get('one')!, 0, MiB)).equals(contents.get('one')!));
      // Not cached as an answer: asked again, it is fetched and checked again.
      await assert.rejects(r.read(large, victim.fileOffset, 1), { code: 'EIO' });
    } finally {
      await put(key, objects.get(key)!);
    }
  });

  test('a deleted object answers EIO naming it; other objects still read', async () => {
    const key = 'p/b/2_None';
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    try {
      const r = reader();
      await assert.rejects(r.read(files.get('v2')!, 100, 10), (error: NodeJS.ErrnoException) => {
        assert.equal(error.code, 'EIO');
        assert.match(error.message, new RegExp(`^s3://${BUCKET}/${key} is gone: `));
        return true;
      });
      assert.ok((await r.read(files.get('odd')!, 0, 5000)).equals(contents.get('odd')!.subarray(0, 5000)));
    } finally {
      await put(key, objects.get(key)!);
    }
  });
});
