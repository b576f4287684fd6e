import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FsError } from '../../../src/fuse/fs-error.js';
import { StoreChanges } from '../../../src/fuse/store-changes.js';
import { StoreListings } from '../../../src/fuse/store-listings.js';
import { MemoryStore } from '../../support/memory-store.js';

/** The memory store, counting its lists and the locks it gave out and got back. */
class CountingStore extends MemoryStore {
  readonly calls = { list: 0, locked: 0, released: 0 };

  override async list() {
    this.calls.list += 1;
    return super.list();
  }

  override async lock() {
    const release = await super.lock();
    this.calls.locked += 1;
    return async () => {
      this.calls.released += 1;
      await release();
    };
  }
}

function countingStore(names: string[], options: { silent?: boolean } = {}) {
  const store = new CountingStore('mem://fake/');
  for (const name of names) store.add(name);
  store.isSilent = options.silent ?? false;
  return { named: { name: 'S', store }, calls: store.calls, store };
}

describe("StoreListings: cached listings with a timeout, and each store's tree", () => {
  test('a listing in flight when a change invalidates it is listed again, not an error; what a lookup gets is the new one', async () => {
    // The first listing is held until released, and sees the store as it was when it began.
    let release: (() => void) | undefined;
    class SlowStore extends CountingStore {
      override async list() {
        const seen = await super.list();
        if (this.calls.list === 1) await new Promise<void>((resolve) => (release = resolve));
        return seen;
      }
    }
    const store = new SlowStore('mem://slow/');
    store.add('a');
    const listings = new StoreListings({ stores: [{ name: 'S', store }], ttlMs: 60_000, timeoutMs: 5000 });
    const listing = listings.list('S');
    await new Promise((resolve) => setTimeout(resolve, 10));
    store.add('b'); // a transfer into S ends ...
    listings.invalidate('S'); // ... and forgets its listing while one is in flight
    release!();
    assert.deepEqual(
      (await listing).map((s) => s.name),
      ['a', 'b'],
    );
    assert.equal(store.calls.list, 2);
  });

  test('lists once within the TTL; invalidate lists again', async () => {
    const { named, calls, store } = countingStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    assert.deepEqual(
      (await listings.list('S')).map((s) => s.name),
      ['a'],
    );
    await listings.list('S');
    assert.equal(calls.list, 1);
    store.add('b');
    listings.invalidate('S');
    assert.deepEqual(
      (await listings.list('S')).map((s) => s.name),
      ['a', 'b'],
    );
    assert.equal(calls.list, 2);
  });

  test('refreshIfOlder lists again only a listing that started at least minAgeMs ago', async () => {
    const { named, calls, store } = countingStore(['a']);
    let clock = 1_000;
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000, now: () => clock });
    assert.equal(listings.refreshIfOlder('S', 1000), true, 'never listed: list');
    assert.deepEqual(
      (await listings.list('S')).map((s) => s.name),
      ['a'],
    );
    store.add('b'); // made outside the mount
    clock += 999;
    assert.equal(listings.refreshIfOlder('S', 1000), false);
    assert.deepEqual(
      (await listings.list('S')).map((s) => s.name),
      ['a'],
      'the cached listing, within the TTL',
    );
    assert.equal(calls.list, 1);
    clock += 1;
    assert.equal(listings.refreshIfOlder('S', 1000), true);
    assert.deepEqual(
      (await listings.list('S')).map((s) => s.name),
      ['a', 'b'],
    );
    assert.equal(calls.list, 2);
    assert.equal(listings.refreshIfOlder('S', 1000), false, 'the new listing is fresh');
  });

  test('a store that never answers is EIO after the timeout, naming the store', async () => {
    const { named } = countingStore([], { silent: true });
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 50 });
    await assert.rejects(
      listings.list('S'),
      (e: unknown) => e instanceof FsError && e.errno === 'EIO' && /listing S \(mem:\/\/fake\/\): no answer within 0.05 s/.test(e.message),
    );
  });

  test('the tree shows listed snapshots, arriving ones and groups', async () => {
    const { named } = countingStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    listings.addGroup('S', 'daily');
    const tree = await listings.tree('S', ['new']);
    assert.deepEqual(tree.childrenOf(''), ['a', 'daily', 'new']);
    listings.removeGroup('S', 'daily');
    assert.deepEqual((await listings.tree('S')).childrenOf(''), ['a']);
  });
});

describe('StoreChanges: serialize, lock, list, act, release, invalidate', () => {
  test('one change at a time per store; the lock is released and the listing forgotten after each', async () => {
    const { named, calls } = countingStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    const changes = new StoreChanges([named], listings, new AbortController().signal);
    await listings.list('S');
    const order: string[] = [];
    let finishFirst: () => void = () => {};
    const first = changes.serially('S', () => new Promise<void>((resolve) => (finishFirst = () => (order.push('first'), resolve()))));
    const second = changes.onSnapshot('S', 'a', async (_s, snapshot) => void order.push(`second ${snapshot.name}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(changes.inFlight, 2);
    assert.deepEqual(order, [], 'the second waits for the first');
    finishFirst();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['first', 'second a']);
    assert.equal(calls.locked, 1);
    assert.equal(calls.released, 1);
    assert.equal(changes.inFlight, 0);
    const lists = calls.list;
    await listings.list('S');
    assert.equal(calls.list, lists + 1, 'the listing was forgotten');
  });

  test('a snapshot the store no longer has is ENOENT (the lock still released); after an abort nothing starts', async () => {
    const { named, calls } = countingStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    const abort = new AbortController();
    const changes = new StoreChanges([named], listings, abort.signal);
    await assert.rejects(
      changes.onSnapshot('S', 'gone', async () => {}),
      (e: unknown) => e instanceof FsError && e.errno === 'ENOENT',
    );
    assert.equal(calls.released, calls.locked);
    abort.abort(new Error('unmounting'));
    let ran = false;
    await assert.rejects(
      changes.serially('S', async () => void (ran = true)),
      /unmounting/,
    );
    assert.equal(ran, false);
  });
});
