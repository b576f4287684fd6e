import { BusyError, InterruptedError, PermissionError, StillNeededError, StoreError, TransferError } from '../model/errors.js';
import { NoSuchSnapshotError, SnapshotExistsError } from '../model/errors.js';
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

/**
 * The one place where errors become errnos (rclone's shape): buttersink's typed errors keep
 * their message for the status file, anything else is EIO.
 */
export function toFsError(error: unknown): FsError {
  if (error instanceof FsError) return error;
  if (error instanceof WindowError) return new FsError(error.errno, error.errno === 'EIO' ? error.message : undefined);
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof SnapshotExistsError) return new FsError('EEXIST', message);
  if (error instanceof NoSuchSnapshotError) return new FsError('EPERM', message);
  if (error instanceof BusyError) return new FsError('EBUSY', message);
  if (error instanceof StillNeededError) return new FsError('EBUSY', error.hint ? `${message} (${error.hint})` : message);
  if (error instanceof PermissionError) return new FsError('EACCES', message);
  if (error instanceof InterruptedError) return new FsError('EINTR', message);
  // A receive into a full filesystem (local, or on an SSH remote): btrfs says so in strerror's
  // words, which reach here inside the transfer error's message.
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC' || /No space left on device/.test(message)) return new FsError('ENOSPC', message);
  if (error instanceof TransferError || error instanceof StoreError) return new FsError('EIO', message);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EISDIR' || code === 'EINVAL') return new FsError(code);
  if (code === 'ENODATA') return new FsError('ENODATA');
  if ((error as Error | undefined)?.name === 'AbortError') return new FsError('EINTR', message);
  return new FsError('EIO', message);
}
