import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LRUCache } from 'lru-cache';

/** Where buttersink keeps its caches: `$BUTTERSINK_CACHE_DIR`, else `$XDG_CACHE_HOME/buttersink`, else `~/.cache/buttersink`. */
export function defaultCacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BUTTERSINK_CACHE_DIR) return env.BUTTERSINK_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'buttersink');
}

const MAX_ENTRIES = 200_000;

/**
 * Measured diff sizes, keyed by the pair of subvolume UUIDs (a diff between two read-only
 * subvolumes never changes), kept across runs in one JSON file in the cache directory, never
 * next to the user's snapshots. Bounded by an LRU; a missing or corrupt file is an empty cache.
 */
export class DiffSizeCache {
  readonly #file: string;
  readonly #sizes = new LRUCache<string, number>({ max: MAX_ENTRIES });
  #dirty = false;
  #loaded: Promise<void> | undefined;

  constructor(directory: string) {
    this.#file = path.join(directory, 'diff-sizes.json');
  }

  static key(to: string, from: string | null): string {
    return `${to}<${from ?? 'full'}`;
  }

  async get(to: string, from: string | null): Promise<number | undefined> {
    await this.#load();
    return this.#sizes.get(DiffSizeCache.key(to, from));
  }

  /** Synchronous lookup of what is loaded already (for estimates). */
  peek(to: string, from: string | null): number | undefined {
    return this.#sizes.peek(DiffSizeCache.key(to, from));
  }

  async set(to: string, from: string | null, bytes: number): Promise<void> {
    await this.#load();
    this.#sizes.set(DiffSizeCache.key(to, from), bytes);
    this.#dirty = true;
  }

  load(): Promise<void> {
    return this.#load();
  }

  #load(): Promise<void> {
    this.#loaded ??= readFile(this.#file, 'utf8').then(
      (text) => {
        const data = JSON.parse(text) as unknown;
        if (typeof data !== 'object' || data === null) return;
        for (const [key, value] of Object.entries(data)) {
          if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.#sizes.set(key, value);
        }
      },
      () => {},
    ).catch(() => {});
    return this.#loaded;
  }

  /** Writes the cache atomically (temporary file, then rename) if anything changed. */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    await mkdir(path.dirname(this.#file), { recursive: true });
    const entries = Object.fromEntries([...this.#sizes.entries()].reverse());
    const tmp = `${this.#file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(entries));
    await rename(tmp, this.#file);
    this.#dirty = false;
  }
}
