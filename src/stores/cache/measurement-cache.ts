import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Where buttersink keeps its caches: `$BUTTERSINK_CACHE_DIR`, else `$XDG_CACHE_HOME/buttersink`, else `~/.cache/buttersink`. */
export function defaultCacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BUTTERSINK_CACHE_DIR) return env.BUTTERSINK_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'buttersink');
}

const MAX_ENTRIES = 200_000;

/** What measuring one diff found. */
export interface Measurement {
  /** Bytes of the real send stream. */
  readonly bytes: number;
  /** The stream's header and first command, which the local fast path renames. */
  readonly head?: Buffer;
}

interface FileFormat {
  sizes?: Record<string, unknown>;
  atLeast?: Record<string, unknown>;
  heads?: Record<string, unknown>;
  created?: Record<string, unknown>;
}

/**
 * What `btrfs send --no-data` told about diffs (exact sizes, and lower bounds where measuring
 * stopped early), keyed by the pair of subvolume UUIDs (a diff between two read-only
 * subvolumes never changes), kept across runs in one JSON file in the
 * cache directory, never next to the user's snapshots. Bounded by an LRU; a missing or corrupt
 * file is an empty cache.
 */
export class MeasurementCache {
  readonly #file: string;
  readonly #sizes = new RecentMap<number>(MAX_ENTRIES);
  readonly #heads = new RecentMap<string>(MAX_ENTRIES);
  /** Lower bounds of sizes not measured to the end (measuring stopped above a size asked for). */
  readonly #atLeast = new RecentMap<number>(MAX_ENTRIES);
  /** Creation times (ms) by subvolume UUID: what `btrfs subvolume show` told once. */
  readonly #created = new RecentMap<number>(MAX_ENTRIES);
  #dirty = false;
  #loaded: Promise<void> | undefined;

  constructor(directory: string) {
    this.#file = path.join(directory, 'measurements.json');
  }

  static key(to: string, from: string | null): string {
    return `${to}<${from ?? 'full'}`;
  }

  async get(to: string, from: string | null): Promise<Measurement | undefined> {
    await this.load();
    return this.peek(to, from);
  }

  /** Synchronous lookup of what is loaded already (for estimates). */
  peek(to: string, from: string | null): Measurement | undefined {
    const key = MeasurementCache.key(to, from);
    const bytes = this.#sizes.peek(key);
    if (bytes === undefined) return undefined;
    const head = this.#heads.peek(key);
    return head === undefined ? { bytes } : { bytes, head: Buffer.from(head, 'base64') };
  }

  async set(to: string, from: string | null, measurement: Measurement): Promise<void> {
    await this.load();
    const key = MeasurementCache.key(to, from);
    this.#sizes.set(key, measurement.bytes);
    this.#atLeast.delete(key);
    if (measurement.head) this.#heads.set(key, measurement.head.toString('base64'));
    this.#dirty = true;
  }

  /**
   * What a measurement that stopped early showed: the stream has at least this many bytes
   * (undefined when none stopped, or when the exact size is known: {@link get}).
   */
  async lowerBound(to: string, from: string | null): Promise<number | undefined> {
    await this.load();
    const key = MeasurementCache.key(to, from);
    return this.#sizes.peek(key) === undefined ? this.#atLeast.peek(key) : undefined;
  }

  /** Keeps a lower bound, unless a higher one (or the exact size) is known already. */
  async setLowerBound(to: string, from: string | null, bytes: number): Promise<void> {
    await this.load();
    const key = MeasurementCache.key(to, from);
    if (this.#sizes.peek(key) !== undefined || (this.#atLeast.peek(key) ?? -1) >= bytes) return;
    this.#atLeast.set(key, bytes);
    this.#dirty = true;
  }

  /**
   * A subvolume's creation time, when told before. `btrfs subvolume list -s` leaves received
   * full streams out, and asking `subvolume show` for each costs a process per listing; a
   * subvolume's creation time never changes, and its UUID is never reused.
   */
  createdAt(uuid: string): Date | undefined {
    const ms = this.#created.peek(uuid);
    return ms === undefined ? undefined : new Date(ms);
  }

  setCreatedAt(uuid: string, time: Date): void {
    if (!Number.isFinite(time.getTime()) || this.#created.peek(uuid) === time.getTime()) return;
    this.#created.set(uuid, time.getTime());
    this.#dirty = true;
  }

  load(): Promise<void> {
    this.#loaded ??= readFile(this.#file, 'utf8')
      .then((text) => {
        const data = JSON.parse(text) as FileFormat;
        for (const [key, value] of Object.entries(data.sizes ?? {})) {
          if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.#sizes.set(key, value);
        }
        for (const [key, value] of Object.entries(data.atLeast ?? {})) {
          if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.#atLeast.set(key, value);
        }
        for (const [key, value] of Object.entries(data.heads ?? {})) {
          if (typeof value === 'string') this.#heads.set(key, value);
        }
        for (const [key, value] of Object.entries(data.created ?? {})) {
          if (typeof value === 'number' && Number.isFinite(value)) this.#created.set(key, value);
        }
      })
      .catch(() => {});
    return this.#loaded;
  }

  /** Writes the cache atomically (temporary file, then rename) if anything changed. */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    await mkdir(path.dirname(this.#file), { recursive: true });
    const data: FileFormat = {
      sizes: Object.fromEntries(this.#sizes.entries()),
      atLeast: Object.fromEntries(this.#atLeast.entries()),
      heads: Object.fromEntries(this.#heads.entries()),
      created: Object.fromEntries(this.#created.entries()),
    };
    const tmp = `${this.#file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(data));
    await rename(tmp, this.#file);
    this.#dirty = false;
  }
}

/**
 * At most `max` entries, the least recently set one dropped first; oldest first when listed
 * (the order the file keeps, so that loading it sets them back in the same order). A Map
 * rather than lru-cache: lru-cache allocates its whole capacity up front, and two of
 * 200,000 entries cost ~180 ms of every run, more than a no-op sync's own work.
 */
class RecentMap<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}

  peek(key: string): V | undefined {
    return this.#map.get(key);
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value!);
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.#map.entries();
  }
}
