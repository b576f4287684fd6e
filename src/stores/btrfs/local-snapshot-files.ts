import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes, SnapshotFiles } from '../../model/store.js';

/**
 * The one way to read a local snapshot's files ({@link SnapshotFiles}): a local btrfs store
 * gives it to the mount, and the SSH server answers browse requests with it (after its own
 * containment checks). The entry a path names is never followed: `lstat`, `readlink`, and
 * files opened with O_NOFOLLOW; `readdir` lists only a real directory. Directories on the way
 * are resolved by the kernel: the mount asks component by component, the server checks them.
 * Failures reject as node's fs does, with `code` (ENOENT, ENOTDIR, EISDIR, EINVAL, ELOOP).
 *
 * @param root the snapshot's directory
 * @param xattrs reads an entry's extended attributes (node has no xattr API: getfattr)
 */
export function localSnapshotFiles(root: string, xattrs: (file: string) => Promise<Map<string, Buffer>>): SnapshotFiles {
  const at = (relative: string): string => (relative === '' ? root : path.join(root, relative));
  return {
    lstat: async (relative) => attributesOf(await lstat(at(relative))),
    readdir: async (relative) => {
      if (!(await lstat(at(relative))).isDirectory()) throw errno('ENOTDIR', relative);
      return readdir(at(relative));
    },
    readlink: (relative) => readlink(at(relative)),
    read: async (relative, offset, length) => {
      const handle = await openRegular(at(relative), relative);
      try {
        return await readRange(handle, offset, length);
      } finally {
        await handle.close();
      }
    },
    open: async (relative) => {
      const handle = await openRegular(at(relative), relative);
      return {
        read: async (buffer, length, position) => (await handle.read(buffer, 0, length, position)).bytesRead,
        close: () => handle.close(),
      };
    },
    xattrs: async (relative) => {
      await lstat(at(relative)); // ENOENT for a missing entry, not "no xattrs"
      return xattrs(at(relative));
    },
  };
}

/**
 * Opens a regular file, and nothing else: opening a FIFO would block, a device node could
 * act. (A link is ELOOP, as open with O_NOFOLLOW says.)
 */
async function openRegular(file: string, relative: string): Promise<FileHandle> {
  const info = await lstat(file);
  if (!info.isFile()) throw errno(info.isDirectory() ? 'EISDIR' : info.isSymbolicLink() ? 'ELOOP' : 'EINVAL', relative);
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  if ((await handle.stat()).ino !== info.ino) {
    await handle.close();
    throw errno('ENOENT', relative); // replaced meanwhile
  }
  return handle;
}

/** A file's attributes as {@link FileAttributes} carries them (times in milliseconds). */
export function attributesOf(st: Stats): FileAttributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    nlink: st.nlink,
    rdev: st.rdev,
    blksize: st.blksize,
    blocks: st.blocks,
    atime: st.atimeMs,
    mtime: st.mtimeMs,
    ctime: st.ctimeMs,
  };
}

/** Up to `length` bytes of an open file from `offset`: all of them, fewer only at its end. */
async function readRange(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let total = 0;
  while (total < length) {
    const { bytesRead } = await handle.read(buffer, total, length - total, offset + total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return buffer.subarray(0, total);
}

function errno(code: string, relative: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${relative === '' ? 'the snapshot root' : relative}`), { code });
}
