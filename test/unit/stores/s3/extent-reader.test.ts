import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ExtentReader } from '../../../../src/stores/s3/extent-reader.js';
import type { ReadableFile } from '../../../../src/stores/s3/extent-plan.js';
import { extentsOf, streamWithFiles } from '../../../support/stream-extents.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** An in-memory bucket answering ranged GETs as S3 does, in 16 KiB chunks, recording each. */
function fakeBucket(objects: Map<string, Buffer>) {
  const gets: { key: string; range: string }[] = [];
  let fault: ((index: number) => Error | 'cut' | undefined) | undefined;
  const client = {
    async send(command: GetObjectCommand) {
      const { Key, Range } = command.input;
      const index = gets.length;
      gets.push({ key: Key!, range: Range! });
      const object = objects.get(Key!);
      if (object === undefined)
        throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(Range!)!.map(Number) as [number, number, number];
      const body = object.subarray(from, to + 1);
      const happening = fault?.(index);
      if (happening instanceof Error) throw happening;
      const chunks: Buffer[] = [];
      for (let at = 0; at < body.length; at += 16 * KiB) chunks.push(body.subarray(at, at + 16 * KiB));
      const cut = happening === 'cut';
      return {
        ContentLength: body.length,
        ETag: '"e"',
        Body: Readable.from(
          (async function* () {
            for (const [i, chunk] of chunks.entries()) {
              if (cut && i === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
              yield chunk;
            }
          })(),
        ),
      };
    },
  } as unknown as S3Client;
  return { client, gets, setFault: (f: typeof fault) => (fault = f) };
}

function setup(options: { readAheadBytes?: number; cacheBytes?: number } = {}) {
  const { stream, contents } = streamWithFiles([
    { path: 'big', size: 3 * MiB, writes: [{ offset: 0, length: 3 * MiB }] },
    {
      path: 'holes',
      size: 600 * KiB,
      writes: [
        { offset: 10, length: 100 * KiB },
        { offset: 300 * KiB + 7, length: 150 * KiB },
      ],
    },
  ]);
  const objects = new Map([['p/snap/x_None', stream]]);
  const bucket = fakeBucket(objects);
  const corrupt: string[] = [];
  const reader = new ExtentReader({
    client: bucket.client,
    bucket: 'b',
    endpoint: 'http://s3.test',
    backoffMs: 1,
    onCorrupt: (m) => corrupt.push(m),
    ...options,
  });
  const index = extentsOf(stream, 'p/snap/x_None');
  const file = (path: string): ReadableFile => ({ id: `i:${path}`, ...index.get(path)! });
  return { reader, bucket, objects, stream, contents, corrupt, file, index };
}

describe('ExtentReader (with an in-memory bucket)', () => {
  test("bytes at any offset and length are the file's, holes are zeros, reads past the end are short", async () => {
    const { reader, contents, file } = setup();
    const holes = contents.get('holes')!;
    for (const [offset, length] of [
      [0, 10],
      [0, 20],
      [5, 100 * KiB],
      [100 * KiB, 300 * KiB],
      [300 * KiB, 1],
      [300 * KiB + 7, 1],
      [599 * KiB, 4 * KiB],
      [600 * KiB, 1],
      [700 * KiB, 1],
      [12, 0],
    ] as const) {
      const got = await reader.read(file('holes'), offset, length);
      assert.ok(got.equals(holes.subarray(offset, offset + length)), `holes at ${offset}+${length}`);
    }
    const big = contents.get('big')!;
    const got = await reader.read(file('big'), 49 * KiB, 1 * MiB);
    assert.ok(got.equals(big.subarray(49 * KiB, 49 * KiB + MiB)));
  });

  test('a read in order fetches ahead in coalesced GETs: fewer GETs than reads, each command once', async () => {
    const { reader, bucket, contents, file } = setup({ readAheadBytes: 1 * MiB });
    const big = contents.get('big')!;
    const parts: Buffer[] = [];
    for (let at = 0; at < big.length; at += 128 * KiB) parts.push(await reader.read(file('big'), at, 128 * KiB));
    assert.ok(Buffer.concat(parts).equals(big));
    assert.ok(bucket.gets.length <= 8, `${bucket.gets.length} GETs for ${parts.length} reads`);
    assert.ok(reader.fetchedBytes < big.length * 1.01, `fetched ${reader.fetchedBytes}`);
  });

  test('concurrent reads of one command share its GET', async () => {
    const { reader, bucket, file } = setup({ readAheadBytes: 0 });
    await Promise.all([reader.read(file('big'), 100, 10), reader.read(file('big'), 200, 10), reader.read(file('big'), 300, 10)]);
    assert.equal(bucket.gets.length, 1);
  });

  test('the cache is bounded by bytes: past it, the oldest commands are fetched again', async () => {
    const { reader, bucket, file } = setup({ readAheadBytes: 0, cacheBytes: 100 * KiB });
    for (const at of [0, MiB, 2 * MiB]) await reader.read(file('big'), at + 100, 10);
    assert.equal(bucket.gets.length, 3);
    await reader.read(file('big'), 2 * MiB + 200, 10);
    assert.equal(bucket.gets.length, 3, 'the newest two commands (~96 KiB) are kept');
    await reader.read(file('big'), 200, 10);
    assert.equal(bucket.gets.length, 4, 'the first was evicted');
  });

  test('clear() forgets the cached commands: the next read fetches again', async () => {
    const { reader, bucket, file } = setup({ readAheadBytes: 0 });
    await reader.read(file('big'), 100, 10);
    await reader.read(file('big'), 100, 10);
    assert.equal(bucket.gets.length, 1);
    reader.clear();
    await reader.read(file('big'), 100, 10);
    assert.equal(bucket.gets.length, 2);
  });

  test('a body cut short is asked for again from the first command not yet complete', async () => {
    const { reader, bucket, contents, file } = setup({ readAheadBytes: 0 });
    bucket.setFault((i) => (i === 0 ? 'cut' : undefined));
    const got = await reader.read(file('big'), 0, 200 * KiB);
    assert.ok(got.equals(contents.get('big')!.subarray(0, 200 * KiB)));
    assert.equal(bucket.gets.length, 2);
    const [first, second] = bucket.gets.map((g) => Number(/bytes=(\d+)/.exec(g.range)![1]));
    assert.equal(second, first, 'the cut came inside the first command (16 KiB in): asked again from its start');
  });

  test('a corrupt command fails the reads that touch it only, and says where', async () => {
    const { reader, objects, stream, corrupt, file, index } = setup({ readAheadBytes: 0 });
    const third = index.get('big')!.extents[2]!;
    const damaged = Buffer.from(stream);
    damaged[third.dataStart + 5] = damaged[third.dataStart + 5]! ^ 0xff;
    objects.set('p/snap/x_None', damaged);
    await assert.rejects(reader.read(file('big'), third.fileOffset + 100, 10), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EIO');
      assert.match(
        error.message,
        new RegExp(`s3://b/p/snap/x_None is corrupt: the write command at byte ${third.commandStart} .*bad CRC32C`),
      );
      return true;
    });
    assert.equal(corrupt.length, 1);
    assert.equal((await reader.read(file('big'), 0, 10)).length, 10, 'the command before it reads');
    assert.equal((await reader.read(file('holes'), 0, 100)).length, 100, 'another file reads');
  });

  test('a deleted object answers EIO naming it; a malformed index answers EIO without a GET', async () => {
    const { reader, objects, bucket, corrupt, file } = setup();
    objects.clear();
    await assert.rejects(reader.read(file('big'), 0, 10), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EIO');
      assert.match(error.message, /^s3:\/\/b\/p\/snap\/x_None is gone: NoSuchKey/);
      return true;
    });
    const gets = bucket.gets.length;
    const huge: ReadableFile = {
      id: 'i:huge',
      size: 10,
      extents: [{ fileOffset: 0, length: 10, key: 'k', commandStart: 0, commandBytes: 2 ** 40, dataStart: 100 }],
    };
    await assert.rejects(reader.read(huge, 0, 10), { code: 'EIO', message: /the index of i:huge is malformed/ });
    assert.equal(bucket.gets.length, gets);
    assert.match(corrupt.at(-1)!, /i:huge/);
    const sized = file('big');
    await reader.read(sized, 0, 1).catch(() => {});
    await assert.rejects(reader.read({ ...sized, size: Number.NaN }, 0, 10), { code: 'EIO', message: /its size NaN/ });
  });

  test('an aborted read rejects as interrupted at once', async () => {
    const { reader, file } = setup();
    const controller = new AbortController();
    const pending = reader.read(file('big'), 0, 10, controller.signal);
    controller.abort();
    await assert.rejects(pending, { name: 'InterruptedError' });
  });
});
