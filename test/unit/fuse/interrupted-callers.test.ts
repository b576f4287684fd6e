import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { interruptedCallers, interruptWatch } from '../../../src/fuse/interrupted-callers.js';
import {
  cString,
  isAtOrBelow,
  isFuseWait,
  parseStatus,
  parseSyscall,
  pendingStopSignals,
  resolveCallerPath,
  signalsInMask,
} from '../../../src/fuse/proc-task.js';
import { dirfdOf, syscallOperands } from '../../../src/fuse/syscall-paths.js';

/** A status file as kernel 6.18 prints it (trimmed to what matters plus some noise). */
function statusText(fields: { name?: string; state?: string; tgid?: number; sigPnd?: string; shdPnd?: string; sigBlk?: string }): string {
  return [
    `Name:\t${fields.name ?? 'cp'}`,
    'Umask:\t0022',
    `State:\t${fields.state ?? 'D (disk sleep)'}`,
    `Tgid:\t${fields.tgid ?? 100}`,
    'Ngid:\t0',
    `Pid:\t${fields.tgid ?? 100}`,
    'PPid:\t1',
    'SigQ:\t1/96365',
    `SigPnd:\t${fields.sigPnd ?? '0000000000000000'}`,
    `ShdPnd:\t${fields.shdPnd ?? '0000000000000000'}`,
    `SigBlk:\t${fields.sigBlk ?? '0000000000000000'}`,
    'SigIgn:\t0000000000000000',
    'SigCgt:\t0000000000000000',
    'Cpus_allowed_list:\t0-1',
    '',
  ].join('\n');
}

describe('interrupted callers: parsing /proc text', () => {
  test('status: name, state, tgid and the three signal masks', () => {
    const s = parseStatus(statusText({ sigPnd: '0000000000000100', shdPnd: '0000000000000002', sigBlk: '0000000000004007' }));
    assert.deepEqual(s, { name: 'cp', state: 'D', tgid: 100, sigPnd: 0x100n, shdPnd: 0x2n, sigBlk: 0x4007n });
    assert.equal(parseStatus(statusText({ name: 'a\\\\b\\nc\\040d' }))?.name, 'a\\b\nc d', 'escapes in comm');
    assert.equal(parseStatus('Name:\tcp\nState:\tS (sleeping)\n'), undefined, 'masks missing (truncated read)');
    assert.equal(parseStatus(''), undefined);
  });

  test('signal masks: bit n-1 is signal n', () => {
    assert.deepEqual(signalsInMask(0n), []);
    assert.deepEqual(signalsInMask(0x4007n), [1, 2, 3, 15]);
    assert.deepEqual(signalsInMask(0x100n), [9]);
    assert.deepEqual(signalsInMask(1n << 63n), [64]);
  });

  test('pending stop signals: own and process-wide, unblocked, only the ones that mean stop', () => {
    const status = (sigPnd: bigint, shdPnd: bigint, sigBlk = 0n) => ({ name: 'x', state: 'D', tgid: 1, sigPnd, shdPnd, sigBlk });
    // cp after SIGINT (no handler): the kernel adds SIGKILL to every thread (group exit).
    assert.deepEqual(pendingStopSignals(status(0x100n, 0x2n)), [2, 9]);
    // rsync after SIGINT (it catches it): only the process-wide SIGINT.
    assert.deepEqual(pendingStopSignals(status(0n, 0x2n)), [2]);
    assert.deepEqual(pendingStopSignals(status(0x4000n, 0n)), [15], 'SIGTERM to the thread');
    assert.deepEqual(pendingStopSignals(status(0n, 0x2n, 0x2n)), [], 'SIGINT blocked in this thread');
    assert.deepEqual(pendingStopSignals(status(0n, 0x6n, 0x2n)), [3], 'SIGQUIT still counts when SIGINT is blocked');
    assert.deepEqual(pendingStopSignals(status(0n, 1n << 16n)), [], 'SIGCHLD does not mean stop');
    assert.deepEqual(pendingStopSignals(status(1n << 27n, 0n)), [], 'SIGWINCH does not mean stop');
    assert.deepEqual(pendingStopSignals(status(1n << 27n, 0n), [28]), [28], 'a caller can choose the signals');
    assert.deepEqual(pendingStopSignals(status(0n, 0n)), []);
  });

  test('wchan: only a wait for a FUSE answer', () => {
    assert.equal(isFuseWait('request_wait_answer'), true);
    assert.equal(isFuseWait('__fuse_simple_request'), true);
    assert.equal(isFuseWait('fuse_dev_do_read'), false, 'the server side reading /dev/fuse');
    assert.equal(isFuseWait('do_wait'), false);
    assert.equal(isFuseWait('0'), false, 'running, or hidden');
    assert.equal(isFuseWait(''), false);
  });

  test('syscall: number and six arguments; nothing for a running task or outside a syscall', () => {
    const openat = parseSyscall('257 0xffffff9c 0x7ffddd670a04 0xc1 0x1a4 0x7ffddd66f0d0 0x0 0x7ffddd66ea50 0x7fdccae3418f\n');
    assert.deepEqual(openat, { nr: 257, args: [0xffffff9cn, 0x7ffddd670a04n, 0xc1n, 0x1a4n, 0x7ffddd66f0d0n, 0n] });
    assert.equal(parseSyscall('running\n'), undefined);
    assert.equal(parseSyscall('-1 0x7ffe06da2408 0x7f5694af2ad7\n'), undefined, 'blocked outside a syscall (page fault)');
    assert.equal(parseSyscall(''), undefined);
    assert.equal(parseSyscall('257 0x1 0x2'), undefined, 'truncated');
  });

  test('dirfd: low 32 bits as an int; AT_FDCWD in either printed form', () => {
    assert.equal(dirfdOf(0xffffff9cn), 'cwd');
    assert.equal(dirfdOf(0xffffffffffffff9cn), 'cwd');
    assert.equal(dirfdOf(3n), 3);
    assert.equal(dirfdOf(0x100000003n), 3, 'upper bits ignored');
  });

  test('syscall operands (x86_64): which argument is the path, the dirfd, the fd', () => {
    assert.deepEqual(syscallOperands('x64', 257), [{ dirfd: 0, path: 1 }], 'openat');
    assert.deepEqual(syscallOperands('x64', 2), [{ path: 0 }], 'open');
    assert.deepEqual(syscallOperands('x64', 85), [{ path: 0 }], 'creat');
    assert.deepEqual(syscallOperands('x64', 83), [{ path: 0 }], 'mkdir');
    assert.deepEqual(syscallOperands('x64', 258), [{ dirfd: 0, path: 1 }], 'mkdirat');
    assert.deepEqual(syscallOperands('x64', 88), [{ path: 1 }], 'symlink: the target is not a file');
    assert.deepEqual(syscallOperands('x64', 266), [{ dirfd: 1, path: 2 }], 'symlinkat');
    assert.deepEqual(syscallOperands('x64', 262), [{ dirfd: 0, path: 1 }], 'newfstatat');
    assert.deepEqual(syscallOperands('x64', 332), [{ dirfd: 0, path: 1 }], 'statx');
    assert.deepEqual(syscallOperands('x64', 4), [{ path: 0 }], 'stat');
    assert.deepEqual(syscallOperands('x64', 6), [{ path: 0 }], 'lstat');
    assert.deepEqual(syscallOperands('x64', 263), [{ dirfd: 0, path: 1 }], 'unlinkat');
    assert.deepEqual(syscallOperands('x64', 82), [{ path: 0 }, { path: 1 }], 'rename');
    assert.deepEqual(
      syscallOperands('x64', 316),
      [
        { dirfd: 0, path: 1 },
        { dirfd: 2, path: 3 },
      ],
      'renameat2',
    );
    assert.deepEqual(syscallOperands('x64', 217), [{ fd: 0 }], 'getdents64');
    assert.deepEqual(syscallOperands('x64', 437), [{ dirfd: 0, path: 1 }], 'openat2');
    assert.equal(syscallOperands('x64', 3), undefined, 'close: the fd is gone already');
    assert.equal(syscallOperands('x64', 61), undefined, 'wait4');
    assert.deepEqual(syscallOperands('arm64', 56), [{ dirfd: 0, path: 1 }], 'arm64 openat');
    assert.deepEqual(syscallOperands('arm64', 34), [{ dirfd: 0, path: 1 }], 'arm64 mkdirat');
    assert.equal(syscallOperands('ia32', 5), undefined, 'unknown numbering: nothing');
  });

  test('paths: C strings, resolution against the dirfd/cwd and the caller root, containment', () => {
    assert.equal(cString(Buffer.from('srcd/f\0junk')), 'srcd/f');
    assert.equal(cString(Buffer.from('no terminator')), undefined);
    assert.equal(cString(Buffer.from('ünï\0', 'utf8')), 'ünï');
    assert.equal(resolveCallerPath('srcd/f', '/mnt/bs/B/snap'), '/mnt/bs/B/snap/srcd/f', 'cp -r: openat(dirfd, "srcd/f")');
    assert.equal(resolveCallerPath('.f.80UhRi', '/mnt/bs/B/snap/sub'), '/mnt/bs/B/snap/sub/.f.80UhRi');
    assert.equal(resolveCallerPath('../x/./y//z', '/mnt/bs/B/snap'), '/mnt/bs/B/x/y/z');
    assert.equal(resolveCallerPath('', '/mnt/bs/B/snap'), '/mnt/bs/B/snap', 'AT_EMPTY_PATH: the dirfd itself');
    assert.equal(resolveCallerPath('/mnt/bs/B/snap/f', '/ignored'), '/mnt/bs/B/snap/f');
    assert.equal(resolveCallerPath('/B/snap/f', '/ignored', '/mnt/bs'), '/mnt/bs/B/snap/f', 'chrooted caller');
    assert.equal(resolveCallerPath('/../../etc', '/ignored', '/srv/jail'), '/srv/jail/etc', '.. stops at the caller root');
    assert.equal(isAtOrBelow('/mnt/bs/B/snap', '/mnt/bs/B/snap'), true);
    assert.equal(isAtOrBelow('/mnt/bs/B/snap/a/b', '/mnt/bs/B/snap'), true);
    assert.equal(isAtOrBelow('/mnt/bs/B/snapshot/a', '/mnt/bs/B/snap'), false);
    assert.equal(isAtOrBelow('/mnt/bs/B', '/mnt/bs/B/snap'), false);
    assert.equal(isAtOrBelow('/anything', '/'), true);
  });
});

describe('interrupted callers: scanning a fake /proc tree', () => {
  let root: string;
  const dir = '/mnt/bs/B/snap';
  const AT_FDCWD = '0xffffff9c';

  interface FakeTask {
    pid: number;
    tid?: number;
    name?: string;
    wchan?: string;
    sigPnd?: string;
    shdPnd?: string;
    sigBlk?: string;
    /** The syscall line; `@` stands for the address the string is written at. */
    syscall?: string;
    strings?: Record<number, string>;
    fds?: Record<number, string>;
    cwd?: string;
    rootLink?: string;
    /** Leave these files out (a task that went away mid-scan). */
    missing?: string[];
  }

  function addTask(t: FakeTask): void {
    const tid = t.tid ?? t.pid;
    const taskDir = path.join(root, String(t.pid), 'task', String(tid));
    mkdirSync(path.join(taskDir, 'fd'), { recursive: true });
    const files: Record<string, string> = {
      wchan: t.wchan ?? 'request_wait_answer',
      status: statusText({ name: t.name ?? 'cp', tgid: t.pid, sigPnd: t.sigPnd, shdPnd: t.shdPnd, sigBlk: t.sigBlk }),
      syscall: `${t.syscall ?? `257 ${AT_FDCWD} 0x1000 0xc1 0x1a4 0x0 0x0 0x7ffd0000 0x7f000000`}\n`,
    };
    for (const [name, text] of Object.entries(files)) if (!t.missing?.includes(name)) writeFileSync(path.join(taskDir, name), text);
    if (!t.missing?.includes('mem')) {
      // mem: a sparse regular file, read at the string's "address".
      const end = Math.max(0x10, ...Object.keys(t.strings ?? {}).map((a) => Number(a) + 4096));
      const mem = Buffer.alloc(end);
      for (const [address, text] of Object.entries(t.strings ?? {})) mem.write(`${text}\0`, Number(address), 'utf8');
      writeFileSync(path.join(taskDir, 'mem'), mem);
    }
    for (const [fd, target] of Object.entries(t.fds ?? {})) symlinkSync(target, path.join(taskDir, 'fd', fd));
    if (!t.missing?.includes('cwd')) symlinkSync(t.cwd ?? '/home/user', path.join(taskDir, 'cwd'));
    symlinkSync(t.rootLink ?? '/', path.join(taskDir, 'root'));
  }

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'fake-proc-'));
    // Not processes: skipped.
    writeFileSync(path.join(root, 'meminfo'), 'MemTotal: 1 kB\n');
    symlinkSync('100', path.join(root, 'self'));
    mkdirSync(path.join(root, 'sys'));
    // cp -r SRC B/snap: openat(dirfd of B/snap, "srcd/f", O_CREAT|O_EXCL), SIGINT → + SIGKILL.
    addTask({
      pid: 100,
      syscall: '257 0x3 0x1000 0xc1 0x1a4 0x0 0x0 0x0 0x0',
      strings: { 0x1000: 'srcd/f' },
      fds: { 3: dir },
      sigPnd: '0000000000000100',
      shdPnd: '0000000000000002',
    });
    // A threaded process: the main thread waits elsewhere, thread 201 in FUSE (openat relative to cwd).
    addTask({ pid: 200, tid: 200, name: 'rsync', wchan: 'do_wait' });
    addTask({ pid: 200, tid: 201, name: 'rsync', shdPnd: '0000000000000002', cwd: `${dir}/sub`, strings: { 0x1000: '.f.80UhRi' } });
    // Waiting in FUSE inside, but nobody signalled it.
    addTask({ pid: 300, strings: { 0x1000: `${dir}/quiet` } });
    // SIGINT pending but blocked by this thread.
    addTask({ pid: 400, strings: { 0x1000: `${dir}/blocked` }, shdPnd: '0000000000000002', sigBlk: '0000000000000002' });
    // Signalled, but outside the directory (a sibling that shares the prefix, and elsewhere).
    addTask({ pid: 500, strings: { 0x1000: `${dir}shot/x` }, shdPnd: '0000000000000002' });
    addTask({ pid: 501, strings: { 0x1000: '/mnt/bs/B/other/x' }, shdPnd: '0000000000000002' });
    // Only SIGWINCH (a handler for it interrupts the wait too): not a stop.
    addTask({ pid: 600, strings: { 0x1000: `${dir}/winch` }, sigPnd: '0000000008000000' });
    // getdents64 on an fd of the directory itself, SIGTERM.
    addTask({ pid: 700, name: 'ls', syscall: '217 0x5 0x55d0 0x8000 0x0 0x0 0x0 0x0 0x0', fds: { 5: dir }, sigPnd: '0000000000004000' });
    // mkdir(absolute path), SIGHUP.
    addTask({
      pid: 800,
      name: 'mkdir',
      syscall: '83 0x2000 0x1ed 0x0 0x0 0x0 0x0 0x0 0x0',
      strings: { 0x2000: `${dir}/newdir` },
      shdPnd: '0000000000000001',
    });
    // Chrooted caller: its "/" is /mnt/bs.
    addTask({
      pid: 900,
      name: 'chrooted',
      syscall: '2 0x1000 0xc1 0x1a4 0x0 0x0 0x0 0x0 0x0',
      strings: { 0x1000: '/B/snap/jailed' },
      rootLink: '/mnt/bs',
      shdPnd: '0000000000000002',
    });
    // renameat2(outside, inside): the inside one is reported.
    addTask({
      pid: 1000,
      name: 'mv',
      syscall: `316 ${AT_FDCWD} 0x1000 ${AT_FDCWD} 0x2000 0x0 0x0 0x0 0x0`,
      strings: { 0x1000: '/tmp/a', 0x2000: `${dir}/moved` },
      shdPnd: '0000000000000002',
    });
    // symlinkat(target inside, dirfd, linkpath outside): the target is not a file, not reported.
    addTask({
      pid: 1100,
      name: 'ln',
      syscall: `266 0x1000 ${AT_FDCWD} 0x2000 0x0 0x0 0x0 0x0 0x0`,
      strings: { 0x1000: `${dir}/target`, 0x2000: '/tmp/link' },
      shdPnd: '0000000000000002',
    });
    // Races: gone between listing and reading, at every step.
    addTask({ pid: 1200, missing: ['wchan', 'status', 'syscall', 'mem', 'cwd'] });
    addTask({ pid: 1201, missing: ['syscall'], shdPnd: '0000000000000002' });
    addTask({ pid: 1202, missing: ['mem'], shdPnd: '0000000000000002' });
    addTask({ pid: 1203, missing: ['cwd'], strings: { 0x1000: 'relative' }, shdPnd: '0000000000000002' });
    addTask({ pid: 1204, syscall: '257 0x9 0x1000 0xc1 0x1a4 0x0 0x0 0x0 0x0', strings: { 0x1000: 'f' }, shdPnd: '0000000000000002' }); // fd 9 closed
    mkdirSync(path.join(root, '1205')); // no task directory at all
    // Not in a syscall (a page fault) / running / an address beyond the mapped memory.
    addTask({ pid: 1300, syscall: '-1 0x7ffe06da2408 0x7f5694af2ad7', shdPnd: '0000000000000002' });
    addTask({ pid: 1301, syscall: 'running', shdPnd: '0000000000000002' });
    addTask({ pid: 1302, syscall: `257 ${AT_FDCWD} 0x900000 0xc1 0x1a4 0x0 0x0 0x0 0x0`, shdPnd: '0000000000000002' });
    // The FUSE server itself, reading requests: not a caller.
    addTask({
      pid: 1400,
      name: 'node',
      wchan: 'fuse_dev_do_read',
      syscall: '0 0x12 0x7f5aa46f2010 0x21000 0x0 0x0 0x0 0x0 0x0',
      shdPnd: '0000000000000002',
    });
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  test('finds exactly the signalled callers in FUSE waits on paths at or below the directory', async () => {
    const found = await interruptedCallers(dir, { procRoot: root, arch: 'x64' });
    assert.deepEqual(found, [
      { pid: 100, tid: 100, command: 'cp', path: `${dir}/srcd/f`, signals: [2, 9] },
      { pid: 200, tid: 201, command: 'rsync', path: `${dir}/sub/.f.80UhRi`, signals: [2] },
      { pid: 700, tid: 700, command: 'ls', path: dir, signals: [15] },
      { pid: 800, tid: 800, command: 'mkdir', path: `${dir}/newdir`, signals: [1] },
      { pid: 900, tid: 900, command: 'chrooted', path: `${dir}/jailed`, signals: [2] },
      { pid: 1000, tid: 1000, command: 'mv', path: `${dir}/moved`, signals: [2] },
    ]);
  });

  test('the directory may be given unnormalised; another directory finds others', async () => {
    const again = await interruptedCallers(`${dir}/sub/../`, { procRoot: root, arch: 'x64' });
    assert.equal(again.length, 6);
    const other = await interruptedCallers('/mnt/bs/B/other', { procRoot: root, arch: 'x64' });
    assert.deepEqual(
      other.map((c) => c.pid),
      [501],
    );
    const sub = await interruptedCallers(`${dir}/sub`, { procRoot: root, arch: 'x64' });
    assert.deepEqual(
      sub.map((c) => c.tid),
      [201],
    );
  });

  test('the signals that count can be chosen', async () => {
    const found = await interruptedCallers(dir, { procRoot: root, arch: 'x64', signals: [28] });
    assert.deepEqual(
      found.map((c) => [c.pid, c.signals]),
      [[600, [28]]],
    );
  });

  test('a missing proc, or callers of an unknown architecture: nobody, no error', async () => {
    assert.deepEqual(await interruptedCallers(dir, { procRoot: path.join(root, 'nope'), arch: 'x64' }), []);
    assert.deepEqual(await interruptedCallers(dir, { procRoot: root, arch: 'ia32' }), []);
  });
});

describe('interruptWatch: one scan of the mount serves every waiting op', () => {
  test("matches mount paths at or below a caller's path; scans again after 200 ms", async () => {
    let clock = 0;
    const scans: string[] = [];
    const callers = [{ pid: 1, tid: 1, command: 'cp', path: '/mnt/bs/B/s1/dir/file', signals: [2] }];
    const isInterrupted = interruptWatch(
      '/mnt/bs',
      async (directory) => (scans.push(directory), callers),
      () => clock,
    );
    assert.equal(await isInterrupted('/B/s1'), true, 'a caller below the snapshot');
    assert.equal(await isInterrupted('/B/s1/dir/file'), true, 'at the path itself');
    assert.equal(await isInterrupted('/B/s10'), false, 'a name that merely starts the same');
    assert.equal(await isInterrupted('/A/s1'), false);
    assert.deepEqual(scans, ['/mnt/bs'], 'one scan for all four questions');
    clock = 250;
    callers.length = 0;
    assert.equal(await isInterrupted('/B/s1'), false, 'a fresh scan later');
    assert.equal(scans.length, 2);
  });

  test('a scan that fails finds nobody (the op keeps waiting)', async () => {
    const isInterrupted = interruptWatch('/mnt/bs', async () => {
      throw new Error('EMFILE');
    });
    assert.equal(await isInterrupted('/B/s1'), false);
  });
});
