import type { SendCommand } from './command-reader.js';
import {
  EXTENT_FIELDS,
  Extent,
  type IndexedObject,
  type IndexInode,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type SnapshotIndex,
} from './snapshot-index.js';
import { Attribute, Command } from './stream-format.js';

/**
 * Where {@link IndexBuilder} finds the index of another snapshot: the parent of an incremental
 * stream, or the source of a `clone` from a snapshot other than the one being built. Resolves
 * undefined when there is none (the new index then says why it cannot be browsed).
 */
export type IndexResolver = (uuid: string) => Promise<SnapshotIndex | undefined>;

/**
 * Bounds on what an index may hold (a stream beyond them gets an unbrowsable index, and is
 * still stored): an inode costs about 200-400 bytes while building, an extent 48 (one per
 * 48 KiB write command, so about 1 GiB per TiB of file data; a reflinked copy adds its
 * source's extents again). A crafted stream could otherwise make a browsing machine allocate
 * without end.
 */
export const MAX_INDEX_INODES = 20_000_000;
export const MAX_INDEX_EXTENTS = 50_000_000;

/** A command the index cannot follow: the index is marked unbrowsable with this reason. */
class Unbrowsable extends Error {}

/** fallocate(2) mode bits (`BTRFS_SEND_A_FALLOCATE_MODE`). */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;

const DEFAULT_DIRECTORY_MODE = S_IFDIR | 0o700;
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 4095;

/**
 * Builds the {@link SnapshotIndex} of the snapshot a send stream produces, one command at a
 * time as the stream passes (nothing of the stream is kept: file data is recorded as where it
 * lies in the stored object). An incremental stream starts from its parent's index, which is
 * never changed: the new tree shares the parent's inodes and copies one only when the stream
 * changes it (so a `clone` from the parent still sees the parent as it was). `clone` is
 * resolved to the source's extents, so extents may point into any object of the chain and
 * reading a snapshot never replays it.
 *
 * What the index cannot represent (compressed `encoded_write` data, `update_extent` of a
 * `--no-data` stream, a clone source without an index, a malformed stream) does not stop the
 * stream: the index is finished with {@link SnapshotIndex.unbrowsable} saying why.
 */
export class IndexBuilder {
  readonly #object: { to: string; from: string | null };
  readonly #resolve: IndexResolver;
  #inodes: (IndexInode | undefined)[] = [];
  /** Inodes below this number came from the parent and are shared until copied. */
  #shared = 0;
  readonly #copied = new Set<number>();
  #parent: SnapshotIndex | undefined;
  #objects: IndexedObject[] = [];
  /** Object key (`to_from`) → its number in #objects. */
  readonly #objectNumbers = new Map<string, number>();
  #self = -1;
  #started = false;
  #ended = false;
  /** Extents added so far (an upper bound on those the index holds). */
  #extents = 0;
  #unbrowsable: string | undefined;

  /**
   * @param object the diff being indexed: `to` is the snapshot's effective UUID, `from` its
   *   parent's (null for a full stream)
   */
  constructor(object: { to: string; from: string | null }, resolve: IndexResolver) {
    this.#object = object;
    this.#resolve = resolve;
  }

  /** Why the index cannot be browsed, once known. */
  get unbrowsable(): string | undefined {
    return this.#unbrowsable;
  }

  /**
   * Applies one command that starts at byte `start` of the stored object. Resolves at once
   * for all commands but `snapshot` and a `clone` from another snapshot (which look up an index).
   */
  apply(c: SendCommand, start: number): void | Promise<void> {
    if (this.#unbrowsable !== undefined || this.#ended) return;
    try {
      const pending = this.#apply(c, start);
      if (pending !== undefined) return pending.catch((error: unknown) => this.#give(error));
    } catch (error) {
      this.#give(error);
    }
  }

  /** The stream was malformed or cut: the index says so rather than show half a tree. */
  fail(reason: string): void {
    this.#unbrowsable ??= reason;
  }

  /** The finished index; `bytes` is the stored object's size. */
  finish(bytes: number): SnapshotIndex {
    if (this.#unbrowsable === undefined && !this.#ended) this.#unbrowsable = 'the stream ended before its end command';
    const objects = this.#objects.slice();
    if (this.#self >= 0) objects[this.#self] = { ...this.#object, bytes };
    else objects.push({ ...this.#object, bytes });
    const base = { to: this.#object.to, from: this.#object.from, objects };
    if (this.#unbrowsable !== undefined) return { ...base, inodes: [], unbrowsable: this.#unbrowsable };
    return { ...base, inodes: compact(this.#inodes) };
  }

  #give(error: unknown): void {
    if (error instanceof Unbrowsable) this.#unbrowsable ??= error.message;
    else throw error;
  }

  #apply(c: SendCommand, start: number): void | Promise<void> {
    if (!this.#started) {
      if (c.command === Command.Subvol) return this.#start(undefined);
      if (c.command === Command.Snapshot) return this.#startFrom(uuidOf(c, Attribute.CloneUuid));
      throw new Unbrowsable('the stream does not start with subvol or snapshot');
    }
    switch (c.command) {
      case Command.Mkfile:
        return this.#create(c, S_IFREG | 0o600);
      case Command.Mkdir:
        return this.#create(c, DEFAULT_DIRECTORY_MODE);
      case Command.Mknod:
      case Command.Mkfifo:
      case Command.Mksock: {
        // The kernel sends mode and rdev with all three; only mknod needs them to know the type.
        const mode = Number(u64(c, Attribute.Mode, c.command === Command.Mknod ? undefined : 0o644n));
        const type = mode & S_IFMT;
        const fallback = c.command === Command.Mkfifo ? S_IFIFO : c.command === Command.Mksock ? S_IFSOCK : S_IFCHR;
        const known = type === S_IFCHR || type === S_IFBLK || type === S_IFIFO || type === S_IFSOCK;
        return this.#create(c, (known ? type : fallback) | (mode & 0o7777), Number(u64(c, Attribute.Rdev, 0n)));
      }
      case Command.Symlink: {
        const target = stringOf(c, Attribute.PathLink);
        return this.#create(c, S_IFLNK | 0o777, 0, target);
      }
      case Command.Rename:
        return this.#rename(pathOf(c, Attribute.Path), pathOf(c, Attribute.PathTo));
      case Command.Link: {
        const existing = this.#find(pathOf(c, Attribute.PathLink));
        // link(2) refuses directories: a stream that links one would make a cycle.
        if (this.#inode(existing).entries !== undefined) throw new Unbrowsable('link of a directory');
        const [directory, name] = this.#parentOf(pathOf(c, Attribute.Path));
        if (name.length > MAX_NAME_BYTES) throw new Unbrowsable('a name is longer than NAME_MAX');
        this.#writable(directory).entries!.set(name, existing);
        return;
      }
      case Command.Unlink:
      case Command.Rmdir: {
        const [directory, name] = this.#parentOf(pathOf(c, Attribute.Path));
        if (!this.#inode(directory).entries!.has(name)) throw new Unbrowsable(`${nameOf(c)} of a path that does not exist`);
        this.#writable(directory).entries!.delete(name);
        return;
      }
      case Command.SetXattr: {
        const inode = this.#writable(this.#find(pathOf(c, Attribute.Path, true)));
        const name = stringOf(c, Attribute.XattrName);
        if (name === '') throw new Unbrowsable('an xattr without a name');
        inode.xattrs ??= new Map();
        inode.xattrs.set(name, Buffer.from(attribute(c, Attribute.XattrData)));
        return;
      }
      case Command.RemoveXattr: {
        const inode = this.#writable(this.#find(pathOf(c, Attribute.Path, true)));
        inode.xattrs?.delete(stringOf(c, Attribute.XattrName));
        if (inode.xattrs?.size === 0) delete inode.xattrs;
        return;
      }
      case Command.Write:
        return this.#write(c, start);
      case Command.Clone:
        return this.#clone(c);
      case Command.Truncate: {
        const inode = this.#file(pathOf(c, Attribute.Path));
        const size = Number(u64(c, Attribute.Size));
        setExtents(inode, cut(inode.extents!, size, Number.MAX_SAFE_INTEGER, []));
        inode.size = size;
        return;
      }
      case Command.Fallocate:
        return this.#fallocate(c);
      case Command.Chmod: {
        const inode = this.#writable(this.#find(pathOf(c, Attribute.Path, true)));
        inode.mode = (inode.mode & S_IFMT) | (Number(u64(c, Attribute.Mode)) & 0o7777);
        return;
      }
      case Command.Chown: {
        const inode = this.#writable(this.#find(pathOf(c, Attribute.Path, true)));
        inode.uid = Number(u64(c, Attribute.Uid));
        inode.gid = Number(u64(c, Attribute.Gid));
        return;
      }
      case Command.Utimes: {
        const inode = this.#writable(this.#find(pathOf(c, Attribute.Path, true)));
        inode.atime = timeOf(c, Attribute.Atime);
        inode.mtime = timeOf(c, Attribute.Mtime);
        inode.ctime = timeOf(c, Attribute.Ctime);
        return;
      }
      case Command.End:
        this.#ended = true;
        return;
      case Command.Fileattr:
      case Command.EnableVerity:
        return; // not visible through stat or the mount
      case Command.EncodedWrite:
        throw new Unbrowsable('the stream carries compressed extents (btrfs send --compressed-data), which the index cannot serve');
      case Command.UpdateExtent:
        throw new Unbrowsable('the stream carries no file data (btrfs send --no-data)');
      default:
        throw new Unbrowsable(`the stream has a second subvol/snapshot or unknown command ${c.command}`);
    }
  }

  async #startFrom(parentUuid: string): Promise<void> {
    const parent = await this.#resolve(parentUuid);
    if (parent === undefined) throw new Unbrowsable(`the index of its parent ${parentUuid} is not available`);
    if (parent.unbrowsable !== undefined) throw new Unbrowsable(`its parent cannot be browsed: ${parent.unbrowsable}`);
    this.#start(parent);
  }

  #start(parent: SnapshotIndex | undefined): void {
    this.#started = true;
    this.#parent = parent;
    if (parent) {
      this.#inodes = parent.inodes.slice();
      this.#shared = this.#inodes.length;
      this.#objects = parent.objects.slice();
      parent.objects.forEach((o, n) => {
        this.#objectNumbers.set(objectKey(o), n);
      });
    } else {
      this.#inodes = [{ ...blank(DEFAULT_DIRECTORY_MODE), entries: new Map() }];
    }
    this.#self = this.#objectNumber(this.#object, 0);
  }

  #objectNumber(object: { to: string; from: string | null }, bytes: number): number {
    const key = objectKey(object);
    let n = this.#objectNumbers.get(key);
    if (n === undefined) {
      n = this.#objects.push({ to: object.to, from: object.from, bytes }) - 1;
      this.#objectNumbers.set(key, n);
    }
    return n;
  }

  #create(c: SendCommand, mode: number, rdev = 0, target?: string): void {
    const [directory, name] = this.#parentOf(pathOf(c, Attribute.Path));
    // The rules a stored index is decoded by (index-codec.ts), so that what is served as built
    // is what a reader of the stored index would accept.
    if (name.length > MAX_NAME_BYTES) throw new Unbrowsable(`a name of ${name.length} bytes is longer than NAME_MAX`);
    if (target !== undefined && (target === '' || target.length > MAX_PATH_BYTES))
      throw new Unbrowsable('a symbolic link target is empty or longer than PATH_MAX');
    const entries = this.#writable(directory).entries!;
    if (entries.has(name)) throw new Unbrowsable(`${nameOf(c)} of a path that exists already`);
    if (this.#inodes.length >= MAX_INDEX_INODES) throw new Unbrowsable(`the snapshot has more than ${MAX_INDEX_INODES} files`);
    const inode: IndexInode = blank(mode);
    inode.rdev = rdev;
    if ((mode & S_IFMT) === S_IFDIR) inode.entries = new Map();
    if ((mode & S_IFMT) === S_IFREG) inode.extents = [];
    if (target !== undefined) {
      inode.target = target;
      inode.size = target.length;
    }
    entries.set(name, this.#inodes.push(inode) - 1);
  }

  #rename(from: string[], to: string[]): void {
    if (to.at(-1)!.length > MAX_NAME_BYTES) throw new Unbrowsable('a name is longer than NAME_MAX');
    const [fromDirectory, fromName] = this.#parentOf(from);
    const moving = this.#inode(fromDirectory).entries!.get(fromName);
    if (moving === undefined) throw new Unbrowsable('rename of a path that does not exist');
    const [toDirectory, toName] = this.#parentOf(to);
    if (fromDirectory === toDirectory && fromName === toName) return;
    this.#writable(fromDirectory).entries!.delete(fromName);
    this.#writable(toDirectory).entries!.set(toName, moving);
  }

  #write(c: SendCommand, start: number): void {
    const inode = this.#file(pathOf(c, Attribute.Path));
    const offset = Number(u64(c, Attribute.FileOffset));
    const data = attribute(c, Attribute.Data);
    if (data.length === 0) return;
    const dataStart = start + (data.byteOffset - c.bytes.byteOffset);
    this.#count(1);
    const extent = [offset, data.length, this.#self, start, c.bytes.length, dataStart];
    const extents = inode.extents!;
    const last = extents.length - EXTENT_FIELDS;
    // A file's first extent is its array, exactly that long: most files have one, and a
    // push onto an empty array reserves room for 25 numbers (200 bytes a file).
    if (last < 0) setExtents(inode, extent);
    else if (extents[last + Extent.FileOffset]! + extents[last + Extent.Length]! <= offset) extents.push(...extent);
    else setExtents(inode, cut(extents, offset, offset + data.length, extent));
    inode.size = Math.max(inode.size, offset + data.length);
  }

  async #clone(c: SendCommand): Promise<void> {
    const inode = this.#file(pathOf(c, Attribute.Path));
    const offset = Number(u64(c, Attribute.FileOffset));
    const sourceUuid = uuidOf(c, Attribute.CloneUuid);
    const sourcePath = pathOf(c, Attribute.ClonePath);
    const sourceOffset = Number(u64(c, Attribute.CloneOffset));
    let length = Number(u64(c, Attribute.CloneLen));
    let source: IndexInode;
    let sourceObjects: readonly IndexedObject[];
    if (sourceUuid === this.#object.to) {
      source = this.#inode(this.#find(sourcePath));
      sourceObjects = this.#objects;
    } else {
      const index = sourceUuid === this.#parent?.to ? this.#parent : await this.#resolve(sourceUuid);
      if (index === undefined || index.unbrowsable !== undefined) {
        throw new Unbrowsable(`it clones data from snapshot ${sourceUuid}, whose index is not available`);
      }
      const found = findIn(index, sourcePath);
      if (found === undefined) throw new Unbrowsable('clone from a path that does not exist');
      source = found;
      sourceObjects = index.objects;
    }
    if (source.extents === undefined) throw new Unbrowsable('clone from something that is not a regular file');
    if (length === 0) length = Math.max(0, source.size - sourceOffset); // 0: to the source's end
    const shift = offset - sourceOffset;
    const pieces = slice(source.extents, sourceOffset, sourceOffset + length);
    this.#count(pieces.length / EXTENT_FIELDS);
    for (let at = 0; at < pieces.length; at += EXTENT_FIELDS) {
      pieces[at + Extent.FileOffset]! += shift;
      const object = sourceObjects[pieces[at + Extent.Object]!]!;
      pieces[at + Extent.Object] = sourceObjects === this.#objects ? pieces[at + Extent.Object]! : this.#objectNumber(object, object.bytes);
    }
    setExtents(inode, cut(inode.extents!, offset, offset + length, pieces));
    inode.size = Math.max(inode.size, offset + length);
  }

  #fallocate(c: SendCommand): void {
    const inode = this.#file(pathOf(c, Attribute.Path));
    const mode = Number(u64(c, Attribute.FallocateMode));
    const offset = Number(u64(c, Attribute.FileOffset));
    const length = Number(u64(c, Attribute.Size));
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) setExtents(inode, cut(inode.extents!, offset, offset + length, []));
    if (!(mode & FALLOC_FL_KEEP_SIZE)) inode.size = Math.max(inode.size, offset + length);
  }

  #count(extents: number): void {
    this.#extents += extents;
    if (this.#extents > MAX_INDEX_EXTENTS) throw new Unbrowsable(`the snapshot has more than ${MAX_INDEX_EXTENTS} data extents`);
  }

  /** The regular file at `path`, writable. */
  #file(path: string[]): IndexInode {
    const inode = this.#writable(this.#find(path));
    if (inode.extents === undefined) throw new Unbrowsable('file data written to something that is not a regular file');
    return inode;
  }

  /** The inode number at `path` (the root for none). */
  #find(path: readonly string[]): number {
    let number = 0;
    for (const name of path) {
      const next = this.#inode(number).entries?.get(name);
      if (next === undefined) throw new Unbrowsable(`a command names a path that does not exist`);
      number = next;
    }
    return number;
  }

  /** The directory holding the last component of `path`, and that name. */
  #parentOf(path: readonly string[]): [number, string] {
    const directory = this.#find(path.slice(0, -1));
    if (this.#inode(directory).entries === undefined) throw new Unbrowsable('a path goes through something that is not a directory');
    return [directory, path.at(-1)!];
  }

  #inode(number: number): IndexInode {
    const inode = this.#inodes[number];
    if (inode === undefined) throw new Unbrowsable(`a path names a removed inode`);
    return inode;
  }

  /** The inode, copied first when it is still the parent's (which must stay as it was). */
  #writable(number: number): IndexInode {
    const inode = this.#inode(number);
    if (number >= this.#shared || this.#copied.has(number)) return inode;
    const copy: IndexInode = { ...inode };
    if (inode.entries) copy.entries = new Map(inode.entries);
    if (inode.extents) copy.extents = inode.extents.slice();
    if (inode.xattrs) copy.xattrs = new Map(inode.xattrs);
    this.#inodes[number] = copy;
    this.#copied.add(number);
    return copy;
  }
}

function blank(mode: number): IndexInode {
  return { mode, uid: 0, gid: 0, rdev: 0, size: 0, atime: 0, mtime: 0, ctime: 0 };
}

function objectKey(object: { to: string; from: string | null }): string {
  return `${object.to}_${object.from ?? 'None'}`;
}

function findIn(index: SnapshotIndex, path: readonly string[]): IndexInode | undefined {
  let inode = index.inodes[0];
  for (const name of path) {
    const next = inode?.entries?.get(name);
    inode = next === undefined ? undefined : index.inodes[next];
  }
  return inode;
}

function setExtents(inode: IndexInode, extents: number[]): void {
  inode.extents = extents;
}

/**
 * `extents` with the range [start, end) replaced by `insert` (extents inside that range, in
 * order): extents overlapping the range are trimmed, those inside it dropped.
 */
export function cut(extents: readonly number[], start: number, end: number, insert: readonly number[]): number[] {
  const F = EXTENT_FIELDS;
  const count = extents.length / F;
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (extents[mid * F + Extent.FileOffset]! + extents[mid * F + Extent.Length]! <= start) lo = mid + 1;
    else hi = mid;
  }
  let j = lo;
  while (j < count && extents[j * F + Extent.FileOffset]! < end) j++;
  const result = extents.slice(0, lo * F);
  if (lo < j) {
    const first = lo * F;
    if (extents[first + Extent.FileOffset]! < start) {
      const piece = extents.slice(first, first + F);
      piece[Extent.Length] = start - piece[Extent.FileOffset]!;
      result.push(...piece);
    }
  }
  result.push(...insert);
  if (lo < j) {
    const last = (j - 1) * F;
    const lastEnd = extents[last + Extent.FileOffset]! + extents[last + Extent.Length]!;
    if (lastEnd > end) {
      const piece = extents.slice(last, last + F);
      const drop = end - piece[Extent.FileOffset]!;
      piece[Extent.FileOffset] = end;
      piece[Extent.Length] = lastEnd - end;
      piece[Extent.DataStart] = piece[Extent.DataStart]! + drop;
      result.push(...piece);
    }
  }
  for (let at = j * F; at < extents.length; at++) result.push(extents[at]!);
  return result;
}

/** The extents of [start, end), trimmed to it (a new array). */
export function slice(extents: readonly number[], start: number, end: number): number[] {
  const result: number[] = [];
  for (let at = 0; at < extents.length; at += EXTENT_FIELDS) {
    const from = extents[at + Extent.FileOffset]!;
    const to = from + extents[at + Extent.Length]!;
    if (to <= start || from >= end) continue;
    const piece = extents.slice(at, at + EXTENT_FIELDS);
    const lead = Math.max(0, start - from);
    piece[Extent.FileOffset] = from + lead;
    piece[Extent.DataStart] = piece[Extent.DataStart]! + lead;
    piece[Extent.Length] = Math.min(to, end) - from - lead;
    result.push(...piece);
  }
  return result;
}

/**
 * The inodes reachable from the root, renumbered in walk order (the root stays 0), so that
 * removed files cost nothing in the stored index.
 */
function compact(inodes: readonly (IndexInode | undefined)[]): (IndexInode | undefined)[] {
  const renumbered = new Map<number, number>([[0, 0]]);
  const order: number[] = [0];
  for (let next = 0; next < order.length; next++) {
    const entries = inodes[order[next]!]?.entries;
    if (entries === undefined) continue;
    for (const n of entries.values()) {
      if (renumbered.has(n)) continue;
      renumbered.set(n, order.length);
      order.push(n);
    }
  }
  return order.map((old) => {
    const inode = inodes[old]!;
    if (inode.entries === undefined) return inode;
    const entries = new Map<string, number>();
    for (const [name, n] of inode.entries) entries.set(name, renumbered.get(n)!);
    return { ...inode, entries };
  });
}

const NAMES = new Map(Object.entries(Command).map(([key, value]) => [value as number, key.toLowerCase()]));
function nameOf(c: SendCommand): string {
  return NAMES.get(c.command) ?? `command ${c.command}`;
}

function attribute(c: SendCommand, type: number): Buffer {
  const value = c.attributes.get(type);
  if (value === undefined) throw new Unbrowsable(`${nameOf(c)} lacks attribute ${type}`);
  return value;
}

function stringOf(c: SendCommand, type: number): string {
  return attribute(c, type).toString('latin1');
}

function pathOf(c: SendCommand, type: number, root = false): string[] {
  const value = stringOf(c, type);
  if (value === '') {
    if (root) return [];
    throw new Unbrowsable(`${nameOf(c)} has an empty path`);
  }
  const components = value.split('/');
  if (components.some((part) => part === '' || part === '.' || part === '..' || part.includes('\0'))) {
    throw new Unbrowsable(`${nameOf(c)} has a path with an empty, "." or ".." component`);
  }
  return components;
}

function uuidOf(c: SendCommand, type: number): string {
  const value = attribute(c, type);
  if (value.length !== 16) throw new Unbrowsable(`${nameOf(c)} has a malformed UUID`);
  const hex = value.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function u64(c: SendCommand, type: number, fallback?: bigint): bigint {
  const value = c.attributes.get(type);
  if (value === undefined && fallback !== undefined) return fallback;
  // Most numbers are u64; a few (fallocate's mode) are u32.
  if (value?.length !== 8 && value?.length !== 4) throw new Unbrowsable(`${nameOf(c)} has a missing or malformed number ${type}`);
  const n = value.length === 4 ? BigInt(value.readUInt32LE(0)) : value.readBigUInt64LE(0);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Unbrowsable(`${nameOf(c)} has a number too large to index`);
  return n;
}

/** A btrfs timespec (u64 LE seconds, u32 LE nanoseconds) in milliseconds, with the fraction (as `Stats.mtimeMs`). */
function timeOf(c: SendCommand, type: number): number {
  const value = attribute(c, type);
  if (value.length !== 12) throw new Unbrowsable(`${nameOf(c)} has a malformed time`);
  return Number(value.readBigInt64LE(0)) * 1000 + value.readUInt32LE(8) / 1e6;
}
