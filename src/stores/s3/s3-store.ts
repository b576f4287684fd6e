import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { InterruptedError, messageOf, StillNeededError, StoreError, TransferError } from '../../model/errors.js';
import { effectiveUuid, type Snapshot } from '../../model/snapshot.js';
import type { DiffSize, ReceiveRequest, SendStream, SnapshotFiles, Store, StoreCapabilities, StoredDiff } from '../../model/store.js';
import { storedDependents } from '../../model/stored-dependents.js';
import { IndexingTap } from '../../sendstream/indexing-tap.js';
import { IncompleteStreamError, StreamEndCheck } from '../../sendstream/stream-end-check.js';
import { lockDirectory } from '../../util/directory-lock.js';
import { formatBytes } from '../../util/format-bytes.js';
import { downloadStream } from './download-stream.js';
import { ExtentReader } from './extent-reader.js';
import { EncryptionCheck } from './encryption-check.js';
import {
  diffKey,
  indexKey,
  isStorableName,
  keyPrefix,
  parseInventory,
  trashKey,
  type ListedObject,
  type S3Diff,
  type S3Inventory,
} from './s3-layout.js';
import { isNotFound, isNotImplemented, toStoreError } from './s3-errors.js';
import { S3Indexes } from './s3-indexes.js';
import { describedFiles, s3SnapshotFiles } from './s3-snapshot-files.js';
import { createS3Client, customEndpoint, type S3Settings } from './s3-settings.js';
import { UploadJournal } from './upload-journal.js';
import { attachPendingHashes, storageOptions, uploadStream } from './upload-stream.js';

export interface S3StoreOptions {
  readonly url: string;
  readonly bucket: string;
  /** Key prefix without leading or trailing `/` ('' for the bucket's root). */
  readonly prefix: string;
  readonly settings: S3Settings;
  /** buttersink's cache directory: upload journal and the local lock live there. */
  readonly cacheDirectory: string;
  /** For tests: a client made elsewhere. */
  readonly client?: S3Client;
  readonly onWarning?: (message: string) => void;
  /** Told when a file read through {@link S3Store.snapshotFiles} finds corrupt data (default: a warning). */
  readonly onCorrupt?: (message: string) => void;
  /** Build an index of each diff while uploading it (default true; off for benchmarks). */
  readonly indexUploads?: boolean;
}

/**
 * A prefix of an S3 bucket in the original ButterSink's layout (see `s3-layout.ts`): a diff
 * store. It holds send streams, not subvolumes, so it can replay only the diffs it holds
 * ({@link S3Store.storedDiffs}), and restoring a snapshot replays its chain.
 *
 * Uploads stream into multipart uploads (bounded memory, resumable after a crash); downloads
 * resume dropped connections and are checked against the SHA-256 stored at upload. Objects
 * appear only when complete (S3 PUT and CompleteMultipartUpload are atomic), so a receive
 * that fails leaves nothing visible. The lock is local (a flock in the cache directory):
 * S3 has no portable lock, so two machines must not write one prefix at the same time.
 */
export class S3Store implements Store {
  readonly url: string;
  readonly capabilities: StoreCapabilities = {
    canDiffAnyPair: false,
    canReceive: true,
    canDelete: true,
    storesDiffs: true,
  };
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #settings: S3Settings;
  readonly #client: S3Client;
  readonly #endpoint: string;
  readonly #journal: UploadJournal;
  readonly #cacheDirectory: string;
  readonly #warn: (message: string) => void;
  readonly #indexes: S3Indexes;
  readonly #reader: ExtentReader;
  readonly #described = describedFiles();
  readonly #indexUploads: boolean;
  readonly #encryption: EncryptionCheck;
  #inventory: S3Inventory | undefined;

  constructor(options: S3StoreOptions) {
    this.url = options.url;
    this.#bucket = options.bucket;
    this.#prefix = options.prefix;
    this.#settings = options.settings;
    this.#client = options.client ?? createS3Client(options.settings);
    this.#endpoint = customEndpoint(options.settings) ?? 'AWS S3';
    this.#journal = new UploadJournal(options.cacheDirectory);
    this.#cacheDirectory = options.cacheDirectory;
    this.#warn = options.onWarning ?? (() => {});
    this.#indexUploads = options.indexUploads ?? true;
    this.#encryption = new EncryptionCheck(options.settings.serverSideEncryption, this.#warn);
    this.#indexes = new S3Indexes({
      client: this.#client,
      endpoint: this.#endpoint,
      bucket: this.#bucket,
      cacheDirectory: this.#cacheDirectory,
      inventory: () => this.#current(),
      put: (key, body) => this.#put(key, body),
      warn: this.#warn,
    });
    this.#reader = new ExtentReader({
      client: this.#client,
      bucket: this.#bucket,
      endpoint: this.#endpoint,
      onCorrupt: options.onCorrupt ?? this.#warn,
    });
  }

  /** Bytes of file data fetched for reads through {@link snapshotFiles} (for tests and benchmarks). */
  get fetchedBytes(): number {
    return this.#reader.fetchedBytes;
  }

  /** A small object (an index) stored whole, with the store's encryption and storage class. */
  async #put(key: string, body: Buffer): Promise<void> {
    await this.#client.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        Body: body,
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ...storageOptions(this.#settings),
      }),
    );
  }

  /**
   * The files of a snapshot, answered from its index (see `s3-snapshot-files.ts`): built while
   * it was uploaded, or on first use by reading its chain once.
   */
  snapshotFiles(snapshot: Pick<Snapshot, 'name'>): SnapshotFiles {
    return s3SnapshotFiles({
      name: snapshot.name,
      url: this.url.endsWith('/') ? this.url : `${this.url}/`,
      reader: this.#reader,
      described: this.#described,
      inventory: () => this.#current(),
      loaded: async () => {
        const found = (await this.#current()).snapshots.find((s) => s.name === snapshot.name);
        return { index: found && (await this.#indexes.inMemory(found.uuid)), uploadedAt: found?.createdAt ?? null };
      },
      index: async () => {
        const found = (await this.#current()).snapshots.find((s) => s.name === snapshot.name);
        const index = found && (await this.#indexes.ofSnapshot(found.uuid));
        if (index === undefined) throw Object.assign(new Error(`ENOENT: ${snapshot.name}`), { code: 'ENOENT' });
        return index;
      },
    });
  }

  get #where(): { bucket: string; endpoint: string } {
    return { bucket: this.#bucket, endpoint: this.#endpoint };
  }

  /** One paginated ListObjectsV2 pass over the prefix; no GET per snapshot. */
  async #list(signal?: AbortSignal): Promise<S3Inventory> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: keyPrefix(this.#prefix), ContinuationToken: token }),
          { abortSignal: signal },
        );
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue;
          objects.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? null, etag: o.ETag ?? null });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw toStoreError(error, `listing ${this.url}`, this.#where);
    }
    const inventory = parseInventory(this.#prefix, objects);
    for (const key of inventory.ignored.slice(0, 3)) this.#warn(`ignoring s3://${this.#bucket}/${key}: not a buttersink diff`);
    this.#inventory = inventory;
    return inventory;
  }

  async #current(): Promise<S3Inventory> {
    return this.#inventory ?? (await this.#list());
  }

  async list(): Promise<Snapshot[]> {
    return (await this.#list()).snapshots;
  }

  async storedDiffs(): Promise<StoredDiff[]> {
    return (await this.#current()).diffs.map((d) => ({ to: d.to, from: d.from, bytes: d.bytes }));
  }

  #stored(snapshot: Snapshot, parent: Snapshot | null): S3Diff | undefined {
    const to = effectiveUuid(snapshot);
    const from = parent === null ? null : effectiveUuid(parent);
    return this.#inventory?.diffs.find((d) => d.to === to && d.from === from);
  }

  estimateDiff(snapshot: Snapshot, parent: Snapshot | null): DiffSize {
    const diff = this.#stored(snapshot, parent);
    if (!diff) throw this.#noSuchDiff(snapshot, parent);
    return { bytes: diff.bytes, exact: true };
  }

  async measureDiff(snapshot: Snapshot, parent: Snapshot | null): Promise<DiffSize> {
    await this.#current();
    return this.estimateDiff(snapshot, parent);
  }

  #noSuchDiff(snapshot: Snapshot, parent: Snapshot | null): StoreError {
    return new StoreError(
      `${this.url} holds no diff of ${snapshot.name} ${parent ? `from ${parent.name}` : '(full)'}: an S3 store can only replay the diffs it holds`,
    );
  }

  async send(snapshot: Snapshot, parent: Snapshot | null, options: { signal?: AbortSignal } = {}): Promise<SendStream> {
    await this.#current();
    const diff = this.#stored(snapshot, parent);
    if (!diff) throw this.#noSuchDiff(snapshot, parent);
    const stream = downloadStream(
      { client: this.#client, endpoint: this.#endpoint, bucket: this.#bucket, key: diff.key },
      {
        signal: options.signal,
        onRetry: (position, error) => this.#warn(`retrying download of ${diff.key} from byte ${position}: ${messageOf(error)}`),
      },
    );
    const done = finished(stream).catch((error: unknown) => {
      throw error instanceof TransferError || (error as { exitCode?: number }).exitCode !== undefined
        ? error
        : new TransferError(`downloading ${diff.key}: ${messageOf(error)}`, { cause: error });
    });
    done.catch(() => {}); // the contract: never an unhandled rejection
    return { stream, done, origin: `s3://${this.#bucket}/${diff.key}` };
  }

  nameProblem(name: string): string | undefined {
    return isStorableName(name)
      ? undefined
      : `cannot store a snapshot named ${JSON.stringify(name)} in ${this.url}: S3 keys in the original ButterSink layout could not name it (empty part, . or .., a .bs ending or a control character)`;
  }

  async receive(stream: Readable, request: ReceiveRequest, signal?: AbortSignal): Promise<Snapshot> {
    const to = effectiveUuid(request.snapshot);
    const from = request.parent === null ? null : effectiveUuid(request.parent);
    const problem = this.nameProblem(request.name);
    if (problem !== undefined) {
      stream.destroy();
      throw new StoreError(problem);
    }
    const inventory = await this.#current();
    const taken = inventory.snapshots.find((s) => s.name === request.name && s.uuid !== to);
    if (taken) {
      stream.destroy();
      throw new StoreError(`${this.url} already has a different snapshot named ${JSON.stringify(request.name)}`);
    }
    const key = diffKey(this.#prefix, request.name, to, from);
    const check = new StreamEndCheck();
    // The index is built as the stream passes (see IndexingTap): parse only, no buffering.
    const tap = this.#indexUploads ? new IndexingTap({ to, from }, (uuid) => this.#indexes.stored(uuid)) : undefined;
    const checked = tap ? stream.pipe(tap).pipe(check) : stream.pipe(check);
    stream.once('error', (error) => check.destroy(error));
    tap?.once('error', (error) => check.destroy(error));
    // The upload reads the stream a part at a time before it talks to S3: a stream that
    // stalls must not hold an abort off, so the abort ends the stream too.
    const interrupted = (): InterruptedError => new InterruptedError(`interrupted while uploading ${request.name} to ${this.url}`);
    const onAbort = (): void => void stream.destroy(interrupted());
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let uploaded: Awaited<ReturnType<typeof uploadStream>>;
    try {
      uploaded = await uploadStream(checked, {
        client: this.#client,
        endpoint: this.#endpoint,
        bucket: this.#bucket,
        key,
        serverSideEncryption: this.#settings.serverSideEncryption,
        storageClass: this.#settings.storageClass,
        journal: this.#journal,
        partBytes: this.#settings.partBytes,
        concurrency: this.#settings.uploadConcurrency,
        signal,
      });
    } catch (error) {
      stream.destroy();
      check.destroy();
      if (signal?.aborted) throw interrupted();
      if (error instanceof IncompleteStreamError)
        throw new TransferError(`uploading ${request.name}: ${error.message}; nothing was stored`);
      throw toStoreError(error, `uploading ${request.name} to ${this.url}`, this.#where);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (uploaded.resumedParts > 0) {
      const parts = uploaded.resumedParts === 1 ? '1 part' : `${uploaded.resumedParts} parts`;
      this.#warn(
        `resumed the interrupted upload of ${request.name} to ${this.url}: ${parts} (${formatBytes(uploaded.resumedBytes)} of ${formatBytes(uploaded.bytes)}) an earlier run had stored were not sent again`,
      );
    }
    await this.#encryption.afterUpload(`s3://${this.#bucket}/${key}`, uploaded.encryption, async () => {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: signal });
      return head.ServerSideEncryption;
    });
    if (tap) await this.#storeIndex(key, tap, request.name);
    const snapshot: Snapshot = {
      name: request.name,
      uuid: to,
      parentUuid: null,
      receivedUuid: to,
      generation: request.snapshot.generation,
      creationGeneration: request.snapshot.creationGeneration,
      createdAt: request.snapshot.createdAt,
    };
    this.#inventory = undefined; // listed afresh when next needed
    return snapshot;
  }

  /**
   * Stores the index an upload built. Only a complete one: an index that lacked its parent's
   * (a bucket written before indexes) is built on first browse instead, from the whole chain.
   * A failure here costs browsing speed only, never the upload: it is a warning.
   */
  async #storeIndex(key: string, tap: IndexingTap, name: string): Promise<void> {
    const index = tap.index();
    if (index.unbrowsable !== undefined) return;
    try {
      await this.#indexes.remember(key, index);
    } catch (error) {
      this.#warn(`could not store the index of ${name}: ${messageOf(error)}; it will be built when first browsed`);
    }
  }

  /**
   * Moves every diff of `snapshot` under `trash/` (copy, then delete), as the original did.
   * Refused ({@link StillNeededError}) while another snapshot in this store is stored only as
   * diffs from it (`storedDependents`): deleting it would make that one impossible to restore.
   */
  async delete(snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
    const inventory = await this.#list(signal);
    const uuid = effectiveUuid(snapshot);
    const dependents = this.#dependentsOf(inventory, uuid);
    if (dependents.length > 0) {
      const one = dependents.length === 1;
      throw new StillNeededError(
        `refusing to delete ${snapshot.name} from ${this.url}: ${dependents.join(', ')} ${one ? 'is' : 'are'} stored as diffs from it`,
        dependents,
        { hint: `delete ${one ? 'it' : 'those'} first, or keep ${snapshot.name}` },
      );
    }
    const diffs = inventory.diffs.filter((d) => d.to === uuid);
    // Indexes first: a diff a failure leaves behind still browses (its index is built again),
    // while an index left without its diff would only be ignored.
    const keys = [...diffs.flatMap((d) => (inventory.indexes.has(d.key) ? [indexKey(d.key)] : [])), ...diffs.map((d) => d.key)];
    for (const key of keys) {
      this.#indexes.forget(key);
      try {
        await this.#client.send(
          new CopyObjectCommand({
            Bucket: this.#bucket,
            Key: trashKey(key),
            CopySource: `${this.#bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
            ...(this.#settings.serverSideEncryption === 'none' ? {} : { ServerSideEncryption: this.#settings.serverSideEncryption }),
          }),
          { abortSignal: signal },
        );
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: signal });
      } catch (error) {
        if (isNotFound(error)) continue; // gone already: deleting is idempotent
        throw toStoreError(error, `moving ${key} to the trash`, this.#where);
      }
    }
    // The same diff sent again later is stored under the same keys: nothing read of these may
    // be served for it.
    this.#reader.clear();
    this.#described.clear();
    this.#inventory = undefined;
  }

  /** Names of the snapshots (other than `uuid` itself) whose only stored diffs start from `uuid`. */
  #dependentsOf(inventory: S3Inventory, uuid: string): string[] {
    const needing = new Set(storedDependents(uuid, inventory.diffs));
    return inventory.snapshots.filter((s) => needing.has(s.uuid)).map((s) => s.name);
  }

  /**
   * With `-d`: aborts our unfinished multipart uploads under this prefix (they cost storage
   * until aborted) and forgets them, so nothing resumes them. Servers without
   * ListMultipartUploads/AbortMultipartUpload only lose the local record.
   */
  async removeStale(signal?: AbortSignal): Promise<number> {
    const prefix = keyPrefix(this.#prefix);
    const uploads = new Map<string, { key: string; uploadId: string }>();
    for (const r of await this.#journal.list(this.#endpoint, this.#bucket, prefix)) uploads.set(r.uploadId, r);
    try {
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      do {
        const page = await this.#client.send(
          new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
          { abortSignal: signal },
        );
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) uploads.set(u.UploadId, { key: u.Key, uploadId: u.UploadId });
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        idMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
      } while (keyMarker !== undefined);
    } catch (error) {
      if (!isNotImplemented(error)) throw toStoreError(error, `listing unfinished uploads in ${this.url}`, this.#where);
    }
    for (const u of uploads.values()) {
      try {
        await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: u.key, UploadId: u.uploadId }), {
          abortSignal: signal,
        });
      } catch (error) {
        if (!isNotImplemented(error) && !isNotFound(error))
          throw toStoreError(error, `aborting the unfinished upload of ${u.key}`, this.#where);
      }
      await this.#journal.remove(this.#endpoint, this.#bucket, u.key);
    }
    return uploads.size;
  }

  async lock(): Promise<() => Promise<void>> {
    const directory = path.join(this.#cacheDirectory, 's3-locks');
    await mkdir(directory, { recursive: true });
    const id = createHash('sha256').update(`${this.#endpoint}\0${this.#bucket}\0${this.#prefix}`).digest('hex').slice(0, 32);
    const release = await lockDirectory(path.join(directory, `${id}.lock`), this.url);
    try {
      // Like the btrfs store's partial cleanup: finish what a killed run left half done.
      const attached = await attachPendingHashes(
        {
          client: this.#client,
          endpoint: this.#endpoint,
          bucket: this.#bucket,
          serverSideEncryption: this.#settings.serverSideEncryption,
          storageClass: this.#settings.storageClass,
          journal: this.#journal,
        },
        keyPrefix(this.#prefix),
      );
      if (attached > 0) this.#warn(`attached the SHA-256 to ${attached} object(s) an interrupted run had completed`);
    } catch (error) {
      await release();
      throw toStoreError(error, `finishing interrupted uploads in ${this.url}`, this.#where);
    }
    return release;
  }

  async close(): Promise<void> {
    this.#reader.close();
    this.#described.clear();
    this.#client.destroy();
  }
}
