import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import { MAX_COMMAND_PAYLOAD } from './command-reader.js';
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
import { COMMAND_HEADER_BYTES } from './stream-format.js';

/**
 * The stored form of a {@link SnapshotIndex}: gzip of newline-separated JSON, a header line and
 * then one line per inode (so that `zcat INDEX | head` shows what it is, and encoding never
 * holds more than the index and its compressed bytes):
 *
 *     {"format":"buttersink-index","version":1,"to":UUID,"from":UUID|null,"objects":[[to,from,bytes],...],"inodes":N[,"unbrowsable":WHY]}
 *     [mode,uid,gid,rdev,size,atime,mtime,ctime,DATA[,XATTRS]]
 *
 * DATA is the extents (flat numbers) of a regular file, `[name,inode,name,inode,...]` of a
 * directory, the target of a link, 0 for the rest; XATTRS `[[name,base64],...]`. Strings are
 * raw bytes as latin1 characters, written as UTF-8 (lossless both ways).
 *
 * Decoding trusts nothing: an index comes from a bucket, which may be hostile. Everything that
 * the reads rely on is checked (types, extents inside their commands, directories forming a
 * tree), and anything wrong is an {@link InvalidIndexError}.
 */
export const INDEX_FORMAT = 'buttersink-index';
export const INDEX_VERSION = 1;
/** An index whose uncompressed form is larger is refused (about 5 million files). */
export const MAX_INDEX_BYTES = 1 << 30;

export class InvalidIndexError extends Error {}

export async function encodeIndex(index: SnapshotIndex): Promise<Buffer> {
  return collect(Readable.from(lines(index)).pipe(createGzip()));
}

function* lines(index: SnapshotIndex): Generator<Buffer> {
  const header: Record<string, unknown> = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    to: index.to,
    from: index.from,
    objects: index.objects.map((o) => [o.to, o.from, o.bytes]),
    inodes: index.inodes.length,
  };
  if (index.unbrowsable !== undefined) header.unbrowsable = index.unbrowsable;
  let batch = `${JSON.stringify(header)}\n`;
  for (const inode of index.inodes) {
    batch += `${JSON.stringify(inode === undefined ? null : row(inode))}\n`;
    if (batch.length > 1 << 20) {
      yield Buffer.from(batch, 'utf8');
      batch = '';
    }
  }
  yield Buffer.from(batch, 'utf8');
}

function row(inode: IndexInode): unknown[] {
  const data = inode.extents ?? (inode.entries ? [...inode.entries].flat() : (inode.target ?? 0));
  const fields: unknown[] = [inode.mode, inode.uid, inode.gid, inode.rdev, inode.size, inode.atime, inode.mtime, inode.ctime, data];
  if (inode.xattrs) fields.push([...inode.xattrs].map(([name, value]) => [name, value.toString('base64')]));
  return fields;
}

/**
 * Reads a stored index. The text is decompressed and parsed a piece at a time (never held
 * whole: a million files' text is ~150 MiB), yielding to the event loop as it goes, so that
 * the mount keeps answering while a large index loads.
 */
export async function decodeIndex(compressed: Buffer): Promise<SnapshotIndex> {
  let header: Omit<SnapshotIndex, 'inodes'> | undefined;
  let total = 0;
  const inodes: (IndexInode | undefined)[] = [];
  const take = (line: string): void => {
    if (header === undefined) {
      ({ header, total } = headerOf(parse(line, 'the header')));
      return;
    }
    if (inodes.length >= total) throw new InvalidIndexError(`it has more than the ${total} inodes it announces`);
    const fields = parse(line, `inode ${inodes.length}`);
    inodes.push(fields === null ? undefined : inodeOf(fields, inodes.length, total, header.objects));
  };
  const decoder = new StringDecoder('utf8');
  let produced = 0;
  let carry = '';
  try {
    for await (const chunk of Readable.from([compressed]).pipe(createGunzip())) {
      produced += (chunk as Buffer).length;
      if (produced > MAX_INDEX_BYTES) throw new InvalidIndexError(`it is larger than ${MAX_INDEX_BYTES} bytes`);
      const lines = (carry + decoder.write(chunk as Buffer)).split('\n');
      carry = lines.pop()!;
      for (const line of lines) take(line);
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    if (error instanceof InvalidIndexError) throw error;
    throw new InvalidIndexError(`it is not a readable gzip file (${(error as Error).message})`);
  }
  carry += decoder.end();
  if (carry !== '') take(carry);
  if (header === undefined) throw new InvalidIndexError('it is empty');
  if (inodes.length !== total) throw new InvalidIndexError(`it announces ${total} inodes and has ${inodes.length}`);
  const index: SnapshotIndex = { ...header, inodes };
  if (index.unbrowsable === undefined) checkTree(index);
  return index;
}

function headerOf(value: unknown): { header: Omit<SnapshotIndex, 'inodes'>; total: number } {
  const header = value as Record<string, unknown>;
  if (typeof header !== 'object' || header === null || header.format !== INDEX_FORMAT)
    throw new InvalidIndexError('it is not a buttersink index');
  if (header.version !== INDEX_VERSION) throw new InvalidIndexError(`index version ${String(header.version)} is not supported`);
  const to = uuid(header.to, 'to');
  const from = header.from === null ? null : uuid(header.from, 'from');
  if (!Array.isArray(header.objects)) throw new InvalidIndexError('its objects are malformed');
  const objects: IndexedObject[] = header.objects.map((o: unknown) => {
    if (!Array.isArray(o) || o.length !== 3) throw new InvalidIndexError('its objects are malformed');
    return { to: uuid(o[0], 'object'), from: o[1] === null ? null : uuid(o[1], 'object'), bytes: count(o[2], 'object size') };
  });
  const total = count(header.inodes, 'inode count');
  const unbrowsable = header.unbrowsable;
  if (unbrowsable !== undefined && typeof unbrowsable !== 'string') throw new InvalidIndexError('its reason is malformed');
  return { header: { to, from, objects, ...(unbrowsable === undefined ? {} : { unbrowsable }) }, total };
}

function parse(line: string, what: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new InvalidIndexError(`${what} is not JSON`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function uuid(value: unknown, what: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw new InvalidIndexError(`its ${what} UUID is malformed`);
  return value;
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new InvalidIndexError(`its ${what} is not a count`);
  return value as number;
}

const TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]);

function inodeOf(fields: unknown, n: number, total: number, objects: readonly IndexedObject[]): IndexInode {
  const what = `inode ${n}`;
  if (!Array.isArray(fields) || fields.length < 9 || fields.length > 10) throw new InvalidIndexError(`${what} is malformed`);
  const [mode, uid, gid, rdev, size, atime, mtime, ctime, data, xattrs] = fields as unknown[];
  const inode: IndexInode = {
    mode: count(mode, `${what} mode`),
    uid: count(uid, `${what} uid`),
    gid: count(gid, `${what} gid`),
    rdev: count(rdev, `${what} rdev`),
    size: count(size, `${what} size`),
    atime: time(atime, what),
    mtime: time(mtime, what),
    ctime: time(ctime, what),
  };
  const type = inode.mode & S_IFMT;
  if (!TYPES.has(type) || inode.mode > 0o177777) throw new InvalidIndexError(`${what} has an unknown type`);
  if (type === S_IFREG) inode.extents = extentsOf(data, inode.size, objects, what);
  else if (type === S_IFDIR) inode.entries = entriesOf(data, total, what);
  else if (type === S_IFLNK) {
    if (typeof data !== 'string' || data === '' || data.length > 4095) throw new InvalidIndexError(`${what} has a malformed link target`);
    inode.target = data;
  } else if (data !== 0) throw new InvalidIndexError(`${what} is malformed`);
  if (xattrs !== undefined) {
    if (!Array.isArray(xattrs)) throw new InvalidIndexError(`${what} has malformed xattrs`);
    inode.xattrs = new Map(
      xattrs.map((x: unknown) => {
        if (!Array.isArray(x) || typeof x[0] !== 'string' || x[0] === '' || typeof x[1] !== 'string') {
          throw new InvalidIndexError(`${what} has malformed xattrs`);
        }
        return [x[0], Buffer.from(x[1], 'base64')];
      }),
    );
  }
  return inode;
}

function time(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidIndexError(`${what} has a malformed time`);
  return value;
}

function extentsOf(data: unknown, size: number, objects: readonly IndexedObject[], what: string): number[] {
  if (!Array.isArray(data) || data.length % EXTENT_FIELDS !== 0) throw new InvalidIndexError(`${what} has malformed extents`);
  let end = 0;
  for (let at = 0; at < data.length; at += EXTENT_FIELDS) {
    for (let f = 0; f < EXTENT_FIELDS; f++) count(data[at + f], `${what} extent`);
    const fileOffset = data[at + Extent.FileOffset] as number;
    const length = data[at + Extent.Length] as number;
    const object = objects[data[at + Extent.Object] as number];
    const commandStart = data[at + Extent.CommandStart] as number;
    const commandBytes = data[at + Extent.CommandBytes] as number;
    const dataStart = data[at + Extent.DataStart] as number;
    const bad =
      length === 0 ||
      fileOffset < end ||
      fileOffset + length > size ||
      object === undefined ||
      commandBytes > COMMAND_HEADER_BYTES + MAX_COMMAND_PAYLOAD ||
      dataStart < commandStart + COMMAND_HEADER_BYTES ||
      dataStart + length > commandStart + commandBytes ||
      commandStart + commandBytes > object.bytes;
    if (bad) throw new InvalidIndexError(`${what} has an extent outside its file or its command`);
    end = fileOffset + length;
  }
  return data as number[];
}

function entriesOf(data: unknown, total: number, what: string): Map<string, number> {
  if (!Array.isArray(data) || data.length % 2 !== 0) throw new InvalidIndexError(`${what} has malformed entries`);
  const entries = new Map<string, number>();
  for (let at = 0; at < data.length; at += 2) {
    const name = data[at];
    const n = data[at + 1];
    if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\0]/.test(name) || name.length > 255) {
      throw new InvalidIndexError(`${what} has a malformed name`);
    }
    if (!Number.isSafeInteger(n) || n <= 0 || n >= total || entries.has(name)) throw new InvalidIndexError(`${what} has a malformed entry`);
    entries.set(name, n);
  }
  return entries;
}

/** The root is a directory and every directory is reached from it exactly once (no cycles, no shared directories). */
function checkTree(index: SnapshotIndex): void {
  if (index.inodes[0]?.entries === undefined) throw new InvalidIndexError('its root is not a directory');
  const seen = new Set<number>([0]);
  const queue = [0];
  for (let next = 0; next < queue.length; next++) {
    for (const n of index.inodes[queue[next]!]!.entries!.values()) {
      const inode = index.inodes[n];
      if (inode === undefined) throw new InvalidIndexError(`an entry names the missing inode ${n}`);
      if (inode.entries === undefined) continue;
      if (seen.has(n)) throw new InvalidIndexError(`directory inode ${n} is named twice`);
      seen.add(n);
      queue.push(n);
    }
  }
}
