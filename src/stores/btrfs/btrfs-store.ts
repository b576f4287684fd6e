import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, statfs } from 'node:fs/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ButtersinkError, InterruptedError, messageOf, StoreError, TransferError } from '../../model/errors.js';
import { hasControlCharacter } from '../../model/printable-name.js';
import { effectiveUuid, type Snapshot } from '../../model/snapshot.js';
import type {
  DiffSize,
  MeasureOptions,
  ReceiveRequest,
  SendStream,
  SnapshotFiles,
  Store,
  StoreCapabilities,
  StoreSpace,
  StoredDiff,
} from '../../model/store.js';
import { MeasurementStopped, StreamMeasurer } from '../../sendstream/measure-stream.js';
import { NotASendStreamError, renameStreamHead, SubvolumeRenamer } from '../../sendstream/rename-subvolume.js';
import { RefusedStreamError, StreamValidator, type ReceiveScope } from '../../sendstream/stream-validator.js';
import type { MeasurementCache } from '../cache/measurement-cache.js';
import { lockDirectory } from '../../util/directory-lock.js';
import { pipeSendToReceive, StreamHeadMismatchError } from './pipe-send-to-receive.js';
import { readStreamHead } from './read-stream-head.js';
import { receiveSources } from './receive-sources.js';
import { SnapshotTree } from './snapshot-tree.js';
import { lastLines } from '../../util/last-lines.js';
import { localSnapshotFiles } from './local-snapshot-files.js';
import { XattrReader } from './local-xattrs.js';
import { locateDirectory, type DirectoryLocation } from './locate-directory.js';
import { crossCheckListings } from './cross-check-listings.js';
import { parseBriefSubvolumeList, parseSubvolumeList, type SubvolumeListEntry } from './parse-subvolume-list.js';
import { parseSubvolumeShow, type SubvolumeShow } from './parse-subvolume-show.js';
import { btrfsFailure, formatCommand, runBtrfs, spawnBtrfs, type FailureKind } from './run-btrfs.js';
import { isContainedName, isSubvolumeRootWithin, SUBVOLUME_ROOT_INODE } from './subvolume-root.js';
import type { CapturedResult } from '../../util/run-captured.js';

/** buttersink's own area inside a destination directory (the lock). */
export const WORK_DIRECTORY = '.buttersink';
const LOCK_FILE = `${WORK_DIRECTORY}/lock`;

/**
 * A receive in progress is named `.buttersink-partial.<random>.<name>` in the snapshot's
 * final directory: hidden, never the final name, and recognizably ours for cleanup.
 */
const PARTIAL_PATTERN = /^\.buttersink-partial\.[0-9a-f]{8}\./;
export function isPartialName(basename: string): boolean {
  return PARTIAL_PATTERN.test(basename);
}
function partialName(basename: string): string {
  return `.buttersink-partial.${randomBytes(4).toString('hex')}.${basename}`.slice(0, 255);
}

/**
 * Rough cost per generation between two related snapshots before anything was measured,
 * for estimates only: it makes closer parents look cheaper, nothing more.
 */
const ESTIMATED_BYTES_PER_GENERATION = 64 * 1024;

export interface BtrfsStoreOptions {
  /** Directory of snapshots. */
  readonly directory: string;
  readonly url: string;
  readonly cache: MeasurementCache;
  /**
   * Runs each short `btrfs` child (listings, measurements, shows, deletes) that the store
   * starts; `buttersink server` passes a limit so that a client's requests cannot start
   * children without bound. Default: no limit.
   */
  readonly childLimit?: LimitFunction;
  /** Non-fatal notes for the user (names skipped in a listing); said once each. */
  readonly onWarning?: (message: string) => void;
}

/** Said once per store when a listing could not be taken at its word. */
const UNTRUSTED_LISTING_WARNING =
  'subvolume names with newlines on this filesystem make `btrfs subvolume list` ambiguous (a name can forge entry lines): ' +
  'each snapshot was checked one by one, and entries that could not be were skipped; rename such subvolumes';

/**
 * A directory of read-only snapshots on a local btrfs filesystem.
 *
 * A receive creates its subvolume under a hidden temporary name in the final directory
 * (the stream is renamed on the fly) and is renamed to its final name only once
 * `btrfs receive` succeeded and the subvolume is read-only with a received UUID, so a failed,
 * interrupted or killed receive never leaves a complete-looking snapshot under its name.
 * {@link BtrfsStore.lock} removes what earlier crashed runs left behind.
 */
export class BtrfsStore implements Store {
  readonly url: string;
  readonly capabilities: StoreCapabilities = {
    canDiffAnyPair: true,
    canReceive: true,
    canDelete: true,
    storesDiffs: false,
  };
  readonly #directory: string;
  readonly #cache: MeasurementCache;
  readonly #children: LimitFunction;
  readonly #warn: (message: string) => void;
  readonly #warned = new Set<string>();
  /** xattrs of browsed files, read per directory and cached briefly (see XattrReader). */
  readonly #xattrs = new XattrReader();
  /** Measuring sends, which may outlive their answer (see measureDiff); close() waits. */
  readonly #measuring = new Set<Promise<unknown>>();
  #location: Promise<DirectoryLocation> | undefined;
  /** The last listing, for estimates. */
  #listed: readonly Snapshot[] = [];
  /** Bytes per generation of every diff measured, to scale estimates to this data. */
  readonly #perGeneration: number[] = [];

  constructor(options: BtrfsStoreOptions) {
    this.url = options.url;
    this.#directory = path.resolve(options.directory);
    this.#cache = options.cache;
    this.#children = options.childLimit ?? pLimit(Infinity);
    this.#warn = options.onWarning ?? (() => {});
  }

  /** `btrfs ARGS` to completion, within the child limit. */
  #run(args: readonly string[], options: { signal?: AbortSignal; failure?: FailureKind; what?: string } = {}): Promise<string> {
    return this.#children(() => runBtrfs(args, options));
  }

  #warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.#warn(message);
  }

  pathOf(snapshot: Pick<Snapshot, 'name'>): string {
    return path.join(this.#directory, snapshot.name);
  }

  snapshotFiles(snapshot: Pick<Snapshot, 'name'>): SnapshotFiles {
    return localSnapshotFiles(this.pathOf(snapshot), (file) => this.#xattrs.read(file));
  }

  async space(): Promise<StoreSpace> {
    const s = await statfs(this.#directory);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize };
  }

  #locate(): Promise<DirectoryLocation> {
    this.#location ??= locateDirectory(this.#directory);
    return this.#location;
  }

  /**
   * Finds where the directory is (`inspect-internal rootid`, read only) while the other store
   * is listed: the destination's first command need not wait behind the source's listing. A
   * failure is kept for the first call that needs the location.
   */
  warmUp(): Promise<void> {
    this.#locate().catch(() => {});
    return Promise.resolve();
  }

  list(): Promise<Snapshot[]> {
    return this.#listAll();
  }

  /**
   * The read-only snapshots below the directory.
   *
   * `btrfs subvolume list` prints names raw, so a name with a newline (made by hand, by
   * another program, or by a user on the same filesystem) may carry lines that look like
   * entries of their own. The directory is listed in three formats no line can match at once
   * (crossCheckListings); when they agree line for line, the entries are what btrfs printed.
   * Otherwise no entry is taken at its word: one with a plain name is described by
   * `btrfs subvolume show` at that path instead; one whose name holds control characters
   * (show would print it raw too) is kept only when the path is a subvolume root reached
   * without links whose ID (`inspect-internal rootid`) is the entry's and which is read-only
   * (`property get`): tools that print no names. Entries that share a name, UUID or ID are
   * dropped, and a warning says once that the listing could not be trusted.
   */
  async #listAll(signal?: AbortSignal): Promise<Snapshot[]> {
    const location = await this.#locate();
    const what = `listing ${location.directory}`;
    // `-a`: every path from the top level (see parse-subvolume-list.ts for why).
    const columns = ['-a', '-R', '-u', '-q', '-c', '-g', '-r'];
    const [full, withTimes, brief] = await Promise.all([
      this.#run(['subvolume', 'list', ...columns, location.directory], { signal, what }),
      // Only `-s` prints creation times, and it leaves out received subvolumes: merge by ID.
      this.#run(['subvolume', 'list', ...columns, '-s', location.directory], { signal, what }),
      this.#run(['subvolume', 'list', '-a', '-r', location.directory], { signal, what }),
      // Meanwhile: the cache knows the creation times `-s` left out before.
      this.#cache.load(),
    ]);
    const listing = crossCheckListings(
      parseSubvolumeList(full, 'full'),
      parseSubvolumeList(withTimes, 'with-times'),
      parseBriefSubvolumeList(brief),
    );
    const entries = listing.isTrusted ? listing.entries : parseSubvolumeList(full, 'full', { joinStrays: true }).entries;
    const prefix = location.topLevelPath === '' ? '' : `${location.topLevelPath}/`;
    const named = new Map<string, SubvolumeListEntry>();
    for (const entry of entries) {
      if (!entry.path.startsWith(prefix)) continue;
      const name = entry.path.slice(prefix.length);
      if (!isContainedName(name) || isPartialName(path.posix.basename(name)) || name.startsWith(`${WORK_DIRECTORY}/`)) continue;
      // Two entries of one name (only in a listing not trusted): the checks below tell which is real.
      if (!named.has(name)) named.set(name, entry);
    }
    if (!listing.isTrusted) this.#warnOnce(UNTRUSTED_LISTING_WARNING);
    // Received full streams are no "snapshots" to `-s`: ask them one by one (few per lineage).
    const limit = pLimit(4);
    const found = await Promise.all(
      [...named].map(async ([name, entry]) => {
        if (!listing.isTrusted) return limit(() => this.#checkedSnapshot(name, entry, signal));
        const time =
          entry.createdAt ?? this.#cache.createdAt(entry.uuid) ?? (await limit(() => this.#creationTime(name, entry.uuid, signal)));
        return { id: entry.id, snapshot: toSnapshot({ ...entry, createdAt: time }, name) };
      }),
    );
    const snapshots = withoutDuplicates(found.filter((f) => f !== null)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.#listed = snapshots;
    return snapshots;
  }

  /**
   * The read-only snapshot at `name`, checked without believing the listing's `entry`
   * (see #listAll), with its subvolume ID; null when there is none: not a subvolume root
   * reached through real directories, not read-only, another subvolume than the entry says, or gone.
   */
  async #checkedSnapshot(
    name: string,
    entry: SubvolumeListEntry,
    signal?: AbortSignal,
  ): Promise<{ id: number; snapshot: Snapshot } | null> {
    if (!(await isSubvolumeRootWithin(this.#directory, name))) return null;
    const at = this.pathOf({ name });
    const run = (args: readonly string[]): Promise<string | null> => this.#run(args, { signal, what: `reading ${name}` }).catch(() => null);
    if (hasControlCharacter(name)) {
      const [id, readOnly] = await Promise.all([run(['inspect-internal', 'rootid', at]), run(['property', 'get', '-ts', at, 'ro'])]);
      if (id?.trim() !== String(entry.id) || readOnly?.trim() !== 'ro=true') return null;
      return { id: entry.id, snapshot: toSnapshot({ ...entry, createdAt: null }, name) };
    }
    const output = await run(['subvolume', 'show', at]);
    if (output === null) return null;
    const show = parseSubvolumeShow(output);
    if (!show.isReadOnly || show.id === null || show.uuid === null) return null;
    if (!Number.isSafeInteger(show.generation) || !Number.isSafeInteger(show.creationGeneration)) return null;
    return {
      id: show.id,
      snapshot: {
        name,
        uuid: show.uuid,
        parentUuid: show.parentUuid,
        receivedUuid: show.receivedUuid,
        generation: show.generation,
        creationGeneration: show.creationGeneration,
        createdAt: show.createdAt,
      },
    };
  }

  async #creationTime(name: string, uuid: string, signal?: AbortSignal): Promise<Date | null> {
    const show = parseSubvolumeShow(await this.#run(['subvolume', 'show', this.pathOf({ name })], { signal, what: `reading ${name}` }));
    // Only when show describes the listed subvolume: the name may point elsewhere by now.
    if (show.createdAt !== null && show.uuid === uuid) this.#cache.setCreatedAt(uuid, show.createdAt);
    return show.createdAt;
  }

  async storedDiffs(): Promise<StoredDiff[]> {
    return [];
  }

  /**
   * A measured size when one is cached; for a full send, the measured full size of the
   * nearest sibling (snapshots of one subvolume are about the same size); otherwise a guess
   * from the generation distance, which only ranks closer parents as cheaper.
   */
  estimateDiff(snapshot: Snapshot, parent: Snapshot | null): DiffSize {
    const cached = this.#cache.peek(snapshot.uuid, parent?.uuid ?? null);
    if (cached !== undefined) return { bytes: cached.bytes, exact: true };
    if (parent === null) {
      const sibling = this.#nearestSiblingFullSize(snapshot);
      if (sibling !== undefined) return { bytes: sibling, exact: false };
    }
    const generations = parent === null ? snapshot.generation : Math.abs(snapshot.generation - parent.generation) + 1;
    return { bytes: Math.round(generations * this.#bytesPerGeneration()), exact: false };
  }

  /** Median bytes per generation of the diffs measured so far; a fixed guess before any. */
  #bytesPerGeneration(): number {
    if (this.#perGeneration.length === 0) return ESTIMATED_BYTES_PER_GENERATION;
    const sorted = [...this.#perGeneration].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  }

  #learn(snapshot: Snapshot, parent: Snapshot | null, bytes: number): void {
    if (parent !== null) this.#perGeneration.push(bytes / (Math.abs(snapshot.generation - parent.generation) + 1));
  }

  #nearestSiblingFullSize(snapshot: Snapshot): number | undefined {
    if (snapshot.parentUuid === null) return undefined;
    let best: { distance: number; bytes: number } | undefined;
    for (const sibling of this.#listed) {
      if (sibling.parentUuid !== snapshot.parentUuid || sibling.uuid === snapshot.uuid) continue;
      const bytes = this.#cache.peek(sibling.uuid, null)?.bytes;
      const distance = Math.abs(sibling.creationGeneration - snapshot.creationGeneration);
      if (bytes !== undefined && (best === undefined || distance < best.distance)) best = { distance, bytes };
    }
    return best?.bytes;
  }

  async measureDiff(snapshot: Snapshot, parent: Snapshot | null, signal?: AbortSignal, options: MeasureOptions = {}): Promise<DiffSize> {
    const cached = await this.#cache.get(snapshot.uuid, parent?.uuid ?? null);
    if (cached !== undefined) {
      this.#learn(snapshot, parent, cached.bytes);
      return { bytes: cached.bytes, exact: true };
    }
    let bound = typeof options.stopAbove === 'number' ? options.stopAbove : undefined;
    const lateBound = typeof options.stopAbove === 'object' ? options.stopAbove : undefined;
    const known = options.stopAbove === undefined ? undefined : await this.#cache.lowerBound(snapshot.uuid, parent?.uuid ?? null);
    if (known !== undefined) {
      // A bound kept from an earlier run may answer without a process: worth the wait.
      if (lateBound) bound = await lateBound;
      if (bound !== undefined && known > bound) return { bytes: known, exact: false, atLeast: true };
    }
    const args = ['send', '--no-data', '-q', ...(parent ? ['-p', this.pathOf(parent)] : []), this.pathOf(snapshot)];
    const measurer = new StreamMeasurer(bound === undefined ? {} : { stopAbove: bound });
    type Outcome = { stopped: MeasurementStopped } | { finished: [PromiseSettledResult<void>, PromiseSettledResult<CapturedResult>] };
    let answer: (outcome: Outcome) => void = () => {};
    const answered = new Promise<Outcome>((resolve) => (answer = resolve));
    // The child's slot is held until it exits, also after a stopped measurement is answered:
    // the server's limit on children must count the killed walks that still run.
    const run = this.#children(async () => {
      // The walk starts now; a bound that comes while it runs stops it there (a full send's
      // walk costs tens of ms whatever is read of it: better spent beside the diffs).
      if (lateBound && bound === undefined) {
        void lateBound.then((late) => {
          if (late !== undefined) measurer.stopAbove(late);
        });
      }
      const child = spawnBtrfs(args, { stdin: 'ignore', stdout: 'pipe', signal });
      const measuring = pipeline(child.stdout!, measurer);
      const stopped = await measuring.then(
        () => undefined,
        (error: unknown) => (error instanceof MeasurementStopped ? error : undefined),
      );
      if (stopped === undefined) return answer({ finished: await Promise.allSettled([measuring, child.result]) });
      // Past stopAbove the rest of the walk is not needed: end it, and answer without waiting
      // for its exit. A killed `btrfs send` exits only once its ioctl returns, ~40 ms after
      // the first chunk for a 1,000-file full here, and nothing it could still say changes
      // the bound.
      child.kill();
      answer({ stopped });
      await child.result;
    });
    const over = run.then(
      () => undefined,
      () => undefined, // (the failure is the caller's, through the race below)
    );
    this.#measuring.add(over);
    void over.then(() => this.#measuring.delete(over));
    const outcome = await Promise.race([answered, run.then(() => answered)]);
    if (signal?.aborted) throw new InterruptedError('interrupted while measuring');
    if ('stopped' in outcome) {
      await this.#cache.setLowerBound(snapshot.uuid, parent?.uuid ?? null, outcome.stopped.bytes);
      return { bytes: outcome.stopped.bytes, exact: false, atLeast: true };
    }
    const [piped, result] = outcome.finished;
    const res = result.status === 'fulfilled' ? result.value : undefined;
    if (!res || res.exitCode !== 0) {
      throw btrfsFailure(formatCommand(args), res?.stderr ?? '', res?.spawnErrorCode, {
        failure: 'transfer',
        what: `measuring ${describeDiff(snapshot, parent)}`,
      });
    }
    if (piped.status === 'rejected') {
      throw new TransferError(`measuring ${describeDiff(snapshot, parent)}: ${messageOf(piped.reason)}`);
    }
    const { streamBytes: bytes, head } = measurer.result;
    await this.#cache.set(snapshot.uuid, parent?.uuid ?? null, { bytes, head });
    this.#learn(snapshot, parent, bytes);
    return { bytes, exact: true };
  }

  async send(
    snapshot: Snapshot,
    parent: Snapshot | null,
    options: { cloneSources?: readonly Snapshot[]; signal?: AbortSignal } = {},
  ): Promise<SendStream> {
    const args = ['send', ...this.#sendArgs(snapshot, parent, options.cloneSources ?? [])];
    const child = spawnBtrfs(args, { stdin: 'ignore', stdout: 'pipe', signal: options.signal });
    const done = child.result.then((res) => {
      if (options.signal?.aborted) throw new InterruptedError('interrupted');
      if (res.exitCode !== 0) {
        throw btrfsFailure(formatCommand(args), res.stderr, res.spawnErrorCode, {
          failure: 'transfer',
          what: `sending ${describeDiff(snapshot, parent)}`,
        });
      }
    });
    done.catch(() => {}); // the caller awaits it; never an unhandled rejection
    // Up to 1 MiB read ahead of the consumer (an SSH channel, an S3 part being filled), so that
    // `btrfs send` keeps running while the consumer is busy; backpressure past that. Destroying
    // the stream closes the pipe and so ends `btrfs send`.
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    pipeline(child.stdout!, stream).catch(() => {});
    return { stream, done };
  }

  /**
   * The `btrfs send` arguments for this diff, for a caller that runs send itself with its
   * output going elsewhere than through node (`buttersink server` hands it the SSH channel).
   */
  sendArguments(snapshot: Snapshot, parent: Snapshot | null, cloneSources: readonly Snapshot[] = []): string[] {
    return ['send', ...this.#sendArgs(snapshot, parent, cloneSources)];
  }

  /** Arguments after `btrfs send` for this diff (quiet, parent, clone sources, snapshot). */
  #sendArgs(snapshot: Snapshot, parent: Snapshot | null, cloneSources: readonly Snapshot[]): string[] {
    const clones = cloneSources.filter((c) => c.uuid !== parent?.uuid && c.uuid !== snapshot.uuid);
    return ['-q', ...(parent ? ['-p', this.pathOf(parent)] : []), ...clones.flatMap((c) => ['-c', this.pathOf(c)]), this.pathOf(snapshot)];
  }

  /**
   * Every stream that comes through here is treated as hostile (it comes from another machine,
   * a bucket, or a remote server): it passes a {@link StreamValidator} on its way into
   * `btrfs receive -e --chroot`, and the result must be the snapshot that was asked for.
   */
  async receive(stream: Readable, request: ReceiveRequest, signal?: AbortSignal): Promise<Snapshot> {
    let scope: { scope: ReceiveScope; parent: Snapshot | null };
    try {
      scope = await this.#receiveScope(request, signal);
    } catch (error) {
      stream.destroy();
      throw error;
    }
    const expected = { receivedUuid: scope.scope.uuid, parentUuid: scope.parent?.uuid ?? null };
    return this.#receiveAs(
      request.name,
      async (directory, temporaryName) => {
        // -e: stop at the first END (nothing after it is applied); -C: chroot into the directory,
        // so that even a path the validator let through cannot resolve outside it.
        const args = ['-q', 'receive', '-e', '-C', directory];
        const validator = new StreamValidator(scope.scope);
        const renamer = new SubvolumeRenamer(temporaryName);
        const child = spawnBtrfs(args, { stdin: 'pipe', stdout: 'ignore', signal });
        const [piped, result] = await Promise.allSettled([pipeline(stream, validator, renamer, child.stdin!), child.result]);
        if (signal?.aborted) throw new InterruptedError(`interrupted while receiving ${request.name}`);
        const res = result.status === 'fulfilled' ? result.value : undefined;
        // receive -e exits at END, perhaps before our side of its stdin was closed.
        if (piped.status === 'rejected' && validator.isComplete && res?.exitCode === 0 && isClosedPipe(piped.reason)) return;
        if (piped.status === 'rejected' && piped.reason instanceof NotASendStreamError) {
          throw new TransferError(`receiving ${request.name}: ${piped.reason.message}`);
        }
        // The source failed in a way it explains (a refused stream, a download's checksum that
        // did not match, a lost SSH connection): that is the cause, and btrfs receive's "short
        // read" only its consequence.
        if (piped.status === 'rejected' && piped.reason instanceof ButtersinkError) {
          const cause = piped.reason;
          if (cause instanceof RefusedStreamError) {
            const from = request.origin === undefined ? '' : ` from ${request.origin}`;
            throw new RefusedStreamError(`receiving ${request.name}${from}: ${cause.message}`, { cause, hint: cause.hint });
          }
          throw cause instanceof TransferError
            ? new TransferError(`receiving ${request.name}: ${cause.message}`, { cause, hint: cause.hint })
            : cause;
        }
        // The source stream itself failed (anything but receive closing its end early): that
        // is the cause, and receive's "unexpected EOF" only its consequence.
        if (piped.status === 'rejected' && !isClosedPipe(piped.reason)) {
          throw new TransferError(`receiving ${request.name}: the stream failed: ${(piped.reason as Error).message}`, {
            cause: piped.reason,
          });
        }
        if (!res || res.exitCode !== 0) {
          // With -C, receive says where it chrooted to before anything else: not news.
          const stderr = lastLines((res?.stderr ?? '').replace(/^Chroot to .*\n/m, ''), 3);
          const upstream = piped.status === 'rejected' ? messageOf(piped.reason) : '';
          throw new TransferError(
            `receiving ${request.name} into ${this.#directory} failed: ${stderr.replaceAll('\n', ' | ') || upstream || 'btrfs receive failed'}`,
            { command: formatCommand(args), stderrTail: stderr },
          );
        }
        if (piped.status === 'rejected') {
          throw new TransferError(`receiving ${request.name}: the stream failed: ${messageOf(piped.reason)}`);
        }
      },
      () => stream.destroy(),
      expected,
    );
  }

  /**
   * What a stream for `request` may refer to: its UUIDs as requested, and as parent or clone
   * source only this directory's read-only snapshots that `btrfs receive` cannot mistake for a
   * subvolume elsewhere on the filesystem (see {@link receiveSources}).
   */
  async #receiveScope(request: ReceiveRequest, signal?: AbortSignal): Promise<{ scope: ReceiveScope; parent: Snapshot | null }> {
    const location = await this.#locate();
    const [listed, everything] = await Promise.all([
      this.#listAll(signal),
      runBtrfs(['subvolume', 'list', '-a', '-R', '-u', '-q', '-c', '-g', location.directory], {
        signal,
        what: `listing ${location.directory}`,
      }),
    ]);
    // Every subvolume's IDs: a line whose name part is a forged entry only adds holders of a
    // received UUID (more ambiguity, never less); a real subvolume's line always parses.
    const sources = receiveSources(listed, parseSubvolumeList(everything, 'full').entries);
    const trees = new Map<string, SnapshotTree>();
    const treeOf = (s: Snapshot): SnapshotTree => {
      let tree = trees.get(s.name);
      if (tree === undefined) trees.set(s.name, (tree = new SnapshotTree(this.pathOf(s))));
      return tree;
    };
    const parentUuid = request.parent === null ? null : effectiveUuid(request.parent);
    return {
      scope: {
        uuid: effectiveUuid(request.snapshot),
        parentUuid,
        sources: new Map([...sources.byUuid].map(([uuid, s]) => [uuid, treeOf(s)])),
        unsafe: sources.ambiguous,
      },
      parent: parentUuid === null ? null : (sources.byUuid.get(parentUuid) ?? null),
    };
  }

  /**
   * The fast path between two local btrfs stores (rclone's "server-side copy"): `btrfs send`
   * feeds `btrfs receive` through kernel pipes and never through this process. Same
   * guarantees as {@link BtrfsStore.receive}. Returns undefined for other kinds of source.
   */
  async receiveDirect(
    source: Store,
    request: ReceiveRequest,
    options: { cloneSources?: readonly Snapshot[]; onBytes?: (total: number) => void; signal?: AbortSignal; rateLimit?: number } = {},
  ): Promise<{ snapshot: Snapshot; bytes: number } | undefined> {
    if (!(source instanceof BtrfsStore)) return undefined;
    const sendArgs = source.#sendArgs(request.snapshot, request.parent, options.cloneSources ?? []);
    let bytes = 0;
    const snapshot = await this.#receiveAs(request.name, async (directory, temporaryName) => {
      const pipe = (originalHead: Buffer): Promise<number> =>
        pipeSendToReceive({
          sendArgs,
          originalHead,
          renamedHead: renameStreamHead(originalHead, temporaryName),
          receiveDirectory: directory,
          onBytes: options.onBytes ?? (() => {}),
          signal: options.signal,
          rateLimit: options.rateLimit,
          what: `sending ${describeDiff(request.snapshot, request.parent)} to ${this.#directory}`,
        });
      const fresh = async (): Promise<Buffer> => {
        const head = await readStreamHead(sendArgs, options.signal);
        if (head === null)
          throw new TransferError(`sending ${describeDiff(request.snapshot, request.parent)}: btrfs send produced no stream`);
        return head;
      };
      // Measuring kept the stream's head; a stale one (a snapshot made writable and changed
      // since) is caught by the pipeline before anything is received: then read it anew.
      const cached = (await source.#cache.get(request.snapshot.uuid, request.parent?.uuid ?? null))?.head;
      try {
        bytes = await pipe(cached ?? (await fresh()));
      } catch (error) {
        if (!(error instanceof StreamHeadMismatchError) || cached === undefined) throw error;
        bytes = await pipe(await fresh());
      }
    });
    return { snapshot, bytes };
  }

  /**
   * Receives under a hidden temporary name in the final directory, checks the result is
   * complete, and renames it into place; on any failure removes the partial and rethrows.
   */
  async #receiveAs(
    name: string,
    run: (directory: string, temporaryName: string) => Promise<void>,
    onEarlyFailure: () => void = () => {},
    expected?: ReceivedIdentity,
  ): Promise<Snapshot> {
    const finalPath = this.pathOf({ name });
    if (await exists(finalPath)) {
      onEarlyFailure();
      throw new StoreError(`${finalPath} already exists`);
    }
    const directory = path.dirname(finalPath);
    const temporary = path.join(directory, partialName(path.basename(finalPath)));
    await mkdir(directory, { recursive: true });
    try {
      await run(directory, path.basename(temporary));
      const show = await this.#checkComplete(temporary, expected);
      if (await exists(finalPath)) throw new StoreError(`${finalPath} appeared while receiving; keeping the existing one`);
      // Same directory: renaming a read-only subvolume across directories fails with EROFS.
      await rename(temporary, finalPath);
      return {
        name,
        uuid: show.uuid!,
        parentUuid: show.parentUuid,
        receivedUuid: show.receivedUuid,
        generation: show.generation,
        creationGeneration: show.creationGeneration,
        createdAt: show.createdAt,
      };
    } catch (error) {
      onEarlyFailure();
      await this.#deleteIfSubvolume(temporary);
      throw error;
    }
  }

  /**
   * A receive is complete when the subvolume is read-only and has a received UUID (FACTS); a
   * receive of an untrusted stream must also have made exactly the snapshot asked for, from
   * exactly the parent the validator allowed (the last line of defence should the validator
   * and btrfs receive ever disagree about which subvolume a UUID names).
   */
  async #checkComplete(subvolume: string, expected?: ReceivedIdentity): Promise<SubvolumeShow> {
    const show = parseSubvolumeShow(await this.#run(['subvolume', 'show', subvolume], { failure: 'transfer' }));
    if (!show.isReadOnly || show.receivedUuid === null || show.uuid === null) {
      throw new TransferError(`btrfs receive ended but ${subvolume} is incomplete (not read-only or no received UUID)`);
    }
    if (expected !== undefined && (show.receivedUuid !== expected.receivedUuid || show.parentUuid !== expected.parentUuid)) {
      throw new RefusedStreamError(
        `btrfs receive made snapshot ${show.receivedUuid} from parent ${show.parentUuid ?? 'none'}, ` +
          `not ${expected.receivedUuid} from ${expected.parentUuid ?? 'none'} as asked: removed`,
      );
    }
    return show;
  }

  async #deleteIfSubvolume(subvolume: string): Promise<void> {
    const info = await lstat(subvolume).catch(() => undefined);
    if (info?.ino === SUBVOLUME_ROOT_INODE) {
      await this.#run(['subvolume', 'delete', subvolume], { what: `removing partial receive ${subvolume}` });
    }
  }

  /**
   * Deletes the read-only snapshot at the snapshot's name, when it still is that snapshot
   * (same UUID, still read-only): never whatever else took its name since it was listed.
   */
  async delete(snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
    const target = this.pathOf(snapshot);
    const info = await lstat(target).catch(() => undefined);
    if (!info) return; // already gone
    const show = parseSubvolumeShow(await this.#run(['subvolume', 'show', target], { signal, what: `checking ${target}` }));
    if (show.uuid !== snapshot.uuid) {
      throw new StoreError(`refusing to delete ${target}: it is no longer the snapshot that was planned (uuid changed)`);
    }
    if (!show.isReadOnly) {
      throw new StoreError(`refusing to delete ${target}: it is no longer a read-only snapshot`);
    }
    await this.#run(['subvolume', 'delete', target], { signal, failure: 'transfer', what: `deleting ${target}` });
  }

  /**
   * Renames within the snapshot's own directory only: moving a read-only subvolume to another
   * directory would have to change its `..` entry, which btrfs refuses (EROFS).
   */
  async rename(snapshot: Snapshot, newName: string, signal?: AbortSignal): Promise<Snapshot> {
    const from = this.pathOf(snapshot);
    const to = this.pathOf({ name: newName });
    if (path.dirname(from) !== path.dirname(to)) {
      throw new StoreError(
        `cannot move ${snapshot.name} to another directory (${newName}): btrfs keeps read-only snapshots where they are`,
        {
          hint: 'rename it within its directory',
        },
      );
    }
    if (await exists(to)) throw new StoreError(`${to} already exists`);
    const show = parseSubvolumeShow(await this.#run(['subvolume', 'show', from], { signal, what: `checking ${from}` }));
    if (show.uuid !== snapshot.uuid) {
      throw new StoreError(`refusing to rename ${from}: it is no longer the snapshot that was listed (uuid changed)`);
    }
    await rename(from, to);
    return { ...snapshot, name: newName };
  }

  async lock(): Promise<() => Promise<void>> {
    return (await this.#lockWith(async () => undefined)).release;
  }

  /** lock() and list(), the listing made while the partials are removed. */
  async lockAndList(): Promise<{ release: () => Promise<void>; snapshots: Snapshot[] }> {
    const { release, result } = await this.#lockWith(() => this.#listAll());
    return { release, snapshots: result };
  }

  /** Takes the lock, then removes partials while `alongside` runs (it must not need them gone). */
  async #lockWith<T>(alongside: () => Promise<T>): Promise<{ release: () => Promise<void>; result: T }> {
    const location = await this.#locate();
    await mkdir(path.join(this.#directory, WORK_DIRECTORY), { recursive: true });
    const release = await lockDirectory(path.join(this.#directory, LOCK_FILE), this.#directory);
    try {
      // A listing never shows a partial (see #listAll), so it need not wait for their removal.
      const [result] = await Promise.all([alongside(), this.#removePartials(location)]);
      return { release, result };
    } catch (error) {
      await release();
      throw error;
    }
  }

  /**
   * Deletes partial receives that crashed runs left: subvolumes below the directory whose
   * name has buttersink's temporary pattern, read-write or not. Only called under the lock,
   * so no live receive is touched; other subvolumes never match. An entry may be forged
   * (see #listAll), so only plain names reached without links, at a subvolume root, count.
   */
  async #removePartials(location: DirectoryLocation): Promise<void> {
    const out = await this.#run(['subvolume', 'list', '-a', '-R', '-u', '-q', '-c', '-g', location.directory], {
      what: `listing ${location.directory}`,
    });
    const prefix = location.topLevelPath === '' ? '' : `${location.topLevelPath}/`;
    for (const entry of parseSubvolumeList(out, 'full', { joinStrays: true }).entries) {
      if (!entry.path.startsWith(prefix) || !isPartialName(path.posix.basename(entry.path))) continue;
      const name = entry.path.slice(prefix.length);
      if (await isSubvolumeRootWithin(this.#directory, name)) await this.#deleteIfSubvolume(path.join(this.#directory, name));
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#cache.save(), ...this.#measuring]);
  }
}

/** What a received subvolume must turn out to be: its received UUID and the UUID of the subvolume it was snapshotted from. */
interface ReceivedIdentity {
  readonly receivedUuid: string;
  readonly parentUuid: string | null;
}

function toSnapshot(e: SubvolumeListEntry, name: string): Snapshot {
  return {
    name,
    uuid: e.uuid,
    parentUuid: e.parentUuid,
    receivedUuid: e.receivedUuid,
    generation: e.generation,
    creationGeneration: e.creationGeneration,
    createdAt: e.createdAt,
  };
}

/**
 * The snapshots, without every one whose name, UUID or subvolume ID another one has too: one
 * of them is not what it says, and there is no telling which.
 */
function withoutDuplicates(found: readonly { id: number; snapshot: Snapshot }[]): Snapshot[] {
  const seen = new Map<string, number>();
  const keys = ({ id, snapshot }: { id: number; snapshot: Snapshot }): string[] => [
    `name\0${snapshot.name}`,
    `uuid\0${snapshot.uuid}`,
    `id\0${id}`,
  ];
  for (const f of found) for (const key of keys(f)) seen.set(key, (seen.get(key) ?? 0) + 1);
  return found.filter((f) => keys(f).every((key) => seen.get(key) === 1)).map((f) => f.snapshot);
}

function describeDiff(snapshot: Snapshot, parent: Snapshot | null): string {
  return parent ? `${snapshot.name} (from ${parent.name})` : `${snapshot.name} (full)`;
}

/** The reader of a pipe went away: EPIPE, or node's "Premature close" of the stream writing to it. */
function isClosedPipe(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}
