/**
 * The index of a stored send stream: the complete file tree of the snapshot the stream (applied
 * to its parent's tree) produces, with every regular file's bytes located in the stored streams
 * of its chain. It lets a diff store (S3) answer `ls`, `stat` and `cat` inside a snapshot
 * without replaying its chain: file data is fetched with ranged reads of the `write` commands
 * that carried it.
 *
 * Pure data: built by `index-builder.ts` while a stream passes, written and read by
 * `index-codec.ts`. Names, link targets and xattr names are raw bytes as latin1 strings (the
 * kernel compares bytes, not UTF-8 text), as everywhere in `sendstream/`.
 */

/** The types of entry a snapshot holds, as `st_mode & S_IFMT` tells them apart. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/**
 * Fields of one data extent in {@link IndexInode.extents}, which is a flat array of
 * {@link EXTENT_FIELDS} numbers per extent (a million small files cost one array each, not an
 * object per extent). Extents are sorted by file offset and never overlap; a range of the file
 * below its size that no extent covers is a hole (reads as zeros).
 */
export const Extent = {
  /** Offset of the extent's first byte in the file. */
  FileOffset: 0,
  Length: 1,
  /** Which stored stream holds it: an index into {@link SnapshotIndex.objects}. */
  Object: 2,
  /**
   * The `write` command that carried the bytes: its first byte in the object, and its whole
   * length (header and payload), so that its CRC32C can be checked before a byte is served.
   */
  CommandStart: 3,
  CommandBytes: 4,
  /** Where the extent's first byte lies in the object (inside that command's data). */
  DataStart: 5,
} as const;
export const EXTENT_FIELDS = 6;

/** One file, directory, link or special file; hard links are several entries naming one inode. */
export interface IndexInode {
  /** `st_mode`: type bits ({@link S_IFMT}) and permissions. */
  mode: number;
  uid: number;
  gid: number;
  /** Device number of a character or block device (0 otherwise), as the stream's `rdev`. */
  rdev: number;
  /** Bytes: a regular file's length, a link's target length, 0 for the rest. */
  size: number;
  /** Times in milliseconds since the epoch (with a fraction), as the stream's last `utimes` set them. */
  atime: number;
  mtime: number;
  ctime: number;
  /** Symbolic links: the target. */
  target?: string;
  /** Extended attributes, name → value; absent when there are none. */
  xattrs?: Map<string, Buffer>;
  /** Regular files: data extents, {@link EXTENT_FIELDS} numbers each (see {@link Extent}). */
  extents?: number[];
  /** Directories: name → inode number (an index into {@link SnapshotIndex.inodes}). */
  entries?: Map<string, number>;
}

/** A stored stream that extents point into: the diff `from` → `to` (`from` null: a full stream). */
export interface IndexedObject {
  readonly to: string;
  readonly from: string | null;
  /** The object's size when indexed: an object of another size is not the one indexed. */
  readonly bytes: number;
}

export interface SnapshotIndex {
  /** Effective UUID of the snapshot this tree is. */
  readonly to: string;
  /** The parent the indexed diff applies to (null: a full stream). */
  readonly from: string | null;
  /** The streams extents point into; the indexed diff itself is one of them. */
  readonly objects: IndexedObject[];
  /** Inode 0 is the snapshot's root directory; inodes no entry names may be left out or unused. */
  readonly inodes: (IndexInode | undefined)[];
  /**
   * Why this snapshot cannot be browsed (a stream with compressed extents, a clone source the
   * store does not hold...): then `inodes` may be incomplete and must not be shown as the
   * snapshot's contents. Undefined for a complete index.
   */
  readonly unbrowsable?: string;
}

/** The inode of the entry at `relative` ('' is the root, `/`-separated), or undefined. */
export function lookup(index: SnapshotIndex, relative: string): { inode: IndexInode; number: number } | undefined {
  let number = 0;
  let inode = index.inodes[0];
  if (relative === '') return inode && { inode, number };
  for (const name of relative.split('/')) {
    const next = inode?.entries?.get(name);
    if (next === undefined) return undefined;
    number = next;
    inode = index.inodes[next];
  }
  return inode && { inode, number };
}
