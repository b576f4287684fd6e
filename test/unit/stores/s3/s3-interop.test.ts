import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { ExitCode, StoreError, TransferError } from '../../../../src/model/errors.js';
import { downloadStream } from '../../../../src/stores/s3/download-stream.js';
import { EncryptionCheck } from '../../../../src/stores/s3/encryption-check.js';
import { toStoreError } from '../../../../src/stores/s3/s3-errors.js';
import { UploadJournal } from '../../../../src/stores/s3/upload-journal.js';
import { uploadStream, type UploadTarget } from '../../../../src/stores/s3/upload-stream.js';

const MiB = 1024 * 1024;
const where = { bucket: 'b', endpoint: 'http://127.0.0.1:9' };

/** An error as the SDK throws it for a 400 answer with this S3 error code. */
const answered = (code: string, status = 400): Error =>
  Object.assign(new Error(code), { name: code, $metadata: { httpStatusCode: status }, $fault: 'client' });
const network = (errno: string): Error => Object.assign(new Error(`connect ${errno} 127.0.0.1:9`), { code: errno });

async function* source(data: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += 64 * 1024) yield data.subarray(at, at + 64 * 1024);
}

type Command = { constructor: { name: string }; input: Record<string, unknown> };

/** A fake S3 client: `answer` decides each command's answer (or throws). */
function fakeClient(answer: (command: Command) => unknown | Promise<unknown>): { client: S3Client; sent: string[] } {
  const sent: string[] = [];
  const client = {
    async send(command: Command): Promise<unknown> {
      sent.push(command.constructor.name);
      return answer(command);
    },
  };
  return { client: client as unknown as S3Client, sent };
}

describe('S3 interoperability (RGW and friends)', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 's3-interop-'));
  after(() => rmSync(cache, { recursive: true, force: true }));
  const target = (client: S3Client, extra: Partial<UploadTarget> = {}): UploadTarget => ({
    client,
    endpoint: 'http://fake',
    bucket: 'b',
    key: `k-${randomBytes(4).toString('hex')}`,
    serverSideEncryption: 'AES256',
    storageClass: undefined,
    journal: new UploadJournal(cache),
    partBytes: 5 * MiB,
    concurrency: 2,
    ...extra,
  });

  test('a server that refuses SSE (RGW over http: InvalidRequest) fails the upload naming SSE and --s3-sse none, exit 4', async () => {
    for (const size of [0, 1000, 12 * MiB]) {
      const fake = fakeClient((c) => {
        if (c.input.ServerSideEncryption !== undefined) throw answered('InvalidRequest');
        return { UploadId: 'u', ETag: '"e"' };
      });
      const error = await uploadStream(source(randomBytes(size)), target(fake.client)).then(
        () => assert.fail('the upload should fail'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof StoreError, String(error));
      assert.equal(error.exitCode, ExitCode.Store);
      assert.match(error.message, /the server refused server-side encryption \(AES256\): InvalidRequest \(HTTP 400\)/);
      assert.match(error.hint ?? '', /--s3-sse none/);
      // toStoreError (as the store calls it) keeps it as it is.
      assert.equal(toStoreError(error, 'uploading x', where), error);
    }
  });

  test('a storage class the server does not have (RGW: InvalidArgument) fails naming it and --s3-storage-class', async () => {
    const fake = fakeClient((c) => {
      if (c.input.StorageClass !== undefined) throw answered('InvalidArgument');
      return { UploadId: 'u' };
    });
    const error = await uploadStream(source(randomBytes(1000)), target(fake.client, { storageClass: 'GLACIER_IR' })).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /the server refused the storage class GLACIER_IR: InvalidArgument \(HTTP 400\)/);
    assert.match(error.hint ?? '', /--s3-storage-class/);
  });

  test('a 400 that is not about an option asked for stays what it was', async () => {
    const fake = fakeClient(() => {
      throw answered('InvalidRequest');
    });
    const error = await uploadStream(source(randomBytes(1000)), target(fake.client, { serverSideEncryption: 'none' })).catch(
      (e: unknown) => e,
    );
    assert.ok(!(error instanceof StoreError), String(error));
    assert.match(String((error as Error).name), /InvalidRequest/);
  });

  test('a server lost mid-upload (after it started) is a failed transfer that the next run resumes, exit 5', async () => {
    const fake = fakeClient((c) => {
      if (c.constructor.name === 'CreateMultipartUploadCommand') return { UploadId: 'u' };
      if (c.constructor.name === 'UploadPartCommand' && c.input.PartNumber === 2) throw network('ECONNREFUSED');
      return { ETag: `"${String(c.input.PartNumber)}"` };
    });
    const error = await uploadStream(source(randomBytes(16 * MiB)), target(fake.client)).catch((e: unknown) => e);
    assert.ok(error instanceof TransferError, String(error));
    assert.equal(error.exitCode, ExitCode.Transfer);
    assert.match(error.message, /the connection to http:\/\/fake was lost \(ECONNREFUSED\); the next run resumes the upload/);
  });

  test('a server not reachable before the upload starts stays a store error (exit 4)', async () => {
    const fake = fakeClient(() => {
      throw network('ECONNREFUSED');
    });
    const error = await uploadStream(source(randomBytes(1000)), target(fake.client)).catch((e: unknown) => e);
    assert.equal(toStoreError(error, 'uploading x', where).exitCode, ExitCode.Store);
  });

  test("the server's answer about encryption is passed on: CompleteMultipartUpload's, else CreateMultipartUpload's", async () => {
    const answers = (complete: string | undefined, create: string | undefined) =>
      fakeClient((c) => {
        if (c.constructor.name === 'CreateMultipartUploadCommand') return { UploadId: 'u', ServerSideEncryption: create };
        if (c.constructor.name === 'CompleteMultipartUploadCommand') return { ServerSideEncryption: complete };
        return { ETag: '"e"' };
      }).client;
    assert.equal((await uploadStream(source(randomBytes(11 * MiB)), target(answers('aws:kms', 'AES256')))).encryption, 'aws:kms');
    assert.equal((await uploadStream(source(randomBytes(11 * MiB)), target(answers(undefined, 'AES256')))).encryption, 'AES256');
    assert.equal((await uploadStream(source(randomBytes(11 * MiB)), target(answers(undefined, undefined)))).encryption, undefined);
  });
});

describe('EncryptionCheck: one warning per run when SSE was asked and not confirmed', () => {
  const head = (value: string | undefined) => async () => value;

  test('confirmed by the answer: no warning and no HEAD', async () => {
    const warnings: string[] = [];
    const check = new EncryptionCheck('AES256', (m) => warnings.push(m));
    let heads = 0;
    await check.afterUpload('s3://b/k', 'AES256', async () => {
      heads += 1;
      return undefined;
    });
    assert.deepEqual(warnings, []);
    assert.equal(heads, 0);
  });

  test('another encryption than asked: warned once, naming both', async () => {
    const warnings: string[] = [];
    const check = new EncryptionCheck('AES256', (m) => warnings.push(m));
    await check.afterUpload('s3://b/k1', 'aws:kms', head('aws:kms'));
    await check.afterUpload('s3://b/k2', 'aws:kms', head('aws:kms'));
    assert.deepEqual(warnings, ['asked for server-side encryption AES256, but the server stored s3://b/k1 with aws:kms']);
  });

  test('silent answers and a HEAD without encryption (RGW without SSL, s3rver): warned once for a run of uploads', async () => {
    const warnings: string[] = [];
    const check = new EncryptionCheck('AES256', (m) => warnings.push(m));
    for (let i = 0; i < 5; i++) await check.afterUpload(`s3://b/k${i}`, undefined, head(undefined));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^asked for server-side encryption \(AES256\) but the server does not say it applied any to s3:\/\/b\/k0: .*--s3-sse none/,
    );
  });

  test('silent answers but HEAD confirms: trusted, no warning, no more HEADs', async () => {
    const warnings: string[] = [];
    const check = new EncryptionCheck('AES256', (m) => warnings.push(m));
    let heads = 0;
    for (let i = 0; i < 3; i++) {
      await check.afterUpload(`s3://b/k${i}`, undefined, async () => {
        heads += 1;
        return 'AES256';
      });
    }
    assert.deepEqual(warnings, []);
    assert.equal(heads, 1);
  });

  test('--s3-sse none: nothing is checked; a failing HEAD is no warning', async () => {
    const warnings: string[] = [];
    await new EncryptionCheck('none', (m) => warnings.push(m)).afterUpload('s3://b/k', undefined, head(undefined));
    await new EncryptionCheck('AES256', (m) => warnings.push(m)).afterUpload('s3://b/k', undefined, async () => {
      throw new Error('HEAD failed');
    });
    assert.deepEqual(warnings, []);
  });
});

describe('downloads: the consumer going away, and the server going away', () => {
  /** GETs answer `data` from the Range asked for, `chunk` bytes at a time, pausing so a consumer can stop mid-body. */
  function objectClient(data: Buffer, fail?: (get: number, position: number) => Error | undefined) {
    let gets = 0;
    return fakeClient(async (c) => {
      const get = gets++;
      const from = Number(/bytes=(\d+)-/.exec(String(c.input.Range ?? ''))?.[1] ?? 0);
      const error = fail?.(get, from);
      if (error) throw error;
      const body = Readable.from(
        (async function* () {
          for (let at = from; at < data.length; at += 256 * 1024) {
            await sleep(1);
            yield data.subarray(at, at + 256 * 1024);
          }
        })(),
      );
      return {
        Body: body,
        ContentLength: data.length - from,
        ETag: '"x"',
        Metadata: { 'buttersink-sha256': createHash('sha256').update(data).digest('hex') },
      };
    });
  }

  test('a consumer that dies (EPIPE, as btrfs receive does on a bad CRC) stops the download: no retry, no second GET', async () => {
    const data = randomBytes(8 * MiB);
    const fake = objectClient(data);
    const retries: number[] = [];
    const stream = downloadStream(
      { client: fake.client, endpoint: 'http://fake', bucket: 'b', key: 'k' },
      {
        backoffMs: 1,
        onRetry: (at) => retries.push(at),
      },
    );
    let got = 0;
    // The consumer: takes 1 MiB, then fails as a pipe to a dead process does.
    const consumer = new (await import('node:stream')).Writable({
      write(chunk: Buffer, _encoding, done) {
        got += chunk.length;
        done(got > MiB ? Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }) : undefined);
      },
    });
    await assert.rejects(pipeline(stream, consumer), /EPIPE/);
    await sleep(50);
    assert.deepEqual(retries, [], 'nothing was retried');
    assert.deepEqual(fake.sent, ['GetObjectCommand'], 'one GET, no more');
    assert.ok(stream.destroyed);
  });

  test('a server lost after the download started fails as a transfer (exit 5), naming the byte', async () => {
    const data = randomBytes(2 * MiB);
    const fake = objectClient(data, (get) => (get === 0 ? undefined : network('ECONNREFUSED')));
    // The first body breaks off: a body that ends short.
    const client = fakeClient(async (c) => {
      const answer = (await (fake.client.send as (c: Command) => Promise<Record<string, unknown>>)(c)) as { Body: Readable };
      const cut = Readable.from(
        (async function* () {
          let n = 0;
          for await (const chunk of answer.Body) {
            if (n++ === 2) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
            yield chunk as Buffer;
          }
        })(),
      );
      return { ...answer, Body: cut };
    });
    const stream = downloadStream(
      { client: client.client, endpoint: 'http://fake', bucket: 'b', key: 'k' },
      { backoffMs: 1, maxRetries: 2 },
    );
    const error = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    assert.ok(error instanceof TransferError, String(error));
    assert.equal(error.exitCode, ExitCode.Transfer);
    assert.match(
      error.message,
      /downloading s3:\/\/b\/k \(at byte \d+ of 2097152\): the connection to http:\/\/fake was lost \(ECONNREFUSED\)/,
    );
  });

  test('a server not reachable before anything started stays a store error (exit 4)', async () => {
    const fake = objectClient(Buffer.alloc(10), () => network('ECONNREFUSED'));
    const stream = downloadStream({ client: fake.client, endpoint: 'http://fake', bucket: 'b', key: 'k' }, { backoffMs: 1, maxRetries: 1 });
    const error = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /cannot reach the S3 endpoint/);
  });
});
