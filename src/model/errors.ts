/**
 * The typed errors buttersink throws on purpose. Each carries its {@link ErrorKind} as data;
 * each boundary has one table from kind to what it answers: the CLI's exit codes
 * ({@link EXIT_CODES}, used by `src/cli/run-cli.ts`), the mount's errnos
 * (`src/fuse/fs-error.ts`) and the server's wire kinds (`src/remote/wire-errors.ts`).
 * Anything else is a bug and exits with {@link ExitCode.Internal} and a stack trace under -v.
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

/** What went wrong, as the boundaries tell it apart. */
export type ErrorKind =
  | 'usage'
  | 'permission'
  | 'store'
  /** A diff store refuses to delete what others are stored as diffs from. */
  | 'still-needed'
  /** The destination already has that snapshot. */
  | 'exists'
  /** No store to send from has that snapshot. */
  | 'no-such-snapshot'
  | 'transfer'
  | 'busy'
  | 'interrupted';

/** The CLI's table: the exit code of each kind. */
export const EXIT_CODES: Readonly<Record<ErrorKind, ExitCode>> = {
  usage: ExitCode.Usage,
  permission: ExitCode.Permission,
  store: ExitCode.Store,
  'still-needed': ExitCode.Store,
  exists: ExitCode.Store,
  'no-such-snapshot': ExitCode.Store,
  transfer: ExitCode.Transfer,
  busy: ExitCode.Busy,
  interrupted: ExitCode.Interrupted,
};

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Base class for errors whose message is meant for the user as is. */
export abstract class ButtersinkError extends Error {
  abstract readonly kind: ErrorKind;
  /** Optional second line: what the user can do about it. */
  readonly hint: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }

  get exitCode(): ExitCode {
    return EXIT_CODES[this.kind];
  }
}

export class UsageError extends ButtersinkError {
  readonly kind: ErrorKind = 'usage';
}

export class PermissionError extends ButtersinkError {
  readonly kind: ErrorKind = 'permission';
}

export class StoreError extends ButtersinkError {
  readonly kind: ErrorKind = 'store';
}

/**
 * A diff store refuses to delete a snapshot that others are stored as diffs from (see
 * `storedDependents`): they could not be restored any more. Nothing was deleted.
 */
export class StillNeededError extends StoreError {
  override readonly kind: ErrorKind = 'still-needed';
  /** Names of the snapshots that need it. */
  readonly dependents: readonly string[];

  constructor(message: string, dependents: readonly string[], options?: { cause?: unknown; hint?: string }) {
    super(message, options);
    this.dependents = dependents;
  }
}

/** The destination already has a snapshot of that name, or the same snapshot under another. */
export class SnapshotExistsError extends StoreError {
  override readonly kind: ErrorKind = 'exists';
}

/** No store to send from has a snapshot of that name. */
export class NoSuchSnapshotError extends StoreError {
  override readonly kind: ErrorKind = 'no-such-snapshot';
}

/** A child command (btrfs send/receive/...) failed; carries its command line and stderr tail. */
export class TransferError extends ButtersinkError {
  readonly kind: ErrorKind = 'transfer';
  readonly command: string | undefined;
  readonly stderrTail: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string; command?: string; stderrTail?: string }) {
    super(message, options);
    this.command = options?.command;
    this.stderrTail = options?.stderrTail;
  }
}

export class BusyError extends ButtersinkError {
  readonly kind: ErrorKind = 'busy';
}

export class InterruptedError extends ButtersinkError {
  readonly kind: ErrorKind = 'interrupted';
}
