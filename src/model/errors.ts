/**
 * The typed errors buttersink throws on purpose. The CLI's one error boundary
 * (`src/cli/run-cli.ts`) maps each kind to a one-line message and an exit code; anything
 * else is a bug and exits with {@link ExitCode.Internal} and a stack trace under `-V`.
 */

/** Documented exit codes (README "Exit codes"). */
export const ExitCode = {
  Ok: 0,
  /** An unexpected failure: a bug, reported with its stack under -V. */
  Internal: 1,
  /** Bad command line: unknown flag, malformed URL, conflicting options. */
  Usage: 2,
  /** Not running as root, or the OS refused access. */
  Permission: 3,
  /** A store cannot be used: missing directory, not btrfs, no snapshots, conflicting names. */
  Store: 4,
  /** A send, receive, measurement or delete failed part way; nothing incomplete is left visible. */
  Transfer: 5,
  /** Another buttersink holds the destination's lock. */
  Busy: 6,
  /** Interrupted by SIGINT/SIGTERM; partial work was removed. */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class for errors whose message is meant for the user as is. */
export abstract class ButtersinkError extends Error {
  abstract readonly exitCode: ExitCode;
  /** Optional second line: what the user can do about it. */
  readonly hint: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

export class UsageError extends ButtersinkError {
  readonly exitCode = ExitCode.Usage;
}

export class PermissionError extends ButtersinkError {
  readonly exitCode = ExitCode.Permission;
}

export class StoreError extends ButtersinkError {
  readonly exitCode = ExitCode.Store;
}

/**
 * A diff store refuses to delete a snapshot that others are stored as diffs from (see
 * `storedDependents`): they could not be restored any more. Nothing was deleted.
 */
export class StillNeededError extends StoreError {
  /** Names of the snapshots that need it. */
  readonly dependents: readonly string[];

  constructor(message: string, dependents: readonly string[], options?: { cause?: unknown; hint?: string }) {
    super(message, options);
    this.dependents = dependents;
  }
}

/** The destination already has a snapshot of that name, or the same snapshot under another. */
export class SnapshotExistsError extends StoreError {}

/** No store to send from has a snapshot of that name. */
export class NoSuchSnapshotError extends StoreError {}

/** A child command (btrfs send/receive/...) failed; carries its command line and stderr tail. */
export class TransferError extends ButtersinkError {
  readonly exitCode = ExitCode.Transfer;
  readonly command: string | undefined;
  readonly stderrTail: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string; command?: string; stderrTail?: string }) {
    super(message, options);
    this.command = options?.command;
    this.stderrTail = options?.stderrTail;
  }
}

export class BusyError extends ButtersinkError {
  readonly exitCode = ExitCode.Busy;
}

export class InterruptedError extends ButtersinkError {
  readonly exitCode = ExitCode.Interrupted;
}
