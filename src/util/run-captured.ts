import { spawn } from 'node:child_process';

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
 * local send | receive pipeline): through `node:child_process` directly, not execa. Measured
 * on a nightly no-op (9 such commands), execa's machinery around each spawn cost ~75 ms of
 * main-thread CPU in a run of ~400 ms, and loading its bundle chunk 35-75 ms; execa stays
 * where node itself moves a child's streams (SSH and S3 transfers) and in the mount.
 * Memory is bounded: stdout up to `maxStdout` bytes (then the command is killed), other
 * pipes' tails.
 */
export function runCaptured(file: string, args: readonly string[], options: CaptureOptions = {}): Promise<CapturedResult> {
  const maxStdout = options.maxStdout ?? MAX_STDOUT;
  const extraPipes = options.extraPipes ?? 0;
  return new Promise((resolve) => {
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let isTruncated = false;
    let spawnErrorCode: string | undefined;
    let forceKill: NodeJS.Timeout | undefined;
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
    // An abort also arrives here (AbortError) after node sent SIGTERM; a failed spawn
    // (ENOENT, EACCES) only here, followed by 'close'.
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name !== 'AbortError') {
        spawnErrorCode = error.code ?? 'ERROR';
        return;
      }
      if (options.forceKillAfterMs !== undefined) forceKill = setTimeout(() => child.kill('SIGKILL'), options.forceKillAfterMs);
    });
    child.on('close', (code) => {
      clearTimeout(forceKill);
      const [stderr, ...extra] = tails.map((tail) => tail());
      resolve({
        exitCode: code,
        stdout: withoutFinalNewline(Buffer.concat(stdout).toString('utf8')),
        stderr: stderr!,
        extra,
        spawnErrorCode,
        isCanceled: options.signal?.aborted === true,
        isTruncated,
      });
    });
  });
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
