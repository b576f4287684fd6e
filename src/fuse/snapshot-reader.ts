import type { OpenSnapshotFile, SnapshotFiles, Store } from '../model/store.js';
import { FsError } from './fs-error.js';
import { S_IFDIR, S_IFMT, S_IFREG } from './copy-window.js';

/** An open regular file of a snapshot. */
export type OpenFile = OpenSnapshotFile;

/**
 * How the mount reads a snapshot's files, whatever the store: the store's own
 * {@link SnapshotFiles} (a local store's directory, an SSH store's server), with what the
 * FUSE ops need on top. Paths are relative to the snapshot (`''` is its root), `/`-separated.
 */
export interface SnapshotReader extends SnapshotFiles {
  xattrs(relative: string): Promise<Map<string, Buffer>>;
  /** Opens a regular file. @throws FsError EISDIR for a directory, EINVAL for other types. */
  open(relative: string): Promise<OpenFile>;
  /** Bytes to compare a copy with: none when the file is missing or no regular file. */
  readToCompare(relative: string, offset: number, length: number): Promise<Buffer>;
}

/** The reader for snapshot `name` of `store`; undefined when the store shows no files. */
export function snapshotReader(store: Pick<Store, 'snapshotFiles'>, name: string): SnapshotReader | undefined {
  const files = store.snapshotFiles?.({ name });
  return files === undefined ? undefined : readerOf(files);
}

function readerOf(files: SnapshotFiles): SnapshotReader {
  return {
    lstat: (relative) => files.lstat(relative),
    readdir: (relative) => files.readdir(relative),
    readlink: (relative) => files.readlink(relative),
    read: (relative, offset, length) => files.read(relative, offset, length),
    xattrs: async (relative) => (await files.xattrs?.(relative)) ?? new Map(),
    open: async (relative) => {
      if (files.open !== undefined) {
        return files.open(relative).catch((error: NodeJS.ErrnoException) => {
          throw error.code === 'EISDIR' || error.code === 'EINVAL' ? new FsError(error.code) : error;
        });
      }
      const { mode } = await files.lstat(relative);
      if ((mode & S_IFMT) === S_IFDIR) throw new FsError('EISDIR');
      if ((mode & S_IFMT) !== S_IFREG) throw new FsError('EINVAL');
      // Snapshots are read-only: each read can name the file again (no descriptor to keep).
      return {
        read: async (buffer, length, position) => (await files.read(relative, position, length)).copy(buffer, 0),
        close: async () => {},
      };
    },
    readToCompare: (relative, offset, length) =>
      files.read(relative, offset, length).catch((error: NodeJS.ErrnoException) => {
        if (
          error.code === 'ENOENT' ||
          error.code === 'EISDIR' ||
          error.code === 'EINVAL' ||
          error.code === 'ELOOP' ||
          error.code === 'ENOTDIR'
        )
          return Buffer.alloc(0);
        throw error;
      }),
  };
}
