import type { FuseStatfs } from 'fuse-native';
import type { Store, StoreSpace } from '../model/store.js';

/**
 * What a store whose space the mount cannot learn (S3, SSH) shows: 1 PiB, all free. File
 * managers refuse to copy into a filesystem that reports 0 free, and these stores have no
 * fixed size (S3) or report none over buttersink's protocol (SSH); a transfer that runs out
 * of space still fails with ENOSPC.
 */
export const UNKNOWN_SPACE: StoreSpace = { totalBytes: 2 ** 50, freeBytes: 2 ** 50, availableBytes: 2 ** 50 };

/** The store's own answer ({@link Store.space}); {@link UNKNOWN_SPACE} when it has none. */
export async function spaceOf(store: Store): Promise<StoreSpace> {
  return store.space === undefined ? UNKNOWN_SPACE : store.space();
}

/** statfs(2) as fuse-native wants it. */
export type StatfsReply = FuseStatfs;

const ST_RDONLY = 1;
const MAX_U32 = 0xffffffff;

/**
 * Block counts for `space`: fuse-native passes them as 32-bit numbers, so the block size
 * grows (from 4 KiB, in powers of two) until the total fits; `df` multiplies back.
 */
export function statfsReply(space: StoreSpace, isReadOnly: boolean): StatfsReply {
  let size = 4096;
  while (space.totalBytes / size > MAX_U32) size *= 2;
  const blocks = (bytes: number): number => Math.min(MAX_U32, Math.floor(bytes / size));
  return {
    bsize: size,
    frsize: size,
    blocks: blocks(space.totalBytes),
    bfree: blocks(space.freeBytes),
    bavail: blocks(space.availableBytes),
    files: 0,
    ffree: 0,
    favail: 0,
    fsid: 0,
    flag: isReadOnly ? ST_RDONLY : 0,
    namemax: 255,
  };
}
