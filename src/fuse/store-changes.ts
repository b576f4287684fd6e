import pLimit, { type LimitFunction } from 'p-limit';
import type { Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import type { NamedStore } from '../model/store.js';
import { FsError } from './fs-error.js';
import type { StoreListings } from './store-listings.js';

/**
 * Changes the mount makes to stores (transfers, deletes, renames): one at a time per store
 * (the store lock is per process too), counted so that unmounting can wait for them, and
 * refused once the mount is stopping. Every change ends by forgetting the store's listing.
 */
export class StoreChanges {
  readonly #stores: ReadonlyMap<string, NamedStore>;
  readonly #listings: StoreListings;
  readonly #signal: AbortSignal;
  readonly #serial = new Map<string, LimitFunction>();
  #inFlight = 0;

  constructor(stores: readonly NamedStore[], listings: StoreListings, signal: AbortSignal) {
    this.#stores = new Map(stores.map((s) => [s.name, s]));
    this.#listings = listings;
    this.#signal = signal;
  }

  /** Running or queued: unmounting waits for them to settle. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs `work` after the store's earlier changes; then its listing is listed again. */
  async serially<T>(store: string, work: () => Promise<T>): Promise<T> {
    let limit = this.#serial.get(store);
    if (limit === undefined) this.#serial.set(store, (limit = pLimit(1)));
    this.#inFlight += 1;
    try {
      return await limit(() => {
        this.#signal.throwIfAborted();
        return work();
      });
    } finally {
      this.#inFlight -= 1;
      this.#listings.invalidate(store);
    }
  }

  /**
   * Serialize, lock, list, act, release, invalidate: `act` gets the snapshot named `name` as
   * the store lists it under its lock (not the mount's cached listing, which may be stale).
   * @throws FsError ENOENT when the store has no such snapshot any more.
   */
  onSnapshot<T>(store: string, name: string, act: (target: Store, snapshot: Snapshot, signal: AbortSignal) => Promise<T>): Promise<T> {
    const { store: target } = this.#stores.get(store)!;
    return this.serially(store, async () => {
      const release = await target.lock();
      try {
        const snapshot = (await target.list()).find((s) => s.name === name);
        if (snapshot === undefined) throw new FsError('ENOENT', `${store} has no snapshot named ${name} any more`);
        return await act(target, snapshot, this.#signal);
      } finally {
        await release();
      }
    });
  }
}
