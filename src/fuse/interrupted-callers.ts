/**
 * Which processes wait on a FUSE request for a path in a given directory of our mount, and
 * have been told to stop (Ctrl-C, kill)?
 *
 * Why this exists: fuse-native (libfuse 2, high-level API) hands JS neither FUSE_INTERRUPT
 * nor the caller's pid (fuse_get_context). An op that waits on a transfer (cp's create in a
 * snapshot directory that is being received) can hold its caller for minutes, and once the
 * kernel has handed the request to userspace the caller cannot leave before we answer, not
 * even on SIGKILL (fs/fuse/dev.c `request_wait_answer`: an interruptible wait, then after a
 * signal a killable one, then, the request being in userspace already, an uninterruptible
 * one). So while such an op waits, it polls this, cancels its transfer and answers EINTR.
 *
 * How (verified on kernel 6.18, x86_64, as root): a task waiting on a FUSE answer shows
 * `request_wait_answer` in /proc/PID/task/TID/wchan, in state S before any signal and D after
 * one. Its signals are in `status` (SigPnd: its own, ShdPnd: the process's, SigBlk: blocked).
 * A default-action SIGINT to cp (no handler) leaves ShdPnd = SIGINT and SigPnd = SIGKILL (the
 * kernel turns a fatal signal into a group exit); rsync catches SIGINT, so it only has ShdPnd
 * = SIGINT. /proc/.../syscall gives the syscall number and its six arguments; the path
 * argument is a pointer into the caller's memory, read from /proc/.../mem; a relative path
 * is resolved against the dirfd argument (/proc/.../fd/N) or the cwd. cp -r and rsync -a
 * both create files with openat(dirfd, relative path, O_CREAT|O_EXCL).
 *
 * The pure parsing is in `proc-task.ts` and `syscall-paths.ts`; this file does the I/O.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { open, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import {
  cString,
  isAtOrBelow,
  isFuseWait,
  parseStatus,
  parseSyscall,
  pendingStopSignals,
  resolveCallerPath,
  STOP_SIGNALS,
} from './proc-task.js';
import { dirfdOf, syscallOperands, type Operand } from './syscall-paths.js';

export interface InterruptedCaller {
  /** The process (thread group) id: what to report or kill. */
  readonly pid: number;
  /** The thread that waits in the FUSE request. */
  readonly tid: number;
  /** The thread's comm (at most 15 bytes, as /proc shows it). */
  readonly command: string;
  /** The absolute path (as seen from this process) the waiting syscall is about. */
  readonly path: string;
  /** The signals that count and are pending and not blocked, ascending. */
  readonly signals: number[];
}

export interface InterruptedCallersOptions {
  /** Where proc is mounted (tests point this at a fake tree). Default `/proc`. */
  readonly procRoot?: string;
  /** Which pending signals mean "stop". Default {@link STOP_SIGNALS}. */
  readonly signals?: readonly number[];
  /** Syscall numbering of the callers (tests). Default `process.arch`. */
  readonly arch?: string;
}

/**
 * Errors that mean "this task or process changed or went while we looked": it exited
 * (ENOENT, ESRCH), exec'd into something we may not read (EACCES, EPERM — also Yama or a
 * missing CAP_SYS_PTRACE), the address is not mapped any more (EIO), an fd is not a link
 * any more (EINVAL), or a directory of it is gone (ENOTDIR).
 */
const RACES = new Set(['ENOENT', 'ESRCH', 'EACCES', 'EPERM', 'EIO', 'EINVAL', 'ENOTDIR']);

function isRace(error: unknown): boolean {
  return RACES.has((error as NodeJS.ErrnoException).code ?? '');
}

/**
 * How long one read of a candidate's syscall, mem or links may take. These reads take the
 * task's exec_update_lock (cred_guard_mutex before 5.7); a caller stuck in a FUSE request
 * inside execve may hold it until we answer. A timed-out read keeps its libuv thread, so the
 * task is skipped until that read comes back: a scan never waits for it, and repeated scans
 * never use up the thread pool the mount needs to answer anything.
 */
const READ_TIMEOUT_MS = 500;
const stuckReads = new Set<string>();

async function guarded<T>(key: string, read: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), READ_TIMEOUT_MS);
    timer.unref();
  });
  const settled = read.then(
    (value) => ({ value }),
    (error: unknown) => {
      if (isRace(error)) return { value: undefined };
      throw error;
    },
  );
  try {
    const outcome = await Promise.race([settled, timeout]);
    if (outcome !== 'timeout') return outcome.value;
    stuckReads.add(key);
    settled.finally(() => stuckReads.delete(key)).catch(() => {});
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** A small file read synchronously; undefined on a race. See {@link fuseWaiters} for why sync. */
function readSmallSync(file: string, buffer: Buffer): string | undefined {
  let fd = -1;
  try {
    fd = openSync(file, 'r');
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString('latin1', 0, n);
  } catch (error) {
    if (isRace(error)) return undefined;
    throw error;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function listSync(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch (error) {
    if (isRace(error)) return [];
    throw error;
  }
}

/**
 * Every task waiting on a FUSE answer, as [pid, tid]. This pass touches every task on the
 * machine (~300 on a small server), so it is synchronous: a few µs per task, where a promise
 * per file costs several times more CPU. It is safe to block on: listing /proc and reading
 * wchan take no sleeping lock and never reach a filesystem, so they cannot wait on the mount
 * that this process serves. Everything after it (few tasks, and reads that can block) is async.
 */
function fuseWaiters(procRoot: string): Array<[string, string]> {
  const buffer = Buffer.alloc(64);
  const found: Array<[string, string]> = [];
  for (const pid of listSync(procRoot)) {
    if (!/^\d+$/.test(pid)) continue;
    for (const tid of listSync(`${procRoot}/${pid}/task`)) {
      const wchan = readSmallSync(`${procRoot}/${pid}/task/${tid}/wchan`, buffer);
      if (wchan !== undefined && isFuseWait(wchan)) found.push([pid, tid]);
    }
  }
  return found;
}

/** A NUL-terminated string at `address` in the task's memory (at most PATH_MAX bytes). */
async function readCallerString(memFile: string, address: bigint): Promise<string | undefined> {
  // A number, not a bigint: Node 20's FileHandle.read ignores a bigint position (it read at
  // offset 0 here). User addresses stay below 2^47 (2^56 with 5-level paging, beyond 2^53:
  // such a caller is not recognised).
  if (address > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const handle = await open(memFile, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    // A read running into an unmapped page returns what it got before it (mem_rw), enough
    // for a path that ends there; an unmapped start is EIO (a race: ignored by the caller).
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, Number(address));
    return cString(buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** A /proc link's target when it is a path (not `pipe:[…]`, `anon_inode:…`, `socket:[…]`). */
async function pathLink(link: string): Promise<string | undefined> {
  const target = await readlink(link);
  return target.startsWith('/') ? target : undefined;
}

async function operandPath(taskDir: string, key: string, operand: Operand, args: readonly bigint[]): Promise<string | undefined> {
  if ('fd' in operand) {
    return guarded(key, pathLink(`${taskDir}/fd/${dirfdOf(args[operand.fd]!)}`));
  }
  const pointer = args[operand.path]!;
  const text = pointer === 0n ? '' : await guarded(key, readCallerString(`${taskDir}/mem`, pointer));
  if (text === undefined) return undefined;
  const dirfd = operand.dirfd === undefined ? 'cwd' : dirfdOf(args[operand.dirfd]!);
  if (text.startsWith('/')) {
    const root = await guarded(key, pathLink(`${taskDir}/root`));
    return root === undefined ? undefined : resolveCallerPath(text, '/', root);
  }
  // A relative path is resolved against the dirfd or cwd; an empty one (AT_EMPTY_PATH,
  // utimensat(fd, NULL)) names the dirfd itself.
  const base = await guarded(key, pathLink(dirfd === 'cwd' ? `${taskDir}/cwd` : `${taskDir}/fd/${dirfd}`));
  return base === undefined ? undefined : resolveCallerPath(text, base);
}

async function examineTask(
  procRoot: string,
  pid: string,
  tid: string,
  directory: string,
  wanted: readonly number[],
  arch: string,
): Promise<InterruptedCaller | undefined> {
  const taskDir = `${procRoot}/${pid}/task/${tid}`;
  const key = `${procRoot}\0${tid}`;
  if (stuckReads.has(key)) return undefined;
  // status takes no lock that a waiting caller could hold, but it is read async all the same.
  const statusText = await readFile(`${taskDir}/status`, 'utf8').catch((error: unknown) => {
    if (isRace(error)) return undefined;
    throw error;
  });
  const status = statusText === undefined ? undefined : parseStatus(statusText);
  if (status === undefined) return undefined;
  // Before a signal the wait is interruptible (state S), after it killable or uninterruptible
  // (D): the pending signal, not the state, is what tells an interrupted caller.
  const signals = pendingStopSignals(status, wanted);
  if (signals.length === 0) return undefined;
  const syscallText = await guarded(key, readFile(`${taskDir}/syscall`, 'utf8'));
  const syscall = syscallText === undefined ? undefined : parseSyscall(syscallText);
  if (syscall === undefined) return undefined;
  for (const operand of syscallOperands(arch, syscall.nr) ?? []) {
    const p = await operandPath(taskDir, key, operand, syscall.args);
    if (p !== undefined && isAtOrBelow(p, directory)) {
      return { pid: Number(pid), tid: Number(tid), command: status.name, path: p, signals };
    }
  }
  return undefined;
}

/**
 * Every task blocked in a FUSE request about `directory` (an absolute path as the kernel
 * shows it: the mount point without symlinks) or something below it, that has one of
 * `signals` (default {@link STOP_SIGNALS}) pending and unblocked. Cheap enough to poll every
 * 250 ms while an op waits (one poll can serve every waiting op). A process or thread that
 * goes away during the scan is skipped; other errors (EMFILE...) are thrown.
 * Linux only: elsewhere, and for callers of an architecture whose syscalls are not known
 * here, it finds nobody.
 *
 * Not found: a caller whose thread blocks the signal while another thread handles it (a
 * node program with a SIGINT handler: libuv workers block all signals); a caller waiting
 * for the directory's lock behind another create (it sent no request yet). And a caller
 * that survives its signal may send the same request again after an EINTR answer (libuv
 * retries EINTR): an op answered EINTR should not restart the transfer for it.
 */
export async function interruptedCallers(directory: string, options: InterruptedCallersOptions = {}): Promise<InterruptedCaller[]> {
  if (process.platform !== 'linux') return [];
  const procRoot = options.procRoot ?? '/proc';
  const arch = options.arch ?? process.arch;
  const wanted = options.signals ?? STOP_SIGNALS;
  const dir = path.posix.resolve(directory);
  const found = await Promise.all(fuseWaiters(procRoot).map(([pid, tid]) => examineTask(procRoot, pid, tid, dir, wanted, arch)));
  return found.filter((c): c is InterruptedCaller => c !== undefined).sort((a, b) => a.pid - b.pid || a.tid - b.tid);
}

/** How long one scan answers for every op that asks (a scan costs a few ms of CPU). */
const SCAN_REUSE_MS = 200;

/**
 * `isInterrupted(mountPath)` for the mount at `mountPoint` (canonical: no symlinks): is a
 * caller of an op on that path of the mount, or below it, interrupted? One scan of the whole
 * mount serves every op that asks within {@link SCAN_REUSE_MS}, however many wait at once.
 */
export function interruptWatch(
  mountPoint: string,
  scan: (directory: string) => Promise<InterruptedCaller[]> = interruptedCallers,
  now: () => number = Date.now,
): (mountPath: string) => Promise<boolean> {
  let last: { at: number; callers: Promise<InterruptedCaller[]> } | undefined;
  return async (mountPath) => {
    if (last === undefined || now() - last.at >= SCAN_REUSE_MS) last = { at: now(), callers: scan(mountPoint).catch(() => []) };
    const target = path.posix.join(mountPoint, mountPath);
    return (await last.callers).some((caller) => isAtOrBelow(caller.path, target));
  };
}
