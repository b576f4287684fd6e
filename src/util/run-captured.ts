import { spawn } from 'node:child_process';

/** What a finished command printed and how it ended. */
export interface CapturedResult {
  /** Its exit code; null when a signal ended it or it never started. */
  readonly exitCode: number | null;
  /** stdout as UTF-8, without one final newline (as execa gives it). */
  readonly stdout: string;
  /** The last MAX_STDERR bytes of stderr as UTF-8, without one final newline. */
  readonly stderr: string;
  /** The spawn error's code (e.g. ENOENT: no such command), when it could not start. */
  readonly spawnErrorCode: string | undefined;
  /** Whether `signal` aborted it (it was killed). */
  readonly isCanceled: boolean;
  /** Whether stdout passed `maxStdout` (it was killed, stdout is cut). */
  readonly isTruncated: boolean;
}

const MAX_STDERR = 64 * 1024;
/** Default bound on stdout: a listing of 100,000 subvolumes is ~25 MB. */
const MAX_STDOUT = 256 * 1024 * 1024;

/**
 * Runs FILE ARGS (no shell) with stdin closed and returns what it printed, never throwing for
 * how it ended: the caller maps that to its own errors.
 *
 * For the short commands buttersink runs many of per run (listings, `subvolume show`,
 * `rootid`): through `node:child_process` directly, not execa. Measured on a nightly no-op
 * (9 such commands), execa's machinery around each spawn cost ~75 ms of main-thread CPU and
 * loading it ~15 ms, in a run of ~400 ms; execa stays for pipelines and long-lived children.
 * Memory is bounded: stdout up to `maxStdout` bytes (then the command is killed), stderr's tail.
 */
export function runCaptured(
  file: string,
  args: readonly string[],
  options: { signal?: AbortSignal; maxStdout?: number } = {},
): Promise<CapturedResult> {
  const maxStdout = options.maxStdout ?? MAX_STDOUT;
  return new Promise((resolve) => {
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr: Buffer[] = [];
    let stderrBytes = 0;
    let isTruncated = false;
    let spawnErrorCode: string | undefined;
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal, killSignal: 'SIGTERM' });
    child.stdout.on('data', (chunk: Buffer) => {
      if (isTruncated) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        isTruncated = true;
        child.kill('SIGKILL');
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      stderrBytes += chunk.length;
      if (stderrBytes > 2 * MAX_STDERR) {
        const joined = Buffer.concat(stderr).subarray(-MAX_STDERR);
        stderr = [joined];
        stderrBytes = joined.length;
      }
    });
    // An abort also arrives here (AbortError) after node killed the child; a failed spawn
    // (ENOENT, EACCES) only here, followed by 'close'.
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name !== 'AbortError') spawnErrorCode = error.code ?? 'ERROR';
    });
    child.on('close', (code) => {
      resolve({
        exitCode: code,
        stdout: withoutFinalNewline(Buffer.concat(stdout).toString('utf8')),
        stderr: withoutFinalNewline(Buffer.concat(stderr).subarray(-MAX_STDERR).toString('utf8')),
        spawnErrorCode,
        isCanceled: options.signal?.aborted === true,
        isTruncated,
      });
    });
  });
}

function withoutFinalNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}
