import type { Readable } from 'node:stream';
import type { Snapshot } from './snapshot.js';

/**
 * The size of one diff: the bytes its send stream carries.
 * `exact` is true when measured (e.g. `btrfs send --no-data`) or read from a store that
 * holds the diff; false for a cheap estimate that the planner may later replace.
 */
export interface DiffSize {
  readonly bytes: number;
  readonly exact: boolean;
  /**
   * Only with `exact` false: `bytes` is a lower bound, not a guess. Measuring stopped once
   * the stream was known to be larger than the `stopAbove` asked for ({@link Store.measureDiff}):
   * the real size is at least `bytes`, which is more than `stopAbove`.
   */
  readonly atLeast?: boolean;
}

/** How far {@link Store.measureDiff} needs to go. */
export interface MeasureOptions {
  /**
   * The caller only needs to know whether the stream is larger than this many bytes (a full
   * send that a measured small diff makes moot, say): the store may stop measuring once it is
   * and resolve a lower bound ({@link DiffSize.atLeast}).
   *
   * A promise when the bound is not known yet (the diffs it comes from are still being
   * measured): the store may start measuring at once and apply the bound when it comes, or
   * wait for it first; resolved `undefined`, there is no bound. It never rejects (the
   * caller's promise). The store treats a bound that came late exactly as one given at the
   * start.
   */
  readonly stopAbove?: number | Promise<number | undefined>;
}

/**
 * What a store can do, as data, so callers ask instead of catching "not supported".
 */
export interface StoreCapabilities {
  /**
   * The store can produce a send stream for any snapshot it holds, full or relative to any
   * other snapshot it holds (btrfs). When false, it can only replay {@link Store.storedDiffs}.
   */
  readonly canDiffAnyPair: boolean;
  /** {@link Store.receive} works (false for a read-only store or mode). */
  readonly canReceive: boolean;
  /** {@link Store.delete} works. */
  readonly canDelete: boolean;
  /**
   * The store keeps diffs, not snapshots (S3): restoring a snapshot replays its chain, so a
   * long chain is a risk the planner weighs.
   */
  readonly storesDiffs: boolean;
}

/** A diff a diff-store holds: the stream that turns `from` (null: nothing) into `to`. */
export interface StoredDiff {
  /** Effective UUID (received UUID, else UUID) of the snapshot the diff produces. */
  readonly to: string;
  /** Effective UUID of the parent it applies to, or null for a full stream. */
  readonly from: string | null;
  readonly bytes: number;
}

/** A stream being produced by {@link Store.send}. */
export interface SendStream {
  /** The btrfs send stream. The consumer reads it to the end or destroys it. */
  readonly stream: Readable;
  /**
   * Settles when the producer is finished: resolves after the whole stream was produced
   * successfully, rejects with a {@link TransferError} when the producer failed (then the
   * stream was incomplete, even if it ended cleanly). Never rejects unhandled: a consumer
   * that gives up still awaits it or attaches a handler.
   */
  readonly done: Promise<void>;
  /** Where the bytes come from, for messages about them (an S3 object's URL); optional. */
  readonly origin?: string;
}

/** What the receiving store needs to know about an incoming stream. */
export interface ReceiveRequest {
  /** Name (relative path) the snapshot gets in the destination. */
  readonly name: string;
  /** The snapshot as the sending store lists it. */
  readonly snapshot: Snapshot;
  /** The sending side's parent of this diff, or null for a full stream. */
  readonly parent: Snapshot | null;
  /** Expected stream size, for progress and pre-allocation; not trusted. */
  readonly expectedBytes: number;
  /** Where the stream comes from ({@link SendStream.origin}), for messages; not trusted. */
  readonly origin?: string;
}

/**
 * A place that holds btrfs snapshots: a local btrfs directory, a remote one over SSH, or a
 * diff store such as an S3 prefix.
 *
 * General rules, for every method:
 * - Errors meant for the user are {@link ButtersinkError}s: {@link StoreError} when the
 *   store cannot be used, {@link TransferError} when a child command or transfer failed,
 *   {@link PermissionError} when access is refused, {@link InterruptedError} when `signal`
 *   aborted the work. Anything else is a bug.
 * - `signal` aborts the operation: child processes are killed, and the method settles
 *   only after its partial work is removed.
 * - A store never shows a snapshot that is incomplete: {@link Store.list} returns only
 *   complete, read-only snapshots, and a receive becomes visible atomically at its end.
 */
export interface Store {
  /** The URL as the user wrote it (credentials removed), for messages. */
  readonly url: string;
  readonly capabilities: StoreCapabilities;

  /**
   * Every complete, read-only snapshot in the store, sorted by name. Read-write subvolumes,
   * plain files and buttersink's own staging area are not listed.
   * @throws StoreError when the location does not exist or is not a store of this kind.
   */
  list(): Promise<Snapshot[]>;

  /** The diffs a diff store holds; `[]` for stores that can diff any pair. */
  storedDiffs(): Promise<StoredDiff[]>;

  /**
   * Cheap guess at the size of the stream `send({snapshot, parent})` would produce,
   * without reading the filesystem beyond what {@link Store.list} already read.
   */
  estimateDiff(snapshot: Snapshot, parent: Snapshot | null): DiffSize;

  /**
   * Exact size of the stream `send({snapshot, parent})` would produce (±command framing),
   * read without transferring file data. Results may be cached across runs by UUID pair.
   * Any two snapshots a btrfs store holds can be measured, related or not (the diff of
   * unrelated ones is about a full stream).
   * With `options.stopAbove`, the store may stop as soon as the stream is known to be larger:
   * it then resolves `{ bytes, exact: false, atLeast: true }` with `stopAbove < bytes <=` the
   * real size, and never gives that bound as an exact size later (it may keep it as a bound,
   * to answer the next such question without measuring). A store may always measure in full
   * instead (exact).
   * @throws TransferError when measuring failed (e.g. the snapshot or parent is gone since it
   *   was listed).
   * @throws StoreError when the store cannot produce that diff (a diff store that does not hold
   *   it), as {@link Store.send}.
   */
  measureDiff(snapshot: Snapshot, parent: Snapshot | null, signal?: AbortSignal, options?: MeasureOptions): Promise<DiffSize>;

  /**
   * Starts a send stream of `snapshot`, full (`parent` null) or incremental from `parent`.
   * `cloneSources` are snapshots the receiver also holds; the store may use them to share
   * extents. The caller must consume or destroy `stream` and await `done`.
   * @throws StoreError when the store cannot produce that diff.
   */
  send(
    snapshot: Snapshot,
    parent: Snapshot | null,
    options?: { cloneSources?: readonly Snapshot[]; signal?: AbortSignal },
  ): Promise<SendStream>;

  /**
   * Receives a send stream as `request.name`. Resolves with the new snapshot once it is
   * complete and visible; the stream was read to its end.
   * On failure or abort, nothing new is visible under `request.name` and the partial is
   * removed before the promise rejects; `stream` is destroyed. (A diff store may keep an
   * unfinished upload, invisible, that a later receive of the same diff resumes: see
   * {@link Store.removeStale}.)
   * The caller holds {@link Store.lock} while receiving.
   * @throws StoreError when `request.name` exists already or cannot be created (a diff store
   *   takes another diff of the snapshot it holds under that name, and refuses only another
   *   snapshot there).
   * @throws TransferError when the stream was cut, corrupt, or did not apply.
   */
  receive(stream: Readable, request: ReceiveRequest, signal?: AbortSignal): Promise<Snapshot>;

  /**
   * Optional fast path, like rclone's server-side copy: receives `request.snapshot` straight
   * from `source` when both stores can connect their processes without the stream passing
   * through buttersink (two local btrfs directories). Resolves undefined when it cannot do
   * so for this source, and the caller streams through {@link Store.send} and
   * {@link Store.receive} instead. Same guarantees and errors as {@link Store.receive};
   * `onBytes` gets the running total of stream bytes; `bytes` is the size of the send stream
   * (what {@link Store.measureDiff} measured and `send`'s stream would have carried).
   */
  receiveDirect?(
    source: Store,
    request: ReceiveRequest,
    options?: {
      cloneSources?: readonly Snapshot[];
      onBytes?: (total: number) => void;
      signal?: AbortSignal;
      /** At most this many bytes per second (`--rate-limit`); unlimited when undefined. */
      rateLimit?: number;
    },
  ): Promise<{ snapshot: Snapshot; bytes: number } | undefined>;

  /**
   * Deletes a snapshot (a diff store may move it to a trash area instead). Idempotent: a
   * snapshot that is already gone is not an error. The caller holds {@link Store.lock}.
   * @throws StillNeededError (a diff store) when other snapshots it holds are stored only as
   *   diffs from this one (`storedDependents`); nothing is deleted then.
   */
  delete(snapshot: Snapshot, signal?: AbortSignal): Promise<void>;

  /**
   * Optional: gives a snapshot another name in the same store (`mv` in the FUSE mount).
   * Resolves with the snapshot under its new name. The caller holds {@link Store.lock}.
   * @throws StoreError when `newName` exists or the store cannot rename there.
   */
  rename?(snapshot: Snapshot, newName: string, signal?: AbortSignal): Promise<Snapshot>;

  /**
   * Optional: read-only access to a snapshot's files, for the FUSE mount to browse (a local
   * btrfs store reads its own directory, an SSH store asks its server, an S3 store answers from
   * the snapshot's index and reads file bytes out of its stored streams). Stores without it
   * show snapshots as empty directories. A snapshot a store cannot show may show a single
   * file that says why (S3: `BUTTERSINK-CANNOT-BROWSE.txt`), never a partial tree. Paths are relative to the snapshot's root (`''`
   * is the root itself), `/`-separated, and the entry a path names is never followed through
   * a symbolic link. Failures reject with an error carrying `code` (`ENOENT`, `ENOTDIR`, ...)
   * as node's fs does, or with a typed {@link ButtersinkError}.
   */
  snapshotFiles?(snapshot: Pick<Snapshot, 'name'>): SnapshotFiles;

  /**
   * Optional: the size and free space of what the store keeps its snapshots on (`df` in the
   * mount). Stores without it have no fixed size (S3) or cannot tell (SSH).
   */
  space?(): Promise<StoreSpace>;

  /**
   * Takes the store's writer lock, so that two buttersinks cannot write into it at once,
   * and removes partial receives that earlier crashed runs left behind. Resolves with the
   * function that releases it.
   * @throws BusyError when another process holds it.
   */
  lock(): Promise<() => Promise<void>>;

  /**
   * Optional: why this store cannot hold a snapshot of that name (e.g. S3 keys the original
   * layout could not read back), or undefined when it can. Asked for every planned send
   * before anything changes, so a bad name fails the run up front, not half way.
   */
  nameProblem?(name: string): string | undefined;

  /**
   * Optional, with `-d`: removes leftovers of interrupted runs that would otherwise be
   * resumed later (S3: unfinished multipart uploads). Resolves with how many were removed.
   * The caller holds {@link Store.lock}.
   */
  removeStale?(signal?: AbortSignal): Promise<number>;

  /**
   * Optional: {@link Store.lock}, then {@link Store.list}, in one call that may overlap the two
   * (a local store lists while it removes partial receives). Same results and errors as the
   * two calls in turn; when it rejects, nothing is held.
   */
  lockAndList?(): Promise<{ release: () => Promise<void>; snapshots: Snapshot[] }>;

  /**
   * Optional hint: this store is about to be used. A store that has to reach something first
   * (SSH: connect, start the remote server) starts doing so now, so that the waiting overlaps
   * the other store's listing. Resolves once that is under way (for SSH: the socket is
   * connecting; the CPU-bound part before it is done), never rejects: a failure is reported
   * by the next call that needs what failed. Takes no lock and changes nothing.
   */
  warmUp?(): Promise<void>;

  /**
   * Optional hint: exactly `count` sends or receives of this store follow (a sync's plan), and
   * then none for now. A store that starts a worker ahead of each transfer (SSH: a remote
   * server process) starts no more than these; after them it starts ahead again. Changes
   * nothing a call returns.
   */
  expectTransfers?(count: number): void;

  /** Releases resources (connections, caches; waits for child processes it stopped). Safe to call twice. */
  close(): Promise<void>;
}

/** A file's attributes inside a snapshot, as `lstat` gives them (times in milliseconds). */
export interface FileAttributes {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly rdev: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly atime: number;
  readonly mtime: number;
  readonly ctime: number;
}

/** A store's size and free space in bytes (see {@link Store.space}). */
export interface StoreSpace {
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** Free for an unprivileged writer (btrfs keeps a reserve). */
  readonly availableBytes: number;
}

/** Asynchronous, read-only access to one snapshot's files (see {@link Store.snapshotFiles}). */
export interface SnapshotFiles {
  /** The attributes of the entry itself (a symbolic link is not followed). */
  lstat(relative: string): Promise<FileAttributes>;
  /** The names in a directory (without `.` and `..`). */
  readdir(relative: string): Promise<string[]>;
  /** The target of a symbolic link. */
  readlink(relative: string): Promise<string>;
  /** Up to `length` bytes of a regular file from `offset` (fewer at its end). */
  read(relative: string, offset: number, length: number): Promise<Buffer>;
  /** The entry's extended attributes (empty when it has none). */
  xattrs?(relative: string): Promise<Map<string, Buffer>>;
  /**
   * Optional: opens a regular file for many reads (`cat` through the mount reads 128 KiB at a
   * time: naming the file again for each read costs a third of the throughput). Rejects as
   * `read` does for anything that is not a regular file.
   */
  open?(relative: string): Promise<OpenSnapshotFile>;
}

/** A regular file of a snapshot, open for reading (see {@link SnapshotFiles.open}). */
export interface OpenSnapshotFile {
  /** Reads up to `length` bytes from `position` into `buffer`; resolves how many (0 at the end). */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A store with the name it has among several (the mount's directory name, a config entry). */
export interface NamedStore {
  readonly name: string;
  readonly store: Store;
}
