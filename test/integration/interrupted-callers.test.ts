/**
 * interruptedCallers against the real kernel: a tiny fuse-native filesystem in this process
 * whose `create` answers only when told, real cp and rsync writing into it, real signals.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fuse, { type FuseOperations, type FuseStat } from 'fuse-native';
import { interruptedCallers, type InterruptedCaller } from '../../src/fuse/interrupted-callers.js';
import { isFuseWait } from '../../src/fuse/proc-task.js';
import { freshDirectory, isMounted } from '../support/fuse-mount.js';
import { isCI } from '../support/prerequisites.js';
import { sleep } from '../support/helpers.js';

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function missingForSuite(): string | null {
  if (process.platform !== 'linux') return 'not Linux (/proc)';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/fuse')) return 'no FUSE device (/dev/fuse)';
  if (!hasCommand('fusermount')) return 'fusermount is not installed (package fuse)';
  if (!hasCommand('cp')) return 'cp is not installed';
  return null;
}

/** Skipped without a prerequisite, except in CI, where that fails: a skipped test is not a pass. */
function prerequisite(missing: string | null): { skip: string | false } {
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}

const suite = prerequisite(missingForSuite());
const rsyncTest = prerequisite(hasCommand('rsync') ? null : 'rsync is not installed');

const now = new Date();
const dirStat: FuseStat = { mode: 0o40755, uid: 0, gid: 0, size: 4096, nlink: 2, atime: now, mtime: now, ctime: now };

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Resolves after `ms` without keeping the process alive (for races against a deadline). */
function deadline(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

/** Polls `check` until it returns something truthy, or fails after `ms`. */
async function waitFor<T>(what: string, ms: number, check: () => T | Promise<T>): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The process group of a process (field 5 of /proc/PID/stat, after the parenthesised comm). */
async function processGroup(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('interruptedCallers on the real kernel: callers of a FUSE create that does not answer', suite, () => {
  let mnt = '';
  let work = '';
  let fuse: Fuse | undefined;
  /** create ops held until the test answers them. */
  const held: Array<{ path: string; answer: (errno: number) => void }> = [];
  const dirs = new Set(['/', '/cp', '/rsync', '/threads', '/threads/a', '/threads/b', '/locked', '/elsewhere']);
  /** Every child this test started, with how it ends. */
  const started: Array<{ child: ChildProcess; group: boolean; exited: Promise<Exit> }> = [];

  const ops: FuseOperations = {
    getattr: (p, cb) => (dirs.has(p) ? cb(0, dirStat) : cb(Fuse.ENOENT)),
    readdir: (_p, cb) => cb(0, []),
    mkdir: (p, _mode, cb) => {
      dirs.add(p);
      cb(0);
    },
    chmod: (_p, _mode, cb) => cb(0),
    chown: (_p, _uid, _gid, cb) => cb(0),
    utimens: (_p, _atime, _mtime, cb) => cb(0),
    open: (_p, _flags, cb) => cb(0, 1),
    release: (_p, _fd, cb) => cb(0),
    // The op that waits, like buttersink's create inside a directory still being received.
    create: (p, _mode, cb) => void held.push({ path: p, answer: (errno) => cb(errno) }),
  };

  function answer(fusePath: string, errno: number): void {
    const index = held.findIndex((h) => h.path === fusePath);
    assert.ok(index >= 0, `no held create for ${fusePath}`);
    held.splice(index, 1)[0]!.answer(errno);
  }

  /**
   * Starts a caller. fuse-native opens /dev/fuse without O_CLOEXEC, so every child would
   * inherit it, and a child stuck in a request would then keep the connection alive even
   * after this process died. /dev/null goes in its place (an fd listed in stdio is dup2'ed
   * over in the child).
   */
  function startCaller(command: string, args: readonly string[], group = false): ChildProcess {
    const fuseFds = readdirSync('/proc/self/fd')
      .map(Number)
      .filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === '/dev/fuse';
        } catch {
          return false;
        }
      });
    const devNull = openSync('/dev/null', 'r');
    const stdio: StdioOptions = ['ignore', 'ignore', 'pipe'];
    for (const fd of fuseFds) {
      while (stdio.length < fd) stdio.push('ignore');
      stdio[fd] = devNull;
    }
    const child = spawn(command, args, { stdio, detached: group });
    closeSync(devNull);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
    started.push({ child, group, exited });
    return child;
  }

  async function exitOf(child: ChildProcess, ms = 5000): Promise<Exit> {
    const entry = started.find((s) => s.child === child)!;
    const result = await Promise.race([entry.exited, deadline(ms)]);
    if (result === 'timeout') throw new Error(`${child.spawnfile} (pid ${child.pid}) did not exit within ${ms} ms`);
    return result;
  }

  /** Scans until something is found (or `ms` passed), as an op waiting on a transfer would. */
  async function scanUntilFound(directory: string, ms: number): Promise<{ found: InterruptedCaller[]; elapsedMs: number }> {
    const start = Date.now();
    for (;;) {
      const found = await interruptedCallers(directory);
      if (found.length > 0 || Date.now() - start > ms) return { found, elapsedMs: Date.now() - start };
      await sleep(50);
    }
  }

  // Last line of defence, for a crash between before and after: kill our callers, detach the mount.
  const onExit = (): void => {
    for (const { child, group } of started) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(group ? -child.pid : child.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    if (mnt !== '' && isMounted(mnt)) spawnSync('fusermount', ['-uz', mnt], { stdio: 'ignore' });
  };

  before(async () => {
    process.once('exit', onExit);
    // The kernel shows paths without symlinks: mount at a canonical path (before mounting,
    // so realpath does not ask our own filesystem).
    const base = realpathSync(freshDirectory('interrupted-'));
    work = path.join(base, 'work');
    mnt = path.join(base, 'mnt');
    mkdirSync(mnt);
    mkdirSync(path.join(work, 'srcd'), { recursive: true });
    writeFileSync(path.join(work, 'srcd', 'f'), 'a small file\n');
    writeFileSync(path.join(work, 'file.txt'), 'another small file\n');
    const mounted = new Fuse(mnt, ops, { timeout: false });
    await new Promise<void>((resolve, reject) => mounted.mount((error) => (error ? reject(error) : resolve())));
    fuse = mounted;
  });

  after(async () => {
    // Answer everything still held, so that no caller stays in an uninterruptible wait...
    for (const h of held.splice(0)) h.answer(Fuse.EINTR);
    // ...then make sure every caller we started is gone (a whole group for rsync).
    for (const { child, group } of started) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(group ? -child.pid : child.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    await Promise.race([Promise.all(started.map((s) => s.exited)), deadline(10_000)]);
    if (fuse !== undefined) {
      const unmounted = new Promise<void>((resolve) => fuse!.unmount(() => resolve()));
      await Promise.race([unmounted, deadline(10_000)]);
    }
    if (mnt !== '' && isMounted(mnt)) {
      // Lazily, asynchronously: nothing in this process may block on its own mount.
      await new Promise((resolve) => spawn('fusermount', ['-uz', mnt], { stdio: 'ignore' }).on('close', resolve));
    }
    process.removeListener('exit', onExit);
    assert.ok(mnt === '' || !isMounted(mnt), `${mnt} is still mounted`);
  });

  test('cp -r (openat on a dirfd) interrupted by SIGINT is found within 2 s; a cp nobody signalled is not', async () => {
    const cp = startCaller('cp', ['-r', path.join(work, 'srcd'), `${mnt}/cp/`]);
    await waitFor('cp -r to reach create', 10_000, () => held.some((h) => h.path === '/cp/srcd/f'));
    const quiet = startCaller('cp', [path.join(work, 'file.txt'), `${mnt}/cp/quiet.txt`]);
    await waitFor('the second cp to reach create', 10_000, () => held.some((h) => h.path === '/cp/quiet.txt'));

    // Neither inherited /dev/fuse (see startCaller).
    for (const pid of [cp.pid!, quiet.pid!]) {
      const links = await Promise.all((await readdir(`/proc/${pid}/fd`)).map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
      assert.ok(!links.includes('/dev/fuse'), `pid ${pid} holds /dev/fuse`);
    }

    assert.deepEqual(await interruptedCallers(`${mnt}/cp`), [], 'both wait, nobody is signalled yet');

    process.kill(cp.pid!, 'SIGINT');
    const { found, elapsedMs } = await scanUntilFound(`${mnt}/cp`, 2000);
    assert.equal(found.length, 1, `found: ${JSON.stringify(found)}`);
    const [caller] = found;
    assert.equal(caller!.pid, cp.pid);
    assert.equal(caller!.tid, cp.pid);
    assert.equal(caller!.command, 'cp');
    assert.equal(caller!.path, `${mnt}/cp/srcd/f`);
    // cp has no SIGINT handler: the kernel made it a group exit, SIGKILL pending as well.
    assert.ok(caller!.signals.includes(2), `signals: ${caller!.signals}`);
    assert.ok(elapsedMs < 2000, `found after ${elapsedMs} ms`);
    assert.ok(!found.some((c) => c.pid === quiet.pid), 'the caller nobody signalled');
    assert.deepEqual(await interruptedCallers(`${mnt}/elsewhere`), [], 'another directory of the mount');
    assert.deepEqual(
      (await interruptedCallers(mnt)).map((c) => c.pid),
      [cp.pid],
      'the whole mount',
    );

    // The signalled cp still waits (in D) until we answer; then it dies of its SIGINT.
    assert.equal(cp.exitCode, null);
    answer('/cp/srcd/f', Fuse.EINTR);
    const cpExit = await exitOf(cp);
    assert.deepEqual([cpExit.code, cpExit.signal], [null, 'SIGINT'], cpExit.stderr);

    // The other one waits on; answered EINTR it fails without a signal.
    assert.equal(quiet.exitCode, null);
    assert.deepEqual(await interruptedCallers(`${mnt}/cp`), []);
    answer('/cp/quiet.txt', Fuse.EINTR);
    const quietExit = await exitOf(quiet);
    assert.equal(quietExit.code, 1, quietExit.stderr);
    assert.match(quietExit.stderr, /Interrupted system call/);
  });

  test('rsync -a interrupted like Ctrl-C (SIGINT to its process group): its receiver is found', rsyncTest, async () => {
    const rsync = startCaller('rsync', ['-a', path.join(work, 'srcd'), `${mnt}/rsync/`], true);
    const tempName = /^\/rsync\/srcd\/\.f\.[A-Za-z0-9]{6}$/;
    const waiting = await waitFor('rsync to reach create', 10_000, () => held.find((h) => tempName.test(h.path)));
    assert.deepEqual(await interruptedCallers(`${mnt}/rsync`), []);

    process.kill(-rsync.pid!, 'SIGINT');
    const { found, elapsedMs } = await scanUntilFound(`${mnt}/rsync`, 2000);
    assert.equal(found.length, 1, `found: ${JSON.stringify(found)}`);
    const [caller] = found;
    // The receiver is a child of the rsync we started (local rsync forks sender, generator
    // and receiver), in its process group. It catches SIGINT, so no SIGKILL is added.
    assert.equal(await processGroup(caller!.pid), rsync.pid);
    assert.equal(caller!.command, 'rsync');
    assert.equal(caller!.path, `${mnt}${waiting.path}`, 'openat(dirfd of the new directory, ".f.XXXXXX")');
    assert.deepEqual(caller!.signals, [2]);
    assert.ok(elapsedMs < 2000, `found after ${elapsedMs} ms`);

    answer(waiting.path, Fuse.EINTR);
    const exit = await exitOf(rsync);
    assert.equal(exit.code, 20, exit.stderr);
    assert.match(exit.stderr, /received SIGINT, SIGTERM, or SIGHUP/);
    // The receiver left its FUSE wait (it is gone, or a zombie nobody reaped yet).
    const receiverState = await waitFor('the receiver to leave its wait', 5000, async () => {
      const status = await readFile(`/proc/${caller!.pid}/status`, 'utf8').catch(() => 'State:\tgone');
      const state = /^State:\t(\S+)/m.exec(status)?.[1];
      return state === 'gone' || state === 'Z' ? state : undefined;
    });
    assert.ok(receiverState);
  });

  test('threads: a node caller waits in a libuv worker thread, which blocks signals', async () => {
    // Without a SIGINT handler the signal is fatal: every thread gets SIGKILL, so the worker
    // is found, with SIGKILL only (SIGINT itself is blocked there, libuv blocks all signals in
    // its workers). With a handler, only the main thread is told: the worker is not found.
    const writer = (file: string, handler: boolean) =>
      startCaller(process.execPath, [
        '-e',
        `${handler ? "process.on('SIGINT', () => {});" : ''} require('fs').writeFile(${JSON.stringify(file)}, 'x', () => {}); setTimeout(() => {}, 60000);`,
      ]);
    // Two directories: a create holds its directory's lock (see the next test).
    const plain = writer(`${mnt}/threads/a/plain.txt`, false);
    const handled = writer(`${mnt}/threads/b/handled.txt`, true);
    await waitFor('both node writers to reach create', 10_000, () =>
      ['/threads/a/plain.txt', '/threads/b/handled.txt'].every((p) => held.some((h) => h.path === p)),
    );
    process.kill(plain.pid!, 'SIGINT');
    process.kill(handled.pid!, 'SIGINT');
    const { found } = await scanUntilFound(`${mnt}/threads`, 2000);
    await sleep(300); // the handled one has had time to show up, if it ever would
    const again = await interruptedCallers(`${mnt}/threads`);
    assert.deepEqual(
      found.map((c) => c.pid),
      [plain.pid],
    );
    assert.deepEqual(
      again.map((c) => c.pid),
      [plain.pid],
      'the caller with a SIGINT handler is not found',
    );
    assert.notEqual(found[0]!.tid, plain.pid, 'a worker thread, not the main thread');
    assert.deepEqual(found[0]!.signals, [9]);
    assert.equal(found[0]!.path, `${mnt}/threads/a/plain.txt`);
    answer('/threads/a/plain.txt', Fuse.EINTR);
    const plainExit = await exitOf(plain);
    assert.deepEqual([plainExit.code, plainExit.signal], [null, 'SIGINT']);
    // libuv retries a file operation that failed with EINTR (all but read and close): the
    // caller that survived its signal sends the very same create again.
    answer('/threads/b/handled.txt', Fuse.EINTR);
    await waitFor('the retried create', 5000, () => held.some((h) => h.path === '/threads/b/handled.txt'));
    handled.kill('SIGKILL');
    await sleep(100);
    answer('/threads/b/handled.txt', Fuse.EINTR);
    assert.equal((await exitOf(handled)).signal, 'SIGKILL');
  });

  test('a second creator in the same directory waits on its lock, outside FUSE: not found until the first is answered', async (t) => {
    // O_CREAT takes the parent directory's inode lock for the whole create, so while one
    // create waits on us, another caller that looks up or creates in that directory waits
    // on the lock (walk_component for cp's first stat, path_openat for an open(O_CREAT)),
    // in D, and a signal does not free it. It sent no FUSE request: nothing to find.
    const first = startCaller('cp', [path.join(work, 'file.txt'), `${mnt}/locked/first.txt`]);
    await waitFor('the first cp to reach create', 10_000, () => held.some((h) => h.path === '/locked/first.txt'));
    const second = startCaller('cp', [path.join(work, 'file.txt'), `${mnt}/locked/second.txt`]);
    const blocked = await waitFor('the second cp to block on the directory lock', 10_000, async () => {
      const stat = await readFile(`/proc/${second.pid}/stat`, 'utf8').catch(() => '');
      const wchan = await readFile(`/proc/${second.pid}/wchan`, 'utf8').catch(() => '');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('D') ? wchan : undefined;
    });
    t.diagnostic(`the second cp waits in ${blocked} (state D)`);
    assert.ok(!isFuseWait(blocked), blocked);
    process.kill(second.pid!, 'SIGINT');
    await sleep(500);
    assert.deepEqual(await interruptedCallers(`${mnt}/locked`), []);
    assert.equal(second.exitCode, null, 'SIGINT does not free it');
    assert.ok(!held.some((h) => h.path === '/locked/second.txt'));
    // Answering the first releases the lock; the second then leaves on its signal (its
    // request, should it reach us before the kernel drops it, is answered too).
    answer('/locked/first.txt', Fuse.EINTR);
    const secondExited = exitOf(second);
    while (second.exitCode === null && second.signalCode === null) {
      if (held.some((h) => h.path === '/locked/second.txt')) answer('/locked/second.txt', Fuse.EINTR);
      await sleep(20);
    }
    const secondExit = await secondExited;
    assert.deepEqual([secondExit.signal], ['SIGINT']);
    assert.equal((await exitOf(first)).code, 1);
  });

  test('one scan of the real /proc is cheap', async (t) => {
    const taskCount = (pid: string): number => {
      try {
        return readdirSync(`/proc/${pid}/task`).length;
      } catch {
        return 0; // gone meanwhile
      }
    };
    const tasks = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .reduce((sum, pid) => sum + taskCount(pid), 0);
    await interruptedCallers(mnt);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = process.hrtime.bigint();
      await interruptedCallers(mnt);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    t.diagnostic(`one scan over ${tasks} tasks: median ${median.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms`);
    assert.ok(median < 250, `a scan must take well under the 250 ms poll interval (median ${median} ms)`);
  });
});
