import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { LimitFunction } from 'p-limit';
import { ExitCode, messageOf, PermissionError, StoreError, TransferError } from '../model/errors.js';
import { hasControlCharacter, quoteName } from '../model/printable-name.js';
import { SignalReceived } from '../model/signal-received.js';
import type { Snapshot } from '../model/snapshot.js';
import type { BtrfsStore } from '../stores/btrfs/btrfs-store.js';
import { lastLines } from '../util/last-lines.js';
import { browse } from './browse.js';
import { checkNoSymlinks, checkSnapshotName } from './contain-path.js';
import {
  checkHello,
  encodeDataAnswer,
  encodeMessage,
  FRAME_HEADER_BYTES,
  modeAllows,
  parseFrameHeader,
  parseMessage,
  RAW_ERROR_PREFIX,
  REQUIRED_MODE,
  type Operation,
  type ServerMode,
  type WireError,
} from './protocol.js';
import { withParentTokens } from './parent-uuid-tokens.js';
import type { ServerIo } from './server-io.js';
import { MAX_REQUEST_BYTES, requestId, toServerRequest, type ServerRequest } from './server-request.js';
import { confineToDirectory, toWireError } from './wire-errors.js';
import { fromWireSnapshot, toWireSnapshot, type WireSnapshot } from './wire-snapshot.js';

export interface ServerOptions {
  readonly mode: ServerMode;
  /** The one directory this server serves. */
  readonly store: BtrfsStore;
  readonly directory: string;
  /** The SSH channel's stdin and stdout. */
  readonly io: ServerIo;
  readonly version: string;
  /**
   * Runs every child process the server starts for a request (the store's `btrfs` children
   * must run in it too: pass the same one to the BtrfsStore), bounding how many run at once
   * whatever the client asks; {@link MAX_CHILD_PROCESSES} is the one `buttersink server` uses.
   */
  readonly childLimit: LimitFunction;
  /** Key of the tokens that stand for parents outside the directory (parent-uuid-tokens.ts). */
  readonly tokenKey: () => Promise<Buffer>;
  /** Aborted on SIGTERM/SIGINT/SIGHUP: the server stops at once, whatever it waits for. */
  readonly signal?: AbortSignal;
  /**
   * The write of this server's hello (`makeHello(version, mode)`) on `io`, which the caller
   * starts: the CLI sends it before it loads the server's modules, since the client waits
   * for it before anything else. The session awaits it, then reads the client's hello.
   */
  readonly helloSent: Promise<void>;
}

/**
 * Requests a session works on at once. The server reads no further request until one of them
 * is answered, and an answer waits until the client reads it (writes block), so a client that
 * sends requests without reading answers holds at most this many answers in the server's
 * memory: 16 browse reads of 1 MiB each, about 32 MiB with their frames. A client that reads
 * its answers is never held up for long: work in flight always finishes (clients pipeline at
 * most 8 read-ahead blocks per file, see remote-files.ts).
 */
export const MAX_REQUESTS_IN_FLIGHT = 16;

/** Child processes (btrfs, getfattr) one session runs at once; more requests wait their turn. */
export const MAX_CHILD_PROCESSES = 4;

/** How long a stop (a signal) waits for running work to end once aborted, before exiting anyway. */
const STOP_GRACE_MS = 2000;

const OPERATIONS = new Set<string>(Object.keys(REQUIRED_MODE));
const MODE_NAMES: Record<ServerMode, string> = { r: 'r (read)', a: 'a (add)', w: 'w (add and delete)' };
const VERBS: Record<Operation, string> = {
  list: 'listing',
  measure: 'measuring',
  browse: 'browsing',
  send: 'sending',
  receive: 'receiving',
  lock: 'locking',
  unlock: 'unlocking',
  delete: 'deleting',
};

/** A request named a snapshot that is not there at all (deleted since the client listed it). */
class SnapshotGoneError extends TransferError {}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** What a wait of the session resolves with once a signal stopped it. */
const STOPPED: unique symbol = Symbol('stopped');

/**
 * `buttersink server`: serves one btrfs directory over one SSH exec channel. Everything the
 * client asks passes two gates first: the mode the server was started with (which sudoers
 * can pin), and path containment (names stay inside the directory: no `..`, no absolute
 * paths, no symbolic links on the way).
 *
 * The control channel (listing, measuring, deleting, the lock) serves requests until the
 * client closes its side or the connection drops; then running work is aborted and the lock
 * released. A send or receive uses a channel of its own, and the stream flows between the
 * channel and btrfs directly (see protocol.ts); the server exits after it.
 * Resolves with the process's exit status.
 */
export async function serve(options: ServerOptions): Promise<number> {
  return new ServerSession(options).run();
}

class ServerSession {
  readonly #options: ServerOptions;
  readonly #abort = new AbortController();
  readonly #running = new Set<Promise<void>>();
  /** Settles when the options' signal aborts: every wait of the session races it. */
  readonly #stopped: Promise<void>;
  #releaseLock: (() => Promise<void>) | undefined;
  #exitCode = 0;
  /** The read-only snapshots at the last listing, by name, and a listing under way. */
  #listed: Promise<ReadonlyMap<string, Snapshot>> | undefined;
  #listing: Promise<ReadonlyMap<string, Snapshot>> | undefined;
  #saidUnnamable = false;

  constructor(options: ServerOptions) {
    this.#options = options;
    const { signal } = options;
    this.#stopped = new Promise((resolve) => {
      if (signal?.aborted) resolve();
      else signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  async run(): Promise<number> {
    const { io, version } = this.#options;
    try {
      await this.#unlessStopped(this.#options.helloSent);
      const hello = await this.#unlessStopped(this.#readMessage(true));
      if (hello === null || hello === STOPPED) return this.#stopCode() ?? 0;
      const problem = checkHello(hello, { version });
      if (problem !== null) {
        await io.write(
          encodeMessage({ error: this.#wireError(new StoreError(problem, { hint: 'install the same buttersink version on both ends' })) }),
        );
        return 2;
      }
      for (;;) {
        // At the bound, the next request stays in the channel (and the client's send window).
        while (this.#running.size >= MAX_REQUESTS_IN_FLIGHT) {
          if ((await this.#unlessStopped(Promise.race(this.#running))) === STOPPED) break;
        }
        const message = await this.#unlessStopped(this.#readMessage(false));
        if (message === null || message === STOPPED) break; // the client closed its side, the connection dropped, or a signal
        let request: ServerRequest;
        try {
          request = toServerRequest(message);
        } catch (error) {
          this.#track(this.#answer(requestId(message), () => Promise.reject(error)));
          continue;
        }
        if (request.op === 'send' || request.op === 'receive') {
          // The stream takes the channel over; nothing more is read from it. Tracked like the
          // rest, so that a stop gives an aborted receive its grace to remove its partial.
          const work = this.#handle(request);
          this.#track(work);
          await this.#unlessStopped(work);
          break;
        }
        this.#track(this.#handle(request));
      }
    } catch (error) {
      process.stderr.write(`buttersink server: ${confineToDirectory(messageOf(error), this.#options.directory)}\n`);
      this.#exitCode ||= 2;
    } finally {
      this.#abort.abort(new Error('the client went away'));
      // Aborted work ends quickly; but an answer may wait on a client that reads nothing.
      const settled = Promise.allSettled([...this.#running]);
      await (this.#options.signal?.aborted ? Promise.race([settled, delay(STOP_GRACE_MS)]) : settled);
      await this.#releaseLock?.().catch(() => {});
      await this.#options.store.close().catch(() => {});
    }
    return this.#stopCode() ?? this.#exitCode;
  }

  /** `work`'s value, or {@link STOPPED} as soon as a signal stops the server. */
  #unlessStopped<T>(work: Promise<T>): Promise<T | typeof STOPPED> {
    work.catch(() => {}); // a stop leaves it behind: its failure is nobody's business then
    return Promise.race<T | typeof STOPPED>([work, this.#stopped.then((): typeof STOPPED => STOPPED)]);
  }

  /** The exit status after a signal (128 + its number), or undefined when none came. */
  #stopCode(): number | undefined {
    const { signal } = this.#options;
    if (!signal?.aborted) return undefined;
    return signal.reason instanceof SignalReceived ? signal.reason.exitCode : ExitCode.Interrupted;
  }

  /** The next message, or null at the end of the input. */
  async #readMessage(isFirst: boolean): Promise<Record<string, unknown> | null> {
    const header = await this.#options.io.readExactly(FRAME_HEADER_BYTES);
    if (header.length === 0) return null;
    if (header.length < FRAME_HEADER_BYTES) throw new Error('the input ended in the middle of a message');
    const length = parseFrameHeader(header, isFirst, false, MAX_REQUEST_BYTES);
    const payload = await this.#options.io.readExactly(length);
    if (payload.length < length) throw new Error('the input ended in the middle of a message');
    return parseMessage(payload);
  }

  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  /** An error as it goes to the client: typed, its paths relative to the directory. */
  #wireError(error: unknown): WireError {
    return toWireError(error, this.#options.directory);
  }

  async #handle(request: ServerRequest): Promise<void> {
    let isRaw = false;
    const ready = async (): Promise<void> => {
      await this.#options.io.write(encodeMessage({ id: request.id, ready: true }));
      isRaw = request.op === 'send'; // after a send's ready, stdout belongs to the stream
    };
    await this.#answer(
      request.id,
      () => this.#run(request, ready),
      () => isRaw,
    );
  }

  /**
   * Answers request `id` with what `work` resolves with or the error it throws. Never
   * rejects. Once `isRaw()` (a send's stream took stdout over) the answer goes to stderr.
   */
  async #answer(id: number | null, work: () => Promise<unknown>, isRaw: () => boolean = () => false): Promise<void> {
    const { io } = this.#options;
    try {
      const result = await work();
      if (!isRaw()) {
        // File bytes (a browse read) go raw in a data frame, not base64 in JSON.
        const data = (result as { data?: unknown } | null)?.data;
        await io.write(
          Buffer.isBuffer(data) ? encodeDataAnswer(id, result as Record<string, unknown>, data) : encodeMessage({ id, ok: true, result }),
        );
      }
    } catch (error) {
      if (isRaw()) {
        process.stderr.write(`${RAW_ERROR_PREFIX}${JSON.stringify(this.#wireError(error))}\n`);
        this.#exitCode = 5;
      } else {
        await io.write(encodeMessage({ id, ok: false, error: this.#wireError(error) })).catch(() => {});
      }
    }
  }

  async #run(request: ServerRequest, ready: () => Promise<void>): Promise<unknown> {
    const op = request.op;
    if (op === undefined || !OPERATIONS.has(op)) {
      throw new StoreError(`unknown request ${quoteName(String(op))}`, { hint: 'install the same buttersink version on both ends' });
    }
    const operation = op as Operation;
    const { mode, store, directory, childLimit } = this.#options;
    if (!modeAllows(mode, operation)) {
      const needed = REQUIRED_MODE[operation];
      throw new PermissionError(
        `${VERBS[operation]} refused: the server runs in mode ${MODE_NAMES[mode]}, this needs mode ${MODE_NAMES[needed]}`,
        {
          hint: `allow 'buttersink server --mode ${needed} ${directory}' for this key on the remote (sudoers)`,
        },
      );
    }
    const signal = this.#abort.signal;
    switch (operation) {
      case 'list':
        return this.#withParentTokens([...(await this.#listAgain()).values()]);
      case 'measure': {
        const snapshot = await this.#resolve(request.snapshot);
        const parent = request.parent === null ? null : await this.#resolve(request.parent);
        const size = await store.measureDiff(
          snapshot,
          parent,
          signal,
          request.stopAbove === undefined ? {} : { stopAbove: request.stopAbove },
        );
        return size.atLeast === true ? { bytes: size.bytes, exact: false, atLeast: true } : { bytes: size.bytes, exact: size.exact };
      }
      case 'browse':
        return browse(directory, request, async (name) => (await this.#listedSnapshot(name)) !== undefined, childLimit);
      case 'delete': {
        // Only a read-only snapshot this server lists, by name and UUID: never a writable
        // subvolume (a listed snapshot's parentUuid, say) that a client names.
        const snapshot = await this.#resolve(request.snapshot).catch((error: unknown) => {
          if (error instanceof SnapshotGoneError) return null;
          throw error;
        });
        // Already gone: deleting is idempotent (the Store contract), as the store's own delete is.
        if (snapshot === null) return null;
        await store.delete(snapshot, signal);
        this.#forget(snapshot.name);
        return null;
      }
      case 'lock': {
        if (this.#releaseLock) throw new StoreError('this channel holds the lock already');
        if (request.list !== true) {
          this.#releaseLock = await store.lock();
          return null;
        }
        // The lock and then the listing in one answer: the directory is listed while the
        // partials are removed, and the client waits for one round trip instead of two.
        const { release, snapshots } = await store.lockAndList();
        this.#releaseLock = release;
        const served = this.#served(snapshots);
        this.#listed = Promise.resolve(served); // the latest listing, as #listAgain's would be
        return { snapshots: await this.#withParentTokens([...served.values()]) };
      }
      case 'unlock': {
        const release = this.#releaseLock;
        this.#releaseLock = undefined;
        await release?.();
        return null;
      }
      case 'send':
        return this.#send(request, ready);
      case 'receive':
        // The answer's parent needs no token: the store makes a snapshot only from a parent
        // among this directory's read-only snapshots (the one the validator allowed, checked
        // again on the result, else removed and refused), which listings show as they are.
        // (One whose name holds control characters is not listed, but its UUID names nothing
        // for a client: every request needs a valid name with it.) So no listing per receive.
        return this.#receive(request, ready);
    }
  }

  /** Snapshots as the client may see them: parents outside the directory as tokens. */
  async #withParentTokens(snapshots: readonly Snapshot[]): Promise<WireSnapshot[]> {
    return withParentTokens(snapshots, await this.#options.tokenKey(), this.#options.directory).map(toWireSnapshot);
  }

  /**
   * The snapshot a request names, as this server lists it: the name must be a read-only
   * snapshot in the directory (listed again when it is not in the last listing), and the
   * UUID the client sent must be that snapshot's. Everything else about it comes from the
   * listing, never from the client: it is what gets measured (and cached under its UUID),
   * sent or deleted.
   * @throws SnapshotGoneError (a TransferError) when nothing is at that name.
   * @throws PermissionError for anything else.
   */
  async #resolve(value: unknown): Promise<Snapshot> {
    const claimed = fromWireSnapshot(value);
    checkSnapshotName(claimed.name);
    let listed = await this.#listedSnapshot(claimed.name);
    if (listed !== undefined && listed.uuid !== claimed.uuid) listed = (await this.#listAgain()).get(claimed.name);
    if (listed === undefined) {
      // Nothing at all at that name (no link on the way looked through): gone, not refused.
      await checkNoSymlinks(this.#options.directory, claimed.name);
      if (!(await exists(path.join(this.#options.directory, claimed.name)))) {
        throw new SnapshotGoneError(`${quoteName(claimed.name)} is not in this directory (deleted since it was listed?)`);
      }
      throw new PermissionError(`refused ${quoteName(claimed.name)}: not a read-only snapshot of this directory`);
    }
    if (listed.uuid !== claimed.uuid) {
      throw new PermissionError(`refused ${quoteName(claimed.name)}: it is not the snapshot with UUID ${quoteName(claimed.uuid)}`);
    }
    await checkNoSymlinks(this.#options.directory, claimed.name);
    return listed;
  }

  /**
   * The read-only snapshot listed as `name` (what `list` shows), or undefined. Also decides
   * what may be browsed: only snapshots, since only what cannot change stays as checked. A
   * name not in the last listing (a snapshot received since) lists the directory again.
   */
  async #listedSnapshot(name: string): Promise<Snapshot | undefined> {
    const known = await this.#listed?.catch(() => undefined);
    return known?.get(name) ?? (await this.#listAgain()).get(name);
  }

  /**
   * Lists the directory; concurrent callers share one listing. Snapshots whose names hold
   * control characters are left out (and said so once on stderr): no client can name them
   * (checkSnapshotName), and a newline in a name shown would forge lines on the other end.
   */
  #listAgain(): Promise<ReadonlyMap<string, Snapshot>> {
    this.#listing ??= this.#options.store
      .list()
      .then((listed) => this.#served(listed))
      .finally(() => (this.#listing = undefined));
    this.#listed = this.#listing;
    return this.#listing;
  }

  /** What of a listing this server serves, by name; warns once about the rest. */
  #served(listed: readonly Snapshot[]): ReadonlyMap<string, Snapshot> {
    const served = listed.filter((s) => !hasControlCharacter(s.name));
    if (served.length < listed.length && !this.#saidUnnamable) {
      this.#saidUnnamable = true;
      process.stderr.write(
        `buttersink server: warning: not serving ${listed.length - served.length} snapshot(s) whose names hold control characters: rename them\n`,
      );
    }
    return new Map(served.map((s) => [s.name, s]));
  }

  /** Drops a deleted snapshot from the last listing. */
  #forget(name: string): void {
    const listed = this.#listed;
    this.#listed = listed?.then((known) => new Map([...known].filter(([n]) => n !== name)));
  }

  /** Checks and converts snapshots named in a request (a null parent stays null). */
  async #snapshots(...values: unknown[]): Promise<(Snapshot | null)[]> {
    const snapshots = values.map((v, i) => (i > 0 && v === null ? null : fromWireSnapshot(v)));
    for (const s of snapshots) if (s) await this.#checkName(s.name);
    return snapshots;
  }

  async #checkName(name: string): Promise<void> {
    checkSnapshotName(name);
    await checkNoSymlinks(this.#options.directory, name);
  }

  /**
   * `btrfs send` writes straight into the channel. The snapshot, its parent and the clone
   * sources are resolved against the listing like any other request's.
   */
  async #send(request: ServerRequest, ready: () => Promise<void>): Promise<null> {
    const snapshot = await this.#resolve(request.snapshot);
    const parent = request.parent === null ? null : await this.#resolve(request.parent);
    const cloneSources: Snapshot[] = [];
    for (const clone of request.cloneSources ?? []) cloneSources.push(await this.#resolve(clone));
    const args = this.#options.store.sendArguments(snapshot, parent, cloneSources);
    await ready();
    const { code, stderr } = await runChild('btrfs', args, ['ignore', this.#options.io.outputFd, 'pipe'], this.#abort.signal);
    if (code !== 0) {
      const tail = lastLines(stderr, 3);
      throw new TransferError(`btrfs send of ${snapshot.name} failed${tail ? `: ${tail.replaceAll('\n', ' | ')}` : ''}`, {
        stderrTail: tail,
      });
    }
    return null;
  }

  /**
   * The stream flows from the channel through node into the store's receive, which treats it as
   * hostile: it is validated command by command before `btrfs receive` (chrooted) sees it, and
   * the result must be the snapshot the request named. A stream cut short (a dropped
   * connection) lacks its END command: the receive fails, and the store removes the partial.
   */
  async #receive(request: Record<string, unknown>, ready: () => Promise<void>): Promise<unknown> {
    const name = typeof request.name === 'string' ? request.name : '';
    checkSnapshotName(name);
    await checkNoSymlinks(this.#options.directory, name);
    const [snapshot, parent] = await this.#snapshots(request.snapshot, request.parent);
    const { io, store } = this.#options;
    const expectedBytes =
      typeof request.expectedBytes === 'number' && Number.isSafeInteger(request.expectedBytes) ? request.expectedBytes : 0;
    const received = await store.receive(
      io.rest(ready),
      { name, snapshot: snapshot!, parent: parent ?? null, expectedBytes },
      this.#abort.signal,
    );
    return toWireSnapshot(received);
  }
}

/** Runs a child with the given stdio; resolves with its exit code and stderr (tail). Aborting `signal` kills it. */
async function runChild(
  command: string,
  args: readonly string[],
  stdio: ['ignore' | number, 'ignore' | number, 'pipe'],
  signal?: AbortSignal,
): Promise<{ code: number; stderr: string }> {
  const child = spawn(command, args, { stdio, ...(signal ? { signal } : {}) });
  child.on('error', () => {}); // an abort: 'close' follows and says how it ended
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-8192)));
  const [code, killedBy] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code: code ?? (killedBy ? 128 : 1), stderr };
}
