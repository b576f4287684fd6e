import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { freshDirectory, startMount, stopMounts, type RunningMount } from '../support/fuse-mount.js';
import { fuseSuite } from '../support/prerequisites.js';
import { treeDigest } from '../support/tree-digest.js';
import { errnoOf, run, runAsync, sleep } from '../support/helpers.js';

// The ordinary tools people run on the mount (coreutils, rsync), with their real exit codes.
// The mount runs in a process of its own, so the synchronous calls here cannot deadlock it.

const suite = fuseSuite();

/** Runs a command to its end and keeps its stdout too. */
function output(command: string, args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('buttersink mount with the tools people use: mv, rm, rmdir, cp -r again, ls -a', suite, () => {
  let a: BtrfsPool;
  let b: BtrfsPool;
  let mount: RunningMount;
  let mnt: string;
  const mounts: RunningMount[] = [];
  const digests: Record<string, string[]> = {};

  before(async () => {
    a = createPool(512);
    b = createPool(512);
    const work = freshDirectory('work-tools-');
    const env = {
      BUTTERSINK_CACHE_DIR: path.join(work, 'cache'),
      BUTTERSINK_RUN_DIR: path.join(work, 'run'),
      XDG_CONFIG_HOME: path.join(work, 'config'),
    };
    const data = makeRichSubvolume(a.mountPoint);
    snapshot(data, `${a.mountPoint}/snaps/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${a.mountPoint}/snaps/s2`);
    changeRichSubvolume(data, 2);
    snapshot(data, `${a.mountPoint}/snaps/s3`);
    snapshot(data, `${a.mountPoint}/snaps/daily/d1`);
    sh(`head -c 3000000 /dev/urandom > data/moved.bin`, a.mountPoint);
    snapshot(data, `${a.mountPoint}/snaps/moved`);
    // Long transfers: 100 MB each, through a pv held to 20 MiB/s (below).
    sh(
      `btrfs -q subvolume create slow && head -c 100000000 /dev/urandom > slow/blob && btrfs -q subvolume snapshot -r slow snaps/slow1`,
      a.mountPoint,
    );
    sh(`head -c 100000000 /dev/urandom > slow/blob && btrfs -q subvolume snapshot -r slow snaps/slow2`, a.mountPoint);
    sh(`head -c 100000000 /dev/urandom > slow/blob && btrfs -q subvolume snapshot -r slow snaps/slow3`, a.mountPoint);
    for (const n of ['s1', 's2', 's3', 'moved']) digests[n] = treeDigest(`${a.mountPoint}/snaps/${n}`);
    mkdirSync(`${b.mountPoint}/snaps`);
    mount = await startMount(['--store', `A=${a.mountPoint}/snaps/`, '--store', `B=${b.mountPoint}/snaps/`, '--copy-idle', '1'], env);
    mounts.push(mount);
    mnt = mount.mountPoint;
  });

  /** A second mount over the same pools whose local transfers run at 20 MiB/s (a pv wrapper first in PATH). */
  async function slowMount(): Promise<RunningMount> {
    const bin = freshDirectory('slow-pv-');
    const pv = spawnSync('sh', ['-c', 'command -v pv'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(`${bin}/pv`, `#!/bin/sh\nexec ${pv} -L 20m "$@"\n`);
    chmodSync(`${bin}/pv`, 0o755);
    const work = freshDirectory('work-slow-');
    const slow = await startMount(['--store', `A=${a.mountPoint}/snaps/`, '--store', `B=${b.mountPoint}/snaps/`, '--copy-idle', '1'], {
      PATH: `${bin}:${process.env.PATH}`,
      BUTTERSINK_CACHE_DIR: path.join(work, 'cache'),
      BUTTERSINK_RUN_DIR: path.join(work, 'run'),
      XDG_CONFIG_HOME: path.join(work, 'config'),
    });
    mounts.push(slow);
    return slow;
  }

  /** Milliseconds a command takes, and its exit code. */
  function timed(command: string, args: readonly string[]): { ms: number; code: number | null; stdout: string } {
    const started = performance.now();
    const result = output(command, args);
    return { ms: performance.now() - started, code: result.code, stdout: result.stdout };
  }

  after(async () => {
    await stopMounts(mounts);
    b?.destroy();
    a?.destroy();
  });

  const log = (): string => readFileSync(`${mnt}/.buttersink/log`, 'utf8');

  test('ls -a shows . and .. in every directory', () => {
    for (const dir of [mnt, `${mnt}/A`, `${mnt}/A/s1`, `${mnt}/A/s1/dir with space`]) {
      const listed = output('ls', ['-a', dir]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(listed.stdout.split('\n').slice(0, 2), ['.', '..'], dir);
    }
  });

  test("df shows each store's filesystem: size and free space as the pool has them", () => {
    const shown = output('df', ['-B1', '--output=size,avail', `${mnt}/B`]);
    assert.equal(shown.code, 0, shown.stderr);
    const real = output('df', ['-B1', '--output=size,avail', b.mountPoint]);
    const numbers = (text: string): number[] => text.split('\n')[1]!.trim().split(/\s+/).map(Number);
    const [size, avail] = numbers(shown.stdout);
    const [realSize, realAvail] = numbers(real.stdout);
    assert.equal(size, realSize);
    assert.ok(avail! > 0 && Math.abs(avail! - realAvail!) < 64 * 1024 ** 2, `${avail} vs ${realAvail}`);
  });

  test('mv of a snapshot into a nested directory of its store is EPERM with the reason, not EIO', () => {
    const moved = run('mv', [`${mnt}/A/s3`, `${mnt}/A/daily/`]);
    assert.equal(moved.code, 1);
    assert.match(moved.stderr, /Operation not permitted/);
    assert.match(readFileSync(`${mnt}/.buttersink/status`, 'utf8'), /s3 can only be renamed within its directory, not to daily\/s3/);
    assert.ok(existsSync(`${a.mountPoint}/snaps/s3`));
  });

  test('mv of a snapshot to another store: one transfer, one delete of the source, exit 0', async () => {
    const moved = run('mv', [`${mnt}/A/moved`, `${mnt}/B/`]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/moved`), digests.moved, 'the destination is byte for byte the source');
    assert.ok(!existsSync(`${a.mountPoint}/snaps/moved`), 'the source snapshot is deleted');
    assert.ok(!readdirSync(`${mnt}/A`).includes('moved'));
    assert.ok(readdirSync(`${mnt}/B`).includes('moved'));
    assert.equal(log().match(/transfer moved: A -> B/g)?.length, 1, log());
    assert.equal(log().match(/deleted moved from A/g)?.length, 1, log());
    await sleep(2500); // the copy window closes: what mv wrote was compared
    assert.match(log(), /copy into B\/moved finished: \d[\d.]* [KM]iB compared equal/);
    assert.doesNotMatch(log(), /MISMATCH/);
  });

  test('rsync -a (temporary files renamed into place) exits 0; the snapshot is byte for byte the source, compared', async () => {
    const synced = run('rsync', ['-a', `${mnt}/A/s3`, `${mnt}/B/`]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/s3`), digests.s3);
    await sleep(2500);
    assert.match(log(), /copy into B\/s3 finished: \d[\d.]* [KM]iB compared equal/);
    assert.doesNotMatch(log(), /MISMATCH/);
    assert.deepEqual(readdirSync(`${mnt}/B/s3`).sort(), readdirSync(`${a.mountPoint}/snaps/s3`).sort(), 'no temporary name is left');
  });

  test('rm FILE in a snapshot is EROFS and hides nothing; the file stays', () => {
    const removed = run('rm', [`${mnt}/A/s1/small.bin`]);
    assert.equal(removed.code, 1);
    assert.match(removed.stderr, /Read-only file system/);
    assert.ok(readdirSync(`${mnt}/A/s1`).includes('small.bin'), 'still listed');
    assert.ok(lstatSync(`${mnt}/A/s1/small.bin`).isFile(), 'still there');
    const dir = run('rmdir', [`${mnt}/A/s1/dir with space/deeper`]);
    assert.equal(dir.code, 1);
    assert.ok(readdirSync(`${mnt}/A/s1/dir with space`).includes('deeper'));
    assert.ok(existsSync(`${a.mountPoint}/snaps/s1/small.bin`));
  });

  test('a bare rmdir of a snapshot that shows files is ENOTEMPTY; rm -r deletes it, exit 0', () => {
    const copied = run('cp', ['-r', '--attributes-only', `${mnt}/A/s1`, `${mnt}/B/`]);
    assert.equal(copied.code, 0, copied.stderr);
    const bare = run('rmdir', [`${mnt}/A/s2`]);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /Directory not empty/);
    assert.ok(existsSync(`${a.mountPoint}/snaps/s2`));
    assert.ok(readdirSync(`${mnt}/A`).includes('s2'));
    const removed = run('rm', ['-r', `${mnt}/A/s2`]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!existsSync(`${a.mountPoint}/snaps/s2`));
    assert.ok(!readdirSync(`${mnt}/A`).includes('s2'));
  });

  test('cp -r of a snapshot the destination has: exit 1 with honest errors, and its symlinks stay visible', async () => {
    await sleep(2500); // s1's copy window in B closed: B/s1 shows the received snapshot
    const again = run('cp', ['-r', `${mnt}/A/s1`, `${mnt}/B/`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Read-only file system/);
    assert.equal(readlinkSync(`${mnt}/B/s1/link-to-big`), 'big.bin', 'the symlink is not hidden');
    assert.ok(readdirSync(`${mnt}/B/s1`).includes('dangling'));
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/s1`), digests.s1, 'the stored snapshot is untouched');
    assert.deepEqual(readdirSync(`${mnt}/B/s1`).sort(), readdirSync(`${a.mountPoint}/snaps/s1`).sort(), 'nothing hidden');
  });

  test('during a long transfer into a store, its lookups and listings answer at once; the new snapshot shows once complete', async () => {
    const slow = await slowMount();
    const m = slow.mountPoint;
    const slowStatus = (): string => readFileSync(`${m}/.buttersink/status`, 'utf8');
    assert.ok(readdirSync(`${m}/B`).includes('s1'));
    await sleep(1200); // the kernel's cached entries expire: the lookups below reach the mount
    const copy = runAsync('cp', ['-r', '--attributes-only', `${m}/A/slow1`, `${m}/B/`]);
    for (let waited = 0; !/transfers in progress \(1\)/.test(slowStatus()); waited += 20) {
      assert.ok(waited < 30_000, `the transfer did not start:\n${slowStatus()}`);
      await sleep(20);
    }
    await sleep(500);
    const listing = timed('ls', ['-la', `${m}/B`]);
    const existing = timed('stat', [`${m}/B/s1`]);
    const missing = timed('stat', [`${m}/B/no-such-snapshot`]);
    assert.match(slowStatus(), /transfers in progress \(1\)/, 'measured while the transfer ran');
    assert.equal(listing.code, 0);
    assert.ok(!listing.stdout.includes('slow1'), `not listed before it is complete:\n${listing.stdout}`);
    assert.equal(existing.code, 0);
    assert.equal(missing.code, 1);
    for (const [what, t] of [
      ['ls -la', listing],
      ['stat of a snapshot', existing],
      ['stat of a missing name', missing],
    ] as const) {
      assert.ok(t.ms < 2000, `${what} took ${Math.round(t.ms)} ms during the transfer`);
    }
    const copied = await copy;
    assert.equal(copied.code, 0, copied.stderr);
    assert.ok(readdirSync(`${m}/B`).includes('slow1'));
    assert.ok(statSync(`${b.mountPoint}/snaps/slow1/blob`).size === 100_000_000);
  });

  test('two cp -r of the same snapshot at once: one transfer; the other exits 0 or fails cleanly with EEXIST', async () => {
    const slow = mounts[mounts.length - 1]!;
    const m = slow.mountPoint;
    const [one, two] = await Promise.all([
      runAsync('cp', ['-r', '--attributes-only', `${m}/A/slow2`, `${m}/B/`]),
      runAsync('cp', ['-r', '--attributes-only', `${m}/A/slow2`, `${m}/B/`]),
    ]);
    // FUSE cannot tell the two apart: the second cp either ran its mkdir after the first one
    // (EEXIST: "File exists", exit 1) or found the first one's new snapshot and copied into
    // its copy window too (compared, exit 0). Never a second transfer, never both failing.
    assert.ok(one.code === 0 || two.code === 0, `${one.stderr}\n${two.stderr}`);
    for (const r of [one, two]) if (r.code !== 0) assert.match(r.stderr, /File exists/);
    const slowLog = readFileSync(`${m}/.buttersink/log`, 'utf8');
    assert.equal(slowLog.match(/transfer slow2: A -> B/g)?.length, 1, slowLog);
    assert.equal(
      errnoOf(() => mkdirSync(`${m}/B/slow2`)),
      'EEXIST',
    );
    assert.ok(statSync(`${b.mountPoint}/snaps/slow2/blob`).size === 100_000_000);
  });

  test('Ctrl-C of cp -r while its transfer runs cancels the transfer: cp ends at once, nothing arrives, no partial is left', async () => {
    const slow = mounts[mounts.length - 1]!;
    const m = slow.mountPoint;
    const slowStatus = (): string => readFileSync(`${m}/.buttersink/status`, 'utf8');
    const sourceBefore = treeDigest(`${a.mountPoint}/snaps/slow3`);
    const cp = spawn('cp', ['-r', `${m}/A/slow3`, `${m}/B/`], { stdio: 'ignore' });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      cp.on('exit', (code, signal) => resolve({ code, signal })),
    );
    for (let waited = 0; !/transfers in progress \(1\)/.test(slowStatus()); waited += 20) {
      assert.ok(waited < 30_000, `the transfer did not start:\n${slowStatus()}`);
      await sleep(20);
    }
    await sleep(500); // cp waits in the mount now (its create or the open of its source)
    const stopped = performance.now();
    cp.kill('SIGINT');
    const exit = await ended;
    const took = performance.now() - stopped;
    assert.equal(exit.signal, 'SIGINT', `cp ended by its Ctrl-C (exit ${exit.code})`);
    // The transfer (5 s at 20 MiB/s) was cut: cp did not wait for it to end.
    assert.ok(took < 3000, `cp took ${Math.round(took)} ms to end after Ctrl-C`);
    for (let waited = 0; !/no transfers in progress/.test(slowStatus()); waited += 50) {
      assert.ok(waited < 30_000, `the transfer did not stop:\n${slowStatus()}`);
      await sleep(50);
    }
    assert.match(
      readFileSync(`${m}/.buttersink/log`, 'utf8'),
      /cancelling the transfer of slow3 to B: a process waiting for it at \/(A|B)\/slow3\S* was interrupted \(Ctrl-C\)/,
    );
    assert.deepEqual(
      readdirSync(`${b.mountPoint}/snaps`).filter((n) => n.includes('slow3')),
      [],
      'no snapshot and no partial receive in the pool',
    );
    assert.ok(!readdirSync(`${m}/B`).includes('slow3'), 'nothing shows in the mount');
    assert.deepEqual(treeDigest(`${a.mountPoint}/snaps/slow3`), sourceBefore, 'the source is untouched');
    // Nothing is stuck: the same copy again runs to its end.
    const again = await runAsync('cp', ['-r', '--attributes-only', `${m}/A/slow3`, `${m}/B/`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(statSync(`${b.mountPoint}/snaps/slow3/blob`).size, 100_000_000);
  });
});
