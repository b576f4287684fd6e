import { LRUCache } from 'lru-cache';
import type { Snapshot } from '../model/snapshot.js';
import type { NamedStore } from '../model/store.js';
import { FsError, toFsError } from './fs-error.js';
import { StoreTree } from './path-tree.js';

export interface StoreListingsOptions {
  readonly stores: readonly NamedStore[];
  /** Listings are refreshed after this long (and after the mount's own changes). */
  readonly ttlMs: number;
  /** A listing not there after this long is EIO with the reason (the listing goes on). */
  readonly timeoutMs: number;
  /** The clock (tests); Date.now by default. */
  readonly now?: () => number;
}

/**
 * The stores' listings as the mount serves them: cached for `ttlMs`, forgotten after the
 * mount's own changes, bounded by `timeoutMs` (a store that accepts connections and never
 * answers would otherwise hold `ls` until fuse-native's own op timeout, with no reason
 * anywhere), and each store's directory shape ({@link StoreTree}) built once per listing.
 * Group directories made by `mkdir` (or left by deletes) are kept here too.
 */
export class StoreListings {
  readonly #stores: ReadonlyMap<string, NamedStore>;
  readonly #timeoutMs: number;
  readonly #cache: LRUCache<string, Snapshot[]>;
  readonly #trees = new Map<string, { snapshots: Snapshot[]; key: string; tree: StoreTree }>();
  readonly #groups = new Map<string, Set<string>>();
  #groupVersion = 0;
  /** Counts invalidations: a listing aborted by one is asked again (see #fetch). */
  #invalidations = 0;
  /** When each store's cached listing started (what it can have missed came later). */
  readonly #listedAt = new Map<string, number>();
  readonly #now: () => number;

  constructor(options: StoreListingsOptions) {
    this.#stores = new Map(options.stores.map((s) => [s.name, s]));
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
    this.#cache = new LRUCache<string, Snapshot[]>({
      max: Math.max(16, options.stores.length * 2),
      ttl: options.ttlMs,
      allowStale: false,
      fetchMethod: async (name) => {
        const startedAt = this.#now();
        const list = await this.#stores.get(name)!.store.list();
        this.#listedAt.set(name, startedAt);
        return list;
      },
    });
  }

  /** A store's snapshots. @throws FsError EIO with the store and the reason. */
  async list(store: string): Promise<Snapshot[]> {
    const limit = this.#timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${Number((limit / 1000).toFixed(3))} s`)), limit);
    });
    try {
      const list = await Promise.race([this.#fetch(store), deadline]);
      return list ?? [];
    } catch (error) {
      throw new FsError('EIO', `listing ${store} (${this.#stores.get(store)!.store.url}): ${toFsError(error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The cached listing, or a fresh one. A listing in flight when the store's listing is
   * invalidated (a transfer into it just ended) is aborted by the cache and rejects: that is
   * no failure of the store, so list again — a listing that starts after the change.
   */
  async #fetch(store: string): Promise<Snapshot[] | undefined> {
    for (;;) {
      const generation = this.#invalidations;
      try {
        return await this.#cache.fetch(store);
      } catch (error) {
        if (this.#invalidations === generation) throw error;
      }
    }
  }

  /**
   * A store's directory shape: its listed snapshots, plus `arriving` (snapshots whose
   * transfer runs: not listed yet, but their copy windows must be found), plus its groups.
   */
  async tree(store: string, arriving: readonly string[] = []): Promise<StoreTree> {
    const snapshots = await this.list(store);
    const memo = this.#trees.get(store);
    const key = `${this.#groupVersion}\0${arriving.join('\0')}`;
    if (memo && memo.snapshots === snapshots && memo.key === key) return memo.tree;
    const tree = new StoreTree(store, [...snapshots.map((s) => s.name), ...arriving], [...(this.#groups.get(store) ?? [])]);
    this.#trees.set(store, { snapshots, key, tree });
    return tree;
  }

  /** Forgets a store's listing after a change of ours; the next lookup lists it again. */
  invalidate(store: string): void {
    this.#invalidations += 1;
    this.#cache.delete(store);
  }

  /**
   * Forgets a store's listing unless it started less than `minAgeMs` ago; says whether it did.
   * For a name not found: a snapshot made since the listing (outside the mount) is found at
   * the next lookup instead of after the listing's TTL, and a burst of lookups of names that
   * are not there (a file manager's probes) lists a store at most once per `minAgeMs`.
   */
  refreshIfOlder(store: string, minAgeMs: number): boolean {
    const at = this.#listedAt.get(store);
    if (at !== undefined && this.#now() - at < minAgeMs) return false;
    this.invalidate(store);
    return true;
  }

  /** Shows a group directory although no snapshot is below it (yet, or any more). */
  addGroup(store: string, prefix: string): void {
    let set = this.#groups.get(store);
    if (set === undefined) this.#groups.set(store, (set = new Set()));
    set.add(prefix);
    this.#groupVersion += 1;
  }

  removeGroup(store: string, prefix: string): void {
    this.#groups.get(store)?.delete(prefix);
    this.#groupVersion += 1;
  }
}
