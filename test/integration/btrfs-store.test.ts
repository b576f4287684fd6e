import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { StoreError, TransferError } from '../../src/model/errors.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { setCommandTracer } from '../../src/stores/btrfs/run-btrfs.js';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = btrfsSuite();

function allSubvolumes(mount: string): string[] {
  return execFileSync('btrfs', ['subvolume', 'list', mount], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .sort();
}

/** A whole send stream in memory (small fixtures only). */
function sendStream(args: string[]): Buffer {
  return execFileSync('btrfs', ['send', '-q', ...args], { maxBuffer: 64 << 20 });
}

describe('BtrfsStore on a real btrfs pool', suite, () => {
  let pool: BtrfsPool;
  let cacheDir: string;
  let source: BtrfsStore;
  let snaps: Snapshot[];

  const store = (dir: string): BtrfsStore => new BtrfsStore({ url: `${dir}/`, directory: dir, cache: new MeasurementCache(cacheDir) });

  before(() => {
    pool = createPool(256);
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    sh(
      `btrfs -q subvolume create data && head -c 2000000 /dev/urandom > data/a && mkdir -p snaps/nested/deeper &&
       btrfs -q subvolume snapshot -r data snaps/one &&
       head -c 300000 /dev/urandom > data/b && btrfs -q subvolume snapshot -r data 'snaps/nested/deeper/two with space' &&
       btrfs -q subvolume snapshot data snaps/read-write && touch snaps/file &&
       btrfs -q subvolume create 'snaps/.buttersink-partial.0badc0de.one' && mkdir dst`,
      pool.mountPoint,
    );
    source = store(`${pool.mountPoint}/snaps`);
  });
  after(() => {
    pool?.destroy();
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });

  test('lists read-only snapshots at any depth by relative name, and nothing else', async () => {
    snaps = await source.list();
    assert.deepEqual(
      snaps.map((s) => s.name),
      ['nested/deeper/two with space', 'one'],
    );
    const [two, one] = snaps;
    assert.equal(one!.parentUuid, two!.parentUuid, 'both were snapshotted from data');
    assert.ok(one!.creationGeneration < two!.creationGeneration);
    assert.ok(one!.createdAt instanceof Date);
    assert.equal(one!.receivedUuid, null);
  });

  test('a store directory that is a subvolume itself, or the root of a subvol= mount, lists names relative to it and receives into it', async () => {
    // `vol` is a subvolume (as Snapper's .snapshots, or `@` on a subvol= mount). btrfs lists
    // what is below it relative to it, so without care `vol/inner/x` and the top level's
    // `inner/x` both read "inner/x".
    sh(
      `btrfs -q subvolume create vol && mkdir vol/inner inner && btrfs -q subvolume create vol/sub &&
       btrfs -q subvolume snapshot -r data vol/inner/x && btrfs -q subvolume snapshot -r data vol/sub/y &&
       btrfs -q subvolume snapshot -r data inner/x`,
      pool.mountPoint,
    );
    const uuid = (at: string): string => /^\s*UUID:\s+(\S+)/m.exec(sh(`btrfs subvolume show '${at}'`))![1]!;
    const expected = [
      { name: 'inner/x', uuid: uuid(`${pool.mountPoint}/vol/inner/x`) },
      { name: 'sub/y', uuid: uuid(`${pool.mountPoint}/vol/sub/y`) },
    ];
    const listed = (snapshots: Snapshot[]) => snapshots.map((s) => ({ name: s.name, uuid: s.uuid }));
    assert.deepEqual(listed(await store(`${pool.mountPoint}/vol`).list()), expected);
    assert.deepEqual(
      (await store(`${pool.mountPoint}/vol/inner`).list()).map((s) => s.name),
      ['x'],
    );

    const device = sh(`findmnt -n -o SOURCE --target '${pool.mountPoint}'`).trim();
    const subvolMount = mkdtempSync(path.join(os.tmpdir(), 'buttersink-subvol-'));
    execFileSync('mount', ['-o', 'subvol=vol', device, subvolMount]);
    try {
      const mounted = store(subvolMount);
      assert.deepEqual(listed(await mounted.list()), expected);
      const release = await mounted.lock();
      try {
        const one = snaps.find((s) => s.name === 'one')!;
        const sent = await source.send(one, null);
        const received = await mounted.receive(sent.stream, { name: 'got/one', snapshot: one, parent: null, expectedBytes: 0 });
        await sent.done;
        assert.equal(received.name, 'got/one');
        assert.deepEqual(
          (await store(subvolMount).list()).map((s) => s.name),
          ['got/one', 'inner/x', 'sub/y'],
        );
        assert.deepEqual(treeDigest(`${pool.mountPoint}/vol/got/one`), treeDigest(`${pool.mountPoint}/snaps/one`));
      } finally {
        await release();
      }
    } finally {
      execFileSync('umount', [subvolMount]);
      rmSync(subvolMount, { recursive: true, force: true });
    }
  });

  test('a directory that is not on btrfs, or missing, is a StoreError', async () => {
    await assert.rejects(store(os.tmpdir()).list(), (e: unknown) => e instanceof StoreError && /not on a btrfs/.test(e.message));
    await assert.rejects(
      store(`${pool.mountPoint}/missing`).list(),
      (e: unknown) => e instanceof StoreError && /does not exist/.test(e.message),
    );
  });

  test('receives a stream under its final name only when complete, equal to the source', async () => {
    const dst = store(`${pool.mountPoint}/dst`);
    const release = await dst.lock();
    try {
      const one = snaps.find((s) => s.name === 'one')!;
      const sent = await source.send(one, null);
      const received = await dst.receive(sent.stream, { name: 'daily/one', snapshot: one, parent: null, expectedBytes: 0 });
      await sent.done;
      assert.equal(received.name, 'daily/one');
      assert.equal(received.receivedUuid, one.uuid);
      assert.deepEqual(treeDigest(`${pool.mountPoint}/dst/daily/one`), treeDigest(`${pool.mountPoint}/snaps/one`));
    } finally {
      await release();
    }
  });

  test('garbage instead of a send stream is refused with a clear TransferError', async () => {
    const dst = store(`${pool.mountPoint}/dst`);
    const before = allSubvolumes(pool.mountPoint);
    const garbage = Readable.from([Buffer.from('this is not a btrfs send stream at all, just text\n'.repeat(100))]);
    await assert.rejects(
      dst.receive(garbage, { name: 'garbage', snapshot: snaps[0]!, parent: null, expectedBytes: 0 }),
      (e: unknown) => e instanceof TransferError && /not a btrfs send stream/.test(e.message),
    );
    assert.deepEqual(allSubvolumes(pool.mountPoint), before);
  });

  test('an existing name is refused before anything is received', async () => {
    const dst = store(`${pool.mountPoint}/dst`);
    mkdirSync(`${pool.mountPoint}/dst/taken`);
    const stream = Readable.from([Buffer.alloc(10)]);
    await assert.rejects(dst.receive(stream, { name: 'taken', snapshot: snaps[0]!, parent: null, expectedBytes: 0 }), StoreError);
    assert.deepEqual(readdirSync(`${pool.mountPoint}/dst/taken`), []);
  });

  test('measures diffs exactly (within 1% of the real stream) and caches them by UUID pair', async () => {
    const [two, one] = snaps;
    const measured = await source.measureDiff(two!, one!);
    const real = sendStream(['-p', `${pool.mountPoint}/snaps/one`, `${pool.mountPoint}/snaps/nested/deeper/two with space`]).length;
    assert.ok(Math.abs(measured.bytes - real) / real < 0.01, `measured ${measured.bytes}, real ${real}`);
    assert.equal(measured.exact, true);
    const full = await source.measureDiff(one!, null);
    assert.ok(full.bytes > 2_000_000 && full.bytes < 2_100_000, `full ${full.bytes}`);
    await source.close();
    const fresh = new MeasurementCache(cacheDir);
    assert.equal((await fresh.get(two!.uuid, one!.uuid))?.bytes, measured.bytes);
    // The stream head is kept too, for the local fast path.
    assert.equal((await fresh.get(two!.uuid, one!.uuid))?.head?.subarray(0, 13).toString('latin1'), 'btrfs-stream\0');
  });

  test('measuring with stopAbove stops once the stream passes it: a lower bound, kept as one', async () => {
    const [two, one] = snaps;
    const cache = new MeasurementCache(path.join(cacheDir, 'stopped'));
    const fresh = new BtrfsStore({ url: `${pool.mountPoint}/snaps`, directory: `${pool.mountPoint}/snaps`, cache });
    const stopped = await fresh.measureDiff(one!, null, undefined, { stopAbove: 10_000 });
    assert.equal(stopped.exact, false);
    assert.equal(stopped.atLeast, true);
    assert.equal(await cache.get(one!.uuid, null), undefined);
    assert.equal(fresh.estimateDiff(one!, null).exact, false);
    // A bound that comes while the walk runs (planning's fulls start beside their diffs)
    // stops it as one given at the start.
    const lateCache = new MeasurementCache(path.join(cacheDir, 'stopped-late'));
    const late = new BtrfsStore({ url: `${pool.mountPoint}/snaps`, directory: `${pool.mountPoint}/snaps`, cache: lateCache });
    const commandsLate: string[] = [];
    let giveBound = (_bound: number): void => {};
    setCommandTracer((command) => {
      commandsLate.push(command);
      giveBound(10_000); // the walk has started
    });
    try {
      const lateStopped = await late.measureDiff(one!, null, undefined, { stopAbove: new Promise((resolve) => (giveBound = resolve)) });
      assert.equal(commandsLate.length, 1);
      assert.equal(lateStopped.atLeast, true);
      // At the same command as with the bound given at the start (it came before the first chunk).
      assert.equal(lateStopped.bytes, stopped.bytes);
      assert.equal(await lateCache.get(one!.uuid, null), undefined);
      // Warm: the kept bound answers once the promised bound is known, without a process.
      commandsLate.length = 0;
      assert.deepEqual(await late.measureDiff(one!, null, undefined, { stopAbove: Promise.resolve(10_000) }), lateStopped);
      assert.deepEqual(commandsLate, []);
    } finally {
      setCommandTracer(() => {});
      await late.close();
    }
    // Asked again (a warm run), the bound answers without a btrfs process.
    const commands: string[] = [];
    setCommandTracer((command) => commands.push(command));
    try {
      assert.deepEqual(await fresh.measureDiff(one!, null, undefined, { stopAbove: 10_000 }), stopped);
      assert.deepEqual(commands, []);
    } finally {
      setCommandTracer(() => {});
    }
    const whole = await fresh.measureDiff(one!, null, undefined, { stopAbove: 100_000_000 });
    assert.equal(whole.exact, true);
    assert.ok(whole.bytes > 2_000_000 && whole.bytes < 2_100_000, `full ${whole.bytes}`);
    assert.equal((await cache.get(one!.uuid, null))?.bytes, whole.bytes);
    // It stopped at the first extent of file a that took the stream past 10 KB, before the end.
    assert.ok(stopped.bytes > 10_000 && stopped.bytes < whole.bytes, `stopped at ${stopped.bytes}, full ${whole.bytes}`);
    // The diff two < one is smaller than the bound: measured to its end, as without one.
    assert.deepEqual(await fresh.measureDiff(two!, one!, undefined, { stopAbove: 100_000_000 }), await source.measureDiff(two!, one!));
    await fresh.close();
  });

  test('delete refuses a snapshot that changed under its name', async () => {
    const dst = store(`${pool.mountPoint}/dst`);
    const release = await dst.lock();
    try {
      const [received] = await dst.list();
      assert.ok(received);
      sh(`btrfs -q subvolume snapshot -r data dst/impostor`, pool.mountPoint);
      const impostor = { ...received, name: 'impostor' };
      await assert.rejects(dst.delete(impostor), (e: unknown) => e instanceof StoreError && /no longer the snapshot/.test(e.message));
      assert.equal(existsSync(`${pool.mountPoint}/dst/impostor`), true);
    } finally {
      await release();
    }
  });
});
