import type { NamedStore } from '../model/store.js';
import { ControlFiles } from './control-files.js';
import type { CopyWindow } from './copy-window.js';
import { FsError } from './fs-error.js';
import { Handles } from './handles.js';
import { MountView } from './mount-view.js';
import { PendingRemovals } from './pending-removals.js';
import { SnapshotReads, type Attributes } from './snapshot-reads.js';
import { StoreChanges } from './store-changes.js';
import { StoreEdits } from './store-edits.js';
import { StoreListings } from './store-listings.js';
import type { StatfsReply } from './store-space.js';
import type { TransferStatus } from './transfer-status.js';
import { Transfers } from './transfers.js';
import { WindowWrites } from './window-writes.js';

export type { Attributes } from './snapshot-reads.js';

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
  /** Is a caller of an operation on this path (or below) interrupted? (see {@link Transfers}) */
  readonly isInterrupted?: (mountPath: string) => Promise<boolean>;
}

const DEFAULT_STORE_TIMEOUT_MS = 30_000;

/**
 * Everything the mount does, as async methods that resolve, or reject with an `FsError` or
 * an error `toFsError` maps to an errno: the FUSE ops (`mount-ops.ts`) only call these. Each
 * concern is a part of its own over one shared {@link MountView} (the stores, their cached
 * listings, copy windows, transfers running):
 *
 * - {@link SnapshotReads}: attributes, listings, files, xattrs, `df`
 * - {@link Transfers}: `mkdir` of a snapshot's name starts its transfer
 * - {@link WindowWrites}: what `cp -r`/`rsync`/`tar` write after it, compared
 * - {@link StoreEdits}: `rm -r`/`rmdir` delete, `mv` renames or moves between stores
 */
export class MountFilesystem {
  readonly status: TransferStatus;
  readonly #view: MountView;
  readonly #changes: StoreChanges;
  readonly #reads: SnapshotReads;
  readonly #transfers: Transfers;
  readonly #writes: WindowWrites;
  readonly #edits: StoreEdits;
  readonly #abort = new AbortController();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MountOptions) {
    const now = options.now ?? Date.now;
    const { status, readOnly } = options;
    this.status = status;
    const listings = new StoreListings({
      stores: options.stores,
      ttlMs: options.listingTtlMs,
      timeoutMs: options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
      now,
    });
    const view = new MountView({
      stores: options.stores,
      listings,
      removals: new PendingRemovals({ now, idleMs: options.removalIdleMs }),
      now,
    });
    const handles = new Handles();
    this.#view = view;
    this.#changes = new StoreChanges(options.stores, listings, this.#abort.signal);
    this.#reads = new SnapshotReads(view, handles, new ControlFiles(status, now), { readOnly, startedAt: now() });
    this.#transfers = new Transfers(view, this.#changes, {
      readOnly,
      status,
      now,
      signal: this.#abort.signal,
      isInterrupted: options.isInterrupted,
    });
    this.#writes = new WindowWrites(view, handles, { status, copyIdleMs: options.copyIdleMs });
    this.#edits = new StoreEdits(view, this.#changes, this.#writes, { status, readOnly });
    this.#sweeper = setInterval(
      () => {
        this.#writes.sweep();
        this.#edits.sweep();
      },
      Math.min(1000, Math.max(100, options.copyIdleMs / 4)),
    );
    this.#sweeper.unref();
  }

  /** Aborts transfers in flight (their partial receives are removed) and stops timers. */
  shutdown(reason: Error): void {
    clearInterval(this.#sweeper);
    this.#abort.abort(reason);
  }

  get transfersInFlight(): number {
    return this.#view.arrivals.size;
  }

  /** Transfers, deletes and renames running or queued: unmounting waits for them to settle. */
  get changesInFlight(): number {
    return this.#changes.inFlight;
  }

  // Reading.
  statfs = (mountPath: string): Promise<StatfsReply> => this.#reads.statfs(mountPath);
  getattr = (mountPath: string): Promise<Attributes> => this.#reads.getattr(mountPath);
  readdir = (mountPath: string): Promise<string[]> => this.#reads.readdir(mountPath);
  readlink = (mountPath: string): Promise<string> => this.#reads.readlink(mountPath);
  open = (mountPath: string, flags: number): Promise<number> => this.#reads.open(mountPath, flags);
  read = (handle: number, buffer: Buffer, length: number, position: number): Promise<number> =>
    this.#reads.read(handle, buffer, length, position);
  release = (handle: number): Promise<void> => this.#reads.release(handle);
  listxattr = async (mountPath: string): Promise<string[]> => [...(await this.#reads.xattrs(mountPath)).keys()];
  getxattr = async (mountPath: string, name: string): Promise<Buffer> => {
    const value = (await this.#reads.xattrs(mountPath)).get(name);
    if (value === undefined) throw new FsError('ENODATA');
    return value;
  };

  // Transfers, and what a copy writes after them.
  mkdir = (mountPath: string, mode: number): Promise<void> => this.#transfers.mkdir(mountPath, mode);
  create = (mountPath: string, mode: number): Promise<number> => this.#writes.create(mountPath, mode);
  write = (handle: number, buffer: Buffer, length: number, position: number): Promise<number> =>
    this.#writes.write(handle, buffer, length, position);
  symlink = (target: string, mountPath: string): Promise<void> => this.#writes.symlink(target, mountPath);
  mknod = (mountPath: string, mode: number): Promise<void> => this.#writes.mknod(mountPath, mode);
  link = (_from: string, toPath: string): Promise<void> => this.#writes.link(toPath);
  /** chmod, chown, utimens, truncate, setxattr: recorded in a copy window, EROFS elsewhere. */
  change = (mountPath: string, apply: (window: CopyWindow, relative: string) => void): Promise<void> =>
    this.#writes.change(mountPath, apply);
  truncateHandle = (handle: number, size: number): Promise<void> => this.#writes.truncateHandle(handle, size);

  // Deletes and renames.
  opendir = (mountPath: string): Promise<number> => this.#edits.opendir(mountPath);
  releasedir = (handle: number): Promise<void> => this.#edits.releasedir(handle);
  rmdir = (mountPath: string): Promise<void> => this.#edits.rmdir(mountPath, (p) => this.#reads.readdir(p));
  unlink = (mountPath: string): Promise<void> => this.#edits.unlink(mountPath);
  rename = (fromPath: string, toPath: string): Promise<void> => this.#edits.rename(fromPath, toPath);
}
