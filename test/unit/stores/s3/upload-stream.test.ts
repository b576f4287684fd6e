import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { UploadJournal } from '../../../../src/stores/s3/upload-journal.js';
import { uploadStream } from '../../../../src/stores/s3/upload-stream.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64');

/** `data` as 64 KiB chunks. */
async function* source(data: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += 64 * 1024) yield data.subarray(at, at + 64 * 1024);
}

/**
 * An S3 client that answers multipart uploads after a delay per part, and checks that a part's
 * bytes do not change while its request is in flight (they are the bytes it was sent with,
 * as its Content-MD5 says, until the answer).
 */
function fakeClient(delayOf: (part: number) => number) {
  const stored = new Map<number, Buffer>();
  const buffers = new Set<ArrayBufferLike>();
  const changed: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const client = {
    async send(command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown> {
      switch (command.constructor.name) {
        case 'CreateMultipartUploadCommand':
          return { UploadId: 'u1' };
        case 'UploadPartCommand': {
          const n = command.input.PartNumber as number;
          const body = command.input.Body as Buffer;
          buffers.add(body.buffer);
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(delayOf(n));
          if (md5(body) !== command.input.ContentMD5) changed.push(n);
          stored.set(n, Buffer.from(body));
          inFlight -= 1;
          return { ETag: `"${n}"` };
        }
        case 'CompleteMultipartUploadCommand':
        case 'CopyObjectCommand':
          return {};
        default:
          throw new Error(`unexpected ${command.constructor.name}`);
      }
    },
  };
  const object = (): Buffer => Buffer.concat([...stored.keys()].sort((a, b) => a - b).map((n) => stored.get(n)!));
  return { client: client as unknown as S3Client, object, buffers, changed, maxInFlight: () => maxInFlight };
}

describe('uploadStream part buffers', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'upload-stream-'));
  after(() => rmSync(cache, { recursive: true, force: true }));

  for (const concurrency of [1, 2, 4]) {
    test(`concurrency ${concurrency}: buffers are reused only once their part is stored, and no more are made than parts in flight + 1`, async () => {
      const data = randomBytes(41 * MiB + 12345); // 9 parts of 5 MiB, the last one short
      // Uneven answers: part 2 answers long after the parts started next to it.
      const fake = fakeClient((n) => (n === 2 ? 120 : 5 + (n % 3) * 10));
      const result = await uploadStream(source(data), {
        client: fake.client,
        endpoint: 'http://fake',
        bucket: 'b',
        key: `k${concurrency}`,
        serverSideEncryption: 'none',
        storageClass: undefined,
        journal: new UploadJournal(cache),
        partBytes: 5 * MiB,
        concurrency,
      });
      assert.equal(result.bytes, data.length);
      assert.deepEqual(fake.changed, [], 'parts whose bytes changed while in flight');
      assert.ok(fake.object().equals(data), 'the stored parts are the stream');
      assert.ok(fake.maxInFlight() <= concurrency);
      assert.ok(fake.buffers.size <= Math.max(concurrency, 2) + 1, `${fake.buffers.size} part buffers`);
    });
  }
});
