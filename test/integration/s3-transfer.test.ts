import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command, S3Client as SdkClient, type S3Client } from '@aws-sdk/client-s3';
import { ExitCode, TransferError } from '../../src/model/errors.js';
import { downloadStream } from '../../src/stores/s3/download-stream.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { createS3Client, DEFAULT_S3_SETTINGS } from '../../src/stores/s3/s3-settings.js';
import { UploadJournal } from '../../src/stores/s3/upload-journal.js';
import { META_SHA256, partSize, uploadStream, type UploadTarget } from '../../src/stores/s3/upload-stream.js';
import { FaultProxy, s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';

const MiB = 1024 * 1024;
const BUCKET = 'transfers';

/** `data` as a stream of 64 KiB chunks, failing with `error` after `failAfter` bytes if given. */
function source(data: Buffer, failAfter?: number): AsyncIterable<Buffer> {
  return (async function* () {
    for (let at = 0; at < data.length; at += 64 * 1024) {
      if (failAfter !== undefined && at >= failAfter) throw new Error('source broke off');
      yield data.subarray(at, at + 64 * 1024);
    }
  })();
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('S3 uploads and downloads against s3rver (through a fault proxy)', s3Suite(), () => {
  let server: S3Server;
  let proxy: FaultProxy;
  let client: S3Client;
  let cache: string;

  before(async () => {
    server = await startS3Server([BUCKET]);
    proxy = await new FaultProxy(server.endpoint).start();
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: server.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: server.env.AWS_SECRET_ACCESS_KEY,
    });
    client = createS3Client({ ...DEFAULT_S3_SETTINGS, endpoint: proxy.endpoint, region: 'us-east-1' });
    cache = mkdtempSync(path.join(process.env.BUTTERSINK_TEST_ROOT ?? os.tmpdir(), 's3-cache-'));
  });
  after(async () => {
    client?.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  const target = (key: string, extra: Partial<UploadTarget> = {}): UploadTarget => ({
    client,
    endpoint: proxy.endpoint,
    bucket: BUCKET,
    key,
    serverSideEncryption: 'AES256',
    storageClass: undefined,
    journal: new UploadJournal(cache),
    partBytes: 5 * MiB,
    concurrency: 2,
    ...extra,
  });

  const puts = (key: string): number =>
    proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes(key) && r.url.includes('partNumber')).length;

  test('part sizes double every 1,000 parts, so 10,000 default parts hold the 5 TiB S3 allows', () => {
    assert.equal(partSize(5 * MiB, 1), 5 * MiB);
    assert.equal(partSize(5 * MiB, 1000), 5 * MiB);
    assert.equal(partSize(5 * MiB, 1001), 10 * MiB);
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += partSize(20 * MiB, n);
    assert.ok(total > 5 * 1024 ** 4, `${total}`);
    assert.equal(partSize(5 * 1024 ** 3, 9999), 5 * 1024 ** 3);
  });

  test('an empty stream and a small one are single PUTs carrying their SHA-256', async () => {
    for (const [key, data] of [
      ['small/empty', Buffer.alloc(0)],
      ['small/one', randomBytes(300_000)],
    ] as const) {
      const result = await uploadStream(source(data), target(key));
      assert.equal(result.bytes, data.length);
      const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.equal(head.ContentLength, data.length);
      assert.equal(head.Metadata?.[META_SHA256], sha256(data));
      assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key })), data);
    }
  });

  test('a stream of exactly two parts is a multipart upload; the SHA-256 is added after completion', async () => {
    const data = randomBytes(10 * MiB);
    await uploadStream(source(data), target('multi/exact'));
    assert.equal(puts('multi/exact'), 2);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'multi/exact' }));
    assert.equal(head.Metadata?.[META_SHA256], sha256(data));
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'multi/exact' })), data);
  });

  test('parts are signed without hashing their bodies, and bound to them by a signed Content-MD5', async () => {
    // SigV4 would hash every part again for x-amz-content-sha256; UNSIGNED-PAYLOAD spares that
    // pass, and the body stays checked: the server compares it with its Content-MD5 (AWS and
    // radosgw do; s3rver checks neither), which the signature covers, so it cannot be swapped.
    const data = randomBytes(11 * MiB);
    const before = proxy.requests.length;
    await uploadStream(source(data), target('multi/unsigned'));
    const parts = proxy.requests.slice(before).filter((r) => r.method === 'PUT' && r.url.includes('partNumber'));
    assert.equal(parts.length, 3);
    for (const part of parts) {
      assert.equal(part.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
      assert.equal(part.headers['content-md5'], part.bodyMd5, 'Content-MD5 is the MD5 of the body as sent');
      const signed = /SignedHeaders=([^,]+)/.exec(String(part.headers.authorization))?.[1]?.split(';') ?? [];
      assert.ok(signed.includes('content-md5') && signed.includes('x-amz-content-sha256'), `signed: ${signed.join(';')}`);
    }
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'multi/unsigned' })), data);
  });

  test('5xx and throttling answers are retried; the object is complete', async () => {
    const data = randomBytes(12 * MiB);
    let failures = 0;
    proxy.rule = (method, url) => {
      if (method === 'PUT' && url.includes('partNumber=2') && failures < 3) {
        failures += 1;
        return { kind: 'status', status: failures === 2 ? 503 : 500 };
      }
      return undefined;
    };
    try {
      await uploadStream(source(data), target('faults/5xx'));
    } finally {
      proxy.rule = () => undefined;
    }
    assert.equal(failures, 3);
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'faults/5xx' })), data);
  });

  test('a stream of many parts, one of them retried, is stored intact', async () => {
    // 8 parts, 2 at a time, part buffers reused (test/unit/stores/s3/upload-stream.test.ts
    // checks that directly); part 3 fails twice before it is stored.
    const data = randomBytes(38 * MiB);
    let failures = 0;
    proxy.rule = (method, url) =>
      method === 'PUT' && url.includes('partNumber=3') && failures++ < 2 ? { kind: 'status', status: 500 } : undefined;
    try {
      const result = await uploadStream(source(data), target('multi/many'));
      assert.equal(result.bytes, data.length);
    } finally {
      proxy.rule = () => undefined;
    }
    assert.equal(failures, 3);
    assert.equal(puts('multi/many'), 10);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'multi/many' }));
    assert.equal(head.Metadata?.[META_SHA256], sha256(data));
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'multi/many' })), data);
  });

  test('a connection reset mid-part is retried', async () => {
    const data = randomBytes(11 * MiB);
    let resets = 0;
    proxy.rule = (method, url) =>
      method === 'PUT' && url.includes('partNumber=1') && resets++ === 0 ? { kind: 'reset-request' } : undefined;
    try {
      await uploadStream(source(data), target('faults/reset'));
    } finally {
      proxy.rule = () => undefined;
    }
    assert.ok(resets >= 2);
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'faults/reset' })), data);
  });

  test('an interrupted upload resumes: parts already stored are not sent again, nothing is visible before', async () => {
    const data = randomBytes(23 * MiB);
    const key = 'resume/object';
    await assert.rejects(uploadStream(source(data, 12 * MiB), target(key)), /source broke off/);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'resume/' }));
    assert.equal(listed.KeyCount ?? 0, 0, 'an interrupted upload is not visible');
    const journal = JSON.parse(readFileSync(path.join(cache, 's3-uploads', readdirSync(path.join(cache, 's3-uploads'))[0]!), 'utf8')) as {
      parts: unknown[];
    };
    assert.equal(journal.parts.length, 2, 'the two complete parts are journaled');

    const before = puts(key);
    const result = await uploadStream(source(data), target(key));
    assert.equal(result.resumedBytes, 10 * MiB);
    assert.equal(puts(key) - before, 3, 'only parts 3, 4 and 5 are sent');
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key })), data);
    assert.deepEqual(readdirSync(path.join(cache, 's3-uploads')), [], 'the journal entry is gone once complete');
  });

  test('a resumed upload whose bytes changed re-sends the parts that differ', async () => {
    const data = randomBytes(16 * MiB);
    const key = 'resume/changed';
    await assert.rejects(uploadStream(source(data, 11 * MiB), target(key)), /source broke off/);
    const changed = Buffer.from(data);
    changed[6 * MiB] = changed[6 * MiB]! ^ 0xff; // inside part 2
    const result = await uploadStream(source(changed), target(key));
    assert.equal(result.resumedBytes, 5 * MiB);
    assert.deepEqual(await readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key })), changed);
  });

  test('a download cut mid-body goes on from the byte where it stopped', async () => {
    const data = randomBytes(6 * MiB);
    await uploadStream(source(data), target('download/cut'));
    let cuts = 0;
    proxy.rule = (method, url) =>
      method === 'GET' && url.includes('download/cut') && cuts++ < 2 ? { kind: 'cut-response', afterBytes: 2 * MiB } : undefined;
    const retries: number[] = [];
    const before = proxy.requests.length;
    try {
      const got = await readAll(
        downloadStream(
          { client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'download/cut' },
          { backoffMs: 10, onRetry: (at) => retries.push(at) },
        ),
      );
      assert.deepEqual(got, data);
    } finally {
      proxy.rule = () => undefined;
    }
    assert.equal(retries.length, 2);
    assert.ok(retries[0]! > 0 && retries[0]! <= 2 * MiB, `resumed at ${retries[0]}`);
    const ranges = proxy.requests
      .slice(before)
      .filter((r) => r.url.includes('download/cut'))
      .map((r) => r.range);
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
  });

  test('a corrupted body fails the SHA-256 check, and its end is never passed on', async () => {
    const data = randomBytes(3 * MiB);
    await uploadStream(source(data), target('download/corrupt'));
    proxy.rule = (method, url) =>
      method === 'GET' && url.includes('download/corrupt') ? { kind: 'corrupt-response', offset: 1234 } : undefined;
    let received = 0;
    try {
      const stream = downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'download/corrupt' });
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) received += (chunk as Buffer).length;
        })(),
        (e: unknown) => e instanceof TransferError && /download\/corrupt is corrupt/.test(e.message),
      );
    } finally {
      proxy.rule = () => undefined;
    }
    assert.ok(received < data.length, `the consumer got ${received} of ${data.length} bytes`);
  });

  test('-d forgets unfinished uploads of ours: the next upload of that key starts afresh', async () => {
    const data = randomBytes(12 * MiB);
    const key = 'stale/p/s1/abc_None';
    await assert.rejects(uploadStream(source(data, 11 * MiB), target(key)), /source broke off/);
    const store = new S3Store({
      url: `s3://${BUCKET}/stale/p/`,
      bucket: BUCKET,
      prefix: 'stale/p',
      settings: { ...DEFAULT_S3_SETTINGS, endpoint: proxy.endpoint, region: 'us-east-1' },
      cacheDirectory: cache,
      client,
    });
    assert.equal(await store.removeStale(), 1);
    assert.equal(await store.removeStale(), 0);
    const result = await uploadStream(source(data), target(key));
    assert.equal(result.resumedBytes, 0);
  });

  test('killed between completing and attaching the hash: the next lock() attaches it', async () => {
    const data = randomBytes(11 * MiB);
    const key = 'pending/p/s1/def_None';
    proxy.rule = (method, url) =>
      method === 'PUT' && url.includes('pending/p') && !url.includes('partNumber')
        ? { kind: 'status', status: 403, code: 'AccessDenied' }
        : undefined;
    try {
      await assert.rejects(uploadStream(source(data), target(key)), /AccessDenied/);
    } finally {
      proxy.rule = () => undefined;
    }
    const before = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.equal(before.ContentLength, data.length, 'the object is complete');
    assert.equal(before.Metadata?.[META_SHA256], undefined, 'but has no hash yet');
    const store = new S3Store({
      url: `s3://${BUCKET}/pending/p/`,
      bucket: BUCKET,
      prefix: 'pending/p',
      settings: { ...DEFAULT_S3_SETTINGS, endpoint: proxy.endpoint, region: 'us-east-1' },
      cacheDirectory: cache,
      client,
    });
    const release = await store.lock();
    await release();
    const after = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.equal(after.Metadata?.[META_SHA256], sha256(data));
    assert.deepEqual(readdirSync(path.join(cache, 's3-uploads')), []);
  });

  test('a consumer that dies mid-download (EPIPE: btrfs receive quit) stops the download quietly: no retry, no warning', async () => {
    const uuid = '0b0e5c55-1d6c-4a44-9d1c-9b1c1d2e3f40';
    const data = randomBytes(24 * MiB);
    await uploadStream(source(data), target(`epipe/p/s1/${uuid}_None`));
    const warnings: string[] = [];
    const store = new S3Store({
      url: `s3://${BUCKET}/epipe/p/`,
      bucket: BUCKET,
      prefix: 'epipe/p',
      settings: { ...DEFAULT_S3_SETTINGS, endpoint: proxy.endpoint, region: 'us-east-1' },
      cacheDirectory: cache,
      client,
      onWarning: (m) => warnings.push(m),
    });
    const [snapshot] = await store.list();
    const gets = (): number => proxy.requests.filter((r) => r.method === 'GET' && r.url.includes('epipe/p/s1/')).length;
    const before = gets();
    // Slow bodies, so that the consumer dies while the download is under way.
    proxy.rule = (method, url) => (method === 'GET' && url.includes('epipe/p/s1/') ? { kind: 'delay', ms: 10 } : undefined);
    try {
      const sending = await store.send(snapshot!, null);
      // A consumer that reads 100 kB and exits, as btrfs receive does on a bad CRC: EPIPE.
      const consumer = spawn('head', ['-c', '100000'], { stdio: ['pipe', 'ignore', 'ignore'] });
      const started = Date.now();
      await assert.rejects(pipeline(sending.stream, consumer.stdin), /EPIPE|premature close/i);
      await sending.done.catch(() => {});
      assert.ok(Date.now() - started < 5000, 'the download stopped at once');
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      proxy.rule = () => undefined;
    }
    assert.deepEqual(warnings, [], 'no "retrying download" for a local EPIPE');
    assert.equal(gets() - before, 1, 'one GET, no retry');
  });

  test('a server lost after the download started is a failed transfer (exit 5), not an unusable store', async () => {
    const data = randomBytes(6 * MiB);
    await uploadStream(source(data), target('download/lost'));
    const doomed = await new FaultProxy(server.endpoint).start();
    // The body breaks off after 1 MiB and the server is gone from then on (connection refused).
    doomed.rule = (method) => {
      if (method !== 'GET') return undefined;
      setTimeout(() => void doomed.stop(), 50);
      return { kind: 'cut-response', afterBytes: MiB };
    };
    const once = new SdkClient({
      endpoint: doomed.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      const error = await readAll(
        downloadStream({ client: once, endpoint: doomed.endpoint, bucket: BUCKET, key: 'download/lost' }, { backoffMs: 10, maxRetries: 2 }),
      ).catch((e: unknown) => e);
      assert.ok(error instanceof TransferError, String(error));
      assert.equal(error.exitCode, ExitCode.Transfer);
      assert.match(error.message, /the connection to http:\/\/127\.0\.0\.1:\d+ was lost \(ECONNREFUSED\)/);
    } finally {
      once.destroy();
      await doomed.stop().catch(() => {});
    }
  });

  test('a permanent error is not retried: a missing object fails at once', async () => {
    const before = proxy.requests.length;
    await assert.rejects(readAll(downloadStream({ client, endpoint: proxy.endpoint, bucket: BUCKET, key: 'no/such/object' })), /NoSuchKey/);
    assert.equal(proxy.requests.length - before, 1);
  });
});
