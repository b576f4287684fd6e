import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BusyError, PermissionError, StoreError } from '../../src/model/errors.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { PROTOCOL_VERSION, type ServerMode } from '../../src/remote/protocol.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { fingerprint } from '../../src/stores/ssh/known-hosts.js';
import { BROWSE_BLOCK_BYTES } from '../../src/stores/ssh/remote-files.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { sshSuite } from '../support/prerequisites.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = sshSuite();

function allSubvolumes(mount: string): string[] {
  return execFileSync('btrfs', ['subvolume', 'list', mount], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .sort();
}

/**
 * The remote listing is the local one, except that a parent outside the directory (the live
 * subvolume the snapshots were taken from) is shown as a token: not its UUID, the same for
 * siblings.
 */
function assertListedAsLocal(listed: readonly Snapshot[], local: readonly Snapshot[]): void {
  assert.deepEqual(
    listed.map((s) => ({ ...s, parentUuid: null })),
    local.map((s) => ({ ...s, parentUuid: null })),
  );
  const uuids = new Set(local.map((s) => s.uuid));
  const tokens = new Map<string, string>();
  for (const [i, s] of local.entries()) {
    const shown = listed[i]!.parentUuid;
    if (s.parentUuid === null || uuids.has(s.parentUuid)) {
      assert.equal(shown, s.parentUuid);
      continue;
    }
    assert.notEqual(shown, s.parentUuid);
    assert.match(shown ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    if (!tokens.has(s.parentUuid)) tokens.set(s.parentUuid, shown!);
    assert.equal(shown, tokens.get(s.parentUuid), 'siblings share one token');
  }
}

describe('SshStore against a real sshd and buttersink server', suite, () => {
  let sshd: TestSshd;
  let pool: BtrfsPool;
  let cacheDir: string;
  let local: BtrfsStore;
  let snaps: Snapshot[];
  const open: SshStore[] = [];

  const remote = (dir: string, mode: ServerMode, extra: { knownHostsFiles?: string[]; remoteCommand?: string } = {}): SshStore => {
    const store = new SshStore({
      url: `ssh://root@127.0.0.1:${sshd.port}${dir}/`,
      host: '127.0.0.1',
      user: 'root',
      port: sshd.port,
      directory: dir,
      mode,
      cache: new MeasurementCache(mkdtempSync(path.join(cacheDir, 'c-'))),
      version: '0.1.0',
      remoteCommand: sshd.remoteCommand,
      knownHostsFiles: [sshd.knownHosts],
      configFile: '/nonexistent',
      ...extra,
    });
    open.push(store);
    return store;
  };

  before(async () => {
    sshd = await startSshd();
    pool = createPool(256);
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    // The client's key is found through HOME (os.homedir()), as a user's would be.
    process.env.HOME = sshd.home;
    process.env.SSH_AUTH_SOCK = '';
    sh(
      `btrfs -q subvolume create data && head -c 3000000 /dev/urandom > data/a && mkdir -p snaps/nested pushed pulled &&
       btrfs -q subvolume snapshot -r data snaps/one &&
       head -c 400000 /dev/urandom > data/b && btrfs -q subvolume snapshot -r data 'snaps/nested/two with space'`,
      pool.mountPoint,
    );
    // A snapshot to browse, with links (made first: snapshotting later waits on the tests' sends).
    sh(
      `btrfs -q subvolume create bdata && head -c 3000000 /dev/urandom > bdata/a && mkdir -p bdata/sub browse/plain && echo hello > bdata/sub/small &&
       ln -s /etc bdata/out && ln -s sub/small bdata/rel && setfattr -n user.note -v remote bdata/sub/small &&
       btrfs -q subvolume snapshot -r bdata browse/snap`,
      pool.mountPoint,
    );
    local = new BtrfsStore({ url: 'local', directory: `${pool.mountPoint}/snaps`, cache: new MeasurementCache(cacheDir) });
    snaps = await local.list();
  });
  after(async () => {
    for (const store of open) await store.close().catch(() => {});
    await sshd?.stop();
    pool?.destroy();
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });

  test('lists and measures like the local store does', async () => {
    const store = remote(`${pool.mountPoint}/snaps`, 'r');
    const listed = await store.list();
    assertListedAsLocal(listed, snaps);
    const [two, one] = listed;
    const remoteSize = await store.measureDiff(two!, one!);
    const localSize = await local.measureDiff(two!, one!);
    assert.deepEqual(remoteSize, localSize);
    // stopAbove goes to the server, and its lower bound comes back (not cached here).
    const stopped = await store.measureDiff(one!, null, undefined, { stopAbove: 10_000 });
    assert.equal(stopped.atLeast, true);
    assert.equal(stopped.exact, false);
    assert.ok(stopped.bytes > 10_000 && stopped.bytes < (await local.measureDiff(one!, null)).bytes, `${stopped.bytes}`);
  });

  test('push: a full then an incremental receive over SSH, byte for byte', async () => {
    const store = remote(`${pool.mountPoint}/pushed`, 'a');
    const release = await store.lock();
    try {
      const [two, one] = snaps;
      for (const [snapshot, parent] of [
        [one!, null],
        [two!, one!],
      ] as const) {
        const sending = await local.send(snapshot, parent);
        const received = await store.receive(sending.stream, { name: snapshot.name, snapshot, parent, expectedBytes: 0 });
        await sending.done;
        assert.equal(received.receivedUuid, snapshot.uuid);
        assertSameTree(`${pool.mountPoint}/snaps/${snapshot.name}`, `${pool.mountPoint}/pushed/${snapshot.name}`);
      }
      assert.deepEqual(
        (await store.list()).map((s) => s.name),
        ['nested/two with space', 'one'],
      );
    } finally {
      await release();
    }
  });

  test('pull: the stream comes from the remote, with backpressure, byte for byte', async () => {
    const store = remote(`${pool.mountPoint}/snaps`, 'r');
    const into = new BtrfsStore({ url: 'pulled', directory: `${pool.mountPoint}/pulled`, cache: new MeasurementCache(cacheDir) });
    const release = await into.lock();
    try {
      const one = snaps.find((s) => s.name === 'one')!;
      const sending = await store.send(one, null);
      const received = await into.receive(sending.stream, { name: 'one', snapshot: one, parent: null, expectedBytes: 0 });
      await sending.done;
      assert.equal(received.receivedUuid, one.uuid);
      assertSameTree(`${pool.mountPoint}/snaps/one`, `${pool.mountPoint}/pulled/one`);
    } finally {
      await release();
    }
  });

  test('mode r refuses receive and lock; mode a refuses delete', async () => {
    const one = snaps.find((s) => s.name === 'one')!;
    const reader = remote(`${pool.mountPoint}/pushed`, 'r');
    const sending = await local.send(one, null);
    await assert.rejects(
      reader.receive(sending.stream, { name: 'sneaky', snapshot: one, parent: null, expectedBytes: 0 }),
      (e: unknown) => e instanceof PermissionError && /receiving refused: the server runs in mode r \(read\)/.test(e.message),
    );
    await sending.done.catch(() => {});
    await assert.rejects(reader.lock(), PermissionError);
    assert.equal(existsSync(`${pool.mountPoint}/pushed/sneaky`), false);

    const adder = remote(`${pool.mountPoint}/pushed`, 'a');
    const [pushedOne] = (await adder.list()).filter((s) => s.name === 'one');
    await assert.rejects(
      adder.delete(pushedOne!),
      (e: unknown) => e instanceof PermissionError && /deleting refused.*mode a/.test(e.message),
    );
    assert.equal(existsSync(`${pool.mountPoint}/pushed/one`), true);
  });

  test('browsing a snapshot through the server: listings, attributes, links, contents, xattrs; cached', async () => {
    const root = `${pool.mountPoint}/browse/snap`;
    const store = remote(`${pool.mountPoint}/browse`, 'r');
    const files = store.snapshotFiles({ name: 'snap' });
    assert.deepEqual((await files.readdir('')).sort(), readdirSync(root).sort());
    assert.deepEqual(await files.readdir('sub'), ['small']);
    for (const relative of ['', 'a', 'sub', 'sub/small', 'out', 'rel']) {
      const st = lstatSync(path.join(root, relative));
      const attributes = await files.lstat(relative);
      assert.deepEqual(
        [attributes.mode, attributes.size, attributes.uid, attributes.nlink, attributes.mtime],
        [st.mode, st.size, st.uid, st.nlink, st.mtimeMs],
        relative,
      );
    }
    assert.equal(await files.readlink('out'), '/etc');
    assert.equal(await files.readlink('rel'), 'sub/small');
    const a = readFileSync(path.join(root, 'a'));
    assert.ok((await files.read('a', 0, a.length)).equals(a), 'a whole file over several blocks');
    assert.ok(
      (await files.read('a', BROWSE_BLOCK_BYTES - 2000, 5000)).equals(a.subarray(BROWSE_BLOCK_BYTES - 2000, BROWSE_BLOCK_BYTES + 3000)),
      'across a block boundary',
    );
    assert.equal((await files.read('a', a.length - 10, 100)).length, 10, 'short at the end');
    assert.equal((await files.read('sub/small', 0, 4096)).toString(), 'hello\n');
    assert.equal((await files.xattrs!('sub/small')).get('user.note')?.toString(), 'remote');
    // Links are never followed on the server.
    await assert.rejects(files.readdir('out'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOTDIR');
    await assert.rejects(files.read('rel', 0, 10), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ELOOP');
    await assert.rejects(files.lstat('missing'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    // Cached: a snapshot is read-only (the file changed under it would not show anyway).
    assert.ok((await files.read('a', 0, 100)).equals(a.subarray(0, 100)));
  });

  test('browsing stays inside the snapshot: .., absolute paths and links on the way are refused', async () => {
    symlinkSync(`${pool.mountPoint}/snaps`, `${pool.mountPoint}/browse/linked`);
    const store = remote(`${pool.mountPoint}/browse`, 'r');
    const files = store.snapshotFiles({ name: 'snap' });
    for (const relative of ['..', '../snap/a', 'sub/../../snap/a', '/etc/passwd', 'out/passwd', 'out/..', 'sub//small', './a']) {
      await assert.rejects(files.lstat(relative), (e: unknown) => e instanceof PermissionError && /refused/.test(e.message), relative);
      await assert.rejects(files.read(relative, 0, 10), PermissionError, relative);
    }
    for (const name of ['../snaps/one', '/etc', 'linked/one', 'linked']) {
      await assert.rejects(
        store.snapshotFiles({ name }).readdir(''),
        (e: unknown) => e instanceof PermissionError && /refused/.test(e.message),
        name,
      );
    }
    // A directory that is not a snapshot is not browsed either, nor a writable subvolume
    // (what is checked there could change before it is read).
    await assert.rejects(store.snapshotFiles({ name: 'plain' }).readdir(''), PermissionError);
    sh('btrfs -q subvolume create browse/writable && echo x > browse/writable/f', pool.mountPoint);
    await assert.rejects(
      store.snapshotFiles({ name: 'writable' }).read('f', 0, 10),
      (e: unknown) => e instanceof PermissionError && /not a read-only snapshot/.test(e.message),
    );
    sh('btrfs -q subvolume delete browse/writable', pool.mountPoint);
    rmSync(`${pool.mountPoint}/browse/linked`);
  });

  test('names that leave the directory are refused: .., absolute, symbolic links', async () => {
    symlinkSync(pool.mountPoint, `${pool.mountPoint}/pushed/escape`);
    const store = remote(`${pool.mountPoint}/pushed`, 'w');
    const one = snaps.find((s) => s.name === 'one')!;
    const before = allSubvolumes(pool.mountPoint);
    for (const name of ['../outside', '/outside', 'escape/outside', 'nested/../../outside']) {
      const sending = await local.send(one, null);
      await assert.rejects(
        store.receive(sending.stream, { name, snapshot: one, parent: null, expectedBytes: 0 }),
        (e: unknown) => e instanceof PermissionError && /refused snapshot name/.test(e.message),
        name,
      );
      await sending.done.catch(() => {});
    }
    // Deleting or sending through the link (the pool's own snapshots) is refused as well.
    const victim = { ...one, name: 'escape/snaps/one' };
    await assert.rejects(store.delete(victim), PermissionError);
    await assert.rejects(store.measureDiff({ ...one, name: '../snaps/one', uuid: 'not-cached' }, null), PermissionError);
    assert.deepEqual(allSubvolumes(pool.mountPoint), before);
    assert.equal(existsSync(`${pool.mountPoint}/outside`), false);
    rmSync(`${pool.mountPoint}/pushed/escape`);
  });

  test('the remote lock is exclusive and goes with the channel that holds it', async () => {
    const first = remote(`${pool.mountPoint}/pushed`, 'a');
    const release = await first.lock();
    await assert.rejects(
      remote(`${pool.mountPoint}/pushed`, 'a').lock(),
      (e: unknown) => e instanceof BusyError && /another buttersink/.test(e.message),
    );
    await release();
    const second = remote(`${pool.mountPoint}/pushed`, 'a');
    const again = await second.lock();
    // Closing the store (its channel) releases the lock without unlock.
    await second.close();
    void again;
    const third = remote(`${pool.mountPoint}/pushed`, 'a');
    await (await third.lock())();
  });

  test('an unknown host key is refused with its fingerprint and how to trust it', async () => {
    const empty = path.join(cacheDir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const store = remote(`${pool.mountPoint}/snaps`, 'r', { knownHostsFiles: [empty] });
    const print = fingerprint(Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64'));
    await assert.rejects(store.list(), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.match(
        e.message,
        new RegExp(`host key of \\[127\\.0\\.0\\.1\\]:${sshd.port} is unknown[^:]*: ssh-ed25519 ${print.replace(/[+/]/g, '\\$&')}`),
      );
      assert.match(e.hint!, new RegExp(`ssh-keyscan -p ${sshd.port} 127\\.0\\.0\\.1 >> ~/\\.ssh/known_hosts`));
      return true;
    });
  });

  test('a connection that failed to come up is tried again by the next request', async () => {
    const later = path.join(cacheDir, 'later_known_hosts');
    writeFileSync(later, '');
    const store = remote(`${pool.mountPoint}/snaps`, 'r', { knownHostsFiles: [later] });
    await assert.rejects(store.list(), (e: unknown) => e instanceof StoreError && /is unknown/.test(e.message));
    writeFileSync(later, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    assertListedAsLocal(await store.list(), snaps);
  });

  test('a dropped connection is made again by the next request (a mount outlives it)', async () => {
    const store = remote(`${pool.mountPoint}/snaps`, 'r');
    assertListedAsLocal(await store.list(), snaps);
    assert.ok(sshd.cutConnections() > 0);
    // Requests already on the dropped connection fail; once it is seen closed, the next connects again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assertListedAsLocal(await store.list(), snaps);
    const [two, one] = snaps;
    assert.deepEqual(await store.measureDiff(two!, one!), await local.measureDiff(two!, one!));
  });

  test('a changed host key is refused loudly', async () => {
    const wrong = path.join(cacheDir, 'wrong_known_hosts');
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ${sshd.otherPublicKey}\n`);
    const store = remote(`${pool.mountPoint}/snaps`, 'r', { knownHostsFiles: [wrong] });
    await assert.rejects(
      store.list(),
      (e: unknown) => e instanceof StoreError && /HOST KEY of \[127\.0\.0\.1\]:\d+ HAS CHANGED/.test(e.message),
    );
  });

  test('a hashed known_hosts entry is accepted', async () => {
    const hashed = path.join(cacheDir, 'hashed_known_hosts');
    writeFileSync(hashed, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', hashed], { stdio: 'ignore' });
    assert.match(execFileSync('cat', [hashed], { encoding: 'utf8' }), /^\|1\|/);
    const store = remote(`${pool.mountPoint}/snaps`, 'r', { knownHostsFiles: [hashed] });
    assert.equal((await store.list()).length, 2);
  });

  test('a missing remote buttersink and a remote that is not btrfs are clear StoreErrors', async () => {
    const missing = remote(`${pool.mountPoint}/snaps`, 'r', { remoteCommand: '/nonexistent/buttersink' });
    await assert.rejects(
      missing.list(),
      (e: unknown) => e instanceof StoreError && /buttersink is not installed on 127\.0\.0\.1:/.test(e.message),
    );
    const notBtrfs = remote('/tmp', 'r');
    await assert.rejects(notBtrfs.list(), (e: unknown) => e instanceof StoreError && /\/tmp is not on a btrfs filesystem/.test(e.message));
  });

  test('a remote speaking another protocol version is refused with both versions', async () => {
    // A stand-in server that greets with protocol 99.
    const fake = `${process.execPath} -e 'const j=Buffer.from(JSON.stringify({program:"buttersink",protocol:99,version:"9.0.0"}));const h=Buffer.alloc(5);h.writeUInt32BE(j.length);h[4]=1;process.stdout.write(Buffer.concat([h,j]));setTimeout(()=>{},200)' --`;
    const store = remote(`${pool.mountPoint}/snaps`, 'r', { remoteCommand: fake });
    await assert.rejects(
      store.list(),
      (e: unknown) =>
        e instanceof StoreError &&
        new RegExp(
          `protocol version mismatch: local buttersink 0\\.1\\.0 speaks protocol ${PROTOCOL_VERSION}, remote 9\\.0\\.0 speaks 99`,
        ).test(e.message),
    );
  });

  test('authentication failure is a PermissionError naming what was tried', async () => {
    const store = new SshStore({
      url: 'x',
      host: '127.0.0.1',
      user: 'no-such-user',
      port: sshd.port,
      directory: '/tmp',
      mode: 'r',
      cache: new MeasurementCache(cacheDir),
      version: '0.1.0',
      knownHostsFiles: [sshd.knownHosts],
      configFile: '/nonexistent',
    });
    open.push(store);
    await assert.rejects(
      store.list(),
      (e: unknown) =>
        e instanceof PermissionError &&
        /authentication as no-such-user@\[127\.0\.0\.1\]:\d+ failed \(tried: ~\/\.ssh\/id_ed25519\)/.test(e.message),
    );
  });
});

function assertSameTree(a: string, b: string): void {
  assert.deepEqual(treeDigest(b), treeDigest(a), `${b} differs from ${a}`);
}
