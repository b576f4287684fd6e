import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { freshDirectory, isMounted, mkdirAndWait, startMount, stopMounts, type RunningMount } from '../support/fuse-mount.js';
import { fuseSuite, sshSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { treeDigest } from '../support/tree-digest.js';
import { closedPort, errnoOf, run, sleep } from '../support/helpers.js';

// The mount and sshd (and the remote `buttersink server` it starts) each run in processes of
// their own, so the synchronous fs calls and spawnSync below cannot deadlock anything.

const suite = (() => {
  const fuse = fuseSuite();
  return fuse.skip ? fuse : sshSuite();
})();

/** The `btrfs subvolume show` fields of a subvolume: UUID, Parent UUID, Received UUID, Flags. */
function show(subvolume: string): Record<string, string> {
  const text = execFileSync('btrfs', ['subvolume', 'show', subvolume], { encoding: 'utf8' });
  const fields: Record<string, string> = {};
  for (const match of text.matchAll(/^\s*(UUID|Parent UUID|Received UUID|Flags):\s+(\S+)/gm)) fields[match[1]!] = match[2]!;
  return fields;
}

describe('buttersink mount with an SSH store (real sshd on loopback) and a local btrfs pool', suite, () => {
  let sshd: TestSshd;
  let local: BtrfsPool;
  let remote: BtrfsPool;
  let env: NodeJS.ProcessEnv;
  let mount: RunningMount;
  let mnt: string;
  const mounts: RunningMount[] = [];
  const snaps = (): string => `${local.mountPoint}/snaps`;
  const backup = (): string => `${remote.mountPoint}/backup`;
  const sshUrl = (): string => `ssh://buttersink-test${backup()}/`;

  before(async () => {
    sshd = await startSshd();
    local = createPool(512);
    remote = createPool(512);
    const work = freshDirectory('work-ssh-');
    // The client's HOME (ssh config alias, key, known_hosts) copied out of sshd's directory,
    // which sshd.stop() removes: the last test stops sshd and must still resolve the alias.
    const home = path.join(work, 'home');
    cpSync(sshd.home, home, { recursive: true });
    env = {
      ...sshd.env,
      HOME: home,
      BUTTERSINK_CACHE_DIR: path.join(work, 'cache'),
      BUTTERSINK_RUN_DIR: path.join(work, 'run'),
      XDG_CONFIG_HOME: path.join(work, 'config'),
    };
    const data = makeRichSubvolume(local.mountPoint);
    snapshot(data, `${snaps()}/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${snaps()}/s2`);
    snapshot(data, `${snaps()}/solo`);
    mkdirSync(backup());
    // A short listing TTL, so that the last test sees sshd go away without waiting 30 s.
    mount = await startMount(
      ['--store', `local=${snaps()}/`, '--store', `nas=${sshUrl()}`, '--copy-idle', '1', '--listing-ttl', '1', '--store-timeout', '10'],
      env,
    );
    mounts.push(mount);
    mnt = mount.mountPoint;
  });

  after(async () => {
    // Every mount goes, also when a test failed; then sshd and the pools.
    await stopMounts(mounts);
    await sshd?.stop();
    remote?.destroy();
    local?.destroy();
  });

  const status = (): string => readFileSync(`${mnt}/.buttersink/status`, 'utf8');
  const log = (): string => readFileSync(`${mnt}/.buttersink/log`, 'utf8');
  /** The snapshots on the remote pool (not the btrfs store's work directory). */
  const received = (): string[] =>
    readdirSync(backup())
      .filter((n) => n !== '.buttersink')
      .sort();

  test('the SSH store is a directory listing the remote snapshots; empty at first', () => {
    assert.deepEqual(readdirSync(mnt), ['.buttersink', 'local', 'nas']);
    assert.deepEqual(readdirSync(`${mnt}/nas`), []);
    assert.deepEqual(readdirSync(`${mnt}/local`).sort(), ['s1', 's2', 'solo']);
  });

  test('mkdir in the SSH store sends the snapshot over SSH, byte for byte', () => {
    mkdirAndWait(`${mnt}/nas/s1`);
    assert.deepEqual(received(), ['s1']);
    assert.deepEqual(treeDigest(`${backup()}/s1`), treeDigest(`${snaps()}/s1`));
    const s1 = show(`${backup()}/s1`);
    assert.equal(s1['Received UUID'], show(`${snaps()}/s1`).UUID);
    assert.match(s1.Flags ?? '', /readonly/);
    assert.deepEqual(readdirSync(`${mnt}/nas`), ['s1']);
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/nas/s1`)),
      'EEXIST',
    );
    assert.match(log(), /transfer s1: local -> nas \(full/);
  });

  test('cp -r local/<snap> nas/ exits 0 and sends an incremental from the parent the remote holds', async () => {
    const result = run('cp', ['-r', `${mnt}/local/s2`, `${mnt}/nas/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(received(), ['s1', 's2']);
    assert.deepEqual(treeDigest(`${backup()}/s2`), treeDigest(`${snaps()}/s2`));
    const s2 = show(`${backup()}/s2`);
    assert.equal(s2['Received UUID'], show(`${snaps()}/s2`).UUID);
    assert.equal(s2['Parent UUID'], show(`${backup()}/s1`).UUID, 'received onto the remote s1: an incremental');
    assert.match(log(), /transfer s2: local -> nas \(from s1/);
    await sleep(2500); // the copy window closes (idle 1 s)
    assert.deepEqual(readdirSync(`${mnt}/nas`).sort(), ['s1', 's2']);
    // cp's bytes were compared with what the remote received, read back through its server.
    assert.match(log(), /copy into nas\/s2 finished: \d[\d.]* MiB compared equal with the received snapshot\n/);
  });

  test('a snapshot in the SSH store is browsable through the server: ls, stat, cat, symlinks, xattrs', () => {
    const real = `${backup()}/s2`;
    const seen = `${mnt}/nas/s2`;
    const walk = (rel: string): void => {
      const r = lstatSync(path.join(real, rel));
      const m = lstatSync(path.join(seen, rel));
      assert.deepEqual([m.mode, m.size, m.uid, m.gid, Math.floor(m.mtimeMs)], [r.mode, r.size, r.uid, r.gid, Math.floor(r.mtimeMs)], rel);
      if (r.isSymbolicLink()) assert.equal(readlinkSync(path.join(seen, rel)), readlinkSync(path.join(real, rel)), rel);
      else if (r.isFile()) assert.ok(readFileSync(path.join(seen, rel)).equals(readFileSync(path.join(real, rel))), rel);
      else if (r.isDirectory()) {
        assert.deepEqual(readdirSync(path.join(seen, rel)).sort(), readdirSync(path.join(real, rel)).sort(), rel);
        for (const entry of readdirSync(path.join(real, rel))) walk(path.join(rel, entry));
      }
    };
    walk('');
    // The tools a user runs (in processes of their own): ls, stat, cat, getfattr.
    assert.equal(run('ls', ['-la', seen]).code, 0);
    const out = (command: string, args: string[], cwd?: string): string =>
      execFileSync(command, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
    assert.equal(out('stat', ['-c', '%s %a %F', `${seen}/ünïcødé/datei`]), out('stat', ['-c', '%s %a %F', `${real}/ünïcødé/datei`]));
    assert.equal(out('cat', [`${seen}/ünïcødé/datei`]), readFileSync(`${real}/ünïcødé/datei`, 'utf8'));
    assert.equal(out('readlink', [`${seen}/dangling`]), '/nonexistent/target\n');
    const xattrs = (dir: string): string =>
      out('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], dir).split('\n').sort().join('\n');
    assert.equal(xattrs(seen), xattrs(real));
    assert.equal(
      errnoOf(() => readFileSync(`${seen}/no such file`)),
      'ENOENT',
    );
  });

  test('rm -r in the SSH store deletes the snapshot on the remote; a bare rmdir of it is ENOTEMPTY', () => {
    assert.equal(
      errnoOf(() => rmdirSync(`${mnt}/nas/s1`)),
      'ENOTEMPTY',
    );
    const removed = run('rm', ['-r', `${mnt}/nas/s1`]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(received(), ['s2']);
    assert.deepEqual(readdirSync(`${mnt}/nas`), ['s2']);
    assert.ok(existsSync(`${snaps()}/s1`), 'the local source is untouched');
    assert.deepEqual(treeDigest(`${backup()}/s2`), treeDigest(`${snaps()}/s2`), 's2 does not need s1 any more');
  });

  test('--read-only: the SSH store is listed, mkdir and rmdir are EROFS, nothing changes on the remote', async () => {
    const ro = await startMount(['--read-only', '--store', `local=${snaps()}/`, '--store', `nas=${sshUrl()}`], env);
    mounts.push(ro);
    try {
      assert.deepEqual(readdirSync(`${ro.mountPoint}/nas`), ['s2']);
      assert.equal(
        errnoOf(() => mkdirSync(`${ro.mountPoint}/nas/solo`)),
        'EROFS',
      );
      assert.equal(
        errnoOf(() => rmdirSync(`${ro.mountPoint}/nas/s2`)),
        'EROFS',
      );
      assert.deepEqual(received(), ['s2']);
    } finally {
      await ro.stop();
    }
  });

  test('an SSH store nothing listens for fails the mount; with --no-check-stores ls is EIO with the reason in status, the local store still works', async () => {
    const port = await closedPort();
    const stores = ['--store', `local=${snaps()}/`, '--store', `nas=ssh://root@127.0.0.1:${port}${backup()}/`];
    const mountPoint = path.join(freshDirectory('ssh-down-'), 'mnt');
    mkdirSync(mountPoint);
    const refused = cli(['mount', ...stores, mountPoint], { env });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(
      refused.stderr,
      /^buttersink: cannot mount: store nas \(ssh:\/\/root@127\.0\.0\.1:\d+\/.*cannot connect to 127\.0\.0\.1:\d+: connection refused/,
    );
    assert.ok(!isMounted(mountPoint));
    const down = await startMount(['--no-check-stores', ...stores], env);
    mounts.push(down);
    try {
      const started = Date.now();
      assert.deepEqual(readdirSync(down.mountPoint), ['.buttersink', 'local', 'nas'], 'the root needs no listing');
      assert.equal(
        errnoOf(() => readdirSync(`${down.mountPoint}/nas`)),
        'EIO',
      );
      assert.ok(Date.now() - started < 30_000, `the failed listing took ${Date.now() - started} ms`);
      const downStatus = readFileSync(`${down.mountPoint}/.buttersink/status`, 'utf8');
      assert.match(downStatus, /listing nas \(ssh:\/\/root@127\.0\.0\.1:\d+\//, downStatus);
      assert.match(downStatus, /cannot connect to 127\.0\.0\.1:\d+: connection refused/, downStatus);
      assert.equal(
        errnoOf(() => mkdirSync(`${down.mountPoint}/nas/solo`)),
        'EIO',
      );
      assert.deepEqual(readdirSync(`${down.mountPoint}/local`).sort(), ['s1', 's2', 'solo']);
      assert.ok(readFileSync(`${down.mountPoint}/local/s1/ünïcødé/datei`, 'utf8').length > 0);
    } finally {
      await down.stop();
    }
    assert.ok(!isMounted(down.mountPoint));
  });

  test('a dropped SSH connection does not end the store: the next operation connects again', async () => {
    assert.ok(sshd.cutConnections() > 0, 'the mount holds a connection');
    await sleep(1500); // the cached listing (--listing-ttl 1) goes stale
    assert.deepEqual(readdirSync(`${mnt}/nas`), ['s2']);
    mkdirAndWait(`${mnt}/nas/solo`);
    assert.deepEqual(received(), ['s2', 'solo']);
    assert.deepEqual(treeDigest(`${backup()}/solo`), treeDigest(`${snaps()}/solo`));
  });

  // Last: it stops sshd under the main mount.
  test('sshd going away under a running mount: ls, mkdir and rmdir are EIO with the reason; the local store still works', async () => {
    // Stopping the listener alone leaves the mount's established connection working:
    // drop it as a network failure would, then stop sshd so that no new one can be made.
    assert.ok(sshd.cutConnections() > 0, 'the mount holds a connection');
    await sshd.stop();
    await sleep(1500); // the cached listing goes stale
    assert.equal(
      errnoOf(() => readdirSync(`${mnt}/nas`)),
      'EIO',
    );
    assert.match(status(), /listing nas \(ssh:\/\/buttersink-test\/.*\/backup\/\): cannot connect to .*connection refused/);
    assert.equal(
      errnoOf(() => mkdirAndWait(`${mnt}/nas/s1`)),
      'EIO',
    );
    assert.equal(
      errnoOf(() => rmdirSync(`${mnt}/nas/s2`)),
      'EIO',
    );
    assert.deepEqual(readdirSync(`${mnt}/local`).sort(), ['s1', 's2', 'solo']);
    assert.ok(readFileSync(`${mnt}/local/s1/ünïcødé/datei`, 'utf8').length > 0);
    assert.deepEqual(received(), ['s2', 'solo']);
  });
});
