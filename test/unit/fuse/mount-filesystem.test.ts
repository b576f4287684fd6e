import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toFsError } from '../../../src/fuse/fs-error.js';
import { MountFilesystem } from '../../../src/fuse/mount-filesystem.js';
import { TransferStatus } from '../../../src/fuse/transfer-status.js';
import { BusyError, InterruptedError } from '../../../src/model/errors.js';
import { MemoryStore } from '../../support/memory-store.js';

function mountOf(
  stores: Record<string, MemoryStore>,
  options: {
    readOnly?: boolean;
    storeTimeoutMs?: number;
    listingTtlMs?: number;
    now?: () => number;
    isInterrupted?: (mountPath: string) => Promise<boolean>;
  } = {},
) {
  const status = new TransferStatus();
  const fs = new MountFilesystem({
    stores: Object.entries(stores).map(([name, store]) => ({ name, store })),
    readOnly: options.readOnly ?? false,
    copyIdleMs: 40,
    listingTtlMs: options.listingTtlMs ?? 60_000,
    storeTimeoutMs: options.storeTimeoutMs,
    removalIdleMs: 60_000,
    status,
    isInterrupted: options.isInterrupted,
    now: options.now,
  });
  return { fs, status };
}

/** The errno the FUSE ops would answer for what a method threw. */
const fsError = (errno: string) => (e: unknown) => toFsError(e).errno === errno;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('MountFilesystem over stores that show no files (S3-like)', () => {
  test('the root, stores and snapshots as directories; snapshots are empty', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    a.add('daily/d1');
    const { fs } = mountOf({ A: a, B: new MemoryStore('mem://b/') });
    try {
      assert.deepEqual(await fs.readdir('/'), ['.buttersink', 'A', 'B']);
      assert.deepEqual(await fs.readdir('/A'), ['daily', 's1']);
      assert.deepEqual(await fs.readdir('/A/daily'), ['d1']);
      assert.deepEqual(await fs.readdir('/A/s1'), []);
      assert.equal((await fs.getattr('/A/s1')).mode & 0o170000, 0o040000);
      await assert.rejects(fs.getattr('/A/s1/file'), fsError('ENOENT'));
      await assert.rejects(fs.getattr('/A/nope'), fsError('ENOENT'));
      await assert.rejects(fs.open('/A/s1', 0), fsError('EISDIR'));
      assert.match(String((await fs.getattr('/.buttersink/status')).size), /^\d+$/);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test("mkdir transfers; the copy window takes cp's files without comparing; it closes when idle", async () => {
    const a = new MemoryStore('mem://a/');
    const source = a.add('s1');
    const b = new MemoryStore('mem://b/');
    const { fs, status } = mountOf({ A: a, B: b });
    try {
      await fs.mkdir('/B/s1', 0o755);
      assert.deepEqual(await fs.readdir('/B/s1'), [], 'listing the new snapshot waits for its transfer');
      assert.equal(b.snapshots.length, 1);
      assert.equal(b.snapshots[0]!.receivedUuid, source.uuid);
      const handle = await fs.create('/B/s1/file', 0o640);
      assert.equal(await fs.write(handle, Buffer.from('data'), 4, 0), 4);
      await fs.release(handle);
      assert.equal((await fs.getattr('/B/s1/file')).size, 4);
      await fs.mkdir('/B/s1/dir', 0o700);
      assert.deepEqual(await fs.readdir('/B/s1'), ['dir', 'file']);
      await assert.rejects(fs.create('/B/s1/file', 0o640), fsError('EEXIST'));
      await sleep(1200);
      assert.deepEqual(await fs.readdir('/B/s1'), [], 'the window closed: the real (empty) snapshot shows');
      assert.match(status.renderLog(), /transferred s1 to B/);
      assert.match(status.renderLog(), /copy into B\/s1 finished: 4 B written, not compared \(B cannot show a snapshot's files\)/);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('EPERM for a name no store has, EEXIST for one the destination has, EROFS outside a window', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/');
    b.add('s1');
    const { fs } = mountOf({ A: a, B: b });
    try {
      await assert.rejects(
        fs.mkdir('/B/unknown', 0o755),
        (e: unknown) => fsError('EPERM')(e) && /no mounted store has a snapshot named unknown/.test((e as Error).message),
      );
      await assert.rejects(fs.mkdir('/B/s1', 0o755), fsError('EEXIST'));
      await assert.rejects(fs.mkdir('/C', 0o755), fsError('EPERM'));
      await assert.rejects(fs.create('/A/s1/new', 0o644), fsError('EROFS'));
      await assert.rejects(fs.mkdir('/A/s1/new', 0o755), fsError('EROFS'));
      await assert.rejects(
        fs.change('/A/s1', (w, r) => w.chmod(r, 0o777)),
        fsError('EROFS'),
      );
      await assert.rejects(fs.open('/.buttersink/status', 1), fsError('EROFS'));
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('nested names: mkdir of a group makes it, mkdir below transfers, the group is then not empty', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('daily/d1');
    const b = new MemoryStore('mem://b/');
    const { fs } = mountOf({ A: a, B: b });
    try {
      await fs.mkdir('/B/daily', 0o755);
      assert.deepEqual(await fs.readdir('/B'), ['daily']);
      assert.deepEqual(await fs.readdir('/B/daily'), []);
      await fs.mkdir('/B/daily/d1', 0o755);
      await fs.readdir('/B/daily/d1');
      assert.deepEqual(
        b.snapshots.map((s) => s.name),
        ['daily/d1'],
      );
      await assert.rejects(fs.rmdir('/B/daily'), fsError('ENOTEMPTY'));
      await fs.rmdir('/B/daily/d1');
      await fs.rmdir('/B/daily');
      assert.deepEqual(await fs.readdir('/B'), []);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a read-only mount refuses every change with EROFS', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/', { canRename: true });
    b.add('s0');
    const { fs } = mountOf({ A: a, B: b }, { readOnly: true });
    try {
      await assert.rejects(fs.mkdir('/B/s1', 0o755), fsError('EROFS'));
      await assert.rejects(fs.rmdir('/B/s0'), fsError('EROFS'));
      await assert.rejects(fs.rename('/B/s0', '/B/s9'), fsError('EROFS'));
      assert.deepEqual(
        b.snapshots.map((s) => s.name),
        ['s0'],
      );
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('rmdir deletes; in a diff store, a snapshot others are stored as diffs from is EBUSY with the reason', async () => {
    const s3 = new MemoryStore('mem://s3/', { storesDiffs: true });
    const base = s3.add('base', 'u-base');
    s3.add('next', 'u-next');
    s3.add('other', 'u-other');
    s3.diffs = [
      { to: 'u-base', from: null, bytes: 100 },
      { to: 'u-next', from: 'u-base', bytes: 10 },
      { to: 'u-other', from: null, bytes: 100 },
    ];
    const { fs } = mountOf({ S3: s3 });
    try {
      await assert.rejects(
        fs.rmdir('/S3/base'),
        (e: unknown) => fsError('EBUSY')(e) && /next is stored as diffs from it/.test((e as Error).message),
      );
      assert.ok(s3.snapshots.includes(base));
      await fs.rmdir('/S3/other');
      assert.deepEqual(s3.snapshots.map((s) => s.name).sort(), ['base', 'next']);
      assert.deepEqual(await fs.readdir('/S3'), ['base', 'next']);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('mv renames within a store where the store can; EXDEV between stores; EPERM where it cannot', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/', { canRename: true });
    b.add('s1');
    b.add('daily/d1');
    const { fs } = mountOf({ A: a, B: b });
    try {
      await fs.rename('/B/s1', '/B/s1-old');
      assert.deepEqual(await fs.readdir('/B'), ['daily', 's1-old']);
      await assert.rejects(fs.rename('/B/s1-old', '/A/s2'), fsError('EXDEV'));
      await assert.rejects(fs.rename('/A/s1', '/A/s2'), fsError('EPERM'));
      await assert.rejects(
        fs.rename('/B/s1-old', '/B/daily/s1'),
        (e: unknown) =>
          fsError('EPERM')(e) && /s1-old can only be renamed within its directory, not to daily\/s1/.test((e as Error).message),
      );
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a store that is down answers EIO with the reason; the others work', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const down = new MemoryStore('mem://down/');
    down.isDown = true;
    const { fs } = mountOf({ A: a, D: down });
    try {
      await assert.rejects(fs.readdir('/D'), (e: unknown) => fsError('EIO')(e) && /cannot be reached/.test((e as Error).message));
      await assert.rejects(fs.mkdir('/D/s1', 0o755), fsError('EIO'));
      assert.deepEqual(await fs.readdir('/A'), ['s1']);
      // The only store that might hold it is down: EIO with the reason, not EPERM (no such snapshot).
      await assert.rejects(
        fs.mkdir('/A/only-in-d', 0o755),
        (e: unknown) =>
          fsError('EIO')(e) &&
          /no store that answered has a snapshot named only-in-d; listing D \(mem:\/\/down\/\): .*cannot be reached/.test(
            (e as Error).message,
          ),
      );
      await assert.rejects(fs.mkdir('/A/s1', 0o755), fsError('EEXIST'));
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a store that never answers its listing is EIO after storeTimeoutMs, with the reason; the others answer', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const silent = new MemoryStore('mem://silent/');
    silent.isSilent = true;
    const { fs } = mountOf({ A: a, S: silent }, { storeTimeoutMs: 100 });
    try {
      const started = Date.now();
      await assert.rejects(
        fs.readdir('/S'),
        (e: unknown) => fsError('EIO')(e) && /listing S \(mem:\/\/silent\/\): no answer within 0.1 s/.test((e as Error).message),
      );
      assert.ok(Date.now() - started < 2000);
      assert.deepEqual(await fs.readdir('/A'), ['s1']);
      await assert.rejects(fs.mkdir('/S/s1', 0o755), fsError('EIO'));
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('mkdir returns once the transfer started: lookups and listings do not wait; what goes into the new snapshot does, and fails with its error', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    a.add('s2');
    const b = new MemoryStore('mem://b/');
    b.add('s2');
    b.hangReceive = true;
    const started = new Promise<void>((resolve) => (b.receiving = resolve));
    const { fs, status } = mountOf({ A: a, B: b });
    try {
      await fs.mkdir('/B/s1', 0o755);
      await started;
      assert.deepEqual(await fs.readdir('/B'), ['s2'], 'shown once complete');
      assert.equal((await fs.getattr('/B/s2')).mode & 0o170000, 0o040000);
      assert.equal((await fs.getattr('/B/s1')).mode & 0o170000, 0o040000, 'cp finds what it made');
      await assert.rejects(fs.mkdir('/B/s1', 0o755), fsError('EEXIST'), 'one transfer: a second mkdir is EEXIST');
      let created = false;
      const creating = fs.create('/B/s1/file', 0o644).then(() => (created = true));
      await sleep(50);
      assert.equal(created, false, 'a create in the new snapshot waits for the transfer');
      fs.shutdown(new InterruptedError('unmounting'));
      await assert.rejects(creating, fsError('EINTR'));
      assert.deepEqual(await fs.readdir('/B'), ['s2'], 'a failed transfer leaves nothing visible');
      await assert.rejects(fs.getattr('/B/s1'), fsError('ENOENT'), 'the create was told why: the name is free again');
      assert.match(status.renderStatus(), /transfer of s1 to B failed/);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a caller interrupted while it waits for a transfer cancels it: EINTR, nothing received or shown; a later mkdir works', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/');
    b.hangReceive = true;
    const started = new Promise<void>((resolve) => (b.receiving = resolve));
    const interrupted = new Set<string>();
    const asked: string[] = [];
    const { fs, status } = mountOf({ A: a, B: b }, { isInterrupted: async (p) => (asked.push(p), interrupted.has(p)) });
    try {
      await fs.mkdir('/B/s1', 0o755);
      await started;
      const creating = fs.create('/B/s1/file', 0o644);
      const opening = fs.opendir('/A/s1'); // cp opens its source right after the mkdir
      await sleep(600);
      assert.ok(asked.includes('/B/s1/file') && asked.includes('/A/s1'), `asked about ${asked.join(', ')}`);
      assert.equal(fs.transfersInFlight, 1, 'nobody interrupted: the transfer goes on');
      interrupted.add('/B/s1/file');
      await assert.rejects(creating, fsError('EINTR'));
      await assert.rejects(opening, fsError('EINTR'), 'every waiter learns it was cancelled');
      assert.equal(fs.transfersInFlight, 0);
      assert.deepEqual(b.snapshots, []);
      assert.deepEqual(await fs.readdir('/B'), []);
      await assert.rejects(fs.getattr('/B/s1'), fsError('ENOENT'), 'nothing visible, and the name free for a retry');
      assert.match(
        status.renderLog(),
        /cancelling the transfer of s1 to B: a process waiting for it at \/B\/s1\/file was interrupted \(Ctrl-C\)/,
      );
      b.hangReceive = false;
      interrupted.clear();
      await fs.mkdir('/B/s1', 0o755);
      await fs.readdir('/B/s1');
      assert.equal(b.snapshots.length, 1, 'a later mkdir transfers it');
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a transfer that fails with nobody waiting: the next looks at its name say why (for a second), then a retry works', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/');
    b.location.isLocked = true; // another buttersink writes to B
    const { fs } = mountOf({ A: a, B: b });
    try {
      await fs.mkdir('/B/s1', 0o755);
      while (fs.transfersInFlight > 0) await sleep(5);
      await assert.rejects(fs.getattr('/B/s1'), (e: unknown) => fsError('EBUSY')(e) && /another buttersink/.test((e as Error).message));
      // The kernel may ask twice for one stat (a revalidation, then a lookup): both hear why.
      await assert.rejects(fs.getattr('/B/s1'), fsError('EBUSY'), 'asked again at once');
      await sleep(1100);
      await assert.rejects(fs.getattr('/B/s1'), fsError('ENOENT'), 'a second later: forgotten');
      b.location.isLocked = false;
      await fs.mkdir('/B/s1', 0o755);
      await fs.readdir('/B/s1');
      assert.equal((await b.list()).length, 1);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a transfer that fails while a look at its name waits for the listing: that look says why, not a phantom snapshot', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/');
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { open, opened };
    };
    // B's lock answers busy when the test says so (a CLI sync took it); B's listing is held
    // while a look at B/s1 waits for it.
    const lockGate = gate();
    const lockAsked = gate();
    b.lock = async () => {
      lockAsked.open();
      await lockGate.opened;
      throw new BusyError('another buttersink is writing to mem://b/');
    };
    const listGate = gate();
    let holdListing = false;
    const list = b.list.bind(b);
    b.list = async () => {
      if (holdListing) await listGate.opened;
      return list();
    };
    const { fs } = mountOf({ A: a, B: b }, { listingTtlMs: 20 });
    try {
      await fs.mkdir('/B/s1', 0o755);
      await lockAsked.opened;
      await sleep(40); // B's listing is stale: the next look lists again
      holdListing = true;
      const look = fs.getattr('/B/s1');
      await sleep(20);
      lockGate.open();
      while (fs.transfersInFlight > 0) await sleep(5);
      listGate.open();
      await assert.rejects(look, (e: unknown) => fsError('EBUSY')(e) && /another buttersink/.test((e as Error).message));
      await sleep(1100);
      await assert.rejects(fs.getattr('/B/s1'), fsError('ENOENT'), 'a second after its answer: forgotten');
      assert.deepEqual(await fs.readdir('/B'), []);
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('a snapshot made outside the mount is found by name at once (one listing more), not after the TTL; probes of missing names list at most once a second', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    let lists = 0;
    const list = a.list.bind(a);
    a.list = async () => {
      lists += 1;
      return list();
    };
    let clock = 1_000_000;
    const { fs } = mountOf({ A: a, B: new MemoryStore('mem://b/') }, { now: () => clock });
    try {
      assert.deepEqual(await fs.readdir('/A'), ['s1']);
      assert.equal(lists, 1);
      a.add('s2'); // btrfs subvolume snapshot -r, outside the mount
      clock += 5_000;
      assert.equal((await fs.getattr('/A/s2')).mode & 0o170000, 0o040000, 'cp -r /A/s2 finds it');
      assert.equal(lists, 2);
      await fs.mkdir('/B/s2', 0o755);
      await fs.readdir('/B/s2');
      assert.equal((await fs.readdir('/B')).includes('s2'), true);
      const before = lists;
      await assert.rejects(fs.getattr('/A/.hidden'), fsError('ENOENT'));
      await assert.rejects(fs.getattr('/A/desktop.ini'), fsError('ENOENT'));
      await assert.rejects(fs.getattr('/A/s1/nope'), fsError('ENOENT'));
      assert.ok(lists - before <= 1, `${lists - before} listings for three missing names within a second`);
      clock += 1_000;
      await assert.rejects(fs.getattr('/A/nope'), fsError('ENOENT'));
      assert.ok(lists - before <= 2, 'a second later, one more');
    } finally {
      fs.shutdown(new Error('done'));
    }
  });

  test('shutdown aborts a transfer in flight: what waits for it fails with EINTR and nothing is received', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    const b = new MemoryStore('mem://b/');
    b.hangReceive = true;
    const started = new Promise<void>((resolve) => (b.receiving = resolve));
    const { fs, status } = mountOf({ A: a, B: b });
    const making = fs.mkdir('/B/s1', 0o755);
    await started;
    assert.match(status.renderStatus(), /transfers in progress \(1\):\n {2}s1 {2}A -> B {2}full/);
    assert.equal(fs.transfersInFlight, 1);
    await assert.rejects(fs.mkdir('/B/s1', 0o755), fsError('EEXIST'), 'a second mkdir while the first runs');
    await making;
    const listing = fs.readdir('/B/s1');
    fs.shutdown(new InterruptedError('unmounting'));
    await assert.rejects(listing, fsError('EINTR'));
    assert.equal(fs.transfersInFlight, 0);
    assert.equal(fs.changesInFlight, 0);
    assert.deepEqual(b.snapshots, []);
    assert.match(status.renderStatus(), /no transfers in progress[\s\S]*transfer of s1 to B failed/);
  });
});
