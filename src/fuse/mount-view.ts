import type { Snapshot } from '../model/snapshot.js';
import type { NamedStore } from '../model/store.js';
import { Arrivals } from './arrivals.js';
import { S_IFDIR, S_IFMT, type CopyWindow } from './copy-window.js';
import { FsError } from './fs-error.js';
import type { ReceivedFiles } from './handles.js';
import { locate, type PathNode, type Resolution, type StoreTree } from './path-tree.js';
import type { PendingRemovals } from './pending-removals.js';
import { snapshotReader, type SnapshotReader } from './snapshot-reader.js';
import type { StoreListings } from './store-listings.js';

/** A node of a snapshot or below it. */
export type SnapshotNode = Extract<PathNode, { kind: 'snapshot' | 'inside' }>;

/** A node's copy window and its path in the window (`''` for the snapshot's root). */
export interface WindowAt {
  readonly window: CopyWindow;
  readonly relative: string;
}

export interface MountViewOptions {
  readonly stores: readonly NamedStore[];
  readonly listings: StoreListings;
  readonly removals: PendingRemovals;
  readonly now?: () => number;
}

/**
 * Waits for the running transfer of `name` into `store` on behalf of an operation on
 * `mountPath`; may cancel it when the operation's caller is interrupted (see `Transfers`).
 */
export type WaitFor = (transfer: Promise<void>, target: { store: string; name: string }, mountPath: string) => Promise<void>;

/**
 * What every part of the mount reads: the stores, their cached listings, the copy windows
 * open and the transfers running, and how a mount path resolves against them. The parts
 * (reads, transfers, window writes, removals, renames) share one view, and change the state
 * here only through it.
 */
export class MountView {
  readonly stores: ReadonlyMap<string, NamedStore>;
  readonly names: readonly string[];
  readonly listings: StoreListings;
  readonly removals: PendingRemovals;
  /** Open copy windows by {@link key}: where `cp -r` writes after its mkdir. */
  readonly windows = new Map<string, CopyWindow>();
  /** Transfers started by mkdir and still running (or just failed). */
  readonly arrivals: Arrivals;
  /** Set by `Transfers`, which can cancel what it waits for; plain waiting until then. */
  waitFor: WaitFor = (transfer) => transfer;

  constructor(options: MountViewOptions) {
    this.stores = new Map(options.stores.map((s) => [s.name, s]));
    this.names = options.stores.map((s) => s.name);
    this.listings = options.listings;
    this.removals = options.removals;
    this.arrivals = new Arrivals({ now: options.now });
  }

  /** A store's directory shape; snapshots with an open copy window count (arriving ones too). */
  tree(store: string): Promise<StoreTree> {
    const windows = [...this.windows.keys()].filter((id) => id.startsWith(`${store}\0`)).map((id) => id.slice(store.length + 1));
    return this.listings.tree(store, windows.sort());
  }

  /**
   * Resolves a path; below a snapshot with an open copy window, the window decides what
   * exists (what cp wrote so far, not the received snapshot's files).
   */
  async resolve(mountPath: string): Promise<Resolution> {
    const area = locate(mountPath, this.names);
    if (area.kind === 'resolved') return area.resolution;
    let resolution: Resolution;
    for (let attempt = 1; ; attempt++) {
      // The tree counts the windows open when it is asked for; the listing may take a while.
      // A snapshot found through a window that closed meanwhile (its transfer failed: the
      // window goes, nothing was received) is not there: resolve again, against the windows
      // as they are now, so the caller gets ENOENT or the transfer's failure, not the
      // phantom's attributes (or the lstat of a subvolume that was never made).
      const windowsBefore = new Map(this.windows);
      resolution = (await this.tree(area.store)).resolve(area.names);
      if (resolution.kind !== 'found' || (resolution.node.kind !== 'snapshot' && resolution.node.kind !== 'inside')) return resolution;
      const id = key(resolution.node.store, resolution.node.snapshot);
      if (windowsBefore.get(id) === this.windows.get(id) || attempt === 3) break;
    }
    if (resolution.node.kind !== 'inside') return resolution;
    const node = resolution.node;
    const window = this.windows.get(key(node.store, node.snapshot));
    if (window === undefined || window.lookup(node.relative) !== undefined) return resolution;
    const cut = node.relative.lastIndexOf('/');
    const parentRelative = cut < 0 ? '' : node.relative.slice(0, cut);
    const parentEntry = window.lookup(parentRelative);
    if (parentEntry === undefined || (parentEntry.mode & S_IFMT) !== S_IFDIR)
      return { kind: 'invalid', reason: parentEntry ? 'ENOTDIR' : 'ENOENT' };
    const parent: PathNode =
      parentRelative === '' ? { kind: 'snapshot', store: node.store, snapshot: node.snapshot } : { ...node, relative: parentRelative };
    return { kind: 'missing', parent, name: node.relative.slice(cut + 1) };
  }

  /**
   * The node a path names. A snapshot's name that is not in its store's listing lists the
   * store again once (see {@link StoreListings.refreshIfOlder}) before the answer is ENOENT:
   * `cp -r` of a snapshot made a moment ago outside the mount finds it.
   * @throws FsError ENOENT (or ENOTDIR) when there is none.
   */
  async node(mountPath: string): Promise<PathNode> {
    let resolution = await this.resolve(mountPath);
    const area = locate(mountPath, this.names);
    if (resolution.kind !== 'found' && area.kind === 'store') {
      // Not there: a transfer into it that failed a moment ago says why (mkdir answered 0).
      const failure = this.arrivals.failure(area.store, area.names);
      if (failure !== undefined) throw failure;
      if (isSnapshotName(resolution) && this.listings.refreshIfOlder(area.store, REFRESH_MIN_AGE_MS)) {
        resolution = await this.resolve(mountPath);
      }
    }
    if (resolution.kind === 'found') {
      const node = resolution.node;
      if (node.kind === 'inside' && this.removals.isHidden(key(node.store, node.snapshot), node.relative)) throw new FsError('ENOENT');
      return node;
    }
    throw new FsError(resolution.kind === 'invalid' ? resolution.reason : 'ENOENT');
  }

  async snapshot(store: string, name: string): Promise<Snapshot | undefined> {
    return (await this.listings.list(store)).find((s) => s.name === name);
  }

  /** How the mount reads a snapshot's files; undefined when its store shows none. */
  reader(store: string, name: string): SnapshotReader | undefined {
    return snapshotReader(this.stores.get(store)!.store, name);
  }

  /** A node's reader and its path in the snapshot. */
  readerOf(node: SnapshotNode): { reader: SnapshotReader | undefined; relative: string } {
    return { reader: this.reader(node.store, node.snapshot), relative: node.kind === 'inside' ? node.relative : '' };
  }

  /** A received snapshot's files as a copy is compared with them (a missing file reads as empty). */
  received(store: string, name: string): ReceivedFiles | undefined {
    const reader = this.reader(store, name);
    return (
      reader && {
        lstat: (relative) => reader.lstat(relative),
        read: (relative, offset, length) => reader.readToCompare(relative, offset, length),
      }
    );
  }

  window(node: PathNode): WindowAt | undefined {
    if (node.kind !== 'snapshot' && node.kind !== 'inside') return undefined;
    const window = this.windows.get(key(node.store, node.snapshot));
    return window && { window, relative: node.kind === 'inside' ? node.relative : '' };
  }

  /**
   * Waits for a transfer still running into the snapshot `mountPath` is in (see
   * {@link Arrivals.below}), and fails with its error.
   */
  async arrived(mountPath: string, includeRoot: boolean): Promise<void> {
    if (this.arrivals.size === 0) return;
    const area = locate(mountPath, this.names);
    if (area.kind !== 'store') return;
    const found = this.arrivals.below(area.store, area.names, includeRoot);
    if (found !== undefined) await this.waitFor(found.transfer, { store: area.store, name: found.name }, mountPath);
  }

  /** Waits for transfers of snapshot `name` out of `store` into the others (cp and mv opening their source). */
  async sentElsewhere(store: string, name: string, mountPath: string): Promise<void> {
    for (const { store: destination, transfer } of this.arrivals.elsewhere(store, name)) {
      await this.waitFor(transfer, { store: destination, name }, mountPath);
    }
  }

  /**
   * Why a new entry cannot be made at a found node: EEXIST when something is there, EROFS
   * for a name inside a snapshot (outside a copy window) that the snapshot lacks.
   */
  async existsOrReadOnly(node: PathNode): Promise<'EEXIST' | 'EROFS'> {
    if (node.kind !== 'inside' || this.window(node)) return 'EEXIST';
    const { reader, relative } = this.readerOf(node);
    const there =
      reader !== undefined &&
      (await reader.lstat(relative).then(
        () => true,
        () => false,
      ));
    return there ? 'EEXIST' : 'EROFS';
  }
}

/** A store's listing is asked again for a name not in it at most this often. */
export const REFRESH_MIN_AGE_MS = 1000;

/**
 * Could a newer listing of the store change this answer? A name missing directly in the
 * store or a group, or a group on the way that is missing (`daily/new` with no `daily` yet);
 * not a name missing inside a snapshot, whose files the listing does not hold.
 */
function isSnapshotName(resolution: Resolution): boolean {
  if (resolution.kind === 'missing') return resolution.parent.kind === 'store' || resolution.parent.kind === 'group';
  return resolution.kind === 'invalid' && resolution.reason === 'ENOENT';
}

/** The key of a snapshot in a store, for maps. */
export function key(store: string, snapshot: string): string {
  return `${store}\0${snapshot}`;
}

/** `relative/name`, or `name` at the snapshot's root. */
export function join(relative: string, name: string): string {
  return relative === '' ? name : `${relative}/${name}`;
}
