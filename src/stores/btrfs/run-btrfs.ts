import { InterruptedError, PermissionError, StoreError, TransferError } from '../../model/errors.js';
import { lastLines } from '../../util/last-lines.js';
import { runCaptured, spawnPiped, type CapturedResult, type PipedChild } from '../../util/run-captured.js';

/** How a failed btrfs command should be reported. */
export type FailureKind = 'store' | 'transfer';

/** Logs the commands we run, for `-V`. */
export type CommandTracer = (command: string) => void;

let tracer: CommandTracer = () => {};
export function setCommandTracer(trace: CommandTracer): void {
  tracer = trace;
}

/** Reports a command line run another way (e.g. inside a pipeline) to the tracer. */
export function traceCommand(text: string): void {
  tracer(text);
}

export function formatCommand(args: readonly string[]): string {
  return ['btrfs', ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/**
 * Runs `btrfs ARGS` to completion and returns its stdout. A failure becomes a typed error
 * carrying the command line and the tail of stderr, so the CLI can print one clear line.
 * Through runCaptured, not execa: the listings of every run go through here (see there).
 */
export async function runBtrfs(
  args: readonly string[],
  options: { signal?: AbortSignal; failure?: FailureKind; what?: string } = {},
): Promise<string> {
  const command = formatCommand(args);
  tracer(command);
  const result = await runCaptured('btrfs', args, options.signal ? { signal: options.signal } : {});
  if (result.exitCode === 0 && !result.isCanceled && !result.isTruncated) return result.stdout;
  // Killed because `signal` aborted: an interruption, not a failure of btrfs.
  if (result.isCanceled) throw new InterruptedError(`interrupted while ${options.what ?? command}`);
  if (result.isTruncated) throw btrfsFailure(command, 'its output is too large to read', undefined, options);
  throw btrfsFailure(command, result.stderr || spawnFailure(result), result.spawnErrorCode, options);
}

function spawnFailure(result: CapturedResult): string {
  if (result.spawnErrorCode !== undefined) return `cannot run btrfs (${result.spawnErrorCode})`;
  return result.exitCode === null ? 'killed by a signal' : `exit code ${result.exitCode}`;
}

/**
 * Starts `btrfs ARGS` with the stdin and stdout asked for (send, receive); its stderr's tail
 * comes with its result. Through node:child_process, as runBtrfs: a cold run measures its
 * diffs and a server receives through here, and neither loads execa.
 */
export function spawnBtrfs(
  args: readonly string[],
  options: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore'; signal?: AbortSignal },
): PipedChild {
  tracer(formatCommand(args));
  return spawnPiped('btrfs', args, options);
}

export function btrfsFailure(
  command: string,
  stderr: string,
  code: string | undefined,
  options: { failure?: FailureKind; what?: string },
): Error {
  if (code === 'ENOENT') {
    return new StoreError('the btrfs command is not installed', {
      hint: 'install btrfs-progs (Debian: apt-get install btrfs-progs)',
    });
  }
  const tail = lastLines(stderr, 3);
  const what = options.what ?? command;
  if (/Operation not permitted|Permission denied/.test(stderr) && process.getuid?.() !== 0) {
    return new PermissionError(`${what}: permission denied`, { hint: 'btrfs needs root: run buttersink with sudo' });
  }
  const message = `${what} failed${tail ? `: ${tail.replaceAll('\n', ' | ')}` : ''}`;
  return options.failure === 'transfer' ? new TransferError(message, { command, stderrTail: tail }) : new StoreError(message);
}
