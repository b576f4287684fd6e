import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type HeadObjectCommandOutput,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { TransferError } from '../../model/errors.js';
import { connectionFailure, isConnectionLost, isNotFound, isNotImplemented, refusedOption } from './s3-errors.js';
import type { PartRecord, UploadJournal, UploadRecord } from './upload-journal.js';
import { chunksOf } from '../../util/stream-chunks.js';

/** S3 limits. */
const MAX_PARTS = 10_000;
const MAX_COPY_BYTES = 5 * 1024 ** 3;
const MAX_PART_BYTES = 5 * 1024 ** 3;
/** Parts per size step: the part size doubles every this many parts, so any stream fits in 10,000. */
const PARTS_PER_STEP = 1000;

/** Object metadata keys (x-amz-meta-*); the original ButterSink ignores them. */
export const META_SHA256 = 'buttersink-sha256';
export const META_BYTES = 'buttersink-bytes';
export const META_FORMAT = 'buttersink-format';

export interface UploadTarget {
  readonly client: S3Client;
  readonly endpoint: string;
  readonly bucket: string;
  readonly key: string;
  readonly serverSideEncryption: ServerSideEncryption | 'none';
  readonly storageClass: StorageClass | undefined;
  readonly journal: UploadJournal;
  /** Smallest part size; parts grow for very long streams (see {@link partSize}). */
  readonly partBytes: number;
  readonly concurrency: number;
  readonly signal?: AbortSignal;
}

export interface UploadResult {
  readonly bytes: number;
  readonly sha256: string;
  /** Bytes of parts an earlier, interrupted run had stored already and that were not sent again. */
  readonly resumedBytes: number;
  /** How many parts those were. */
  readonly resumedParts: number;
  /**
   * The server-side encryption the server said it applied (the `x-amz-server-side-encryption`
   * of its answers to PutObject, CreateMultipartUpload or CompleteMultipartUpload), undefined
   * when no answer said (s3rver never does; see `encryption-check.ts`).
   */
  readonly encryption: string | undefined;
}

/** The size of part `n` (1-based): `base` doubled every 1,000 parts, at most 5 GiB. */
export function partSize(base: number, n: number): number {
  return Math.min(MAX_PART_BYTES, base * 2 ** Math.floor((n - 1) / PARTS_PER_STEP));
}

/**
 * Streams `input` into one S3 object without ever holding more than `partBytes x
 * max(concurrency, 2)` bytes of parts: always a multipart upload (only an empty stream is a
 * plain PUT), whose parts go `concurrency` at a time, the next one read while a slot is free
 * (backpressure: the input is not read while all slots are busy), into the buffer of a part
 * already stored.
 *
 * The object becomes visible only at CompleteMultipartUpload, and only if `input` ended
 * cleanly: an error or abort leaves the multipart upload open and its acknowledged parts in
 * the {@link UploadJournal}, so the next run sends only what is missing. A SHA-256 of the whole
 * stream is stored in the object's metadata: at creation when the stream fits in one part,
 * else by a metadata-replacing copy onto itself once the hash is known.
 */
export async function uploadStream(input: AsyncIterable<Buffer>, target: UploadTarget): Promise<UploadResult> {
  const sha = createHash('sha256');
  const buffers = new PartBuffers();
  const parts = readParts(input, (n) => partSize(target.partBytes, n), sha, buffers);
  const first = await parts.next();
  const second = first.done ? first : await parts.next();
  if (first.done) {
    // An empty object: nothing that could be half written, so a plain PUT.
    const sha256 = sha.digest('hex');
    const put = await starting(
      target,
      target.client.send(
        new PutObjectCommand({
          Bucket: target.bucket,
          Key: target.key,
          Body: Buffer.alloc(0),
          ContentMD5: createHash('md5').digest('base64'),
          Metadata: metadata(sha256, 0),
          ...storageOptions(target),
        }),
        { abortSignal: target.signal },
      ),
    );
    return { bytes: 0, sha256, resumedBytes: 0, resumedParts: 0, encryption: put.ServerSideEncryption };
  }
  if (second.done) {
    // One part: still a multipart upload, because a PUT cut off mid-body is stored half-written
    // by some S3-compatible servers (s3rver does), while parts stay invisible until completed.
    // The whole stream is known here, so its hash goes in at creation and no copy is needed.
    const sha256 = sha.digest('hex');
    return multipart(target, [first.value], emptyParts(), sha, buffers, metadata(sha256, first.value.body.length));
  }
  return multipart(target, [first.value, second.value], parts, sha, buffers);
}

function metadata(sha256: string, bytes: number): Record<string, string> {
  return { [META_FORMAT]: '1', [META_SHA256]: sha256, [META_BYTES]: String(bytes) };
}

/** No parts: a generator that yields nothing (an upload whose data fit in its first part). */
async function* emptyParts(): AsyncGenerator<Part> {}

async function multipart(
  target: UploadTarget,
  firstParts: Part[],
  rest: AsyncGenerator<Part>,
  sha: ReturnType<typeof createHash>,
  buffers: PartBuffers,
  /** The object's final metadata when known before the upload starts (one part). */
  knownMetadata?: Record<string, string>,
): Promise<UploadResult> {
  const { client, bucket, key, signal } = target;
  const { uploadId, previous, startedAt, encryption: created } = await openUpload(target, knownMetadata);
  // From here on a connection that breaks is a failed transfer (the next run resumes it), not
  // an unusable store.
  const lost = connectionLost(target);
  const done = new Map<number, PartRecord>();
  const record = (): UploadRecord => ({
    version: 1,
    endpoint: target.endpoint,
    bucket,
    key,
    uploadId,
    startedAt,
    parts: [...done.values()].sort((a, b) => a.partNumber - b.partNumber),
  });
  // Journal writes are chained so that a slow write never lands after a newer one.
  let journaling = target.journal.save(record());
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let bytes = 0;
  let resumedBytes = 0;
  let resumedParts = 0;
  let partNumber = 0;

  const upload = async (n: number, body: Buffer, md5: Buffer): Promise<void> => {
    const command = withUnsignedPayload(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: n,
        Body: body,
        ContentMD5: md5.toString('base64'),
      }),
    );
    const answer = await lost(client.send(command, { abortSignal: signal }));
    done.set(n, { partNumber: n, bytes: body.length, md5: md5.toString('hex'), etag: answer.ETag ?? '' });
    journaling = journaling.then(() => target.journal.save(record()));
    await journaling;
  };

  try {
    const all = (async function* () {
      yield* firstParts;
      yield* rest;
    })();
    for await (const { body, md5 } of all) {
      partNumber += 1;
      if (partNumber > MAX_PARTS) throw new Error(`the stream needs more than ${MAX_PARTS} parts`);
      bytes += body.length;
      const old = previous.get(partNumber);
      if (old && old.bytes === body.length && old.md5 === md5.toString('hex')) {
        done.set(partNumber, old);
        resumedBytes += body.length;
        resumedParts += 1;
        buffers.give(body);
        continue;
      }
      const task = upload(partNumber, body, md5).then(
        () => {
          inFlight.delete(task);
          buffers.give(body); // stored: its bytes are no longer needed, even for a retry
        },
        (error: unknown) => {
          inFlight.delete(task);
          failure ??= error;
        },
      );
      inFlight.add(task);
      while (inFlight.size >= target.concurrency && failure === undefined) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
  } catch (error) {
    // Let running parts settle so the journal lists every part the server holds.
    await Promise.allSettled(inFlight);
    await journaling.catch(() => {});
    throw error;
  }
  await journaling;

  const sha256 = knownMetadata?.[META_SHA256] ?? sha.digest('hex');
  // Journaled before completing: a run killed between completion and the copy that attaches
  // the hash leaves this note, and the next run's lock() attaches it (attachPendingHashes).
  await target.journal.save({ ...record(), completed: { sha256, bytes } });
  const completed = await lost(
    client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: [...done.values()]
            .filter((p) => p.partNumber <= partNumber)
            .sort((a, b) => a.partNumber - b.partNumber)
            .map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
        },
      }),
      { abortSignal: signal },
    ),
  );
  if (knownMetadata === undefined) await lost(attachHash(target, sha256, bytes));
  await target.journal.remove(target.endpoint, bucket, key);
  return { bytes, sha256, resumedBytes, resumedParts, encryption: completed.ServerSideEncryption ?? created };
}

/**
 * Adds the stream's SHA-256 to a completed object's metadata: a copy onto itself that
 * replaces the metadata (S3 cannot change metadata otherwise). Objects over 5 GiB, the limit
 * of a single copy, keep no hash; btrfs receive still checks every command's CRC32C.
 */
async function attachHash(target: UploadTarget, sha256: string, bytes: number): Promise<void> {
  if (bytes > MAX_COPY_BYTES) return;
  await target.client.send(
    new CopyObjectCommand({
      Bucket: target.bucket,
      Key: target.key,
      CopySource: `${target.bucket}/${target.key.split('/').map(encodeURIComponent).join('/')}`,
      MetadataDirective: 'REPLACE',
      Metadata: { [META_FORMAT]: '1', [META_SHA256]: sha256, [META_BYTES]: String(bytes) },
      ...storageOptions(target),
    }),
    { abortSignal: target.signal },
  );
}

/**
 * Finishes what a run killed right after completing a multipart upload left undone: the
 * journal says the upload was completed with this hash; if the object is there with that
 * size, the hash is attached now. If it is not there, the completion never happened and the
 * upload stays resumable. Returns how many objects got their hash.
 */
export async function attachPendingHashes(
  target: Omit<UploadTarget, 'key' | 'partBytes' | 'concurrency'>,
  keyPrefix: string,
): Promise<number> {
  let attached = 0;
  for (const record of await target.journal.list(target.endpoint, target.bucket, keyPrefix)) {
    if (!record.completed) continue;
    let head: HeadObjectCommandOutput;
    try {
      head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: record.key }), { abortSignal: target.signal });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await target.journal.save({ ...record, completed: undefined });
      continue;
    }
    const pending = head.Metadata?.[META_SHA256] !== record.completed.sha256;
    // Another size means the key was written again since: that object is not ours to label.
    if (pending && head.ContentLength === record.completed.bytes) {
      await attachHash({ ...target, key: record.key, partBytes: 0, concurrency: 1 }, record.completed.sha256, record.completed.bytes);
      attached += 1;
    }
    await target.journal.remove(target.endpoint, target.bucket, record.key);
  }
  return attached;
}

/**
 * Resumes the journal's upload for this key when the server still has it (checked with
 * ListParts where implemented), else starts a new one.
 */
async function openUpload(
  target: UploadTarget,
  knownMetadata: Record<string, string> | undefined,
): Promise<{ uploadId: string; previous: Map<number, PartRecord>; startedAt: string; encryption?: string }> {
  const { client, bucket, key, signal } = target;
  const saved = await target.journal.load(target.endpoint, bucket, key);
  if (saved && knownMetadata !== undefined) {
    // One part now: nothing worth resuming, and the old upload lacks the final metadata.
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: saved.uploadId }), { abortSignal: signal })
      .catch(() => {});
  } else if (saved) {
    try {
      const listed = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: saved.uploadId }), {
        abortSignal: signal,
      });
      const onServer = new Map((listed.Parts ?? []).map((p) => [p.PartNumber, p.ETag]));
      const kept = saved.parts.filter((p) => onServer.get(p.partNumber) === p.etag);
      return { uploadId: saved.uploadId, previous: new Map(kept.map((p) => [p.partNumber, p])), startedAt: saved.startedAt };
    } catch (error) {
      if (isNotImplemented(error)) {
        return { uploadId: saved.uploadId, previous: new Map(saved.parts.map((p) => [p.partNumber, p])), startedAt: saved.startedAt };
      }
      if (!isNotFound(error)) throw error;
      // NoSuchUpload: it was completed or aborted meanwhile; start afresh.
    }
  }
  const created = await starting(
    target,
    client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        Metadata: knownMetadata ?? { [META_FORMAT]: '1' },
        ...storageOptions(target),
      }),
      { abortSignal: signal },
    ),
  );
  if (!created.UploadId) throw new Error('the server started a multipart upload without an upload id');
  return {
    uploadId: created.UploadId,
    previous: new Map(),
    startedAt: new Date().toISOString(),
    ...(created.ServerSideEncryption === undefined ? {} : { encryption: created.ServerSideEncryption }),
  };
}

/** The request that starts an upload: a refusal of its SSE or storage class says which (see {@link refusedOption}). */
async function starting<T>(target: UploadTarget, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    throw (
      refusedOption(error, `uploading s3://${target.bucket}/${target.key}`, {
        serverSideEncryption: target.serverSideEncryption,
        storageClass: target.storageClass,
      }) ?? error
    );
  }
}

/**
 * For requests of an upload that has started: a connection that is lost (after the SDK's own
 * retries) becomes a {@link TransferError} that says the next run resumes. Errors of the input
 * stream never come through here: a source that lost its own connection is not the server's.
 */
function connectionLost(target: UploadTarget): <T>(request: Promise<T>) => Promise<T> {
  return async (request) => {
    try {
      return await request;
    } catch (error) {
      if (target.signal?.aborted || !isConnectionLost(error)) throw error;
      throw new TransferError(
        `uploading s3://${target.bucket}/${target.key}: the connection to ${target.endpoint} was lost (${connectionFailure(error)}); the next run resumes the upload`,
        { cause: error },
      );
    }
  };
}

/** The encryption and storage class headers an object is stored with (none for `'none'` / unset). */
export function storageOptions(target: {
  readonly serverSideEncryption: ServerSideEncryption | 'none';
  readonly storageClass?: StorageClass | undefined;
}): {
  ServerSideEncryption?: ServerSideEncryption;
  StorageClass?: StorageClass;
} {
  return {
    ...(target.serverSideEncryption === 'none' ? {} : { ServerSideEncryption: target.serverSideEncryption }),
    ...(target.storageClass === undefined ? {} : { StorageClass: target.storageClass }),
  };
}

/**
 * Signs a part's request without hashing its body: SigV4 otherwise hashes every part with
 * SHA-256 for its signature (`x-amz-content-sha256`), a third pass over every byte after the
 * stream's SHA-256 and the part's MD5, on the thread that feeds the upload. The body stays
 * bound to the request: its Content-MD5 is a signed header, and S3 refuses a body that does
 * not match it (BadDigest; radosgw's PUT does the same, s3rver checks no body at all); every
 * restore checks the whole stream's SHA-256 besides. (`UNSIGNED-PAYLOAD` is what S3 documents
 * for this, and what the SigV4 signer takes as the payload hash when it is set.)
 */
function withUnsignedPayload(command: UploadPartCommand): UploadPartCommand {
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'buttersinkUnsignedPayload' },
  );
  return command;
}

/** A part as cut from the input: its bytes and their MD5 (Content-MD5, and the journal's record). */
interface Part {
  readonly body: Buffer;
  readonly md5: Buffer;
}

/**
 * Part buffers, reused: once a part is stored its buffer takes the bytes of a later one. An
 * upload so holds its parts in flight and the one being filled, however long the stream;
 * with a fresh buffer per part the old ones waited for the garbage collector and the
 * allocator, and the process grew to about twice that.
 */
class PartBuffers {
  readonly #free: Buffer[] = [];

  take(size: number): Buffer {
    const buffer = this.#free.pop();
    return buffer !== undefined && buffer.length === size ? buffer : Buffer.allocUnsafeSlow(size);
  }

  /** A buffer {@link take} returned, whose part is done with (never a shorter last part's view). */
  give(body: Buffer): void {
    if (body.byteOffset === 0 && body.length === body.buffer.byteLength) this.#free.push(body);
  }
}

/**
 * Cuts the input into parts of `sizeOf(n)` bytes (the last one shorter), hashing every byte
 * into `sha` and each part's bytes into its MD5 as they arrive (so that no hash of a whole
 * part holds up the event loop at once). Parts are copied into buffers from `buffers`; a
 * buffer is taken only when the next part's first byte arrives, i.e. after the consumer has
 * asked for that part.
 */
async function* readParts(
  input: AsyncIterable<Buffer>,
  sizeOf: (n: number) => number,
  sha: ReturnType<typeof createHash>,
  buffers: PartBuffers,
): AsyncGenerator<Part> {
  let n = 1;
  let want = sizeOf(n);
  let part: Buffer | undefined;
  let md5 = createHash('md5');
  let have = 0;
  // A stream's chunks as they come (chunksOf): each is copied into a part here anyway.
  for await (const data of input instanceof Readable ? chunksOf(input) : input) {
    sha.update(data);
    let offset = 0;
    while (offset < data.length) {
      part ??= buffers.take(want);
      const take = Math.min(want - have, data.length - offset);
      const piece = data.subarray(offset, offset + take);
      piece.copy(part, have);
      md5.update(piece);
      have += take;
      offset += take;
      if (have === want) {
        yield { body: part, md5: md5.digest() };
        part = undefined;
        md5 = createHash('md5');
        have = 0;
        want = sizeOf(++n);
      }
    }
  }
  if (part !== undefined && have > 0) yield { body: part.subarray(0, have), md5: md5.digest() };
}
