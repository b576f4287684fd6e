import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { BusyError, ButtersinkError, InterruptedError, StillNeededError, StoreError, TransferError } from '../../src/model/errors.js';
import { effectiveUuid, type Snapshot } from '../../src/model/snapshot.js';
import type { SendStream, Store } from '../../src/model/store.js';
import { MemoryStore } from './memory-store.js';

/**
 * One store contract suite (restic's `RunTests`): every rule `src/model/store.ts` states, as a
 * test, run against every kind of store in one line each:
 *
 *     storeContract('btrfs', async () => ({ ...a ContractFixture... }));
 *
 * Test names quote the rule they check. Capabilities and optional methods decide which rules
 * apply; a rule that does not apply to a store passes with a diagnostic saying why (the store
 * lacks that capability or method, or nothing of that kind can exist in it).
 *
 * Snapshots get into the store under test only through its own `receive`, from a source store
 * whose streams this kind of store takes (real `btrfs send` streams for btrfs, SSH and S3; the
 * memory store's own format for it), so the suite needs nothing but the contract.
 */

/** A store of the kind under test at a location of its own (a directory, a prefix). */
export interface ContractLocation {
  readonly store: Store;
  /** Another store on the same location, as a second process would open it. */
  reopen(): Store | Promise<Store>;
  /**
   * Everything the location holds, shown by `list` or not (partial receives, staging areas,
   * stored objects), as sorted names: what a failed receive must leave as it found it.
   */
  contents(): Promise<string[]>;
  /**
   * Adds what `list` must not show (read-write subvolumes, plain files, staging areas), and
   * that is not buttersink's to remove. (Receives in progress: see the "visible atomically" rule.)
   */
  clutter?(): Promise<void>;
  /** Leaves what a receive killed with SIGKILL would leave (`contents` shows it). */
  crashReceive?(): Promise<void>;
  /** Leaves a leftover of an interrupted run that `removeStale` removes. */
  leaveStale?(): Promise<void>;
  /** Removes the location (after its stores were closed), at the end of the test that opened it. */
  dispose?(): Promise<void> | void;
}

/** What the files of the source's `base` snapshot are, for stores with `snapshotFiles`. */
export interface BaseFiles {
  /** `readdir('')` of the snapshot, sorted. */
  readonly root: readonly string[];
  /** A regular file and its contents. */
  readonly file: string;
  readonly content: Buffer;
  /** A directory and its entries, sorted. */
  readonly directory: string;
  readonly entries: readonly string[];
  /** A symbolic link and its target. */
  readonly link: string;
  readonly target: string;
}

export interface ContractFixture {
  /** A new, empty location with a store of the kind under test on it. */
  open(): Promise<ContractLocation>;
  /** A store of the kind under test whose location does not exist. */
  missing(): Store;
  /**
   * Where snapshots come from: a store whose send streams the store under test receives,
   * holding `base`, `next` (a later snapshot of the same subvolume) and `other` (unrelated).
   */
  readonly source: Store;
  readonly snapshots: { readonly base: Snapshot; readonly next: Snapshot; readonly other: Snapshot };
  readonly baseFiles?: BaseFiles;
  /** A name the store cannot hold, when it has {@link Store.nameProblem}. */
  readonly unstorableName?: string;
  /** Stops servers, removes pools (stores the suite opened are closed before). */
  close(): Promise<void>;
}

export interface StoreContractOptions {
  /** Prerequisites: a reason to skip (never in CI: the prerequisites helpers throw there). */
  readonly skip?: string | false;
}

const RULE_TIMEOUT_MS = 60_000;

/** Registers the contract suite for one kind of store; `setup` runs once, before its tests. */
export function storeContract(name: string, setup: () => Promise<ContractFixture>, options: StoreContractOptions = {}): void {
  describe(`Store contract: ${name}`, { skip: options.skip ?? false }, () => {
    /** One rule as a test; a store that hangs fails it instead of holding the run. */
    const rule = (title: string, fn: (t: TestContext) => Promise<void>): void => void test(title, { timeout: RULE_TIMEOUT_MS }, fn);
    let fixture: ContractFixture;
    /** What the running test opened: closed and removed after it. */
    let opened: Store[] = [];
    let locations: ContractLocation[] = [];

    before(async () => {
      fixture = await setup();
    });
    afterEach(async () => {
      // A test that failed (or timed out) while holding a lock must not hold the run.
      for (const release of held) await release().catch(() => {});
      held.clear();
      for (const store of opened) await store.close().catch(() => {});
      for (const location of locations) await location.dispose?.();
      opened = [];
      locations = [];
    });
    after(async () => {
      await fixture?.close();
    });

    /** Locks still held: released after each test whatever happened in it. */
    const held = new Set<() => Promise<void>>();
    const lockOf = async (store: Store): Promise<() => Promise<void>> => {
      const release = await store.lock();
      held.add(release);
      return async () => {
        held.delete(release);
        await release();
      };
    };

    /** A new location; its stores are closed, and it is removed, after the test. */
    const open = async (): Promise<ContractLocation> => {
      const location = await fixture.open();
      opened.push(location.store);
      locations.push(location);
      return {
        ...location,
        reopen: async () => {
          const store = await location.reopen();
          opened.push(store);
          return store;
        },
      };
    };

    const sent = (snapshot: Snapshot, parent: Snapshot | null): Promise<SendStream> => fixture.source.send(snapshot, parent);

    /** Receives `snapshot` (from `parent`) from the source under `name`, holding the lock. */
    const receive = async (
      store: Store,
      name: string,
      snapshot: Snapshot,
      parent: Snapshot | null = null,
    ): Promise<{ received: Snapshot; bytes: number }> => {
      const release = await lockOf(store);
      try {
        const sending = await sent(snapshot, parent);
        const counted = counting(sending.stream);
        const received = await store.receive(counted.stream, {
          name,
          snapshot,
          parent,
          expectedBytes: 0,
          ...(sending.origin ? { origin: sending.origin } : {}),
        });
        await sending.done;
        return { received, bytes: counted.bytes() };
      } finally {
        await release();
      }
    };

    /**
     * What a listing says about identity: names and UUIDs. Not `generation`, which btrfs
     * itself may raise after a receive, when a later transaction commits the new
     * subvolume's delayed inode updates (seen in this suite under load).
     */
    const identities = (snapshots: readonly Snapshot[]): string[] =>
      snapshots.map((s) => [s.name, s.uuid, s.parentUuid, s.receivedUuid].join(' '));

    /** The listed snapshot named `name`, failing when there is none. */
    const listed = async (store: Store, name: string): Promise<Snapshot> => {
      const found = (await store.list()).find((s) => s.name === name);
      assert.ok(found, `${name} is listed`);
      return found;
    };

    /** Holding the store's lock, as the contract asks of writers. */
    const locked = async <T>(store: Store, work: () => Promise<T>): Promise<T> => {
      const release = await lockOf(store);
      try {
        return await work();
      } finally {
        await release();
      }
    };

    /** The pairs a store can send: any pair of what it holds, or exactly its stored diffs. */
    const sendable = async (store: Store): Promise<[Snapshot, Snapshot | null][]> => {
      const snapshots = await store.list();
      if (store.capabilities.canDiffAnyPair) {
        return snapshots.flatMap((s): [Snapshot, Snapshot | null][] => [
          [s, null],
          ...snapshots.filter((p) => p !== s).map((p): [Snapshot, Snapshot] => [s, p]),
        ]);
      }
      const byUuid = new Map(snapshots.map((s) => [effectiveUuid(s), s]));
      return (await store.storedDiffs()).map((d): [Snapshot, Snapshot | null] => [
        byUuid.get(d.to)!,
        d.from === null ? null : byUuid.get(d.from)!,
      ]);
    };

    /** A store holding base as `base` and next (from base) as `next`. */
    const withChain = async (): Promise<ContractLocation & { base: Snapshot; next: Snapshot; bytes: { base: number; next: number } }> => {
      const location = await open();
      const { base, next } = fixture.snapshots;
      const first = await receive(location.store, 'base', base);
      const second = await receive(location.store, 'next', next, base);
      return { ...location, base: first.received, next: second.received, bytes: { base: first.bytes, next: second.bytes } };
    };

    // ---------------------------------------------------------------- list

    rule('list: "every complete, read-only snapshot in the store, sorted by name"', async () => {
      const { store } = await open();
      assert.deepEqual(await store.list(), []);
      const { base, next, other } = fixture.snapshots;
      await receive(store, 'zz', other);
      await receive(store, 'daily/base', base);
      await receive(store, 'daily/a-next', next, base);
      const snapshots = await store.list();
      assert.deepEqual(
        snapshots.map((s) => s.name),
        ['daily/a-next', 'daily/base', 'zz'],
      );
      const expected = { 'daily/a-next': next, 'daily/base': base, zz: other } as Record<string, Snapshot>;
      for (const s of snapshots) assert.equal(effectiveUuid(s), effectiveUuid(expected[s.name]!), `${s.name} holds what was received`);
    });

    rule('list: "Read-write subvolumes, plain files and buttersink\'s own staging area are not listed"', async (t) => {
      const location = await open();
      if (!location.clutter) return notApplicable(t, 'the fixture has nothing a listing could show by mistake');
      await receive(location.store, 'base', fixture.snapshots.base);
      const contents = await location.contents();
      await location.clutter();
      assert.notDeepEqual(await location.contents(), contents, 'clutter was added');
      assert.deepEqual(
        (await location.store.list()).map((s) => s.name),
        ['base'],
      );
    });

    rule('list: "@throws StoreError when the location does not exist"', async () => {
      const store = fixture.missing();
      opened.push(store);
      await assert.rejects(store.list(), StoreError);
    });

    rule(
      "list: what it returns under the lock is what the store holds then, after the lock's own cleanup and every change since",
      async () => {
        const location = await open();
        const { base, next } = fixture.snapshots;
        await receive(location.store, 'base', base);
        await location.crashReceive?.();
        const release = await lockOf(location.store);
        try {
          assert.deepEqual(
            (await location.store.list()).map((s) => s.name),
            ['base'],
          );
          // A receive and a delete under the same lock: each later listing sees them.
          const sending = await sent(next, base);
          await location.store.receive(sending.stream, {
            name: 'next',
            snapshot: next,
            parent: base,
            expectedBytes: 0,
            ...(sending.origin ? { origin: sending.origin } : {}),
          });
          await sending.done;
          assert.deepEqual(
            (await location.store.list()).map((s) => s.name),
            ['base', 'next'],
          );
        } finally {
          await release();
        }
        // Locked again, and this time nothing is asked before a change.
        await locked(location.store, async () => {
          const listedNext = await listed(location.store, 'next');
          await location.store.delete(listedNext);
          assert.deepEqual(
            (await location.store.list()).map((s) => s.name),
            ['base'],
          );
        });
      },
    );

    rule(
      'lockAndList: "lock, then list ... Same results and errors as the two calls in turn; when it rejects, nothing is held"',
      async (t) => {
        const location = await open();
        if (!location.store.lockAndList) return notApplicable(t, 'the store has no lockAndList()');
        await receive(location.store, 'base', fixture.snapshots.base);
        const clean = await location.contents();
        await location.crashReceive?.();
        const { release, snapshots } = await location.store.lockAndList();
        held.add(release);
        assert.deepEqual(
          snapshots.map((s) => s.name),
          ['base'],
        );
        assert.deepEqual(identities(snapshots), identities(await location.store.list()), 'what list() says');
        assert.deepEqual(await location.contents(), clean, 'partial receives removed, as lock() does');
        const second = await location.reopen();
        await assert.rejects(second.lockAndList!(), BusyError);
        held.delete(release);
        await release();
        const again = await second.lockAndList!();
        await again.release();
        const missing = fixture.missing();
        opened.push(missing);
        await assert.rejects(missing.lockAndList!(), StoreError);
      },
    );

    // ---------------------------------------------------------------- storedDiffs, capabilities

    rule('storedDiffs: "The diffs a diff store holds; `[]` for stores that can diff any pair"', async () => {
      const { store, base, next, bytes } = await withChain();
      const diffs = await store.storedDiffs();
      if (store.capabilities.canDiffAnyPair) {
        assert.deepEqual(diffs, []);
        return;
      }
      const sorted = [...diffs].sort((a, b) => (a.from === null ? -1 : b.from === null ? 1 : 0));
      assert.deepEqual(sorted, [
        { to: effectiveUuid(base), from: null, bytes: bytes.base },
        { to: effectiveUuid(next), from: effectiveUuid(base), bytes: bytes.next },
      ]);
    });

    rule(
      'capabilities: "When false [canDiffAnyPair], it can only replay storedDiffs"; storesDiffs: "The store keeps diffs, not snapshots"',
      async () => {
        const { store } = await withChain();
        const { canDiffAnyPair, canReceive, canDelete, storesDiffs } = store.capabilities;
        for (const flag of [canDiffAnyPair, canReceive, canDelete, storesDiffs]) assert.equal(typeof flag, 'boolean');
        assert.equal(canReceive, true, 'the suite runs against stores it can write');
        if (canDiffAnyPair) return;
        // Every snapshot it lists can be restored from what it stores.
        const diffs = await store.storedDiffs();
        for (const s of await store.list())
          assert.ok(
            diffs.some((d) => d.to === effectiveUuid(s)),
            `a diff makes ${s.name}`,
          );
        assert.equal(storesDiffs, true, 'a store that cannot diff any pair replays stored diffs');
      },
    );

    // ---------------------------------------------------------------- estimateDiff, measureDiff

    rule('estimateDiff: "Cheap guess at the size of the stream send({snapshot, parent}) would produce"', async () => {
      const { store } = await withChain();
      const pairs = await sendable(store);
      assert.ok(pairs.length >= 2);
      for (const [snapshot, parent] of pairs) {
        const size = store.estimateDiff(snapshot, parent);
        assert.ok(!(size instanceof Promise), 'answered at once');
        assert.ok(Number.isSafeInteger(size.bytes) && size.bytes >= 0, `${size.bytes}`);
        assert.equal(typeof size.exact, 'boolean');
        if (size.exact) assert.equal(size.bytes, await sentBytes(store, snapshot, parent), '`exact`: the size of the stream');
      }
    });

    rule('measureDiff: "Exact size of the stream send({snapshot, parent}) would produce (±command framing)"', async () => {
      const { store } = await withChain();
      for (const [snapshot, parent] of await sendable(store)) {
        const measured = await store.measureDiff(snapshot, parent);
        assert.equal(measured.exact, true);
        const real = await sentBytes(store, snapshot, parent);
        assertFramingClose(measured.bytes, real, `${snapshot.name} from ${parent?.name ?? 'nothing'}`);
      }
    });

    rule(
      'measureDiff with stopAbove: "may stop as soon as the stream is known to be larger", a lower bound above it, "never gives that bound as an exact size later"',
      async () => {
        const { store } = await withChain();
        const [snapshot, parent] = (await sendable(store)).find(([, p]) => p === null) ?? (await sendable(store))[0]!;
        const real = await sentBytes(store, snapshot, parent);
        const stopped = await store.measureDiff(snapshot, parent, undefined, { stopAbove: 100 });
        if (stopped.atLeast === true) {
          assert.equal(stopped.exact, false);
          assert.ok(stopped.bytes > 100, `${stopped.bytes} is above stopAbove`);
          assert.ok(
            stopped.bytes <= real + Math.max(16 * 1024, real * 0.01),
            `a lower bound (${stopped.bytes}) is not above the real size (${real})`,
          );
          assert.equal(store.estimateDiff(snapshot, parent).exact, false, 'not an exact size');
        } else {
          assert.equal(stopped.exact, true);
          assertFramingClose(stopped.bytes, real, 'measured in full');
        }
        // Above the real size, nothing stops it: the exact size, as without stopAbove.
        const whole = await store.measureDiff(snapshot, parent, undefined, { stopAbove: real * 2 });
        assert.equal(whole.exact, true);
        assert.equal(whole.atLeast, undefined);
        assertFramingClose(whole.bytes, real, 'measured in full');
      },
    );

    rule(
      'measureDiff with stopAbove a promise: "a bound that came late exactly as one given at the start"; "resolved `undefined`, there is no bound"',
      async () => {
        const { store } = await withChain();
        const [snapshot, parent] = (await sendable(store)).find(([, p]) => p === null) ?? (await sendable(store))[0]!;
        const real = await sentBytes(store, snapshot, parent);
        let giveBound = (_bound: number | undefined): void => {};
        const late = new Promise<number | undefined>((resolve) => (giveBound = resolve));
        const measuring = store.measureDiff(snapshot, parent, undefined, { stopAbove: late });
        setTimeout(() => giveBound(100), 5);
        const stopped = await measuring;
        if (stopped.atLeast === true) {
          assert.equal(stopped.exact, false);
          assert.ok(stopped.bytes > 100, `${stopped.bytes} is above the late stopAbove`);
          assert.ok(stopped.bytes <= real + Math.max(16 * 1024, real * 0.01), `a lower bound (${stopped.bytes}) is not above ${real}`);
        } else {
          assertFramingClose(stopped.bytes, real, 'measured in full');
        }
        const whole = await store.measureDiff(snapshot, parent, undefined, { stopAbove: Promise.resolve(undefined) });
        assert.equal(whole.exact, true);
        assert.equal(whole.atLeast, undefined);
        assertFramingClose(whole.bytes, real, 'measured in full');
      },
    );

    rule(
      'measureDiff: "@throws TransferError when measuring failed"; a diff store: StoreError when it cannot produce that diff',
      async () => {
        const { store, base, next } = await withChain();
        if (store.capabilities.canDiffAnyPair) {
          // A snapshot deleted since it was listed cannot be measured.
          await locked(store, () => store.delete(next));
          await assert.rejects(store.measureDiff(next, base), TransferError);
        } else {
          await assert.rejects(store.measureDiff(next, null), StoreError);
        }
      },
    );

    rule(
      '"`signal` aborts the operation": measureDiff and delete given an aborted signal reject with InterruptedError, or finish when nothing was left to wait for',
      async () => {
        const { store, base, next } = await withChain();
        const aborted = AbortSignal.abort();
        const interruptedOrDone = async (work: Promise<unknown>): Promise<void> => {
          await work.catch((error: unknown) => assert.ok(error instanceof InterruptedError, `${String(error)} is an InterruptedError`));
        };
        await interruptedOrDone(store.measureDiff(next, base, aborted));
        await locked(store, () => interruptedOrDone(store.delete(next, aborted)));
      },
    );

    // ---------------------------------------------------------------- send

    rule('send: "full (`parent` null) or incremental from `parent`"; done "resolves after the whole stream was produced"', async () => {
      const { store, base, next } = await withChain();
      const into = await open();
      for (const [snapshot, parent, name] of [
        [base, null, 'base'],
        [next, base, 'next'],
      ] as const) {
        const sending = await store.send(snapshot, parent);
        const received = await locked(into.store, () =>
          into.store.receive(sending.stream, { name, snapshot, parent: parent ?? null, expectedBytes: 0 }),
        );
        await sending.done;
        assert.equal(effectiveUuid(received), effectiveUuid(snapshot), `${name} arrived as the same snapshot`);
      }
      assert.deepEqual(
        (await into.store.list()).map((s) => effectiveUuid(s)),
        [effectiveUuid(base), effectiveUuid(next)],
      );
    });

    rule('send: "@throws StoreError when the store cannot produce that diff" (a diff store without it)', async (t) => {
      const { store, next } = await withChain();
      if (store.capabilities.canDiffAnyPair) return notApplicable(t, 'the store can diff any pair it holds');
      await assert.rejects(store.send(next, null), StoreError);
    });

    rule('send: "The consumer reads it to the end or destroys it"; done "Never rejects unhandled"', async () => {
      const { store, base } = await withChain();
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const sending = await store.send(base, null);
        await firstChunk(sending.stream);
        sending.stream.destroy();
        await settled(sending.done);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(unhandled, []);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      // The store serves the next send as before.
      assert.ok((await sentBytes(store, base, null)) > 0);
    });

    rule('send: "`signal` aborts the operation" (done rejects with InterruptedError)', async () => {
      const { store, base } = await withChain();
      const abort = new AbortController();
      const sending = await store.send(base, null, { signal: abort.signal });
      await firstChunk(sending.stream);
      abort.abort();
      sending.stream.resume();
      sending.stream.on('error', () => {});
      await assert.rejects(sending.done, InterruptedError);
    });

    // ---------------------------------------------------------------- receive

    rule('receive: "Resolves with the new snapshot once it is complete and visible; the stream was read to its end"', async () => {
      const { store } = await open();
      const { base } = fixture.snapshots;
      const release = await lockOf(store);
      try {
        const sending = await sent(base, null);
        const received = await store.receive(sending.stream, { name: 'daily/base', snapshot: base, parent: null, expectedBytes: 0 });
        await sending.done;
        assert.equal(sending.stream.readableEnded, true, 'read to its end');
        assert.equal(received.name, 'daily/base');
        assert.equal(effectiveUuid(received), effectiveUuid(base));
        const shown = await listed(store, 'daily/base');
        assert.equal(shown.uuid, received.uuid);
        assert.equal(shown.receivedUuid, received.receivedUuid);
      } finally {
        await release();
      }
    });

    rule(
      'receive: an incremental stream ("`parent`: the sending side\'s parent of this diff") applies to the parent the store holds',
      async () => {
        const { store, base, next } = await withChain();
        assert.equal(effectiveUuid(next), effectiveUuid(fixture.snapshots.next));
        assert.deepEqual(
          (await store.list()).map((s) => s.name),
          ['base', 'next'],
        );
        if (!store.capabilities.storesDiffs) assert.equal(next.parentUuid, base.uuid, 'next was snapshotted from base here');
      },
    );

    rule('receive: "@throws StoreError when `request.name` exists already"; "`stream` is destroyed"', async () => {
      const location = await open();
      const { store } = location;
      const { base, other } = fixture.snapshots;
      await receive(store, 'taken', base);
      const contents = await location.contents();
      const listing = await store.list();
      await locked(store, async () => {
        const sending = await sent(other, null);
        await assert.rejects(store.receive(sending.stream, { name: 'taken', snapshot: other, parent: null, expectedBytes: 0 }), StoreError);
        assert.equal(sending.stream.destroyed, true, 'the stream was destroyed');
        await settled(sending.done);
      });
      assert.deepEqual(identities(await store.list()), identities(listing));
      assert.deepEqual(await location.contents(), contents);
    });

    rule(
      'receive: "@throws TransferError when the stream was cut"; "nothing new is visible under `request.name` and the partial is removed"',
      async () => {
        const location = await open();
        const whole = await wholeStream(fixture.source, fixture.snapshots.base, null);
        const contents = await location.contents();
        for (const at of [Math.floor(whole.length / 2), whole.length - 1]) {
          const stream = Readable.from([whole.subarray(0, at)]);
          await locked(location.store, async () => {
            await assert.rejects(
              location.store.receive(stream, { name: 'cut', snapshot: fixture.snapshots.base, parent: null, expectedBytes: whole.length }),
              TransferError,
            );
          });
          assert.equal(stream.destroyed, true, 'the stream was destroyed');
          assert.deepEqual(await location.store.list(), []);
          assert.deepEqual(await location.contents(), contents, `cut at ${at} of ${whole.length}: nothing left behind`);
        }
      },
    );

    rule('receive: "@throws TransferError when the stream was ... corrupt"; nothing is left behind', async () => {
      const location = await open();
      const contents = await location.contents();
      const garbage = Readable.from([Buffer.from('this is not a send stream at all, just text\n'.repeat(100))]);
      await locked(location.store, () =>
        assert.rejects(
          location.store.receive(garbage, { name: 'garbage', snapshot: fixture.snapshots.base, parent: null, expectedBytes: 0 }),
          TransferError,
        ),
      );
      assert.deepEqual(await location.store.list(), []);
      assert.deepEqual(await location.contents(), contents);
    });

    rule(
      'receive: a stream that fails part way ("On failure ... nothing new is visible ... the partial is removed before the promise rejects")',
      async () => {
        const location = await open();
        const contents = await location.contents();
        const { base } = fixture.snapshots;
        const whole = await wholeStream(fixture.source, base, null);
        const stream = new PassThrough();
        stream.write(whole.subarray(0, Math.floor(whole.length / 2)));
        const receiving = locked(location.store, () =>
          location.store.receive(stream, { name: 'failing', snapshot: base, parent: null, expectedBytes: whole.length }),
        );
        await drained(stream);
        stream.destroy(new Error('cut on purpose'));
        await assert.rejects(receiving, (e: unknown) => e instanceof TransferError && /cut on purpose|stream failed/.test(e.message));
        assert.deepEqual(await location.contents(), contents);
        assert.deepEqual(await location.store.list(), []);
      },
    );

    rule(
      'receive: "`signal` aborts the operation ... the method settles only after its partial work is removed" (InterruptedError)',
      async () => {
        const location = await open();
        const contents = await location.contents();
        const { base } = fixture.snapshots;
        const whole = await wholeStream(fixture.source, base, null);
        const stream = new PassThrough();
        stream.write(whole.subarray(0, Math.floor(whole.length / 2)));
        const abort = new AbortController();
        const receiving = locked(location.store, () =>
          location.store.receive(stream, { name: 'aborted', snapshot: base, parent: null, expectedBytes: whole.length }, abort.signal),
        );
        await drained(stream);
        abort.abort();
        await assert.rejects(receiving, InterruptedError);
        assert.deepEqual(await location.contents(), contents, 'removed before the promise rejected');
        assert.deepEqual(await location.store.list(), []);
        assert.equal(stream.destroyed, true, 'the stream was destroyed');
      },
    );

    rule('receive: "a receive becomes visible atomically at its end" ("never shows a snapshot that is incomplete")', async () => {
      const { store } = await open();
      const { base } = fixture.snapshots;
      const whole = await wholeStream(fixture.source, base, null);
      const stream = new PassThrough();
      stream.write(whole.subarray(0, whole.length - 1));
      const receiving = locked(store, () =>
        store.receive(stream, { name: 'arriving', snapshot: base, parent: null, expectedBytes: whole.length }),
      );
      await drained(stream);
      assert.deepEqual(await store.list(), [], 'not shown while it arrives');
      stream.end(whole.subarray(whole.length - 1));
      const received = await receiving;
      assert.deepEqual(
        (await store.list()).map((s) => s.name),
        [received.name],
      );
    });

    rule(
      'nameProblem: "why this store cannot hold a snapshot of that name ... or undefined when it can"; receive refuses such a name before anything changes',
      async (t) => {
        const location = await open();
        const { store } = location;
        if (!store.nameProblem) return notApplicable(t, 'the store has no nameProblem');
        assert.ok(fixture.unstorableName !== undefined, 'the fixture names a name the store cannot hold');
        assert.equal(store.nameProblem('daily/2026-01-01'), undefined);
        assert.equal(typeof store.nameProblem(fixture.unstorableName), 'string');
        const contents = await location.contents();
        await locked(store, async () => {
          const sending = await sent(fixture.snapshots.base, null);
          await assert.rejects(
            store.receive(sending.stream, {
              name: fixture.unstorableName!,
              snapshot: fixture.snapshots.base,
              parent: null,
              expectedBytes: 0,
            }),
            (e: unknown) => e instanceof ButtersinkError,
          );
          await settled(sending.done);
        });
        assert.deepEqual(await location.contents(), contents);
      },
    );

    rule(
      'receiveDirect: "Resolves undefined when it cannot do so for this source"; else "Same guarantees and errors as receive"',
      async (t) => {
        const { store } = await open();
        if (!store.receiveDirect) return notApplicable(t, 'the store has no fast path');
        const { base } = fixture.snapshots;
        const foreign = new MemoryStore('mem://foreign/');
        const request = { name: 'direct', snapshot: base, parent: null, expectedBytes: 0 };
        await locked(store, async () => {
          assert.equal(await store.receiveDirect!(foreign, request), undefined);
          const totals: number[] = [];
          const result = await store.receiveDirect!(fixture.source, request, { onBytes: (total) => void totals.push(total) });
          assert.ok(result, `the fast path works from ${fixture.source.url}`);
          assert.equal(result.snapshot.name, 'direct');
          assert.equal(effectiveUuid(result.snapshot), effectiveUuid(base));
          assert.ok(totals.length > 0, '"`onBytes` gets the running total of stream bytes"');
          assert.ok(
            totals.every((n, i) => n >= (totals[i - 1] ?? 0) && n <= result.bytes),
            `running totals ${totals.join(', ')} of ${result.bytes}`,
          );
          await assert.rejects(store.receiveDirect!(fixture.source, request), StoreError, 'an existing name is refused');
        });
        assert.deepEqual(
          (await store.list()).map((s) => s.name),
          ['direct'],
        );
      },
    );

    // ---------------------------------------------------------------- delete, rename

    rule('delete: "Deletes a snapshot"; "Idempotent: a snapshot that is already gone is not an error"', async (t) => {
      const { store, next } = await withChain();
      if (!store.capabilities.canDelete) return notApplicable(t, 'the store cannot delete');
      await locked(store, async () => {
        await store.delete(next);
        assert.deepEqual(
          (await store.list()).map((s) => s.name),
          ['base'],
        );
        await store.delete(next);
      });
      assert.deepEqual(
        (await store.list()).map((s) => s.name),
        ['base'],
      );
    });

    rule(
      'delete: "@throws StillNeededError (a diff store) when other snapshots it holds are stored only as diffs from this one ... nothing is deleted then"',
      async (t) => {
        const location = await withChain();
        const { store, base, next } = location;
        if (!store.capabilities.storesDiffs) return notApplicable(t, 'not a diff store');
        const contents = await location.contents();
        await locked(store, async () => {
          await assert.rejects(store.delete(base), (e: unknown) => e instanceof StillNeededError && e.dependents.includes('next'));
          assert.deepEqual(await location.contents(), contents, 'nothing was deleted');
          await store.delete(next);
          await store.delete(base);
        });
        assert.deepEqual(await store.list(), []);
      },
    );

    rule('rename: "Resolves with the snapshot under its new name"', async (t) => {
      const { store, base } = await withChain();
      if (!store.rename) return notApplicable(t, 'the store cannot rename');
      const renamed = await locked(store, () => store.rename!(base, 'base-renamed'));
      assert.equal(renamed.name, 'base-renamed');
      assert.equal(renamed.uuid, base.uuid);
      const snapshots = await store.list();
      assert.deepEqual(
        snapshots.map((s) => s.name),
        ['base-renamed', 'next'],
      );
      assert.equal(snapshots[0]!.uuid, base.uuid);
    });

    rule('rename: "@throws StoreError when `newName` exists"', async (t) => {
      const { store, base } = await withChain();
      if (!store.rename) return notApplicable(t, 'the store cannot rename');
      const before = await store.list();
      await locked(store, () => assert.rejects(store.rename!(base, 'next'), StoreError));
      assert.deepEqual(identities(await store.list()), identities(before));
    });

    // ---------------------------------------------------------------- snapshotFiles, space

    rule(
      "snapshotFiles: \"Paths are relative to the snapshot's root ('' is the root itself) ... never followed through a symbolic link\"; failures carry `code`",
      async (t) => {
        const { store } = await open();
        if (!store.snapshotFiles) return notApplicable(t, 'the store shows no files');
        const files = fixture.baseFiles;
        assert.ok(files, 'the fixture says what base holds');
        const { received } = await receive(store, 'base', fixture.snapshots.base);
        const view = store.snapshotFiles(received);
        assert.deepEqual((await view.readdir('')).sort(), files.root);
        assert.deepEqual((await view.readdir(files.directory)).sort(), files.entries);
        assert.equal((await view.lstat('')).mode & 0o170000, 0o040000);
        const file = await view.lstat(files.file);
        assert.equal(file.mode & 0o170000, 0o100000);
        assert.equal(file.size, files.content.length);
        assert.ok(
          (await view.read(files.file, 0, files.content.length + 100)).equals(files.content),
          'read gives the contents, fewer at the end',
        );
        assert.ok((await view.read(files.file, 1, 3)).equals(files.content.subarray(1, 4)));
        assert.equal((await view.lstat(files.link)).mode & 0o170000, 0o120000, 'lstat does not follow a link');
        assert.equal(await view.readlink(files.link), files.target);
        await assert.rejects(view.lstat('no-such-entry'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
        await assert.rejects(view.readdir(files.file), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOTDIR');
      },
    );

    rule('space: "the size and free space of what the store keeps its snapshots on"', async (t) => {
      const { store } = await open();
      if (!store.space) return notApplicable(t, 'the store cannot tell its size');
      const space = await store.space();
      for (const n of [space.totalBytes, space.freeBytes, space.availableBytes]) assert.ok(Number.isSafeInteger(n) && n >= 0, `${n}`);
      assert.ok(space.availableBytes <= space.freeBytes && space.freeBytes <= space.totalBytes, JSON.stringify(space));
      assert.ok(space.totalBytes > 0);
    });

    // ---------------------------------------------------------------- lock, removeStale, close

    rule('lock: "@throws BusyError when another process holds it"; "Resolves with the function that releases it"', async () => {
      const location = await open();
      const second = await location.reopen();
      const release = await location.store.lock();
      try {
        await assert.rejects(second.lock(), BusyError);
      } finally {
        await release();
      }
      const again = await second.lock();
      await assert.rejects(location.store.lock(), BusyError, 'held by the second now');
      await again();
      await (await location.store.lock())();
    });

    rule('lock: "removes partial receives that earlier crashed runs left behind" (and nothing else)', async (t) => {
      const location = await open();
      if (!location.crashReceive) return notApplicable(t, 'nothing a crashed receive leaves can outlive it here');
      await receive(location.store, 'base', fixture.snapshots.base);
      await location.clutter?.();
      const contents = await location.contents();
      await location.crashReceive();
      assert.notDeepEqual(await location.contents(), contents, 'the crash left something');
      assert.deepEqual(
        (await location.store.list()).map((s) => s.name),
        ['base'],
        'which is not listed',
      );
      await (await location.store.lock())();
      assert.deepEqual(await location.contents(), contents, 'taking the lock removed it, and nothing else');
    });

    rule(
      'removeStale: "removes leftovers of interrupted runs that would otherwise be resumed later ... Resolves with how many were removed"',
      async (t) => {
        const location = await open();
        if (!location.store.removeStale) return notApplicable(t, 'the store resumes nothing');
        if (location.leaveStale) await location.leaveStale();
        const expected = location.leaveStale ? 1 : 0;
        const removed = await locked(location.store, () => location.store.removeStale!());
        assert.equal(removed, expected);
        assert.equal(await locked(location.store, () => location.store.removeStale!()), 0, 'nothing is left to remove');
      },
    );

    rule('close: "Releases resources (connections, caches). Safe to call twice."', async () => {
      const location = await open();
      const store = await location.reopen();
      await store.list();
      await store.close();
      await store.close();
      assert.deepEqual(await location.store.list(), [], 'the location stays usable by others');
    });
  });
}

/**
 * A rule that does not apply to this store (a capability or optional method it lacks, which
 * the caller just checked): the test passes saying so. Not a skip: with CI=true a skip means a
 * missing prerequisite, and this store is fully tested.
 */
function notApplicable(t: TestContext, reason: string): void {
  t.diagnostic(`not applicable: ${reason}`);
}

/** The stream with a running count of its bytes. */
function counting(stream: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  const counter = new PassThrough();
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.once('error', (error) => counter.destroy(error));
  stream.pipe(counter);
  // Destroying what the store reads destroys the source (as a pipeline would).
  counter.once('close', () => {
    if (!stream.readableEnded) stream.destroy();
  });
  return { stream: counter, bytes: () => bytes };
}

/** A whole send stream in memory (the fixtures are small). */
async function wholeStream(store: Store, snapshot: Snapshot, parent: Snapshot | null): Promise<Buffer> {
  const sending = await store.send(snapshot, parent);
  const chunks: Buffer[] = [];
  for await (const chunk of sending.stream) chunks.push(chunk as Buffer);
  await sending.done;
  return Buffer.concat(chunks);
}

async function sentBytes(store: Store, snapshot: Snapshot, parent: Snapshot | null): Promise<number> {
  return (await wholeStream(store, snapshot, parent)).length;
}

/**
 * "±command framing": a measured size may differ from the real stream by the headers of
 * commands that carry no file data (btrfs send --no-data), never by the data itself.
 */
function assertFramingClose(measured: number, real: number, what: string): void {
  const allowed = Math.max(16 * 1024, real * 0.01);
  assert.ok(Math.abs(measured - real) <= allowed, `${what}: measured ${measured}, the stream has ${real}`);
}

async function firstChunk(stream: Readable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    stream.once('readable', () => resolve());
    stream.once('error', reject);
  });
}

async function settled(promise: Promise<unknown>): Promise<void> {
  await promise.then(
    () => {},
    () => {},
  );
}

/** Waits until the reader took everything written to `stream` so far, then a little more. */
async function drained(stream: PassThrough): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (stream.readableLength + stream.writableLength > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 300));
}
