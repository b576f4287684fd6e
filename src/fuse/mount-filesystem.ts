import { constants } from 'node:fs';
import path from 'node:path';
import type { Snapshot } from '../model/snapshot.js';
import { formatBytes } from '../planner/format-bytes.js';
import { transferSnapshot, type NamedStore } from '../sync/transfer-snapshot.js';
import { Arrivals } from './arrivals.js';
import { CopyWindow, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type WindowEntry } from './copy-window.js';
import { FsError, toFsError } from './fs-error.js';
import { locate, nameInStore, rootEntries, StoreTree, type PathNode, type Resolution } from './path-tree.js';
import { PendingRemovals } from './pending-removals.js';
import { StoreChanges } from './store-changes.js';
import { StoreListings } from './store-listings.js';
import { spaceOf, statfsReply, UNKNOWN_SPACE, type StatfsReply } from './store-space.js';
import { XattrReader } from './read-xattrs.js';
import { snapshotReader, type OpenFile, type SnapshotReader } from './snapshot-reader.js';
import { TransferStatus, type TransferRecord } from './transfer-status.js';

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

export interface MountOptions {
  readonly stores: readonly NamedStore[];
  /** No transfers, deletes or renames: every change is EROFS. */
  readonly readOnly: boolean;
  /** A copy window closes after this long without an operation under it. */
  readonly copyIdleMs: number;
  /** Listings are refreshed after this long (and after our own changes). */
  readonly listingTtlMs: number;
  /**
   * A lookup waits this long for a store's listing, then answers EIO with the reason (the
   * listing goes on, and serves later lookups if it succeeds). Without it, a store that
   * accepts connections but never answers would hold `ls` until fuse-native's own op
   * timeout answers ETIMEDOUT, with no reason anywhere. Default 30 s.
   */
  readonly storeTimeoutMs?: number;
  /** An `rm -r` that stops for this long is forgotten: its hidden entries show again. */
  readonly removalIdleMs: number;
  readonly status: TransferStatus;
  readonly now?: () => number;
}

/** A received snapshot's files, as far as comparing a copy with them needs. */
interface ReceivedFiles {
  lstat(relative: string): Promise<{ mode: number; uid: number; gid: number }>;
  read(relative: string, offset: number, length: number): Promise<Buffer>;
}

type Handle =
  | { readonly kind: 'file'; readonly file: OpenFile }
  | { readonly kind: 'text'; readonly data: Buffer }
  | { readonly kind: 'empty' }
  | { readonly kind: 'window'; readonly window: CopyWindow; readonly relative: string; readonly received: ReceivedFiles | undefined };

const O_ACCMODE = 3;
const DEFAULT_STORE_TIMEOUT_MS = 30_000;
/** How long one rendering of a control file serves getattr and open (progress numbers move). */
const CONTROL_RENDER_MS = 250;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_RDWR | constants.O_TRUNC | constants.O_APPEND;

/**
 * Everything the mount does, as async methods that resolve, or reject with an {@link FsError}
 * or an error {@link toFsError} maps to an errno: the FUSE ops (`mount-ops.ts`) only call
 * these. The directory shape comes from the pure {@link StoreTree}; this class adds what
 * needs I/O and state — cached listings, browsing local snapshots, transfers on `mkdir`,
 * copy windows, deletes on `rmdir`, renames.
 */
export class MountFilesystem {
  readonly #stores: ReadonlyMap<string, NamedStore>;
  readonly #names: readonly string[];
  readonly #options: MountOptions;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #listings: StoreListings;
  readonly #changes: StoreChanges;
  readonly #windows = new Map<string, CopyWindow>();
  /** Transfers started by mkdir and still running, per snapshot: settle when they end. */
  readonly #arrivals = new Arrivals();
  readonly #removals: PendingRemovals;
  /** Directory handles (opendir) and the mount path each was opened at. */
  readonly #directoryHandles = new Map<number, string>();
  readonly #handles = new Map<number, Handle>();
  #nextHandle = 1;
  readonly #xattrs = new XattrReader();
  readonly #controlCache = new Map<'status' | 'log', { text: string; at: number; version: number }>();
  readonly #abort = new AbortController();
  readonly #sweeper: NodeJS.Timeout;
  readonly status: TransferStatus;

  constructor(options: MountOptions) {
    this.#options = options;
    this.status = options.status;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#stores = new Map(options.stores.map((s) => [s.name, s]));
    this.#names = options.stores.map((s) => s.name);
    this.#listings = new StoreListings({
      stores: options.stores,
      ttlMs: options.listingTtlMs,
      timeoutMs: options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
    });
    this.#changes = new StoreChanges(options.stores, this.#listings, this.#abort.signal);
    this.#removals = new PendingRemovals({ now: this.#now, idleMs: options.removalIdleMs });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, Math.max(100, options.copyIdleMs / 4)));
    this.#sweeper.unref();
  }

  /** Aborts transfers in flight (their partial receives are removed) and stops timers. */
  shutdown(reason: Error): void {
    clearInterval(this.#sweeper);
    this.#abort.abort(reason);
  }

  get transfersInFlight(): number {
    return this.#arrivals.size;
  }

  /** Transfers, deletes and renames running or queued: unmounting waits for them to settle. */
  get changesInFlight(): number {
    return this.#changes.inFlight;
  }

  // --- lookups -------------------------------------------------------------------------

  async #listing(store: string): Promise<Snapshot[]> {
    return this.#listings.list(store);
  }

  /** A store's directory shape; snapshots with an open copy window count (arriving ones too). */
  async #tree(store: string): Promise<StoreTree> {
    const windows = [...this.#windows.keys()].filter((id) => id.startsWith(`${store}\0`)).map((id) => id.slice(store.length + 1));
    return this.#listings.tree(store, windows.sort());
  }

  #invalidate(store: string): void {
    this.#listings.invalidate(store);
  }

  /**
   * Resolves a path; below a snapshot with an open copy window, the window decides what
   * exists (its scratch tree, not the received snapshot's files).
   */
  async #resolve(mountPath: string): Promise<Resolution> {
    const area = locate(mountPath, this.#names);
    if (area.kind === 'resolved') return area.resolution;
    const resolution = (await this.#tree(area.store)).resolve(area.names);
    if (resolution.kind !== 'found' || resolution.node.kind !== 'inside') return resolution;
    const node = resolution.node;
    const window = this.#windows.get(key(node.store, node.snapshot));
    if (window === undefined || window.lookup(node.relative) !== undefined) return resolution;
    const cut = node.relative.lastIndexOf('/');
    const parentRelative = cut < 0 ? '' : node.relative.slice(0, cut);
    const parentEntry = window.lookup(parentRelative);
    if (parentEntry === undefined || (parentEntry.mode & S_IFMT) !== S_IFDIR) return { kind: 'invalid', reason: parentEntry ? 'ENOTDIR' : 'ENOENT' };
    const parent: PathNode =
      parentRelative === '' ? { kind: 'snapshot', store: node.store, snapshot: node.snapshot } : { ...node, relative: parentRelative };
    return { kind: 'missing', parent, name: node.relative.slice(cut + 1) };
  }

  async #node(mountPath: string): Promise<PathNode> {
    const resolution = await this.#resolve(mountPath);
    if (resolution.kind === 'found') {
      if (this.#isHidden(resolution.node)) throw new FsError('ENOENT');
      return resolution.node;
    }
    throw new FsError(resolution.kind === 'invalid' ? resolution.reason : 'ENOENT');
  }

  #isHidden(node: PathNode): boolean {
    return node.kind === 'inside' && this.#removals.isHidden(key(node.store, node.snapshot), node.relative);
  }

  async #snapshot(store: string, name: string): Promise<Snapshot | undefined> {
    return (await this.#listing(store)).find((s) => s.name === name);
  }

  /** How the mount reads a snapshot's files; undefined when its store shows none (S3). */
  #reader(store: string, name: string): SnapshotReader | undefined {
    return snapshotReader(this.#stores.get(store)!.store, name, this.#xattrs);
  }

  /** A node's reader and its path in the snapshot. */
  #readerOf(node: Extract<PathNode, { kind: 'snapshot' | 'inside' }>): { reader: SnapshotReader | undefined; relative: string } {
    return { reader: this.#reader(node.store, node.snapshot), relative: node.kind === 'inside' ? node.relative : '' };
  }

  /** A received snapshot's files as a copy is compared with them (a missing file reads as empty). */
  #receivedFiles(store: string, name: string): ReceivedFiles | undefined {
    const reader = this.#reader(store, name);
    return reader && { lstat: (relative) => reader.lstat(relative), read: (relative, offset, length) => reader.readToCompare(relative, offset, length) };
  }

  #window(node: PathNode): { window: CopyWindow; relative: string } | undefined {
    if (node.kind !== 'snapshot' && node.kind !== 'inside') return undefined;
    const window = this.#windows.get(key(node.store, node.snapshot));
    return window && { window, relative: node.kind === 'inside' ? node.relative : '' };
  }

  // --- reading ---------------------------------------------------------------------------

  /**
   * `df`: below a store, the space of the filesystem it is on (S3, SSH: a large sensible
   * value); elsewhere the store with the most room, since a copy goes into one of them.
   */
  async statfs(mountPath: string): Promise<StatfsReply> {
    const area = locate(mountPath, this.#names);
    const stores = area.kind === 'store' ? [this.#stores.get(area.store)!] : this.#options.stores;
    // One store: its own answer or its error (EIO). All of them: those that answer.
    const spaces = area.kind === 'store' ? [await spaceOf(stores[0]!.store)] : await Promise.all(stores.map((s) => spaceOf(s.store).catch(() => UNKNOWN_SPACE)));
    const best = spaces.reduce((a, b) => (b.availableBytes > a.availableBytes ? b : a), { totalBytes: 0, freeBytes: 0, availableBytes: 0 });
    return statfsReply(best, this.#options.readOnly);
  }

  async getattr(mountPath: string): Promise<Attributes> {
    const node = await this.#node(mountPath);
    const open = this.#window(node);
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
        return { ...this.#directoryAttributes(), mode: S_IFREG | 0o444, nlink: 1, size: Buffer.byteLength(this.#controlText(node.file)) };
      case 'snapshot':
      case 'inside': {
        const { reader, relative } = this.#readerOf(node);
        if (reader === undefined) {
          if (node.kind === 'inside') throw new FsError('ENOENT');
          const created = (await this.#snapshot(node.store, node.snapshot))?.createdAt?.getTime() ?? this.#startedAt;
          return { ...this.#directoryAttributes(), atime: created, mtime: created, ctime: created };
        }
        try {
          return { ...(await reader.lstat(relative)) };
        } catch (error) {
          // Gone outside the mount: the listing is stale, list the store again next time.
          if (node.kind === 'snapshot') this.#invalidate(node.store);
          throw error;
        }
      }
    }
  }

  async readdir(mountPath: string): Promise<string[]> {
    await this.#arrived(mountPath, true);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open) return open.window.list(open.relative);
    switch (node.kind) {
      case 'root':
        return rootEntries(this.#names);
      case 'control':
        return ['log', 'status'];
      case 'control-file':
        throw new FsError('ENOTDIR');
      case 'store':
      case 'group': {
        const prefix = node.kind === 'store' ? '' : node.prefix;
        const children = (await this.#tree(node.store)).childrenOf(prefix);
        if (children === undefined) throw new FsError('ENOENT');
        // A snapshot shows in its store's listing once its transfer is complete.
        return children.filter((n) => !this.#arrivals.has(node.store, prefix === '' ? n : `${prefix}/${n}`));
      }
      case 'snapshot':
      case 'inside': {
        const { reader, relative } = this.#readerOf(node);
        if (reader === undefined) return [];
        const names = await reader.readdir(relative);
        return this.#removals.visible(key(node.store, node.snapshot), node.kind === 'inside' ? node.relative : '', names);
      }
    }
  }

  async readlink(mountPath: string): Promise<string> {
    await this.#arrived(mountPath, false);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open) {
      const entry = open.window.lookup(open.relative);
      if (entry?.target === undefined) throw new FsError('EINVAL');
      return entry.target;
    }
    if (node.kind !== 'inside') throw new FsError('EINVAL');
    const { reader, relative } = this.#readerOf(node);
    if (reader === undefined) throw new FsError('ENOENT');
    return reader.readlink(relative);
  }

  async open(mountPath: string, flags: number): Promise<number> {
    await this.#arrived(mountPath, false);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open) {
      const entry = open.window.lookup(open.relative);
      if (entry === undefined) throw new FsError('ENOENT');
      if ((flags & constants.O_TRUNC) !== 0) open.window.truncate(open.relative, 0);
      return this.#newWindowHandle(node, open.window, open.relative);
    }
    const writing = (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & WRITE_FLAGS) !== 0;
    if (writing) throw new FsError('EROFS');
    if (node.kind === 'control-file') return this.#addHandle({ kind: 'text', data: Buffer.from(this.#controlText(node.file)) });
    if (node.kind !== 'inside') throw new FsError('EISDIR');
    const { reader, relative } = this.#readerOf(node);
    if (reader === undefined) return this.#addHandle({ kind: 'empty' });
    return this.#addHandle({ kind: 'file', file: await reader.open(relative) });
  }

  async read(handle: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.#handle(handle);
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
    const h = this.#handles.get(handle);
    this.#handles.delete(handle);
    if (h?.kind === 'file') await h.file.close();
    if (h?.kind === 'window') h.window.letGo();
  }

  async listxattr(mountPath: string): Promise<string[]> {
    return [...(await this.#xattrsOf(mountPath)).keys()];
  }

  async getxattr(mountPath: string, name: string): Promise<Buffer> {
    const value = (await this.#xattrsOf(mountPath)).get(name);
    if (value === undefined) throw new FsError('ENODATA');
    return value;
  }

  async #xattrsOf(mountPath: string): Promise<Map<string, Buffer>> {
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open) return open.window.lookup(open.relative)?.xattrs ?? new Map();
    if (node.kind !== 'inside' && node.kind !== 'snapshot') return new Map();
    const { reader, relative } = this.#readerOf(node);
    return reader === undefined ? new Map() : reader.xattrs(relative);
  }

  // --- changing: transfers, deletes, renames, and the copy window ------------------------

  #refuseIfReadOnly(): void {
    if (this.#options.readOnly) throw new FsError('EROFS', 'the mount is read-only (--read-only)');
  }

  async mkdir(mountPath: string, mode: number): Promise<void> {
    await this.#arrived(mountPath, false);
    let resolution = await this.#resolve(mountPath);
    const stale =
      resolution.kind === 'found' && resolution.node.kind === 'snapshot' && !this.#window(resolution.node)
        ? resolution.node.store
        : resolution.kind === 'missing' && (resolution.parent.kind === 'store' || resolution.parent.kind === 'group')
          ? resolution.parent.store
          : undefined;
    if (stale !== undefined) {
      // The cached listing may be stale (a snapshot deleted, or received, outside the mount):
      // ask again, since mkdir answers before the transfer could find out.
      this.#invalidate(stale);
      resolution = await this.#resolve(mountPath);
    }
    if (resolution.kind === 'invalid') throw new FsError(resolution.reason);
    if (resolution.kind === 'found') throw new FsError(await this.#existsOrReadOnly(resolution.node));
    const parentWindow = this.#window(resolution.parent);
    if (parentWindow) {
      parentWindow.window.mkdir(join(parentWindow.relative, resolution.name), mode);
      return;
    }
    const parent = resolution.parent;
    if (parent.kind === 'snapshot' || parent.kind === 'inside') throw new FsError('EROFS');
    const name = nameInStore(resolution);
    if (name === undefined || (parent.kind !== 'store' && parent.kind !== 'group')) {
      throw new FsError('EPERM', `only snapshots can be made, inside a store's directory`);
    }
    this.#refuseIfReadOnly();
    await this.#transferOrGroup(parent.store, name, mode);
  }

  /** `mkdir /<store>/<name>`: transfers the snapshot of that name, or makes a group directory on the way to one. */
  async #transferOrGroup(store: string, name: string, mode: number): Promise<void> {
    const others = this.#options.stores.filter((s) => s.name !== store);
    const failures: FsError[] = [];
    const trees = await Promise.all(
      others.map((s) =>
        this.#tree(s.name).catch((error: unknown) => {
          failures.push(toFsError(error));
          return undefined;
        }),
      ),
    );
    if (!trees.some((t) => t?.hasSnapshot(name))) {
      if (trees.some((t) => t?.hasGroup(name))) {
        this.#listings.addGroup(store, name);
        return;
      }
      // A store that could not be listed may well hold it: that is no EPERM (no such snapshot).
      if (failures.length > 0) {
        throw new FsError('EIO', `no store that answered has a snapshot named ${name}; ${failures.map((f) => f.message).join('; ')}`);
      }
      throw new FsError('EPERM', `no mounted store has a snapshot named ${name}`);
    }
    const id = key(store, name);
    this.#arrivals.refuseSecond(store, name);
    const sources = others.filter((_, i) => trees[i]?.hasSnapshot(name));
    // mkdir only starts the transfer (see Arrivals): the copy window opens at once, and
    // what goes into it waits for the transfer there.
    let received: ReceivedFiles | undefined;
    const window = new CopyWindow({
      now: this.#now,
      root: { mode, uid: 0, gid: 0 },
      readReceived: async (relative, offset, length) => {
        received ??= this.#receivedFiles(store, name);
        return received === undefined ? null : received.read(relative, offset, length);
      },
    });
    window.hold(); // not idle while the transfer runs
    this.#windows.set(id, window);
    const done = this.#transfer(store, name, sources).then(
      async () => {
        received ??= this.#receivedFiles(store, name);
        const root = await received?.lstat('').catch(() => undefined);
        if (root !== undefined) {
          window.chmod('', root.mode);
          window.chown('', root.uid, root.gid);
        }
      },
      (error: unknown) => {
        if (this.#windows.get(id) === window) this.#windows.delete(id);
        throw toFsError(error);
      },
    );
    // Its failure is answered to the ops that wait, and logged.
    this.#arrivals.add(store, name, done.finally(() => window.letGo()));
  }

  /** Runs one transfer (serialized per store) and records it in the status file. */
  async #transfer(store: string, name: string, sources: readonly NamedStore[]): Promise<void> {
    const destination = this.#stores.get(store)!;
    let record: TransferRecord | undefined;
    try {
      await this.#changes.serially(store, () =>
        transferSnapshot({
          name,
          destination,
          sources,
          now: new Date(this.#now()),
          signal: this.#abort.signal,
          onSkippedSource: (source, error) => this.status.log(`not sending from ${source.name}: ${toFsError(error).message}`),
          onPlan: (source, step, plan) => {
            record = this.status.start(name, source.name, store, plan.totalBytes, step.parent?.name ?? null);
            return { stepStarted: () => {}, bytesMoved: (n) => (record!.bytes += n), stepFinished: () => {} };
          },
        }),
      );
      if (record) this.status.finish(record, { ok: true });
    } catch (error) {
      if (record) this.status.finish(record, { ok: false, reason: toFsError(error).message });
      else this.status.error(`transfer of ${name} to ${store} failed: ${toFsError(error).message}`);
      // Stopped by the unmount: whatever the store made of the abort (an S3 upload's own
      // error, a killed receive), the caller was interrupted (EINTR, as documented).
      if (this.#abort.signal.aborted) throw new FsError('EINTR', `transfer of ${name} to ${store} interrupted: ${toFsError(this.#abort.signal.reason).message}`);
      throw error;
    } finally {
      this.#invalidate(store);
    }
  }

  /** Waits for a transfer still running into the snapshot `mountPath` is in (see {@link Arrivals.below}). */
  async #arrived(mountPath: string, includeRoot: boolean): Promise<void> {
    if (this.#arrivals.size === 0) return;
    const area = locate(mountPath, this.#names);
    if (area.kind === 'store') await this.#arrivals.below(area.store, area.names, includeRoot);
  }

  async rmdir(mountPath: string): Promise<void> {
    await this.#arrived(mountPath, true);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open && open.relative !== '') return open.window.remove(open.relative, true);
    switch (node.kind) {
      case 'root':
      case 'control':
      case 'control-file':
      case 'store':
        throw new FsError('EPERM', `only snapshots can be removed`);
      case 'group': {
        const tree = await this.#tree(node.store);
        if ((tree.childrenOf(node.prefix) ?? []).length > 0) throw new FsError('ENOTEMPTY');
        this.#listings.removeGroup(node.store, node.prefix);
        return;
      }
      case 'inside':
        this.#refuseIfReadOnly();
        if ((await this.readdir(mountPath)).length > 0) throw new FsError('ENOTEMPTY');
        return this.#hide(node, mountPath);
      case 'snapshot':
        this.#refuseIfReadOnly();
        // rmdir removes empty directories: a snapshot is deleted once `rm -r` (or mv's
        // removal of its source) emptied it, or when it shows no files (S3). A bare rmdir of
        // one that still shows files is refused, like any non-empty directory's.
        if ((await this.readdir(mountPath)).length > 0) {
          throw new FsError('ENOTEMPTY', `${node.store}/${node.snapshot} is not empty: rm -r deletes a snapshot, rmdir only an emptied one`);
        }
        return this.#deleteSnapshot(node.store, node.snapshot);
    }
  }

  async unlink(mountPath: string): Promise<void> {
    await this.#arrived(mountPath, false);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open && open.relative !== '') return open.window.remove(open.relative, false);
    if (node.kind !== 'inside') throw new FsError(node.kind === 'control-file' ? 'EPERM' : 'EISDIR');
    this.#refuseIfReadOnly();
    this.#hide(node, mountPath);
  }

  /**
   * `rm -r` removes entries one by one: hide them (the final `rmdir` deletes the snapshot),
   * when a walk removes them; a lone `rm FILE` is refused (see {@link PendingRemovals}).
   */
  #hide(node: Extract<PathNode, { kind: 'inside' }>, mountPath: string): void {
    if (!this.#removals.remove(key(node.store, node.snapshot), node.relative, mountPath)) {
      throw new FsError('EROFS', `${mountPath}: a snapshot's files cannot be removed one by one (rm -r the snapshot to delete it)`);
    }
  }

  /** `opendir`: noted, so that removals by a walk holding its directory open can be told apart. */
  async opendir(mountPath: string): Promise<number> {
    await this.#arrived(mountPath, true);
    const node = await this.#node(mountPath);
    if (node.kind === 'snapshot' && this.#window(node) === undefined) await this.#arrivals.elsewhere(node.store, node.snapshot);
    const handle = this.#nextHandle++;
    this.#directoryHandles.set(handle, mountPath);
    this.#removals.opened(mountPath);
    return handle;
  }

  async releasedir(handle: number): Promise<void> {
    const mountPath = this.#directoryHandles.get(handle);
    if (mountPath === undefined) return;
    this.#directoryHandles.delete(handle);
    this.#removals.closed(mountPath);
  }

  async #deleteSnapshot(store: string, name: string): Promise<void> {
    const id = key(store, name);
    const { store: target } = this.#stores.get(store)!;
    if (!target.capabilities.canDelete) throw new FsError('EROFS', `${target.url} does not allow deleting`);
    // A diff store refuses (StillNeededError: EBUSY) what others are stored as diffs from.
    await this.#changes.onSnapshot(store, name, (s, snapshot, signal) => s.delete(snapshot, signal));
    this.#windows.delete(id);
    this.#removals.forget(id);
    // Keep the groups it was in until rm -r removes them too.
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) this.#listings.addGroup(store, parts.slice(0, i).join('/'));
    this.status.log(`deleted ${name} from ${store}`);
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    await this.#arrived(fromPath, true);
    await this.#arrived(toPath, false);
    const from = await this.#node(fromPath);
    const to = await this.#resolve(toPath);
    const fromWindow = this.#window(from);
    if (fromWindow !== undefined && fromWindow.relative !== '') {
      // rsync writes a temporary file, then renames it into place: within the window only.
      const target = windowTarget(to, from as Extract<PathNode, { kind: 'inside' }>);
      if (target === undefined) throw new FsError('EXDEV');
      return fromWindow.window.rename(fromWindow.relative, target);
    }
    if (from.kind !== 'snapshot') {
      // mv between stores renames each child into the copy window first and copies only on
      // EXDEV (coreutils' move mode): EXDEV makes it copy (compared) and remove the source.
      if (from.kind === 'inside' && to.kind === 'missing' && this.#window(to.parent)) throw new FsError('EXDEV');
      throw new FsError(this.#window(from) || from.kind === 'inside' ? 'EROFS' : 'EPERM', `only snapshots can be renamed`);
    }
    if (to.kind === 'invalid') throw new FsError(to.reason);
    if (to.kind === 'found') throw new FsError('EEXIST', `the target exists`);
    const parent = to.parent;
    if (parent.kind !== 'store' && parent.kind !== 'group') throw new FsError('EPERM', `a snapshot goes into a store's directory`);
    // Another store: EXDEV makes mv copy (a transfer) and then remove (a delete), as it should.
    if (parent.store !== from.store) throw new FsError('EXDEV');
    this.#refuseIfReadOnly();
    const newName = nameInStore(to)!;
    const { store: target } = this.#stores.get(from.store)!;
    if (target.rename === undefined) throw new FsError('EPERM', `${target.url} cannot rename snapshots`);
    // btrfs cannot move a read-only subvolume to another directory (its `..` would change):
    // a refusal by rule, not a failure, so EPERM with the reason rather than the store's EIO.
    if (path.posix.dirname(from.snapshot) !== path.posix.dirname(newName)) {
      throw new FsError('EPERM', `${from.snapshot} can only be renamed within its directory, not to ${newName}`);
    }
    await this.#changes.onSnapshot(from.store, from.snapshot, (s, snapshot, signal) => s.rename!(snapshot, newName, signal));
    const id = key(from.store, from.snapshot);
    const window = this.#windows.get(id);
    this.#windows.delete(id);
    if (window) this.#windows.set(key(from.store, newName), window);
    this.status.log(`renamed ${from.snapshot} to ${newName} in ${from.store}`);
  }

  /** Resolves a path whose last name is new, inside a copy window; otherwise the right refusal. */
  async #newInWindow(mountPath: string): Promise<{ window: CopyWindow; relative: string; node: PathNode }> {
    await this.#arrived(mountPath, false);
    const resolution = await this.#resolve(mountPath);
    if (resolution.kind === 'invalid') throw new FsError(resolution.reason);
    if (resolution.kind === 'found') throw new FsError(await this.#existsOrReadOnly(resolution.node));
    const open = this.#window(resolution.parent);
    if (open === undefined) {
      const p = resolution.parent;
      throw new FsError(p.kind === 'snapshot' || p.kind === 'inside' ? 'EROFS' : 'EPERM', `only snapshots can be made here (mkdir)`);
    }
    const relative = join(open.relative, resolution.name);
    const node = resolution.parent as Extract<PathNode, { kind: 'snapshot' | 'inside' }>;
    return { window: open.window, relative, node: { kind: 'inside', store: node.store, snapshot: node.snapshot, relative } };
  }

  /**
   * Why a new entry cannot be made at a found node: EEXIST when something is there, EROFS
   * for a name inside a snapshot (outside a copy window) that the snapshot lacks.
   */
  async #existsOrReadOnly(node: PathNode): Promise<'EEXIST' | 'EROFS'> {
    if (node.kind !== 'inside' || this.#window(node)) return 'EEXIST';
    const { reader, relative } = this.#readerOf(node);
    const there = reader !== undefined && (await reader.lstat(relative).then(() => true, () => false));
    return there ? 'EEXIST' : 'EROFS';
  }

  async create(mountPath: string, mode: number): Promise<number> {
    const { window, relative, node } = await this.#newInWindow(mountPath);
    window.create(relative, mode);
    return this.#newWindowHandle(node, window, relative);
  }

  async #newWindowHandle(node: PathNode, window: CopyWindow, relative: string): Promise<number> {
    const n = node as Extract<PathNode, { kind: 'snapshot' | 'inside' }>;
    window.hold();
    return this.#addHandle({ kind: 'window', window, relative, received: this.#receivedFiles(n.store, n.snapshot) });
  }

  async write(handle: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.#handle(handle);
    if (h.kind !== 'window') throw new FsError('EROFS');
    await h.window.write(h.relative, position, buffer.subarray(0, length));
    return length;
  }

  async symlink(target: string, mountPath: string): Promise<void> {
    const { window, relative } = await this.#newInWindow(mountPath);
    window.symlink(relative, target);
  }

  async mknod(mountPath: string, mode: number): Promise<void> {
    const { window, relative } = await this.#newInWindow(mountPath);
    window.mknod(relative, mode);
  }

  async link(_from: string, toPath: string): Promise<void> {
    const { window, relative } = await this.#newInWindow(toPath);
    // A hard link in a copy is recorded as a file of its own (the data is checked where cp writes it).
    window.create(relative, 0o644);
  }

  /** chmod, chown, utimens, truncate, setxattr: recorded in a copy window, EROFS elsewhere. */
  async change(mountPath: string, apply: (window: CopyWindow, relative: string) => void): Promise<void> {
    await this.#arrived(mountPath, true);
    const node = await this.#node(mountPath);
    const open = this.#window(node);
    if (open === undefined) throw new FsError(node.kind === 'root' || node.kind === 'store' || node.kind === 'group' || node.kind === 'control' ? 'EPERM' : 'EROFS');
    apply(open.window, open.relative);
  }

  async truncateHandle(handle: number, size: number): Promise<void> {
    const h = this.#handle(handle);
    if (h.kind !== 'window') throw new FsError('EROFS');
    h.window.truncate(h.relative, size);
  }

  // --- bookkeeping ----------------------------------------------------------------------

  #addHandle(handle: Handle): number {
    const n = this.#nextHandle++;
    this.#handles.set(n, handle);
    return n;
  }

  #handle(n: number): Handle {
    const h = this.#handles.get(n);
    if (h === undefined) throw new FsError('EBADF');
    return h;
  }

  #directoryAttributes(): Attributes {
    const t = this.#startedAt;
    return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 4096, nlink: 2, atime: t, mtime: t, ctime: t };
  }

  /**
   * The text of a control file. `getattr` and `open` share one rendering for a moment, so
   * that `cat` reads exactly the size it was told (the mount runs with attr_timeout 0, so
   * the kernel asks for the size each time); any change to the status renders it anew.
   */
  #controlText(file: 'status' | 'log'): string {
    const cached = this.#controlCache.get(file);
    const version = this.status.version;
    if (cached !== undefined && cached.version === version && this.#now() - cached.at < CONTROL_RENDER_MS) return cached.text;
    const text = file === 'status' ? this.status.renderStatus() : this.status.renderLog();
    this.#controlCache.set(file, { text, at: this.#now(), version });
    return text;
  }

  /** Closes idle copy windows and forgets stalled removals. */
  #sweep(): void {
    for (const [id, window] of this.#windows) {
      if (!window.isIdle(this.#options.copyIdleMs)) continue;
      this.#windows.delete(id);
        const [store, name] = id.split('\0') as [string, string];
      const s = this.#stores.get(store)?.store;
      const compared = s?.snapshotDirectory !== undefined || s?.snapshotFiles !== undefined;
      this.status.log(
        compared
          ? `copy into ${store}/${name} finished: ${formatBytes(window.verifiedBytes)} compared equal with the received snapshot` +
              (window.mismatch ? `; MISMATCH: ${window.mismatch}` : '')
          : `copy into ${store}/${name} finished: ${formatBytes(window.uncheckedBytes)} written, not compared (${store} cannot show a snapshot's files)`,
      );
    }
    for (const id of this.#removals.sweep()) {
      this.status.log(`rm of ${id.replace('\0', '/')} stopped before its final rmdir: nothing was deleted`);
    }
  }
}

function key(store: string, snapshot: string): string {
  return `${store}\0${snapshot}`;
}

function join(relative: string, name: string): string {
  return relative === '' ? name : `${relative}/${name}`;
}

function windowTarget(to: Resolution, from: { store: string; snapshot: string }): string | undefined {
  const sameSnapshot = (node: PathNode): node is Extract<PathNode, { kind: 'snapshot' | 'inside' }> =>
    (node.kind === 'snapshot' || node.kind === 'inside') && node.store === from.store && node.snapshot === from.snapshot;
  if (to.kind === 'found') return to.node.kind === 'inside' && sameSnapshot(to.node) ? to.node.relative : undefined;
  if (to.kind === 'missing' && sameSnapshot(to.parent)) return join(to.parent.kind === 'inside' ? to.parent.relative : '', to.name);
  return undefined;
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
