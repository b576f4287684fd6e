import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { FileAttributes } from '../../model/store.js';

/**
 * Reading a local snapshot's files, shared by the mount (local stores) and the SSH server's
 * browse requests (the server's own directory).
 */

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
export async function readRange(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let total = 0;
  while (total < length) {
    const { bytesRead } = await handle.read(buffer, total, length - total, offset + total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return buffer.subarray(0, total);
}
