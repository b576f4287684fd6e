import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import { messageOf, TransferError } from '../../model/errors.js';
import { decodeIndex, encodeIndex } from '../../sendstream/index-codec.js';
import { IndexingTap } from '../../sendstream/indexing-tap.js';
import type { SnapshotIndex } from '../../sendstream/snapshot-index.js';
import { downloadStream } from './download-stream.js';
import { indexKey, type S3Diff, type S3Inventory } from './s3-layout.js';
import { toStoreError } from './s3-errors.js';

/** A stored index larger than this is not fetched (a hostile bucket could name a huge object). */
export const MAX_STORED_INDEX_BYTES = 512 * 1024 * 1024;
/** Decoded indexes kept in memory, counted in inodes (an inode costs roughly 200-400 bytes). */
const MEMORY_INODES = 4_000_000;

export interface S3IndexesOptions {
  readonly client: S3Client;
  readonly endpoint: string;
  readonly bucket: string;
  /** Where built and fetched indexes are kept between runs (`<cache>/s3-indexes`). */
  readonly cacheDirectory: string;
  /** The store's current listing. */
  readonly inventory: () => Promise<S3Inventory>;
  /** Stores an index object next to its diff (fails when the store is not writable). */
  readonly put: (key: string, body: Buffer) => Promise<void>;
  readonly warn: (message: string) => void;
}

/**
 * The indexes of an S3 store's diffs ({@link SnapshotIndex}), which make its snapshots
 * browsable. An index is taken from memory, else the local cache, else the bucket (the object
 * `<diff key>.index.gz` the upload stored); a diff without one (uploaded by the original
 * ButterSink, or before indexes) gets it built by reading its chain's objects once, parse only,
 * which is then cached locally and stored in the bucket when the store takes writes.
 * Everything read from the bucket is checked (`decodeIndex`); an index that fails its checks
 * is built afresh from the diffs, whose commands carry CRCs.
 */
export class S3Indexes {
  readonly #options: S3IndexesOptions;
  readonly #memory = new LRUCache<string, SnapshotIndex>({ maxSize: MEMORY_INODES, sizeCalculation: (i) => i.inodes.length + 1 });
  /** Loads and builds in progress, by diff key: two readers of one snapshot share one. */
  readonly #loading = new Map<string, Promise<SnapshotIndex>>();
  #writable = true;

  constructor(options: S3IndexesOptions) {
    this.#options = options;
  }

  /**
   * The index of the snapshot with this effective UUID, built if need be; undefined when the
   * store holds no diff of it. `building` guards against chains that loop (a hostile bucket).
   */
  async ofSnapshot(uuid: string, building: ReadonlySet<string> = new Set()): Promise<SnapshotIndex | undefined> {
    const inventory = await this.#options.inventory();
    const diff = pickDiff(inventory, uuid, building);
    return diff && this.ofDiff(diff, building);
  }

  /** The index of one diff, as {@link ofSnapshot}. */
  ofDiff(diff: S3Diff, building: ReadonlySet<string> = new Set()): Promise<SnapshotIndex> {
    const known = this.#memory.get(diff.key);
    if (known !== undefined) return Promise.resolve(known);
    let loading = this.#loading.get(diff.key);
    if (loading === undefined) {
      loading = this.#load(diff, new Set([...building, diff.to])).finally(() => this.#loading.delete(diff.key));
      this.#loading.set(diff.key, loading);
    }
    return loading;
  }

  /** The snapshot's index if it is in memory already (nothing is fetched or built). */
  async inMemory(uuid: string): Promise<SnapshotIndex | undefined> {
    const inventory = await this.#options.inventory();
    const diff = pickDiff(inventory, uuid, new Set());
    return diff && this.#memory.get(diff.key);
  }

  /**
   * What an upload's indexing may use for its parent and clone sources: an index in memory,
   * the local cache or the bucket, never one built (that would read whole chains while the
   * upload waits). Undefined when there is none; the upload then stores no index.
   */
  async stored(uuid: string): Promise<SnapshotIndex | undefined> {
    const inventory = await this.#options.inventory();
    for (const diff of inventory.diffs.filter((d) => d.to === uuid)) {
      const index = this.#memory.get(diff.key) ?? (await this.#fromCache(diff)) ?? (await this.#fromBucket(diff, inventory));
      if (index !== undefined && index.unbrowsable === undefined) {
        this.#memory.set(diff.key, index);
        return index;
      }
    }
    return undefined;
  }

  /** Keeps the index an upload built for the diff now stored under `key`, and stores it next to it. */
  async remember(key: string, index: SnapshotIndex): Promise<void> {
    // Served as built: the builder keeps every rule decoding checks (a tree of directories,
    // names and targets within NAME_MAX/PATH_MAX, extents inside their commands), and decoding
    // a million files again would cost seconds and another half GiB.
    this.#memory.set(key, index);
    const body = await encodeIndex(index);
    await this.#toCache(key, index.objects.find((o) => o.to === index.to && o.from === index.from)?.bytes ?? 0, body);
    await this.#toBucket(key, body);
  }

  /** Forgets what is known of `key` (a deleted diff). */
  forget(key: string): void {
    this.#memory.delete(key);
  }

  async #load(diff: S3Diff, building: ReadonlySet<string>): Promise<SnapshotIndex> {
    const inventory = await this.#options.inventory();
    const found = (await this.#fromCache(diff)) ?? (await this.#fromBucket(diff, inventory));
    if (found !== undefined) {
      this.#memory.set(diff.key, found);
      return found;
    }
    const built = await this.#build(diff, building);
    this.#memory.set(diff.key, built);
    const body = await encodeIndex(built);
    await this.#toCache(diff.key, diff.bytes, body);
    await this.#toBucket(diff.key, body);
    return built;
  }

  /** Reads the diff's stream once, parse only, through the indexer. */
  async #build(diff: S3Diff, building: ReadonlySet<string>): Promise<SnapshotIndex> {
    const tap = new IndexingTap({ to: diff.to, from: diff.from }, (uuid) =>
      building.has(uuid) ? Promise.resolve(undefined) : this.ofSnapshot(uuid, building),
    );
    const { client, endpoint, bucket } = this.#options;
    try {
      await pipeline(
        downloadStream({ client, endpoint, bucket, key: diff.key }),
        tap,
        new Writable({
          write: (_chunk, _encoding, callback) => callback(),
        }),
      );
    } catch (error) {
      if (error instanceof TransferError) throw error;
      throw toStoreError(error, `reading s3://${bucket}/${diff.key} to index it`, { bucket, endpoint });
    }
    return tap.index();
  }

  #cacheFile(key: string, bytes: number): string {
    const { endpoint, bucket, cacheDirectory } = this.#options;
    const id = createHash('sha256').update(`${endpoint}\0${bucket}\0${key}\0${bytes}`).digest('hex').slice(0, 40);
    return path.join(cacheDirectory, 's3-indexes', `${id}.index.gz`);
  }

  async #fromCache(diff: S3Diff): Promise<SnapshotIndex | undefined> {
    let body: Buffer;
    try {
      body = await readFile(this.#cacheFile(diff.key, diff.bytes));
    } catch {
      return undefined;
    }
    return this.#accept(body, diff, 'the local cache');
  }

  async #fromBucket(diff: S3Diff, inventory: S3Inventory): Promise<SnapshotIndex | undefined> {
    const stored = inventory.indexes.get(diff.key);
    if (stored === undefined) return undefined;
    const { client, bucket, endpoint } = this.#options;
    if (stored.bytes > MAX_STORED_INDEX_BYTES) {
      this.#options.warn(`s3://${bucket}/${stored.key} is larger than any index should be: building the index afresh`);
      return undefined;
    }
    let body: Buffer;
    try {
      const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: stored.key }));
      body = await collect(answer.Body as NodeJS.ReadableStream);
    } catch (error) {
      throw toStoreError(error, `reading the index s3://${bucket}/${stored.key}`, { bucket, endpoint });
    }
    const index = await this.#accept(body, diff, `s3://${bucket}/${stored.key}`);
    if (index !== undefined) await this.#toCache(diff.key, diff.bytes, body);
    return index;
  }

  /** Decodes an index and checks that it is the index of this diff, as stored now. */
  async #accept(body: Buffer, diff: S3Diff, where: string): Promise<SnapshotIndex | undefined> {
    try {
      const index = await decodeIndex(body);
      const self = index.objects.find((o) => o.to === diff.to && o.from === diff.from);
      if (index.to !== diff.to || index.from !== diff.from || self?.bytes !== diff.bytes) {
        throw new Error(`it is the index of another diff, or of another upload of ${diff.key}`);
      }
      return index;
    } catch (error) {
      this.#options.warn(`ignoring the index in ${where}: ${messageOf(error)}; building it afresh`);
      return undefined;
    }
  }

  async #toCache(key: string, bytes: number, body: Buffer): Promise<void> {
    const file = this.#cacheFile(key, bytes);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, body);
      await rename(`${file}.tmp`, file);
    } catch (error) {
      this.#options.warn(`could not cache the index of ${key} locally: ${messageOf(error)}`);
    }
  }

  async #toBucket(key: string, body: Buffer): Promise<void> {
    if (!this.#writable) return;
    try {
      await this.#options.put(indexKey(key), body);
    } catch (error) {
      // A read-only key or bucket: browsing still works from the local cache.
      this.#writable = false;
      this.#options.warn(`could not store the index of ${key} in the bucket (${messageOf(error)}): it is kept in the local cache only`);
    }
  }
}

/**
 * The diff whose index stands for the snapshot: one that has a stored index, else a full one,
 * else any whose parent is not being built already (a loop).
 */
function pickDiff(inventory: S3Inventory, uuid: string, building: ReadonlySet<string>): S3Diff | undefined {
  const candidates = inventory.diffs.filter((d) => d.to === uuid && (d.from === null || !building.has(d.from)));
  return candidates.find((d) => inventory.indexes.has(d.key)) ?? candidates.find((d) => d.from === null) ?? candidates[0];
}
