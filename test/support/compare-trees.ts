import { execa } from 'execa';
import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes, SnapshotFiles } from '../../src/model/store.js';
import { parseGetfattr } from '../../src/stores/btrfs/local-xattrs.js';
import { Prng } from './random-chain.js';

export interface CompareOptions {
  /**
   * Compare atime too (default false). Reading a file of a read-write tree may update its
   * atime (relatime), so only trees that nobody read since their times were set can match.
   * Read-only snapshots keep theirs (reads do not update them), and `btrfs receive` sets the
   * sender's atime before it makes the snapshot read-only: a received snapshot does match
   * (checked in test/integration/random-chain.test.ts). An index may have no atime to give.
   */
  atime?: boolean;
  /**
   * Compare ctime too (default false). ctime cannot be set: a received snapshot's ctime is the
   * time of its receive. A stream's utimes commands do carry the sender's ctime (which
   * `btrfs receive` cannot apply), so an index that keeps it can be checked with this against
   * the original snapshot, never against a received copy.
   */
  ctime?: boolean;
  /** Compare the size of directories (default true; btrfs counts each name's bytes twice). */
  directorySize?: boolean;
  /**
   * Compare the mtime of the snapshot's root directory (default true). Leave it out only for
   * a snapshot made by `btrfs receive` of an incremental stream: the stream parks entries
   * under temporary orphan names (`o257-12-0`) in the root, which changes its mtime, and
   * sends no utimes for the root when the root itself did not change (seen with kernel 6.18,
   * btrfs-progs 6.2), so the received root shows the receive's time. An index built from the
   * stream keeps the parent's time, which is the original's.
   */
  rootMtime?: boolean;
  /** How many differences to report before stopping (default 50). */
  limit?: number;
  /** Seeds the random chunk reads (default 1). */
  seed?: number;
  /** Random chunk reads per regular file, through `read` and `open` each (default 6). */
  chunks?: number;
  /** How long a read of a non-regular file may take to refuse, in ms (default 5000). */
  refusalTimeout?: number;
}

/**
 * Compares what `files` answers with the real directory `root`, path by path: the names in
 * each directory, and for each entry its type and permission bits, uid, gid, size, mtime (to the
 * millisecond), nlink (not for directories: btrfs says 1 for them), rdev (device nodes), a
 * symlink's target, the xattrs (names and values, read with getfattr), and a regular file's
 * bytes — read whole, in chunks at random offsets and lengths (past the end too), and through
 * `files.open()` when it has one (sequentially in random-sized pieces, then at random
 * positions). Anything but a regular file must refuse `read` (a FIFO must not block it), and
 * a name that is not there must answer ENOENT. Not compared: `blocks`/`blksize` (allocation:
 * reflinks, holes, compression differ between copies of one tree), inode numbers (not in
 * FileAttributes: which names are hard links of each other shows only as nlink), and
 * atime/ctime unless asked (see {@link CompareOptions}).
 *
 * Returns human-readable differences, `path: what` (empty when equal), at most `limit`.
 */
export async function compareWithDirectory(files: SnapshotFiles, root: string, options: CompareOptions = {}): Promise<string[]> {
  const limit = options.limit ?? 50;
  const random = new Prng(options.seed ?? 1);
  const chunks = options.chunks ?? 6;
  const differences: string[] = [];
  const full = (): boolean => differences.length >= limit;
  const differ = (rel: string, what: string): void => {
    if (!full()) differences.push(`${rel === '' ? '(root)' : rel}: ${what}`);
  };
  const realXattrs = await xattrsOfTree(root);

  const asked = async <T>(rel: string, what: string, call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (error) {
      differ(rel, `${what} failed: ${describe(error)}`);
      return undefined;
    }
  };

  const compareEntry = async (rel: string): Promise<void> => {
    if (full()) return;
    const real = await lstat(at(root, rel));
    const got = await asked(rel, 'lstat', () => files.lstat(rel));
    if (got === undefined) return;
    const realType = typeOf(real.mode);
    const gotType = typeOf(got.mode);
    if (realType !== gotType) {
      differ(rel, `type ${gotType}, expected ${realType}`);
      return;
    }
    compareAttributes(rel, real, got, realType, rel === '' && options.rootMtime === false ? { ...options, mtime: false } : options, differ);
    await compareXattrs(rel, realXattrs.get(rel) ?? new Map(), files, differ);

    if (realType === 'symlink') {
      const target = await asked(rel, 'readlink', () => files.readlink(rel));
      const expected = await readlink(at(root, rel));
      if (target !== undefined && target !== expected) differ(rel, `link target ${quote(target)}, expected ${quote(expected)}`);
    }
    if (realType === 'file') await compareBytes(rel, await readFile(at(root, rel)), files, random, chunks, differ);
    else await mustRefuseRead(rel, files, options.refusalTimeout ?? 5000, differ);

    if (realType === 'directory') {
      const expected = (await readdir(at(root, rel))).sort();
      const listed = await asked(rel, 'readdir', () => files.readdir(rel));
      if (listed === undefined) return;
      const names = [...listed].sort();
      const missing = expected.filter((n) => !names.includes(n));
      const extra = names.filter((n) => !expected.includes(n));
      if (missing.length > 0) differ(rel, `readdir lacks ${missing.map(quote).join(', ')}`);
      if (extra.length > 0) differ(rel, `readdir has extra ${extra.map(quote).join(', ')}`);
      if (new Set(names).size !== names.length) differ(rel, `readdir repeats names: ${names.map(quote).join(', ')}`);
      for (const name of expected) {
        if (names.includes(name)) await compareEntry(rel === '' ? name : `${rel}/${name}`);
      }
    }
  };

  await compareEntry('');
  if (!full()) {
    // Names that are not there must not be found either.
    const absent = 'not-in-the-snapshot \u{1f6ab}';
    const answer = await files.lstat(absent).then(
      () => 'an entry',
      (error: unknown) => (error as { code?: string }).code,
    );
    if (answer !== 'ENOENT') differ(absent, `lstat answered ${answer}, expected ENOENT`);
  }
  return differences;
}

type Differ = (rel: string, what: string) => void;
type FileType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char device' | 'block device' | 'socket' | 'unknown';

function typeOf(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o020000:
      return 'char device';
    case 0o060000:
      return 'block device';
    case 0o140000:
      return 'socket';
    default:
      return 'unknown';
  }
}

function compareAttributes(
  rel: string,
  real: Stats,
  got: FileAttributes,
  type: FileType,
  options: CompareOptions & { mtime?: boolean },
  differ: Differ,
): void {
  const field = (name: string, actual: number, expected: number, show: (n: number) => string = String): void => {
    if (actual !== expected) differ(rel, `${name} ${show(actual)}, expected ${show(expected)}`);
  };
  field('mode', got.mode, real.mode, (n) => `0${n.toString(8)}`);
  field('uid', got.uid, real.uid);
  field('gid', got.gid, real.gid);
  if (type !== 'directory' || options.directorySize !== false) field('size', got.size, real.size);
  if (type !== 'directory') field('nlink', got.nlink, real.nlink);
  if (type === 'char device' || type === 'block device') field('rdev', got.rdev, real.rdev);
  // Milliseconds, truncated: what FileAttributes carries (an index computes them from the stream's seconds and nanoseconds).
  if (options.mtime !== false) field('mtime', Math.floor(got.mtime), Math.floor(real.mtimeMs), isoTime);
  if (options.atime === true) field('atime', Math.floor(got.atime), Math.floor(real.atimeMs), isoTime);
  if (options.ctime === true) field('ctime', Math.floor(got.ctime), Math.floor(real.ctimeMs), isoTime);
}

async function compareXattrs(rel: string, expected: Map<string, Buffer>, files: SnapshotFiles, differ: Differ): Promise<void> {
  if (files.xattrs === undefined) {
    if (expected.size > 0) differ(rel, `no xattrs API, expected ${[...expected.keys()].join(', ')}`);
    return;
  }
  let got: Map<string, Buffer>;
  try {
    got = await files.xattrs(rel);
  } catch (error) {
    differ(rel, `xattrs failed: ${describe(error)}`);
    return;
  }
  for (const [name, value] of expected) {
    const actual = got.get(name);
    if (actual === undefined) differ(rel, `xattr ${name} missing`);
    else if (!actual.equals(value)) differ(rel, `xattr ${name} = ${preview(actual)}, expected ${preview(value)}`);
  }
  for (const name of got.keys()) if (!expected.has(name)) differ(rel, `xattr ${name} is extra`);
}

/** Reads whole, in random chunks, and through open() when there is one; any mismatch names where. */
async function compareBytes(
  rel: string,
  expected: Buffer,
  files: SnapshotFiles,
  random: Prng,
  chunks: number,
  differ: Differ,
): Promise<void> {
  const size = expected.length;
  const check = (how: string, got: Buffer, offset: number, length: number): boolean => {
    const want = expected.subarray(Math.min(offset, size), Math.min(offset + length, size));
    if (got.equals(want)) return true;
    differ(rel, `${how} at ${offset} (+${length}): ${mismatch(got, want, offset)}`);
    return false;
  };
  // Whole (asking for one byte more than there is: the answer must stop at the end).
  const whole = await files.read(rel, 0, size + 1).catch((error: unknown) => error as Error);
  if (whole instanceof Error) {
    differ(rel, `read failed: ${describe(whole)}`);
    return;
  }
  if (!check('read', whole, 0, size + 1)) return;
  for (const [offset, length] of ranges(random, size, chunks)) {
    const got = await files.read(rel, offset, length).catch((error: unknown) => error as Error);
    if (got instanceof Error) return differ(rel, `read at ${offset} (+${length}) failed: ${describe(got)}`);
    if (!check('read', got, offset, length)) return;
  }
  if (files.open === undefined) return;
  const open = await files.open(rel).catch((error: unknown) => error as Error);
  if (open instanceof Error) return differ(rel, `open failed: ${describe(open)}`);
  try {
    // Sequentially, as cat does, in pieces of random sizes; then at random positions.
    const sequential: [number, number][] = [];
    for (let offset = 0; offset <= size; ) {
      const length = random.chance(0.5) ? random.between(1, 70000) : 128 << 10;
      sequential.push([offset, length]);
      offset += length;
    }
    for (const [offset, length] of [...sequential, ...ranges(random, size, chunks)]) {
      const buffer = Buffer.alloc(length);
      const count = await open.read(buffer, length, offset);
      if (!check('open().read', buffer.subarray(0, count), offset, length)) return;
    }
  } catch (error) {
    differ(rel, `open().read failed: ${describe(error)}`);
  } finally {
    await open.close();
  }
}

/** Random (offset, length) pairs: inside, straddling a 48 KiB send write, at and past the end. */
function ranges(random: Prng, size: number, count: number): [number, number][] {
  const found: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const offset = random.int(size + 1);
    found.push([offset, random.chance(0.7) ? random.between(1, 4096) : random.between(4097, 200000)]);
  }
  const boundary = 48 * 1024;
  if (size > boundary) found.push([boundary - 10, 20]);
  found.push([size, 10], [size + 4096, 1]);
  return found;
}

/** Reading a directory, symlink, FIFO, device or socket must fail (at once: a FIFO must not block). */
async function mustRefuseRead(rel: string, files: SnapshotFiles, ms: number, differ: Differ): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`gave no answer within ${ms} ms`), ms);
  });
  const answer = await Promise.race([
    files.read(rel, 0, 1).then(
      (data) => `answered ${data.length} bytes`,
      () => undefined,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  if (answer !== undefined) differ(rel, `read of a non-regular file ${answer}, expected a refusal`);
}

/**
 * The xattrs of every entry below `root` (a read-only snapshot) read at once, as the function
 * `localSnapshotFiles` takes: one getfattr for the tree instead of one per directory.
 */
export async function treeXattrReader(root: string): Promise<(file: string) => Promise<Map<string, Buffer>>> {
  const byPath = await xattrsOfTree(root);
  return async (file) => new Map(byPath.get(path.relative(root, file)) ?? []);
}

/** Every xattr below `root`, by relative path: one getfattr for the whole tree. */
async function xattrsOfTree(root: string): Promise<Map<string, Map<string, Buffer>>> {
  // -P: do not follow symlinks while walking; -h: a link's own xattrs. Asynchronous, so that a
  // caller serving a mount in this process is not blocked. A non-zero exit (an entry without
  // readable xattrs) is fine: what it printed is what there is.
  const run = await execa('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root], {
    reject: false,
    stdin: 'ignore',
    maxBuffer: 256 << 20,
  });
  if (run.exitCode !== 0 && run.exitCode !== 1) throw new Error(`getfattr failed: ${String(run.stderr)}`);
  const byPath = new Map<string, Map<string, Buffer>>();
  for (const [file, xattrs] of parseGetfattr(String(run.stdout))) byPath.set(path.relative(root, file), xattrs);
  return byPath;
}

function at(root: string, rel: string): string {
  return rel === '' ? root : path.join(root, rel);
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

function isoTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

function preview(value: Buffer): string {
  const hex = value.subarray(0, 16).toString('hex');
  return `0x${hex}${value.length > 16 ? `... (${value.length} B)` : ''}`;
}

/** Where two buffers first differ, or how their lengths do. */
function mismatch(got: Buffer, want: Buffer, offset: number): string {
  const shorter = Math.min(got.length, want.length);
  for (let i = 0; i < shorter; i++) {
    if (got[i] !== want[i]) return `byte ${offset + i} is ${got[i]}, expected ${want[i]}`;
  }
  return `${got.length} bytes, expected ${want.length}`;
}
