import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes, SnapshotFiles, Store } from '../model/store.js';
import { attributesOf, readRange } from '../stores/btrfs/local-files.js';
import { FsError } from './fs-error.js';
import type { XattrReader } from './read-xattrs.js';
import { S_IFDIR, S_IFMT, S_IFREG } from './copy-window.js';

/** An open regular file of a snapshot. */
export interface OpenFile {
  /** Reads into `buffer` from `position`; resolves the bytes read (0 at the end). */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * The one way the mount reads a snapshot's files, whatever the store: a local store's real
 * snapshot directory, or the store's own {@link SnapshotFiles} (an SSH store's server).
 * Paths are relative to the snapshot (`''` is its root), `/`-separated.
 */
export interface SnapshotReader extends SnapshotFiles {
  xattrs(relative: string): Promise<Map<string, Buffer>>;
  /** Opens a regular file. @throws FsError EISDIR for a directory, EINVAL for other types. */
  open(relative: string): Promise<OpenFile>;
  /** Bytes to compare a copy with: none when the file is missing or no regular file. */
  readToCompare(relative: string, offset: number, length: number): Promise<Buffer>;
}

/** The reader for snapshot `name` of `store`; undefined when the store shows no files (S3). */
export function snapshotReader(store: Store, name: string, xattrs: XattrReader): SnapshotReader | undefined {
  const directory = store.snapshotDirectory?.({ name });
  if (directory !== undefined) return localReader(directory, xattrs);
  const files = store.snapshotFiles?.({ name });
  return files === undefined ? undefined : remoteReader(files);
}

function localReader(directory: string, xattrs: XattrReader): SnapshotReader {
  const at = (relative: string): string => (relative === '' ? directory : path.join(directory, relative));
  return {
    lstat: async (relative) => attributesOf(await lstat(at(relative))),
    readdir: (relative) => readdir(at(relative)),
    readlink: (relative) => readlink(at(relative)),
    read: async (relative, offset, length) => {
      const handle = await openNoFollow(at(relative));
      try {
        return await readRange(handle, offset, length);
      } finally {
        await handle.close();
      }
    },
    xattrs: (relative) => xattrs.read(at(relative)),
    open: async (relative) => {
      const handle = await openNoFollow(at(relative));
      return { read: async (buffer, length, position) => (await handle.read(buffer, 0, length, position)).bytesRead, close: () => handle.close() };
    },
    readToCompare: async (relative, offset, length) => {
      let handle: FileHandle;
      try {
        handle = await openNoFollow(at(relative));
      } catch {
        return Buffer.alloc(0);
      }
      try {
        return await readRange(handle, offset, length);
      } finally {
        await handle.close();
      }
    },
  };
}

function remoteReader(files: SnapshotFiles): SnapshotReader {
  return {
    lstat: (relative) => files.lstat(relative),
    readdir: (relative) => files.readdir(relative),
    readlink: (relative) => files.readlink(relative),
    read: (relative, offset, length) => files.read(relative, offset, length),
    xattrs: async (relative) => (await files.xattrs?.(relative)) ?? new Map(),
    open: async (relative) => {
      const attributes: FileAttributes = await files.lstat(relative);
      if ((attributes.mode & S_IFMT) === S_IFDIR) throw new FsError('EISDIR');
      if ((attributes.mode & S_IFMT) !== S_IFREG) throw new FsError('EINVAL');
      return { read: async (buffer, length, position) => (await files.read(relative, position, length)).copy(buffer, 0), close: async () => {} };
    },
    readToCompare: (relative, offset, length) =>
      files.read(relative, offset, length).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'EISDIR' || error.code === 'ELOOP') return Buffer.alloc(0);
        throw error;
      }),
  };
}

function openNoFollow(file: string): Promise<FileHandle> {
  return open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
}
