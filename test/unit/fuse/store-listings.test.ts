import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../src/model/snapshot.js';
import type { Store } from '../../../src/model/store.js';
import { FsError } from '../../../src/fuse/fs-error.js';
import { StoreChanges } from '../../../src/fuse/store-changes.js';
import { StoreListings } from '../../../src/fuse/store-listings.js';

/** Just enough of a store for listings and changes: counts its lists, holds a lock. */
function fakeStore(names: string[], options: { silent?: boolean } = {}) {
  const calls = { list: 0, locked: 0, released: 0 };
  const snapshot = (name: string) => ({ name }) as Snapshot;
  const store = {
    url: 'mem://fake/',
    list: async () => {
      calls.list += 1;
      if (options.silent) return new Promise<Snapshot[]>(() => {});
      return names.map(snapshot);
    },
    lock: async () => {
      calls.locked += 1;
      return async () => void (calls.released += 1);
    },
  } as unknown as Store;
  return { named: { name: 'S', store }, calls, names };
}

describe('StoreListings: cached listings with a timeout, and each store\'s tree', () => {
  test('a listing in flight when a change invalidates it is listed again, not an error; what a lookup gets is the new one', async () => {
    const names = ['a'];
    let release: (() => void) | undefined;
    let calls = 0;
    const store = {
      url: 'mem://slow/',
      list: async () => {
        calls += 1;
        const seen = [...names];
        if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
        return seen.map((name) => ({ name }) as Snapshot);
      },
    } as unknown as Store;
    const listings = new StoreListings({ stores: [{ name: 'S', store }], ttlMs: 60_000, timeoutMs: 5000 });
    const listing = listings.list('S');
    await new Promise((resolve) => setTimeout(resolve, 10));
    names.push('b'); // a transfer into S ends ...
    listings.invalidate('S'); // ... and forgets its listing while one is in flight
    release!();
    assert.deepEqual((await listing).map((s) => s.name), ['a', 'b']);
    assert.equal(calls, 2);
  });

  test('lists once within the TTL; invalidate lists again', async () => {
    const { named, calls, names } = fakeStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    assert.deepEqual((await listings.list('S')).map((s) => s.name), ['a']);
    await listings.list('S');
    assert.equal(calls.list, 1);
    names.push('b');
    listings.invalidate('S');
    assert.deepEqual((await listings.list('S')).map((s) => s.name), ['a', 'b']);
    assert.equal(calls.list, 2);
  });

  test('a store that never answers is EIO after the timeout, naming the store', async () => {
    const { named } = fakeStore([], { silent: true });
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 50 });
    await assert.rejects(listings.list('S'), (e: unknown) => e instanceof FsError && e.errno === 'EIO' && /listing S \(mem:\/\/fake\/\): no answer within 0.05 s/.test(e.message));
  });

  test('the tree shows listed snapshots, arriving ones and groups', async () => {
    const { named } = fakeStore(['a']);
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
    const { named, calls } = fakeStore(['a']);
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
    const { named, calls } = fakeStore(['a']);
    const listings = new StoreListings({ stores: [named], ttlMs: 60_000, timeoutMs: 1000 });
    const abort = new AbortController();
    const changes = new StoreChanges([named], listings, abort.signal);
    await assert.rejects(changes.onSnapshot('S', 'gone', async () => {}), (e: unknown) => e instanceof FsError && e.errno === 'ENOENT');
    assert.equal(calls.released, calls.locked);
    abort.abort(new Error('unmounting'));
    let ran = false;
    await assert.rejects(changes.serially('S', async () => void (ran = true)), /unmounting/);
    assert.equal(ran, false);
  });
});
