import { ButtersinkError, messageOf, type ErrorKind } from '../model/errors.js';
import { WindowError } from './copy-window.js';

/** The errnos the mount answers with (names as in errno.h; the ops layer maps them to numbers). */
export type Errno =
  | 'EPERM'
  | 'ENOENT'
  | 'EIO'
  | 'EBADF'
  | 'EACCES'
  | 'EBUSY'
  | 'EEXIST'
  | 'EXDEV'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EINVAL'
  | 'EROFS'
  | 'ENOTEMPTY'
  | 'ENODATA'
  | 'EINTR'
  | 'ENOSPC'
  | 'ENOTSUP';

/** A filesystem answer other than success. `message`, when set, goes to the status file's errors. */
export class FsError extends Error {
  constructor(
    readonly errno: Errno,
    message?: string,
  ) {
    super(message ?? errno);
  }

  /** True when the message says more than the errno (worth showing in status/log). */
  get isExplained(): boolean {
    return this.message !== this.errno;
  }
}

/** The mount's table: the errno of each kind of buttersink error. */
const ERRNOS: Readonly<Record<ErrorKind, Errno>> = {
  usage: 'EIO', // a usage error inside the mount is a bug of ours, not the caller's EINVAL
  permission: 'EACCES',
  store: 'EIO',
  'still-needed': 'EBUSY',
  exists: 'EEXIST',
  'no-such-snapshot': 'EPERM',
  transfer: 'EIO',
  busy: 'EBUSY',
  interrupted: 'EINTR',
};

/** System errors (from node's fs) that are answers as they are. */
const PASSED_ON = new Set<string>(['ENOENT', 'ENOTDIR', 'EACCES', 'EISDIR', 'EINVAL', 'ENODATA']);

/**
 * The one place where errors become errnos (rclone's shape): buttersink's typed errors by
 * their kind ({@link ERRNOS}), keeping their message for the status file; anything else EIO.
 */
export function toFsError(error: unknown): FsError {
  if (error instanceof FsError) return error;
  if (error instanceof WindowError) return new FsError(error.errno, error.errno === 'EIO' ? error.message : undefined);
  const message = messageOf(error);
  const errno = error instanceof ButtersinkError ? ERRNOS[error.kind] : undefined;
  if (errno !== undefined && errno !== 'EIO') {
    const hint = error instanceof ButtersinkError && error.kind === 'still-needed' && error.hint ? ` (${error.hint})` : '';
    return new FsError(errno, message + hint);
  }
  // A receive into a full filesystem (local, or on an SSH remote): btrfs says so in strerror's
  // words, which reach here inside the transfer error's message.
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC' || /No space left on device/.test(message))
    return new FsError('ENOSPC', message);
  if (errno !== undefined) return new FsError(errno, message);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && PASSED_ON.has(code)) return new FsError(code as Errno);
  if ((error as Error | undefined)?.name === 'AbortError') return new FsError('EINTR', message);
  return new FsError('EIO', message);
}
