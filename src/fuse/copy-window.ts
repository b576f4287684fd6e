/**
 * The scratch tree a freshly transferred snapshot shows while `cp -r` finishes its copy.
 *
 * GNU cp, right after its `mkdir` (which ran the transfer), creates every file with O_EXCL
 * and looks each new entry up at once: the directory must accept creates of entries that are
 * not there and then show them with what cp set. A copy window does exactly that, in memory:
 * creates, mkdirs, symlinks, writes, chmods, chowns, utimes and xattrs are recorded as
 * metadata only. Written bytes are compared with the received snapshot (where the store can
 * read it), so a mismatch answers EIO and `cp -r` doubles as verification; they are never
 * stored. When no operation touched the window for {@link CopyWindow.isIdle}'s delay, the
 * mount closes it and the directory shows the real snapshot again.
 *
 * Pure apart from the injected clock and reader: the tests drive it without a mount.
 */

/** File types as in `st_mode`. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface WindowEntry {
  /** Full `st_mode`: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes: the highest written offset or the truncated size (files), target length (symlinks). */
  size: number;
  atime: number;
  mtime: number;
  ctime: number;
  readonly target?: string;
  readonly xattrs: Map<string, Buffer>;
  /**
   * The received file this file's written bytes were compared with, once a write pinned it:
   * its own path, or for a temporary name (`rsync`'s `.NAME.XXXXXX`) the final one.
   */
  comparedAs?: string;
}

/** An errno name: the mount's ops layer turns it into the negative number FUSE wants. */
export type WindowErrno = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'EIO' | 'EINVAL' | 'EXDEV';

export class WindowError extends Error {
  constructor(
    readonly errno: WindowErrno,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads the received snapshot's bytes for comparison. Resolves the bytes read (fewer at the
 * end of the file, none past it), or null when the store cannot read that file at all (then
 * nothing is compared: a store that shows no files).
 */
export type ReceivedReader = (relative: string, offset: number, length: number) => Promise<Buffer | null>;

export interface CopyWindowOptions {
  readonly now: () => number;
  readonly readReceived: ReceivedReader;
  /** Owner and mode of the window's root before cp sets them. */
  readonly root: { mode: number; uid: number; gid: number };
}

export class CopyWindow {
  readonly #entries = new Map<string, WindowEntry>();
  readonly #now: () => number;
  readonly #read: ReceivedReader;
  #lastActivity: number;
  /** Open files and writes being compared: the window is not idle while there are any. */
  #busy = 0;
  /** Bytes compared equal, and the first mismatch seen, for the status file. */
  verifiedBytes = 0;
  /** Bytes written where the received file could not be read (a store that shows no files): recorded only. */
  uncheckedBytes = 0;
  mismatch: string | undefined;

  constructor(options: CopyWindowOptions) {
    this.#now = options.now;
    this.#read = options.readReceived;
    this.#lastActivity = this.#now();
    const t = this.#lastActivity;
    this.#entries.set('', {
      mode: S_IFDIR | (options.root.mode & 0o7777),
      uid: options.root.uid,
      gid: options.root.gid,
      size: 0,
      atime: t,
      mtime: t,
      ctime: t,
      xattrs: new Map(),
    });
  }

  /** Marks activity: every op under the window calls it, so an ongoing copy keeps it open. */
  touch(): void {
    this.#lastActivity = this.#now();
  }

  /** An open file under the window keeps it open until {@link CopyWindow.letGo}. */
  hold(): void {
    this.#busy += 1;
    this.touch();
  }

  letGo(): void {
    this.#busy = Math.max(0, this.#busy - 1);
    this.touch();
  }

  /** No operation for `idleMs` and nothing open or running: the copy is over. */
  isIdle(idleMs: number): boolean {
    return this.#busy === 0 && this.#now() - this.#lastActivity >= idleMs;
  }

  lookup(relative: string): WindowEntry | undefined {
    this.touch();
    return this.#entries.get(relative);
  }

  /** Names directly in a directory of the window, sorted. */
  list(relative: string): string[] {
    this.#directory(relative);
    const prefix = relative === '' ? '' : `${relative}/`;
    const names: string[] = [];
    for (const key of this.#entries.keys()) {
      if (key !== '' && key.startsWith(prefix) && !key.slice(prefix.length).includes('/')) names.push(key.slice(prefix.length));
    }
    return names.sort();
  }

  create(relative: string, mode: number): void {
    this.#add(relative, { mode: S_IFREG | (mode & 0o7777), size: 0 });
  }

  mkdir(relative: string, mode: number): void {
    this.#add(relative, { mode: S_IFDIR | (mode & 0o7777), size: 0 });
  }

  /** A device, fifo or socket (`mknod`): `mode` carries the type. */
  mknod(relative: string, mode: number): void {
    this.#add(relative, { mode, size: 0 });
  }

  symlink(relative: string, target: string): void {
    this.#add(relative, { mode: S_IFLNK | 0o777, size: Buffer.byteLength(target), target });
  }

  /**
   * Compares `data` with the received file at `offset` and records the new size. A file
   * written under a temporary name and renamed into place (rsync writes `.NAME.XXXXXX`, then
   * renames it to NAME) is compared with the received NAME when its own name is not what it
   * matches: the first write pins which one, and {@link rename} checks the final name.
   * @throws WindowError EIO when the bytes differ (or the received file is shorter).
   */
  async write(relative: string, offset: number, data: Buffer): Promise<void> {
    const entry = this.#file(relative);
    this.#busy += 1;
    try {
      let against = entry.comparedAs ?? relative;
      let received = await this.#read(against, offset, data.length);
      const final = entry.comparedAs === undefined ? finalNameOf(relative) : undefined;
      if (final !== undefined && received !== null && !received.equals(data)) {
        const atFinal = await this.#read(final, offset, data.length);
        if (atFinal?.equals(data)) [against, received] = [final, atFinal];
      }
      if (received !== null && !received.equals(data)) {
        const at = firstDifference(received, data);
        const message = `${relative} differs from the received snapshot${against === relative ? '' : `'s ${against}`} at byte ${offset + at}`;
        this.mismatch ??= message;
        throw new WindowError('EIO', message);
      }
      if (received !== null) entry.comparedAs = against;
      if (received !== null) this.verifiedBytes += data.length;
      else this.uncheckedBytes += data.length;
      entry.size = Math.max(entry.size, offset + data.length);
      entry.mtime = entry.ctime = this.#now();
    } finally {
      this.#busy -= 1;
      this.touch();
    }
  }

  truncate(relative: string, size: number): void {
    const entry = this.#file(relative);
    entry.size = size;
    entry.mtime = entry.ctime = this.#now();
  }

  chmod(relative: string, mode: number): void {
    const entry = this.#existing(relative);
    entry.mode = (entry.mode & S_IFMT) | (mode & 0o7777);
    entry.ctime = this.#now();
  }

  chown(relative: string, uid: number, gid: number): void {
    const entry = this.#existing(relative);
    // -1 (as unsigned 32-bit) means "leave as is".
    if (uid !== -1 && uid !== 0xffffffff) entry.uid = uid;
    if (gid !== -1 && gid !== 0xffffffff) entry.gid = gid;
    entry.ctime = this.#now();
  }

  utimens(relative: string, atime: number, mtime: number): void {
    const entry = this.#existing(relative);
    entry.atime = atime;
    entry.mtime = mtime;
    entry.ctime = this.#now();
  }

  setxattr(relative: string, name: string, value: Buffer): void {
    this.#existing(relative).xattrs.set(name, Buffer.from(value));
  }

  removexattr(relative: string, name: string): boolean {
    return this.#existing(relative).xattrs.delete(name);
  }

  /** `unlink` (and `rmdir` of an empty directory): a copy may replace what it made. */
  remove(relative: string, isDirectory: boolean): void {
    const entry = this.#existing(relative);
    const isDir = (entry.mode & S_IFMT) === S_IFDIR;
    if (relative === '') throw new WindowError('EINVAL', 'the window itself is removed with the snapshot');
    if (isDirectory && !isDir) throw new WindowError('ENOTDIR', `${relative} is not a directory`);
    if (!isDirectory && isDir) throw new WindowError('EISDIR', `${relative} is a directory`);
    if (isDir && this.list(relative).length > 0) throw new WindowError('ENOTEMPTY', `${relative} is not empty`);
    this.#entries.delete(relative);
  }

  /**
   * `rename` inside the window: rsync's temporary file moved into place. The target is
   * replaced as rename(2) does. A file whose bytes were compared with another received file
   * than its new name is EIO (the comparison would not hold); a directory is EXDEV (a mover
   * then copies it, and each file is compared where it lands).
   */
  rename(from: string, to: string): void {
    const entry = this.#existing(from);
    if (from === '' || to === '') throw new WindowError('EINVAL', 'the window itself is renamed with the snapshot');
    if ((entry.mode & S_IFMT) === S_IFDIR) throw new WindowError('EXDEV', `${from} is a directory: copy it instead`);
    if (entry.comparedAs !== undefined && entry.comparedAs !== to) {
      throw new WindowError('EIO', `${from} was compared with the received snapshot's ${entry.comparedAs}, not with ${to}`);
    }
    this.#directory(parentOf(to));
    const existing = this.#entries.get(to);
    if (existing !== undefined && (existing.mode & S_IFMT) === S_IFDIR) throw new WindowError('EISDIR', `${to} is a directory`);
    this.#entries.delete(from);
    this.#entries.set(to, entry);
    entry.ctime = this.#now();
  }

  #add(relative: string, fields: { mode: number; size: number; target?: string }): void {
    this.touch();
    if (this.#entries.has(relative)) throw new WindowError('EEXIST', `${relative} exists`);
    this.#directory(parentOf(relative));
    const t = this.#now();
    const root = this.#entries.get('')!;
    this.#entries.set(relative, { ...fields, uid: root.uid, gid: root.gid, atime: t, mtime: t, ctime: t, xattrs: new Map() });
  }

  #existing(relative: string): WindowEntry {
    this.touch();
    const entry = this.#entries.get(relative);
    if (entry === undefined) throw new WindowError('ENOENT', `${relative} is not in the copy`);
    return entry;
  }

  #directory(relative: string): WindowEntry {
    const entry = this.#existing(relative);
    if ((entry.mode & S_IFMT) !== S_IFDIR) throw new WindowError('ENOTDIR', `${relative} is not a directory`);
    return entry;
  }

  #file(relative: string): WindowEntry {
    const entry = this.#existing(relative);
    if ((entry.mode & S_IFMT) === S_IFDIR) throw new WindowError('EISDIR', `${relative} is a directory`);
    return entry;
  }
}

function parentOf(relative: string): string {
  const cut = relative.lastIndexOf('/');
  return cut < 0 ? '' : relative.slice(0, cut);
}

/** rsync's temporary name for NAME: `.NAME.XXXXXX` (mkstemp) in the same directory. */
const RSYNC_TEMPORARY = /^\.(.+)\.[A-Za-z0-9]{6}$/s; // names may hold newlines

/** The final name a temporary file's name stands for, when it looks like one. */
export function finalNameOf(relative: string): string | undefined {
  const cut = relative.lastIndexOf('/');
  const match = RSYNC_TEMPORARY.exec(relative.slice(cut + 1));
  return match === null ? undefined : `${relative.slice(0, cut + 1)}${match[1]}`;
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
