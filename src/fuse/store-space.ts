import type { FuseStatfs } from 'fuse-native';
import { statfs } from 'node:fs/promises';
import type { Store } from '../model/store.js';

/** A store's size and free space in bytes, as `df` shows a directory of the mount. */
export interface Space {
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** Free for an unprivileged writer (btrfs keeps a reserve). */
  readonly availableBytes: number;
}

/**
 * What a store whose space the mount cannot learn (S3, SSH) shows: 1 PiB, all free. File
 * managers refuse to copy into a filesystem that reports 0 free, and these stores have no
 * fixed size (S3) or report none over buttersink's protocol (SSH); a transfer that runs out
 * of space still fails with ENOSPC.
 */
export const UNKNOWN_SPACE: Space = { totalBytes: 2 ** 50, freeBytes: 2 ** 50, availableBytes: 2 ** 50 };

/** The space of the filesystem a local store's directory is on; {@link UNKNOWN_SPACE} for other stores. */
export async function spaceOf(store: Store): Promise<Space> {
  const directory = store.snapshotDirectory?.({ name: '' });
  if (directory === undefined) return UNKNOWN_SPACE;
  const s = await statfs(directory);
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize };
}

/** statfs(2) as fuse-native wants it. */
export type StatfsReply = FuseStatfs;

const ST_RDONLY = 1;
const MAX_U32 = 0xffffffff;

/**
 * Block counts for `space`: fuse-native passes them as 32-bit numbers, so the block size
 * grows (from 4 KiB, in powers of two) until the total fits; `df` multiplies back.
 */
export function statfsReply(space: Space, isReadOnly: boolean): StatfsReply {
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
