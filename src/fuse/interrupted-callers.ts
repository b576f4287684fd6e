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
 * The pure parsing is exported for the unit tests; `interruptedCallers` does the I/O.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { open, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

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
 * SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGTERM: a user or a supervisor wants the caller gone.
 * Not every signal: any caught signal interrupts the FUSE wait (a shell's SIGCHLD, a
 * terminal resize's SIGWINCH, a progress SIGUSR1), and those must not cancel a transfer.
 * SIGTSTP (Ctrl-Z) is left out on purpose too: the caller wants to pause, not to give up.
 */
export const STOP_SIGNALS: readonly number[] = [1, 2, 3, 9, 15];

/** wchan of a task waiting for the answer to a request it sent (names vary with kernel inlining). */
const FUSE_WAITS = new Set([
  'request_wait_answer',
  'fuse_simple_request',
  '__fuse_simple_request',
  'fuse_request_send',
  '__fuse_request_send',
]);

export function isFuseWait(wchan: string): boolean {
  return FUSE_WAITS.has(wchan.trim());
}

export interface TaskStatus {
  readonly name: string;
  readonly state: string;
  readonly tgid: number;
  /** Signals pending for this thread. */
  readonly sigPnd: bigint;
  /** Signals pending for the whole process (kill(2) sends there). */
  readonly shdPnd: bigint;
  readonly sigBlk: bigint;
}

/** /proc/PID/task/TID/status text → the fields used here; undefined when a field is missing. */
export function parseStatus(text: string): TaskStatus | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).replace(/^\t/, ''));
  }
  const hex = (key: string): bigint | undefined => {
    const value = fields.get(key)?.trim();
    return value !== undefined && /^[0-9a-f]+$/i.test(value) ? BigInt(`0x${value}`) : undefined;
  };
  const name = fields.get('Name');
  const state = fields.get('State')?.trim();
  const tgid = Number(fields.get('Tgid')?.trim());
  const sigPnd = hex('SigPnd');
  const shdPnd = hex('ShdPnd');
  const sigBlk = hex('SigBlk');
  if (
    name === undefined ||
    state === undefined ||
    !Number.isInteger(tgid) ||
    sigPnd === undefined ||
    shdPnd === undefined ||
    sigBlk === undefined
  ) {
    return undefined;
  }
  return { name: unescapeName(name), state: state.charAt(0), tgid, sigPnd, shdPnd, sigBlk };
}

/** status escapes a comm's whitespace, backslash and unprintables (seq_escape_str): undo that. */
function unescapeName(name: string): string {
  const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', '\\': '\\', '"': '"', a: '\x07', e: '\x1b' };
  return name.replace(/\\([0-7]{3}|.)/g, (all, code: string) =>
    code.length === 3 ? String.fromCharCode(parseInt(code, 8)) : (simple[code] ?? all),
  );
}

/** Signal numbers in a mask (bit n-1 is signal n). */
export function signalsInMask(mask: bigint): number[] {
  const signals: number[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) if ((mask >> BigInt(bit)) & 1n) signals.push(bit + 1);
  return signals;
}

/**
 * The signals out of `wanted` that are pending for the task (its own or its process's) and
 * that it does not block. A blocked one does not interrupt this thread's wait (a process-wide
 * one goes to a thread that does not block it, which is then the one to find), so it does
 * not count. SIGKILL cannot be blocked.
 */
export function pendingStopSignals(status: TaskStatus, wanted: readonly number[] = STOP_SIGNALS): number[] {
  const live = signalsInMask((status.sigPnd | status.shdPnd) & ~status.sigBlk);
  return live.filter((s) => wanted.includes(s));
}

export interface SyscallState {
  readonly nr: number;
  /** The six argument registers, unsigned. */
  readonly args: readonly bigint[];
}

/**
 * /proc/.../syscall text → number and arguments. Undefined for "running" and for a task
 * blocked outside a syscall ("-1 SP PC", e.g. in a page fault), where no path is known.
 */
export function parseSyscall(text: string): SyscallState | undefined {
  const words = text.trim().split(/\s+/);
  if (words.length < 7 || !/^\d+$/.test(words[0]!)) return undefined;
  const args: bigint[] = [];
  for (const word of words.slice(1, 7)) {
    if (!/^0x[0-9a-f]+$/i.test(word)) return undefined;
    args.push(BigInt(word));
  }
  return { nr: Number(words[0]), args };
}

/**
 * Where a syscall names the file it works on: a path argument (relative ones resolved
 * against a dirfd argument, or the cwd when there is none), or a file descriptor argument.
 */
export type Operand = { readonly path: number; readonly dirfd?: number } | { readonly fd: number };

/**
 * A dirfd argument: the kernel reads only the low 32 bits as an int. glibc passes AT_FDCWD
 * (-100) in a 32-bit register, so /proc shows 0xffffff9c (a sign-extended
 * 0xffffffffffffff9c means the same).
 */
export function dirfdOf(arg: bigint): number | 'cwd' {
  const fd = Number(BigInt.asIntN(32, arg));
  return fd === -100 ? 'cwd' : fd;
}

const P0: Operand[] = [{ path: 0 }];
const P1: Operand[] = [{ path: 1 }];
const P01: Operand[] = [{ path: 0 }, { path: 1 }];
const F0: Operand[] = [{ fd: 0 }];
const AT: Operand[] = [{ dirfd: 0, path: 1 }];
const AT2: Operand[] = [
  { dirfd: 0, path: 1 },
  { dirfd: 2, path: 3 },
];
/** symlinkat(target, newdirfd, linkpath): the target is contents, not a file we hold. */
const SYMLINKAT: Operand[] = [{ dirfd: 1, path: 2 }];

/**
 * Syscalls that reach a FUSE filesystem with a path or an fd, by number. Since Linux 5.1
 * (424) new syscalls have one number on every architecture: fchmodat2 452, the *xattrat
 * family 463-466 (all (dirfd, path, ...)). close(2) is missing on purpose: its FUSE flush runs
 * after the fd left the table, so nothing names the file any more. A 32-bit (ia32 compat)
 * caller on x86_64 has other numbers and is not recognised.
 */
const COMMON_NEW: Array<[number, Operand[]]> = [
  [437, AT], // openat2
  [439, AT], // faccessat2
  [452, AT], // fchmodat2
  [463, AT],
  [464, AT],
  [465, AT],
  [466, AT], // setxattrat, getxattrat, listxattrat, removexattrat
];

const X86_64 = new Map<number, Operand[]>([
  [0, F0],
  [1, F0],
  [5, F0],
  [8, F0],
  [17, F0],
  [18, F0],
  [19, F0],
  [20, F0], // read write fstat lseek pread64 pwrite64 readv writev
  [2, P0],
  [4, P0],
  [6, P0],
  [21, P0], // open stat lstat access
  [40, [{ fd: 0 }, { fd: 1 }]], // sendfile(out, in)
  [59, P0], // execve
  [72, F0],
  [73, F0],
  [74, F0],
  [75, F0], // fcntl (F_SETLKW) flock fsync fdatasync
  [76, P0],
  [77, F0],
  [78, F0],
  [80, P0],
  [81, F0], // truncate ftruncate getdents chdir fchdir
  [82, P01],
  [83, P0],
  [84, P0],
  [85, P0],
  [86, P01],
  [87, P0], // rename mkdir rmdir creat link unlink
  [88, P1], // symlink(target, linkpath)
  [89, P0],
  [90, P0],
  [91, F0],
  [92, P0],
  [93, F0],
  [94, P0], // readlink chmod fchmod chown fchown lchown
  [132, P0],
  [133, P0],
  [137, P0],
  [138, F0], // utime mknod statfs fstatfs
  [188, P0],
  [189, P0],
  [190, F0],
  [191, P0],
  [192, P0],
  [193, F0], // setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
  [194, P0],
  [195, P0],
  [196, F0],
  [197, P0],
  [198, P0],
  [199, F0], // listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
  [217, F0],
  [235, P0], // getdents64 utimes
  [257, AT],
  [258, AT],
  [259, AT],
  [260, AT],
  [261, AT],
  [262, AT],
  [263, AT], // openat mkdirat mknodat fchownat futimesat newfstatat unlinkat
  [264, AT2],
  [265, AT2],
  [266, SYMLINKAT],
  [267, AT],
  [268, AT],
  [269, AT], // renameat linkat symlinkat readlinkat fchmodat faccessat
  [280, AT],
  [285, F0],
  [295, F0],
  [296, F0],
  [303, AT],
  [306, F0], // utimensat fallocate preadv pwritev name_to_handle_at syncfs
  [316, AT2],
  [322, AT],
  [326, [{ fd: 0 }, { fd: 2 }]],
  [327, F0],
  [328, F0],
  [332, AT], // renameat2 execveat copy_file_range preadv2 pwritev2 statx
  ...COMMON_NEW,
]);

/** arm64 (and riscv64, loongarch64): asm-generic/unistd.h; no old non-at path syscalls. */
const GENERIC = new Map<number, Operand[]>([
  [5, P0],
  [6, P0],
  [7, F0],
  [8, P0],
  [9, P0],
  [10, F0], // setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
  [11, P0],
  [12, P0],
  [13, F0],
  [14, P0],
  [15, P0],
  [16, F0], // listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
  [25, F0],
  [32, F0],
  [33, AT],
  [34, AT],
  [35, AT],
  [36, SYMLINKAT],
  [37, AT2],
  [38, AT2], // fcntl flock mknodat mkdirat unlinkat symlinkat linkat renameat
  [43, P0],
  [44, F0],
  [45, P0],
  [46, F0],
  [47, F0],
  [48, AT],
  [49, P0],
  [50, F0], // statfs fstatfs truncate ftruncate fallocate faccessat chdir fchdir
  [52, F0],
  [53, AT],
  [54, AT],
  [55, F0],
  [56, AT],
  [61, F0],
  [62, F0], // fchmod fchmodat fchownat fchown openat getdents64 lseek
  [63, F0],
  [64, F0],
  [65, F0],
  [66, F0],
  [67, F0],
  [68, F0],
  [69, F0],
  [70, F0], // read write readv writev pread64 pwrite64 preadv pwritev
  [71, [{ fd: 0 }, { fd: 1 }]],
  [78, AT],
  [79, AT],
  [80, F0],
  [82, F0],
  [83, F0],
  [88, AT], // sendfile readlinkat newfstatat fstat fsync fdatasync utimensat
  [221, P0],
  [264, AT],
  [267, F0],
  [276, AT2],
  [281, AT],
  [285, [{ fd: 0 }, { fd: 2 }]], // execve name_to_handle_at syncfs renameat2 execveat copy_file_range
  [286, F0],
  [287, F0],
  [291, AT], // preadv2 pwritev2 statx
  ...COMMON_NEW,
]);

/** The operands of syscall `nr` for callers of architecture `arch` (Node's names); undefined: none known. */
export function syscallOperands(arch: string, nr: number): readonly Operand[] | undefined {
  const table = arch === 'x64' ? X86_64 : arch === 'arm64' || arch === 'riscv64' || arch === 'loong64' ? GENERIC : undefined;
  return table?.get(nr);
}

/** The text before the first NUL, decoded as UTF-8 (how Node names files); undefined without a NUL. */
export function cString(bytes: Buffer): string | undefined {
  const end = bytes.indexOf(0);
  return end < 0 ? undefined : bytes.toString('utf8', 0, end);
}

/**
 * A caller's path as an absolute path seen from here: relative ones against `base` (the
 * dirfd's or cwd's target), absolute ones below the caller's root (chroot, container).
 * Purely textual: `..` is folded and symlinks are not followed, because following them would
 * look things up on the very mount that is waiting for us.
 */
export function resolveCallerPath(callerPath: string, base: string, root = '/'): string {
  // `..` cannot climb above the caller's root, so fold it first, then put the root in front.
  if (callerPath.startsWith('/')) return path.posix.join(root, path.posix.resolve(callerPath));
  return path.posix.resolve(base, callerPath);
}

/** Is `p` equal to `directory` or below it? Both absolute and normalised. */
export function isAtOrBelow(p: string, directory: string): boolean {
  if (directory === '/') return p.startsWith('/');
  return p === directory || p.startsWith(`${directory}/`);
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
