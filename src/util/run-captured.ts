import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** What a finished command printed and how it ended. */
export interface CapturedResult {
  /** Its exit code; null when a signal ended it, negative when it never started. */
  readonly exitCode: number | null;
  /** stdout as UTF-8, without one final newline (as execa gives it). */
  readonly stdout: string;
  /** The last 64 KiB of stderr as UTF-8, without one final newline. */
  readonly stderr: string;
  /** The last 64 KiB of each extra pipe (fd 3, 4, ...; `extraPipes`), as stderr; '' for the one `onData` reads. */
  readonly extra: readonly string[];
  /** The spawn error's code (e.g. ENOENT: no such command), when it could not start. */
  readonly spawnErrorCode: string | undefined;
  /** Whether `signal` was aborted by the time it ended (killed, when it still ran). */
  readonly isCanceled: boolean;
  /** Whether stdout passed `maxStdout` (it was killed, stdout is cut). */
  readonly isTruncated: boolean;
}

export interface CaptureOptions {
  /** Aborting kills the command (SIGTERM). */
  readonly signal?: AbortSignal;
  /** After an abort's SIGTERM, SIGKILL if it has not ended within this many ms. */
  readonly forceKillAfterMs?: number;
  /** Bound on stdout; past it the command is killed (default 256 MiB). */
  readonly maxStdout?: number;
  /** Pipes for fds 3, 4, ... besides stdout and stderr (stdin is always closed). */
  readonly extraPipes?: number;
  /** One extra pipe read as it comes (progress, say) instead of kept. */
  readonly onData?: { readonly fd: number; readonly listener: (chunk: Buffer) => void };
}

const MAX_TAIL = 64 * 1024;
/** Default bound on stdout: a listing of 100,000 subvolumes is ~25 MB. */
const MAX_STDOUT = 256 * 1024 * 1024;

/**
 * Runs FILE ARGS (no shell) with stdin closed and returns what it printed, never throwing for
 * how it ended: the caller maps that to its own errors.
 *
 * For the commands buttersink runs on every run (listings, `subvolume show`, `rootid`, the
 * local send | receive pipeline, getfattr): through `node:child_process` directly, not execa.
 * Measured on a nightly no-op (9 such commands), execa's machinery around each spawn cost
 * ~75 ms of main-thread CPU in a run of ~400 ms, and loading its bundle chunk 35-75 ms; execa
 * stays only for the mount's `fusermount -u`.
 * Memory is bounded: stdout up to `maxStdout` bytes (then the command is killed), other
 * pipes' tails.
 */
export function runCaptured(file: string, args: readonly string[], options: CaptureOptions = {}): Promise<CapturedResult> {
  const maxStdout = options.maxStdout ?? MAX_STDOUT;
  const extraPipes = options.extraPipes ?? 0;
  const stdout: Buffer[] = [];
  let stdoutBytes = 0;
  let isTruncated = false;
  const child = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe', ...Array<'pipe'>(extraPipes).fill('pipe')],
    signal: options.signal,
    killSignal: 'SIGTERM',
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    if (isTruncated) return;
    stdoutBytes += chunk.length;
    if (stdoutBytes > maxStdout) {
      isTruncated = true;
      child.kill('SIGKILL');
      return;
    }
    stdout.push(chunk);
  });
  const tails = [2, ...Array.from({ length: extraPipes }, (_, i) => i + 3)].map((fd) => {
    const stream = child.stdio[fd] as NodeJS.ReadableStream;
    if (options.onData?.fd === fd) {
      stream.on('data', options.onData.listener);
      return () => '';
    }
    return keepTail(stream);
  });
  return settle(child, options, tails, () => ({
    stdout: withoutFinalNewline(Buffer.concat(stdout).toString('utf8')),
    isTruncated,
  })).result;
}

/** A started child whose stdin and stdout the caller moves itself (send, receive). */
export interface PipedChild {
  /** Its stdin, when asked for: writing after it ended fails (EPIPE), as a pipe does. */
  readonly stdin: Writable | null;
  /** Its stdout, when asked for; it waits, paused, until the caller reads it. */
  readonly stdout: Readable | null;
  /** How it ended, once it has and its pipes are closed (stdout ''); never rejects. */
  readonly result: Promise<CapturedResult>;
  /** Ends it: SIGTERM, then SIGKILL if it is still running `forceKillAfterMs` later. */
  kill(): void;
}

export interface PipedOptions {
  readonly stdin: 'pipe' | 'ignore';
  readonly stdout: 'pipe' | 'ignore';
  /** Aborting kills it as {@link PipedChild.kill} does. */
  readonly signal?: AbortSignal;
  /** Default 5 s. */
  readonly forceKillAfterMs?: number;
}

/**
 * Starts FILE ARGS (no shell) with the stdin and stdout the caller asked for, keeping stderr's
 * tail for the error it may have to report. For `btrfs send` and `btrfs receive` whose stream
 * node moves itself (measuring, SSH, S3): through `node:child_process` like
 * {@link runCaptured}, so that a cold run's measuring and a server's receive load no execa
 * either. A child's stdout does not flow until it is read, so no byte is lost to a consumer
 * that attaches late.
 */
export function spawnPiped(file: string, args: readonly string[], options: PipedOptions): PipedChild {
  const child = spawn(file, args, {
    stdio: [options.stdin, options.stdout, 'pipe'],
    signal: options.signal,
    killSignal: 'SIGTERM',
  });
  const ended = settle(child, { ...options, forceKillAfterMs: options.forceKillAfterMs ?? 5000 }, [keepTail(child.stderr!)], () => ({
    stdout: '',
    isTruncated: false,
  }));
  return { stdin: child.stdin, stdout: child.stdout, result: ended.result, kill: ended.kill };
}

/**
 * Resolves how CHILD ended once it has closed its pipes, from the tails of stderr and the
 * extra pipes; an abort of `signal` (node sends SIGTERM) or `kill()` sends SIGKILL after
 * `forceKillAfterMs` when that is set.
 */
function settle(
  child: ChildProcess,
  options: { readonly signal?: AbortSignal; readonly forceKillAfterMs?: number },
  tails: readonly (() => string)[],
  captured: () => { stdout: string; isTruncated: boolean },
): { result: Promise<CapturedResult>; kill(): void } {
  let spawnErrorCode: string | undefined;
  let forceKill: NodeJS.Timeout | undefined;
  let closed = false;
  const armForceKill = (): void => {
    if (options.forceKillAfterMs === undefined || forceKill !== undefined || closed) return;
    forceKill = setTimeout(() => child.kill('SIGKILL'), options.forceKillAfterMs);
  };
  const result = new Promise<CapturedResult>((resolve) => {
    // An abort also arrives here (AbortError) after node sent SIGTERM; a failed spawn
    // (ENOENT, EACCES) only here, followed by 'close'.
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError') armForceKill();
      else spawnErrorCode = error.code ?? 'ERROR';
    });
    child.on('close', (code) => {
      closed = true;
      clearTimeout(forceKill);
      const [stderr, ...extra] = tails.map((tail) => tail());
      resolve({
        exitCode: code,
        ...captured(),
        stderr: stderr!,
        extra,
        spawnErrorCode,
        isCanceled: options.signal?.aborted === true,
      });
    });
  });
  return {
    result,
    kill: () => {
      if (closed) return;
      child.kill('SIGTERM');
      armForceKill();
    },
  };
}

/** Reads a stream to its end, keeping only its last MAX_TAIL bytes; returns how to get them as text. */
function keepTail(stream: NodeJS.ReadableStream): () => string {
  let chunks: Buffer[] = [];
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes > 2 * MAX_TAIL) {
      const joined = Buffer.concat(chunks).subarray(-MAX_TAIL);
      chunks = [joined];
      bytes = joined.length;
    }
  });
  return () => withoutFinalNewline(Buffer.concat(chunks).subarray(-MAX_TAIL).toString('utf8'));
}

function withoutFinalNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}
