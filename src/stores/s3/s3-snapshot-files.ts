import { LRUCache } from 'lru-cache';
import type { FileAttributes, SnapshotFiles } from '../../model/store.js';
import {
  EXTENT_FIELDS,
  Extent,
  type IndexInode,
  lookup,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type SnapshotIndex,
} from '../../sendstream/snapshot-index.js';
import type { ExtentReader, ReadableFile, ResolvedExtent } from './extent-reader.js';
import type { S3Inventory } from './s3-layout.js';

/** The one file an S3 snapshot that cannot be browsed shows, saying why. */
export const CANNOT_BROWSE_FILE = 'BUTTERSINK-CANNOT-BROWSE.txt';

export interface S3SnapshotFilesOptions {
  /** The snapshot's index (loaded or built on first use). */
  readonly index: () => Promise<SnapshotIndex>;
  /**
   * The index when it is at hand without fetching or building anything, and the snapshot's
   * upload time: `lstat('')` answers from these, so that `ls -l` of a store with many
   * snapshots does not fetch every index (or, in a bucket without indexes, read every chain).
   */
  readonly loaded: () => Promise<{ index: SnapshotIndex | undefined; uploadedAt: Date | null }>;
  readonly inventory: () => Promise<S3Inventory>;
  readonly reader: ExtentReader;
  /** `s3://bucket/prefix/` and the snapshot's name, for the cannot-browse file. */
  readonly url: string;
  readonly name: string;
  /** The store's files described so far (see {@link describedFiles}). */
  readonly described: LRUCache<string, ReadableFile>;
}

/** A store's cache of files read through its extent reader, described once (extents resolved to keys). */
export function describedFiles(): LRUCache<string, ReadableFile> {
  return new LRUCache<string, ReadableFile>({ max: 4096 });
}
/** A number per index object, so that a file's description never outlives the index it came from. */
const serials = new WeakMap<SnapshotIndex, number>();
let lastSerial = 0;
function serialOf(index: SnapshotIndex): number {
  let serial = serials.get(index);
  if (serial === undefined) serials.set(index, (serial = ++lastSerial));
  return serial;
}

/** Hard-link counts per index, counted once. */
const linkCounts = new WeakMap<SnapshotIndex, Uint32Array>();

/**
 * The files of one S3 snapshot ({@link SnapshotFiles}), answered from its index: names,
 * attributes, link targets and xattrs from the index alone, file bytes through the
 * {@link ExtentReader} (ranged GETs of the write commands that carried them). Paths come in as
 * the mount's text (UTF-8) and are looked up as the bytes they are; names go out the same way.
 *
 * A snapshot whose index cannot serve it (a stream with compressed extents, a clone source the
 * store lacks) shows one file, {@link CANNOT_BROWSE_FILE}, that says why and how to restore it:
 * never a partial tree that could pass for the snapshot.
 */
export function s3SnapshotFiles(options: S3SnapshotFilesOptions): SnapshotFiles {
  const described = options.described;
  const entry = async (relative: string): Promise<{ index: SnapshotIndex; inode: IndexInode; number: number }> => {
    const index = await options.index();
    if (index.unbrowsable !== undefined) throw errno('ENOENT', relative); // only the note exists (see below)
    const found = lookup(index, toBytes(relative));
    if (found === undefined) throw errno('ENOENT', relative);
    return { index, ...found };
  };
  const note = async (): Promise<Buffer | undefined> => {
    const index = await options.index();
    if (index.unbrowsable === undefined) return undefined;
    return Buffer.from(
      `${options.name} is stored in ${options.url}, but it cannot be browsed here: ${index.unbrowsable}.\n` +
        `Restore it to a btrfs directory to read it: buttersink sync ${options.url}${options.name} /path/to/btrfs/dir/\n`,
    );
  };
  const file = async (relative: string): Promise<ReadableFile> => {
    const { index, inode, number } = await entry(relative);
    if ((inode.mode & S_IFMT) === S_IFDIR) throw errno('EISDIR', relative);
    if ((inode.mode & S_IFMT) !== S_IFREG) throw errno('EINVAL', relative);
    const id = `${index.to}_${index.from ?? 'None'}#${serialOf(index)}:${number}`;
    let readable = described.get(id);
    if (readable === undefined) {
      readable = { id, size: inode.size, extents: resolve(index, inode, await options.inventory()) };
      described.set(id, readable);
    }
    return readable;
  };
  const noteRead = async (relative: string): Promise<Buffer | undefined> => (relative === CANNOT_BROWSE_FILE ? note() : undefined);

  return {
    lstat: async (relative) => {
      const text = await noteRead(relative);
      if (text !== undefined) return noteAttributes(text.length, S_IFREG | 0o444);
      if (relative === '') {
        const { index, uploadedAt } = await options.loaded();
        // Not loaded yet: a directory with the upload's time, until something in it is read.
        if (index === undefined) return { ...noteAttributes(0, S_IFDIR | 0o755), ...times(uploadedAt?.getTime() ?? Date.now()) };
      }
      if (relative === '' && (await note()) !== undefined) return noteAttributes(0, S_IFDIR | 0o555);
      const { index, inode, number } = await entry(relative);
      return attributesOf(index, inode, number);
    },
    readdir: async (relative) => {
      if (relative === '' && (await note()) !== undefined) return [CANNOT_BROWSE_FILE];
      const { inode } = await entry(relative);
      if (inode.entries === undefined) throw errno('ENOTDIR', relative);
      return [...inode.entries.keys()].map(fromBytes);
    },
    readlink: async (relative) => {
      const { inode } = await entry(relative);
      if (inode.target === undefined) throw errno('EINVAL', relative);
      return fromBytes(inode.target);
    },
    read: async (relative, offset, length) => {
      const text = await noteRead(relative);
      if (text !== undefined) return text.subarray(offset, offset + length);
      return options.reader.read(await file(relative), offset, length);
    },
    open: async (relative) => {
      const text = await noteRead(relative);
      if (text !== undefined) {
        return { read: async (buffer, length, position) => text.copy(buffer, 0, position, position + length), close: async () => {} };
      }
      const readable = await file(relative);
      return {
        read: async (buffer, length, position) => (await options.reader.read(readable, position, length)).copy(buffer, 0),
        close: async () => {},
      };
    },
    xattrs: async (relative) => {
      if ((await noteRead(relative)) !== undefined) return new Map();
      if (relative === '' && (await note()) !== undefined) return new Map();
      const { inode } = await entry(relative);
      return new Map([...(inode.xattrs ?? [])].map(([name, value]) => [fromBytes(name), value]));
    },
  };
}

/** The extents of a file with their objects named by key; an object that changed or went away reads as EIO. */
function resolve(index: SnapshotIndex, inode: IndexInode, inventory: S3Inventory): ResolvedExtent[] {
  const keys = index.objects.map((o) => {
    const diff = inventory.diffs.find((d) => d.to === o.to && d.from === o.from);
    return diff !== undefined && diff.bytes === o.bytes ? diff.key : undefined;
  });
  const e = inode.extents ?? [];
  const extents: ResolvedExtent[] = [];
  for (let at = 0; at < e.length; at += EXTENT_FIELDS) {
    const object = e[at + Extent.Object]!;
    const key = keys[object];
    if (key === undefined) {
      const o = index.objects[object]!;
      throw Object.assign(
        new Error(
          `the stored diff ${o.to}_${o.from ?? 'None'} this file's data is in is gone from the bucket, or was uploaded again since it was indexed`,
        ),
        { code: 'EIO' },
      );
    }
    extents.push({
      fileOffset: e[at + Extent.FileOffset]!,
      length: e[at + Extent.Length]!,
      key,
      commandStart: e[at + Extent.CommandStart]!,
      commandBytes: e[at + Extent.CommandBytes]!,
      dataStart: e[at + Extent.DataStart]!,
    });
  }
  return extents;
}

function attributesOf(index: SnapshotIndex, inode: IndexInode, number: number): FileAttributes {
  let names = 0;
  for (const name of inode.entries?.keys() ?? []) names += name.length;
  let data = 0;
  const e = inode.extents ?? [];
  for (let at = 0; at < e.length; at += EXTENT_FIELDS) data += e[at + Extent.Length]!;
  return {
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    // A btrfs directory's size is twice the bytes of its names (each is in two trees).
    size: inode.entries !== undefined ? 2 * names : inode.size,
    // btrfs counts 1 for a directory, whatever it holds.
    nlink: inode.entries !== undefined ? 1 : Math.max(1, linksOf(index)[number] ?? 1),
    rdev: inode.rdev,
    blksize: 4096,
    blocks: Math.ceil(data / 4096) * 8,
    atime: inode.atime,
    mtime: inode.mtime,
    ctime: inode.ctime,
  };
}

function linksOf(index: SnapshotIndex): Uint32Array {
  let counts = linkCounts.get(index);
  if (counts === undefined) {
    counts = new Uint32Array(index.inodes.length);
    for (const inode of index.inodes) for (const n of inode?.entries?.values() ?? []) counts[n]! += 1;
    linkCounts.set(index, counts);
  }
  return counts;
}

function times(at: number): Pick<FileAttributes, 'atime' | 'mtime' | 'ctime'> {
  return { atime: at, mtime: at, ctime: at };
}

function noteAttributes(size: number, mode: number): FileAttributes {
  const now = Date.now();
  return { mode, uid: 0, gid: 0, size, nlink: 1, rdev: 0, blksize: 4096, blocks: 0, atime: now, mtime: now, ctime: now };
}

/** The mount's text path as the bytes the index keeps (latin1 characters). */
function toBytes(relative: string): string {
  return Buffer.from(relative, 'utf8').toString('latin1');
}

function fromBytes(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}

function errno(code: string, relative: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${relative === '' ? 'the snapshot root' : relative}`), { code });
}
