import { constants } from 'node:fs';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type WindowEntry } from './copy-window.js';
import type { ControlFiles } from './control-files.js';
import { FsError } from './fs-error.js';
import type { Handles } from './handles.js';
import { locate, rootEntries } from './path-tree.js';
import { spaceOf, statfsReply, UNKNOWN_SPACE, type StatfsReply } from './store-space.js';
import { key, type MountView, type SnapshotNode } from './mount-view.js';

/** A file's attributes as FUSE wants them (times in milliseconds). */
export interface Attributes {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
  atime: number;
  mtime: number;
  ctime: number;
}

const O_ACCMODE = 3;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_RDWR | constants.O_TRUNC | constants.O_APPEND;

/**
 * Everything that reads: attributes, listings, links, opened files, xattrs, `df`. A path
 * below a snapshot is answered by its copy window while one is open, otherwise by the
 * store's {@link SnapshotReader}; directories above snapshots come from the listings.
 */
export class SnapshotReads {
  readonly #view: MountView;
  readonly #handles: Handles;
  readonly #control: ControlFiles;
  readonly #readOnly: boolean;
  readonly #startedAt: number;

  constructor(view: MountView, handles: Handles, control: ControlFiles, options: { readOnly: boolean; startedAt: number }) {
    this.#view = view;
    this.#handles = handles;
    this.#control = control;
    this.#readOnly = options.readOnly;
    this.#startedAt = options.startedAt;
  }

  /**
   * `df`: below a store, the space of the filesystem it is on (S3, SSH: a large sensible
   * value); elsewhere the store with the most room, since a copy goes into one of them.
   */
  async statfs(mountPath: string): Promise<StatfsReply> {
    const area = locate(mountPath, this.#view.names);
    const all = [...this.#view.stores.values()];
    // One store: its own answer or its error (EIO). All of them: those that answer.
    const spaces =
      area.kind === 'store'
        ? [await spaceOf(this.#view.stores.get(area.store)!.store)]
        : await Promise.all(all.map((s) => spaceOf(s.store).catch(() => UNKNOWN_SPACE)));
    const best = spaces.reduce((a, b) => (b.availableBytes > a.availableBytes ? b : a), { totalBytes: 0, freeBytes: 0, availableBytes: 0 });
    return statfsReply(best, this.#readOnly);
  }

  async getattr(mountPath: string): Promise<Attributes> {
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open) {
      const entry = open.window.lookup(open.relative);
      if (entry === undefined) throw new FsError('ENOENT');
      return windowAttributes(entry);
    }
    switch (node.kind) {
      case 'root':
      case 'control':
      case 'store':
      case 'group':
        return this.#directoryAttributes();
      case 'control-file':
        return { ...this.#directoryAttributes(), mode: S_IFREG | 0o444, nlink: 1, size: Buffer.byteLength(this.#control.text(node.file)) };
      case 'snapshot':
      case 'inside': {
        const { reader, relative } = this.#view.readerOf(node);
        if (reader === undefined) {
          if (node.kind === 'inside') throw new FsError('ENOENT');
          const created = (await this.#view.snapshot(node.store, node.snapshot))?.createdAt?.getTime() ?? this.#startedAt;
          return { ...this.#directoryAttributes(), atime: created, mtime: created, ctime: created };
        }
        try {
          return { ...(await reader.lstat(relative)) };
        } catch (error) {
          // Gone outside the mount: the listing is stale, list the store again next time.
          if (node.kind === 'snapshot') this.#view.listings.invalidate(node.store);
          throw error;
        }
      }
    }
  }

  async readdir(mountPath: string): Promise<string[]> {
    await this.#view.arrived(mountPath, true);
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open) return open.window.list(open.relative);
    switch (node.kind) {
      case 'root':
        return rootEntries(this.#view.names);
      case 'control':
        return ['log', 'status'];
      case 'control-file':
        throw new FsError('ENOTDIR');
      case 'store':
      case 'group': {
        const prefix = node.kind === 'store' ? '' : node.prefix;
        const children = (await this.#view.tree(node.store)).childrenOf(prefix);
        if (children === undefined) throw new FsError('ENOENT');
        // A snapshot shows in its store's listing once its transfer is complete.
        return children.filter((n) => !this.#view.arrivals.has(node.store, prefix === '' ? n : `${prefix}/${n}`));
      }
      case 'snapshot':
      case 'inside': {
        const { reader, relative } = this.#view.readerOf(node);
        if (reader === undefined) return [];
        return this.#view.removals.visible(key(node.store, node.snapshot), relative, await reader.readdir(relative));
      }
    }
  }

  async readlink(mountPath: string): Promise<string> {
    await this.#view.arrived(mountPath, false);
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open) {
      const entry = open.window.lookup(open.relative);
      if (entry?.target === undefined) throw new FsError('EINVAL');
      return entry.target;
    }
    if (node.kind !== 'inside') throw new FsError('EINVAL');
    const { reader, relative } = this.#view.readerOf(node);
    if (reader === undefined) throw new FsError('ENOENT');
    return reader.readlink(relative);
  }

  async open(mountPath: string, flags: number): Promise<number> {
    await this.#view.arrived(mountPath, false);
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open) {
      if (open.window.lookup(open.relative) === undefined) throw new FsError('ENOENT');
      if ((flags & constants.O_TRUNC) !== 0) open.window.truncate(open.relative, 0);
      const n = node as SnapshotNode;
      return this.#handles.addWindow(open.window, open.relative, this.#view.received(n.store, n.snapshot));
    }
    const writing = (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & WRITE_FLAGS) !== 0;
    if (writing) throw new FsError('EROFS');
    if (node.kind === 'control-file') return this.#handles.add({ kind: 'text', data: Buffer.from(this.#control.text(node.file)) });
    if (node.kind !== 'inside') throw new FsError('EISDIR');
    const { reader, relative } = this.#view.readerOf(node);
    if (reader === undefined) return this.#handles.add({ kind: 'empty' });
    return this.#handles.add({ kind: 'file', file: await reader.open(relative) });
  }

  async read(handle: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.#handles.get(handle);
    switch (h.kind) {
      case 'file':
        return h.file.read(buffer, length, position);
      case 'text':
        return position >= h.data.length ? 0 : h.data.copy(buffer, 0, position, Math.min(h.data.length, position + length));
      case 'empty':
        return 0;
      case 'window': {
        // Reading a file being copied shows the received snapshot's bytes.
        if (h.received === undefined) return 0;
        const bytes = await h.received.read(h.relative, position, length);
        return bytes.copy(buffer, 0);
      }
    }
  }

  async release(handle: number): Promise<void> {
    const h = this.#handles.take(handle);
    if (h?.kind === 'file') await h.file.close();
    if (h?.kind === 'window') h.window.letGo();
  }

  async xattrs(mountPath: string): Promise<Map<string, Buffer>> {
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open) return open.window.lookup(open.relative)?.xattrs ?? new Map();
    if (node.kind !== 'inside' && node.kind !== 'snapshot') return new Map();
    const { reader, relative } = this.#view.readerOf(node);
    return reader === undefined ? new Map() : reader.xattrs(relative);
  }

  #directoryAttributes(): Attributes {
    const t = this.#startedAt;
    return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 4096, nlink: 2, atime: t, mtime: t, ctime: t };
  }
}

function windowAttributes(entry: WindowEntry): Attributes {
  const isDir = (entry.mode & S_IFMT) === S_IFDIR;
  return {
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size: isDir ? 4096 : (entry.mode & S_IFMT) === S_IFLNK ? (entry.target?.length ?? 0) : entry.size,
    nlink: isDir ? 2 : 1,
    blocks: Math.ceil(entry.size / 512),
    atime: entry.atime,
    mtime: entry.mtime,
    ctime: entry.ctime,
  };
}
