import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pidFileFor } from '../../src/fuse/mount-session.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { freshDirectory, isMounted, mkdirAndWait, startMount, stopMounts, type RunningMount } from '../support/fuse-mount.js';
import { fuseSuite } from '../support/prerequisites.js';
import { CLI, cli } from '../support/run-cli.js';
import { treeDigest } from '../support/tree-digest.js';
import { errnoOf, run, runAsync, sleep } from '../support/helpers.js';

const suite = fuseSuite();

/** Every subvolume of a pool (read-only or not, partial or not), as paths. */
function subvolumes(pool: BtrfsPool): string[] {
  return execFileSync('btrfs', ['subvolume', 'list', pool.mountPoint], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .sort();
}

/** The mount process's pid file (written just after mounting), once it is there. */
async function pidFileOf(mountPoint: string, env: NodeJS.ProcessEnv): Promise<string> {
  const file = pidFileFor(mountPoint, env);
  // Its content too: a process stopped before it wrote its identity could not be told apart.
  const written = (): boolean => existsSync(file) && readFileSync(file, 'utf8').trim() !== '';
  for (let waited = 0; !written(); waited += 50) {
    if (waited > 10_000) throw new Error(`no pid file ${file}`);
    await sleep(50);
  }
  return file;
}

/** Waits until the copy windows closed (idle 1 s in these tests) so the real snapshots show. */
const waitForIdleWindows = (): Promise<void> => sleep(2500);

describe('buttersink mount: stores as directories, on real btrfs pools', suite, () => {
  let a: BtrfsPool;
  let b: BtrfsPool;
  let env: NodeJS.ProcessEnv;
  let mount: RunningMount;
  let mnt: string;
  const mounts: RunningMount[] = [];

  before(async () => {
    a = createPool(1024);
    b = createPool(1024);
    const work = freshDirectory('work-');
    env = {
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
    for (const n of ['x1', 'x2', 'x3', 'x4']) {
      sh(`head -c 2000000 /dev/urandom > data/${n}.bin`, a.mountPoint);
      snapshot(data, `${a.mountPoint}/snaps/${n}`);
    }
    // Big enough that a transfer is still running when the test unmounts.
    sh(
      `btrfs -q subvolume create big && head -c 450000000 /dev/urandom > big/blob && mkdir -p snaps && btrfs -q subvolume snapshot -r big snaps/big`,
      a.mountPoint,
    );
    mkdirSync(`${b.mountPoint}/snaps`);
    mount = await startMount(['--store', `A=${a.mountPoint}/snaps/`, '--store', `B=${b.mountPoint}/snaps`, '--copy-idle', '1'], env);
    mounts.push(mount);
    mnt = mount.mountPoint;
  });

  after(async () => {
    // Every mount goes, also when a test failed; then the pools.
    await stopMounts(mounts);
    b?.destroy();
    a?.destroy();
  });

  const status = (): string => readFileSync(`${mnt}/.buttersink/status`, 'utf8');
  const log = (): string => readFileSync(`${mnt}/.buttersink/log`, 'utf8');

  test('the root shows the stores and .buttersink; a store its snapshots, nested names as directories', () => {
    assert.deepEqual(readdirSync(mnt), ['.buttersink', 'A', 'B']);
    assert.deepEqual(readdirSync(`${mnt}/A`).sort(), ['big', 'daily', 's1', 's2', 's3', 'x1', 'x2', 'x3', 'x4']);
    assert.deepEqual(readdirSync(`${mnt}/A/daily`), ['d1']);
    assert.deepEqual(readdirSync(`${mnt}/B`), []);
    assert.deepEqual(readdirSync(`${mnt}/.buttersink`).sort(), ['log', 'status']);
    assert.match(status(), /no transfers in progress/);
  });

  test('a local snapshot shows its real files read-only: contents, sizes, modes, owners, times, symlinks, xattrs', () => {
    const real = `${a.mountPoint}/snaps/s1`;
    const seen = `${mnt}/A/s1`;
    assert.deepEqual(readdirSync(seen).sort(), readdirSync(real).sort());
    for (const name of ['big.bin', 'small.bin', 'empty', 'ünïcødé', 'dir with space']) {
      const r = lstatSync(path.join(real, name));
      const s = lstatSync(path.join(seen, name));
      assert.equal(s.mode, r.mode, `${name} mode`);
      assert.equal(s.uid, r.uid, `${name} uid`);
      assert.equal(s.gid, r.gid, `${name} gid`);
      if (r.isFile()) assert.equal(s.size, r.size, `${name} size`);
      assert.equal(Math.floor(s.mtimeMs), Math.floor(r.mtimeMs), `${name} mtime (ms)`);
    }
    assert.ok(readFileSync(`${seen}/big.bin`).equals(readFileSync(`${real}/big.bin`)));
    assert.equal(readFileSync(`${seen}/dir with space/deeper/file`, 'utf8'), 'hello\n');
    assert.equal(readlinkSync(`${seen}/link-to-big`), 'big.bin');
    const xattr = execFileSync('getfattr', ['--only-values', '-n', 'user.note', `${seen}/small.bin`], { encoding: 'utf8' });
    assert.equal(xattr, 'first version');
    // Sequential reads keep several requests in flight: the mount raised its read-ahead (root).
    const device = execFileSync('mountpoint', ['-d', mnt], { encoding: 'utf8' }).trim();
    assert.equal(readFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8').trim(), '1024');
  });

  test('outside a copy window, writes fail with EROFS, never a silent success', () => {
    assert.equal(
      errnoOf(() => writeFileSync(`${mnt}/A/s1/new-file`, 'x')),
      'EROFS',
    );
    assert.equal(
      errnoOf(() => appendFileSync(`${mnt}/A/s1/big.bin`, 'x')),
      'EROFS',
    );
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/A/s1/new-dir`)),
      'EROFS',
    );
    assert.equal(
      errnoOf(() => chmodSync(`${mnt}/A/s1/big.bin`, 0o777)),
      'EROFS',
    );
    assert.match(run('touch', [`${mnt}/A/s1/big.bin`]).stderr, /Read-only file system/);
    assert.equal(lstatSync(`${a.mountPoint}/snaps/s1/big.bin`).mode & 0o777, 0o755);
  });

  test('mkdir of a name that is no snapshot anywhere is EPERM, with the reason in the status file', () => {
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/B/no-such-snapshot`)),
      'EPERM',
    );
    assert.match(status(), /no mounted store has a snapshot named no-such-snapshot/);
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/new-store`)),
      'EPERM',
    );
    assert.deepEqual(subvolumes(b), []);
  });

  test('mkdir transfers the snapshot; it is byte-for-byte the source; mkdir again is EEXIST', () => {
    mkdirAndWait(`${mnt}/B/s1`);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/s1`), treeDigest(`${a.mountPoint}/snaps/s1`));
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/B/s1`)),
      'EEXIST',
    );
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/A/s1`)),
      'EEXIST',
    );
    assert.match(log(), /transfer s1: A -> B \(full/);
  });

  test('cp -r exits 0, the received snapshot equals the source, and the copy was compared with it', async () => {
    const result = run('cp', ['-r', `${mnt}/A/s2`, `${mnt}/B/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/s2`), treeDigest(`${a.mountPoint}/snaps/s2`));
    assert.match(log(), /transfer s2: A -> B \(from s1/, 'the planner used the parent B already has');
    await waitForIdleWindows();
    assert.match(log(), /copy into B\/s2 finished: \d[\d.]* [KM]iB compared equal/);
    // The window closed: the directory shows the real received snapshot.
    assert.deepEqual(readdirSync(`${mnt}/B/s2`).sort(), readdirSync(`${a.mountPoint}/snaps/s2`).sort());
    assert.ok(readFileSync(`${mnt}/B/s2/big.bin`).equals(readFileSync(`${a.mountPoint}/snaps/s2/big.bin`)));
  });

  test('cp -r --attributes-only (the cheap form) transfers too', () => {
    const result = run('cp', ['-r', '--attributes-only', `${mnt}/A/s3`, `${mnt}/B/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/s3`), treeDigest(`${a.mountPoint}/snaps/s3`));
  });

  test('cp -a (owners, modes, times, xattrs, hard links, a fifo, a sparse file) exits 0 too', () => {
    const result = run('cp', ['-a', `${mnt}/A/x4`, `${mnt}/B/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/x4`), treeDigest(`${a.mountPoint}/snaps/x4`));
  });

  test('cp -r of a nested name makes its directories and transfers the snapshot below', () => {
    const result = run('cp', ['-r', `${mnt}/A/daily`, `${mnt}/B/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/daily/d1`), treeDigest(`${a.mountPoint}/snaps/daily/d1`));
    assert.deepEqual(readdirSync(`${mnt}/B/daily`), ['d1']);
  });

  test('bytes written into a copy window that differ from the received snapshot are EIO', () => {
    mkdirSync(`${mnt}/B/x1`);
    // The real file's first bytes inverted: different at byte 0 for sure (x1.bin is random, so
    // a fixed text would match its first byte once in 256 runs).
    const real = readFileSync(`${a.mountPoint}/snaps/x1/x1.bin`).subarray(0, 18);
    const wrong = Buffer.from(real.map((byte) => byte ^ 0xff));
    assert.equal(
      errnoOf(() => writeFileSync(`${mnt}/B/x1/x1.bin`, wrong, { flag: 'wx' })),
      'EIO',
    );
    assert.match(status(), /x1\.bin differs from the received snapshot at byte 0/);
    assert.equal(
      errnoOf(() => writeFileSync(`${mnt}/B/x1/x1.bin`, 'again', { flag: 'wx' })),
      'EEXIST',
      'the create was recorded',
    );
  });

  test('two copies at once both complete', async () => {
    const [one, two] = await Promise.all([
      runAsync('cp', ['-r', `${mnt}/A/x2`, `${mnt}/B/`]),
      runAsync('cp', ['-r', `${mnt}/A/x3`, `${mnt}/B/`]),
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(two.code, 0, two.stderr);
    for (const n of ['x2', 'x3']) assert.deepEqual(treeDigest(`${b.mountPoint}/snaps/${n}`), treeDigest(`${a.mountPoint}/snaps/${n}`));
  });

  test('mv inside one store renames the snapshot', async () => {
    await waitForIdleWindows();
    renameSync(`${mnt}/B/s1`, `${mnt}/B/s1-renamed`);
    assert.ok(existsSync(`${b.mountPoint}/snaps/s1-renamed`));
    assert.ok(!existsSync(`${b.mountPoint}/snaps/s1`));
    assert.ok(readdirSync(`${mnt}/B`).includes('s1-renamed'));
    assert.ok(!readdirSync(`${mnt}/B`).includes('s1'));
    assert.equal(
      errnoOf(() => renameSync(`${mnt}/B/s2`, `${mnt}/B/s3`)),
      'EEXIST',
    );
    assert.equal(
      errnoOf(() => renameSync(`${mnt}/B/s2`, `${mnt}/A/s2-elsewhere`)),
      'EXDEV',
    );
  });

  test('a bare rmdir of a snapshot that shows files is ENOTEMPTY; rm -r deletes it', () => {
    assert.equal(
      errnoOf(() => rmdirSync(`${mnt}/B/s1-renamed`)),
      'ENOTEMPTY',
    );
    assert.ok(existsSync(`${b.mountPoint}/snaps/s1-renamed`));
    const result = run('rm', ['-r', `${mnt}/B/s1-renamed`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!existsSync(`${b.mountPoint}/snaps/s1-renamed`));
    assert.ok(!readdirSync(`${mnt}/B`).includes('s1-renamed'));
    assert.ok(existsSync(`${a.mountPoint}/snaps/s1`), 'the source is untouched');
  });

  test('rm -r deletes; a lone unlink is EROFS and hides nothing', () => {
    assert.equal(
      errnoOf(() => unlinkSync(`${mnt}/B/s3/big.bin`)),
      'EROFS',
    );
    assert.ok(readdirSync(`${mnt}/B/s3`).includes('big.bin'));
    assert.ok(existsSync(`${b.mountPoint}/snaps/s3/big.bin`));
    const result = run('rm', ['-r', `${mnt}/B/s2`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!existsSync(`${b.mountPoint}/snaps/s2`));
    const nested = run('rm', ['-r', `${mnt}/B/daily`]);
    assert.equal(nested.code, 0, nested.stderr);
    assert.ok(!existsSync(`${b.mountPoint}/snaps/daily/d1`));
    assert.ok(!readdirSync(`${mnt}/B`).includes('daily'));
  });

  test('a read-only mount (stores from the config file) refuses transfers, deletes and renames with EROFS', async () => {
    mkdirSync(`${env.XDG_CONFIG_HOME}/buttersink`, { recursive: true });
    writeFileSync(
      `${env.XDG_CONFIG_HOME}/buttersink/config.toml`,
      `[stores]\nA = "${a.mountPoint}/snaps/"\nB = "${b.mountPoint}/snaps/"\n`,
    );
    const ro = await startMount(['--read-only'], env);
    mounts.push(ro);
    try {
      assert.ok(readdirSync(`${ro.mountPoint}/B`).includes('s3'));
      assert.equal(
        errnoOf(() => mkdirSync(`${ro.mountPoint}/B/s1`)),
        'EROFS',
      );
      assert.equal(
        errnoOf(() => rmdirSync(`${ro.mountPoint}/B/s3`)),
        'EROFS',
      );
      assert.equal(
        errnoOf(() => unlinkSync(`${ro.mountPoint}/B/s3/empty`)),
        'EROFS',
      );
      assert.equal(
        errnoOf(() => renameSync(`${ro.mountPoint}/B/s3`, `${ro.mountPoint}/B/s3b`)),
        'EROFS',
      );
      assert.ok(existsSync(`${b.mountPoint}/snaps/s3`));
    } finally {
      await ro.stop();
      rmSync(`${env.XDG_CONFIG_HOME}/buttersink`, { recursive: true, force: true });
    }
  });

  test('a store that goes down after mounting answers EIO with the reason; the other stores still work', async () => {
    const goneDir = `${a.mountPoint}/goes-away`;
    mkdirSync(goneDir);
    const down = await startMount(['--store', `A=${a.mountPoint}/snaps/`, '--store', `gone=${goneDir}/`], env);
    mounts.push(down);
    try {
      rmdirSync(goneDir);
      assert.deepEqual(readdirSync(down.mountPoint), ['.buttersink', 'A', 'gone']);
      assert.equal(
        errnoOf(() => readdirSync(`${down.mountPoint}/gone`)),
        'EIO',
      );
      assert.match(
        readFileSync(`${down.mountPoint}/.buttersink/status`, 'utf8'),
        /listing gone .*(does not exist|No such file or directory)/,
      );
      assert.equal(
        errnoOf(() => mkdirSync(`${down.mountPoint}/gone/s1`)),
        'EIO',
      );
      assert.ok(readdirSync(`${down.mountPoint}/A`).includes('s1'));
      await down.stop('SIGINT');
      assert.equal(await down.exited, 0, 'SIGINT unmounts cleanly');
      assert.ok(!isMounted(down.mountPoint));
    } finally {
      await down.stop();
    }
  });

  test('daemon mode: mount returns once mounted; buttersink umount unmounts', async (t) => {
    const mountPoint = path.join(freshDirectory('daemon-'), 'mnt');
    mkdirSync(mountPoint);
    const started = cli(['mount', '--store', `A=${a.mountPoint}/snaps/`, mountPoint], { env });
    try {
      assert.equal(started.code, 0, started.stderr);
      assert.equal(started.stderr, `mounted A=${a.mountPoint}/snaps/ at ${mountPoint}\n`, 'one line says where and what');
      assert.ok(isMounted(mountPoint));
      assert.ok(readdirSync(`${mountPoint}/A`).includes('s1'));
      const stopped = cli(['umount', mountPoint], { env });
      assert.equal(stopped.code, 0, stopped.stderr);
      // A mount process that had to be stopped at once says where it was stuck: keep that in the log.
      if (stopped.stderr !== '') t.diagnostic(`umount: ${stopped.stderr}`);
      assert.ok(!isMounted(mountPoint));
      const again = cli(['umount', mountPoint], { env });
      assert.equal(again.code, 2);
      assert.match(again.stderr, /nothing is mounted/);
    } finally {
      if (isMounted(mountPoint)) spawnSync('fusermount', ['-uz', mountPoint]);
    }
  });

  test('umount never signals a later process that got the PID its pid file names', async () => {
    const other = await startMount(['--store', `A=${a.mountPoint}/snaps/`], env);
    mounts.push(other);
    const bystander = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      const pidFile = await pidFileOf(other.mountPoint, env);
      // As if the mount process had died and its PID gone to `sleep`: same PID, another start time.
      writeFileSync(pidFile, `${bystander.pid} 1\n`);
      const result = cli(['umount', other.mountPoint], { env });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(bystander.exitCode, null, 'the bystander was not signalled');
      assert.equal(bystander.signalCode, null);
      assert.ok(!isMounted(other.mountPoint), 'unmounted with fusermount -u instead');
      assert.equal(await Promise.race([other.exited, sleep(10_000).then(() => 'still running')]), 0);
    } finally {
      bystander.kill('SIGKILL');
      await other.stop();
    }
  });

  test('umount of a stuck mount process: after --timeout the mount is failed and the process stopped at once, with a warning why', async () => {
    const stuck = await startMount(['--store', `A=${a.mountPoint}/snaps/`], env);
    mounts.push(stuck);
    try {
      await pidFileOf(stuck.mountPoint, env);
      process.kill(stuck.child.pid!, 'SIGSTOP');
      const result = await runAsync(process.execPath, [CLI, 'umount', '--timeout', '1', stuck.mountPoint], env);
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^buttersink: warning: the mount process ${stuck.child.pid} did not stop within 1 s \\(state T; threads in .*\\); aborted its FUSE connection and stopped it at once`,
        ),
      );
      assert.ok(!isMounted(stuck.mountPoint));
      assert.notEqual(await Promise.race([stuck.exited, sleep(10_000).then(() => 'still running')]), 'still running');
    } finally {
      stuck.child.kill('SIGCONT');
      await stuck.stop();
    }
  });

  test('fusermount -u from outside ends the mount process cleanly', async () => {
    const other = await startMount(['--store', `A=${a.mountPoint}/snaps/`], env);
    mounts.push(other);
    try {
      assert.equal(run('fusermount', ['-u', other.mountPoint]).code, 0);
      const code = await Promise.race([other.exited, sleep(10_000).then(() => 'still running')]);
      assert.equal(code, 0);
      assert.ok(!isMounted(other.mountPoint));
    } finally {
      await other.stop();
    }
  });

  test('mount errors: no stores, a missing mount point, not root', () => {
    const none = cli(['mount', '-f', freshDirectory('none-')], { env });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no stores to mount/);
    const missing = cli(['mount', '-f', '--store', `A=${a.mountPoint}/snaps/`, '/nonexistent/mount/point'], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist/);
    const user = cli(['mount', '-f', '--store', `A=${a.mountPoint}/snaps/`, freshDirectory('user-')], {
      env,
      prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
    });
    assert.equal(user.code, 3);
    assert.match(user.stderr, /needs root/);
  });

  test('mount pre-flight: a store that cannot be listed, or a mount point that is not empty, fails with one line and mounts nothing', () => {
    const mountPoint = path.join(freshDirectory('preflight-'), 'mnt');
    mkdirSync(mountPoint);
    const notBtrfs = freshDirectory('not-btrfs-');
    const cases: [string[], number, RegExp][] = [
      // A typo in a store's path: sync's error (exit 4) naming the store, in daemon mode too.
      [
        ['--store', `A=${a.mountPoint}/snaps/`, '--store', `typo=${a.mountPoint}/snpas/`],
        4,
        /^buttersink: cannot mount: store typo \(.*\/snpas\/\): .*snpas does not exist \(did you mean .*\/snaps\?\)\n/,
      ],
      [['-f', '--store', `typo=${a.mountPoint}/snpas/`], 4, /^buttersink: cannot mount: store typo .*does not exist/],
      // Not on btrfs; and two failing stores are both named.
      [
        ['--store', `plain=${notBtrfs}/`, '--store', `typo=${a.mountPoint}/snpas/`],
        4,
        /^buttersink: cannot mount: store plain .*is not on a btrfs filesystem.*; store typo .*does not exist/,
      ],
    ];
    for (const [args, code, stderr] of cases) {
      const res = cli(['mount', ...args, mountPoint], { env });
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, stderr);
      assert.ok(!isMounted(mountPoint), `${args.join(' ')}: nothing mounted`);
    }
    writeFileSync(`${mountPoint}/file`, 'x');
    const full = cli(['mount', '--store', `A=${a.mountPoint}/snaps/`, mountPoint], { env });
    assert.equal(full.code, 2, full.stderr);
    assert.match(full.stderr, /^buttersink: mount point .*mnt is not empty: it holds 1 entry \(/);
    assert.ok(!isMounted(mountPoint));
    assert.deepEqual(readdirSync(mountPoint), ['file'], 'nothing changed');
  });

  // Last: it ends the main mount.
  test('unmounting with a transfer in flight aborts it and leaves no complete-looking partial', async () => {
    // mkdir returns once the transfer started; cp's first create into the new snapshot waits for it.
    const copy = runAsync('cp', ['-r', '--attributes-only', `${mnt}/A/big`, `${mnt}/B/`]);
    for (let waited = 0; !/transfers in progress \(1\)/.test(status()); waited += 20) {
      assert.ok(waited < 30_000, `the transfer did not start:\n${status()}`);
      await sleep(20);
    }
    const stopped = cli(['umount', mnt], { env });
    assert.equal(stopped.code, 0, `${stopped.stderr}\nmount output:\n${mount.output()}`);
    const result = await copy;
    assert.notEqual(result.code, 0, 'the interrupted copy must not succeed');
    assert.match(result.stderr, /Interrupted system call/, 'EINTR, as documented');
    assert.ok(!isMounted(mnt));
    assert.ok(!subvolumes(b).some((s) => s.endsWith('big')), `left behind: ${subvolumes(b).join(', ')}`);
    assert.ok(!subvolumes(b).some((s) => s.includes('.buttersink-partial')), `partial left: ${subvolumes(b).join(', ')}`);
    assert.match(mount.output(), /unmounting/);
  });
});
