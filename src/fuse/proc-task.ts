/**
 * Reading a task's /proc files, purely: its status (name, signals), its syscall line, the
 * strings and paths it names. The unit tests drive these with text; `interrupted-callers.ts`
 * does the I/O. (Verified on kernel 6.18, x86_64; see there.)
 */
import path from 'node:path';

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
