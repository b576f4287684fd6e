import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError, TransferError } from '../../model/errors.js';
import { connectionFailure, httpStatus, isConnectionLost, isTransient, toStoreError } from './s3-errors.js';
import { META_SHA256 } from './upload-stream.js';
import { chunksOf } from '../../util/stream-chunks.js';

export interface DownloadSource {
  readonly client: S3Client;
  readonly endpoint: string;
  readonly bucket: string;
  readonly key: string;
}

export interface DownloadOptions {
  readonly signal?: AbortSignal;
  /** Tries per stretch of the body without progress, after the SDK's own request retries. */
  readonly maxRetries?: number;
  /** First pause between tries, doubled each time (tests make it small). */
  readonly backoffMs?: number;
  readonly onRetry?: (position: number, error: unknown) => void;
}

/**
 * Reads one object as a stream that survives dropped connections: when the body breaks off,
 * the download goes on from the byte where it stopped with a ranged GET (pinned to the
 * object's ETag, so a replaced object is never spliced in).
 *
 * When the object carries buttersink's SHA-256 the whole stream is checked against it, and
 * the last chunk is held back until it matches: a receiver never sees the end of a corrupt
 * stream, so a mismatch cannot end in a complete-looking snapshot. Objects written by the
 * original ButterSink have no hash; they are checked for their length only (and btrfs
 * receive checks each command's CRC32C).
 *
 * Only the server's failures are retried. When the consumer goes away (the stream is destroyed,
 * e.g. because `btrfs receive` died and its stdin broke with EPIPE) the download stops at once:
 * Node throws the destroy's error into this generator at its `yield`, which must not be taken
 * for a broken body, retried and reported as "retrying download".
 */
export function downloadStream(source: DownloadSource, options: DownloadOptions = {}): Readable {
  return Readable.from(chunks(source, options), { objectMode: false, highWaterMark: 1024 * 1024 });
}

async function* chunks(source: DownloadSource, options: DownloadOptions): AsyncGenerator<Buffer> {
  const { client, bucket, key } = source;
  const { signal } = options;
  const maxRetries = options.maxRetries ?? 6;
  const backoffMs = options.backoffMs ?? 250;
  const sha = createHash('sha256');
  const what = `downloading s3://${bucket}/${key}`;
  let position = 0;
  let total: number | undefined;
  let etag: string | undefined;
  let expected: string | undefined;
  let held: Buffer | undefined;
  let failures = 0;

  while (total === undefined || position < total) {
    try {
      const answer = await client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(position > 0 ? { Range: `bytes=${position}-` } : {}),
          ...(etag !== undefined ? { IfMatch: etag } : {}),
        }),
        { abortSignal: signal },
      );
      if (total === undefined) {
        total = answer.ContentLength ?? 0;
        etag = answer.ETag;
        expected = answer.Metadata?.[META_SHA256];
      }
      for await (const data of chunksOf(answer.Body as Readable)) {
        position += data.length;
        if (position > total) throw new TransferError(`${what}: the server sent more than the object's ${total} bytes`);
        sha.update(data);
        failures = 0;
        if (held) {
          try {
            yield held;
          } catch (consumer) {
            throw new ConsumerGone(consumer);
          }
        }
        held = data;
      }
      if (position < total) throw new Error(`body cut short at byte ${position} of ${total}`);
    } catch (error) {
      if (error instanceof ConsumerGone) throw error.cause; // ends the download; leaving the loop closes the body
      if (signal?.aborted) throw new InterruptedError(`interrupted while ${what}`);
      if (error instanceof TransferError) throw error;
      if (httpStatus(error) === 412) throw new TransferError(`${what}: the object was replaced while it was being read`);
      failures += 1;
      if (!isTransient(error) || failures > maxRetries) {
        const at = `${what} (at byte ${position}${total === undefined ? '' : ` of ${total}`})`;
        // Once the object answered, a server that cannot be reached any more is a transfer that
        // failed (exit 5), not a store that cannot be used (exit 4, as before anything started).
        if (total !== undefined && isConnectionLost(error)) {
          throw new TransferError(`${at}: the connection to ${source.endpoint} was lost (${connectionFailure(error)})`, { cause: error });
        }
        throw toStoreError(error, at, source);
      }
      options.onRetry?.(position, error);
      await sleep(backoffMs * 2 ** (failures - 1), undefined, { signal }).catch(() => {
        throw new InterruptedError(`interrupted while ${what}`);
      });
    }
  }
  if (expected !== undefined) {
    const actual = sha.digest('hex');
    if (actual !== expected) {
      throw new TransferError(`s3://${bucket}/${key} is corrupt: its SHA-256 is ${actual}, not the ${expected} recorded at upload`, {
        hint: 'the snapshot was not received; restore it from another copy, or delete the object and send it again',
      });
    }
  }
  if (held) yield held;
}

/** What the consumer's side threw into the generator at a `yield` (it destroyed the stream). */
class ConsumerGone extends Error {
  constructor(override readonly cause: unknown) {
    super('the consumer of the download went away');
  }
}
