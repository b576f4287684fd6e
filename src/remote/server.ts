import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PermissionError, StoreError, TransferError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import type { BtrfsStore } from '../stores/btrfs/btrfs-store.js';
import { lastLines } from '../stores/btrfs/last-lines.js';
import { browse } from './browse.js';
import { checkNoSymlinks, checkSnapshotName } from './contain-path.js';
import {
  checkHello,
  encodeDataAnswer,
  encodeMessage,
  FRAME_HEADER_BYTES,
  makeHello,
  modeAllows,
  parseFrameHeader,
  parseMessage,
  RAW_ERROR_PREFIX,
  REQUIRED_MODE,
  type Operation,
  type ServerMode,
} from './protocol.js';
import type { ServerIo } from './server-io.js';
import { toWireError } from './wire-errors.js';
import { fromWireSnapshot, toWireSnapshot } from './wire-snapshot.js';

export interface ServerOptions {
  readonly mode: ServerMode;
  /** The one directory this server serves. */
  readonly store: BtrfsStore;
  readonly directory: string;
  /** The SSH channel's stdin and stdout. */
  readonly io: ServerIo;
  readonly version: string;
}

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
  #releaseLock: (() => Promise<void>) | undefined;
  #exitCode = 0;
  /** The read-only snapshots' names at the last listing, and a listing under way. */
  #snapshotNames: Promise<ReadonlySet<string>> | undefined;
  #listing: Promise<ReadonlySet<string>> | undefined;

  constructor(options: ServerOptions) {
    this.#options = options;
  }

  async run(): Promise<number> {
    const { io, version, mode } = this.#options;
    try {
      await io.write(encodeMessage(makeHello(version, mode)));
      const hello = await this.#readMessage(true);
      if (hello === null) return 0;
      const problem = checkHello(hello, { version });
      if (problem !== null) {
        await io.write(encodeMessage({ error: toWireError(new StoreError(problem, { hint: 'install the same buttersink version on both ends' })) }));
        return 2;
      }
      for (;;) {
        const request = await this.#readMessage(false);
        if (request === null) break; // the client closed its side, or the connection dropped
        if (request.op === 'send' || request.op === 'receive') {
          // The stream takes the channel over; nothing more is read from it.
          await this.#handle(request);
          break;
        }
        this.#track(this.#handle(request));
      }
    } catch (error) {
      process.stderr.write(`buttersink server: ${(error as Error).message}\n`);
      this.#exitCode ||= 2;
    } finally {
      this.#abort.abort(new Error('the client went away'));
      await Promise.allSettled([...this.#running]);
      await this.#releaseLock?.().catch(() => {});
      await this.#options.store.close().catch(() => {});
    }
    return this.#exitCode;
  }

  /** The next message, or null at the end of the input. */
  async #readMessage(isFirst: boolean): Promise<Record<string, unknown> | null> {
    const header = await this.#options.io.readExactly(FRAME_HEADER_BYTES);
    if (header.length === 0) return null;
    if (header.length < FRAME_HEADER_BYTES) throw new Error('the input ended in the middle of a message');
    const length = parseFrameHeader(header, isFirst);
    const payload = await this.#options.io.readExactly(length);
    if (payload.length < length) throw new Error('the input ended in the middle of a message');
    return parseMessage(payload);
  }

  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  async #handle(request: Record<string, unknown>): Promise<void> {
    const id = request.id;
    const { io } = this.#options;
    let isRaw = false;
    const ready = async (): Promise<void> => {
      await io.write(encodeMessage({ id, ready: true }));
      isRaw = request.op === 'send'; // after a send's ready, stdout belongs to the stream
    };
    try {
      const result = await this.#run(request, ready);
      if (!isRaw) {
        // File bytes (a browse read) go raw in a data frame, not base64 in JSON.
        const data = (result as { data?: unknown } | null)?.data;
        await io.write(Buffer.isBuffer(data) ? encodeDataAnswer(id, result as Record<string, unknown>, data) : encodeMessage({ id, ok: true, result }));
      }
    } catch (error) {
      if (isRaw) {
        process.stderr.write(`${RAW_ERROR_PREFIX}${JSON.stringify(toWireError(error))}\n`);
        this.#exitCode = 5;
      } else {
        await io.write(encodeMessage({ id, ok: false, error: toWireError(error) })).catch(() => {});
      }
    }
  }

  async #run(request: Record<string, unknown>, ready: () => Promise<void>): Promise<unknown> {
    const op = request.op;
    if (typeof op !== 'string' || !OPERATIONS.has(op)) {
      throw new StoreError(`unknown request ${JSON.stringify(op)}`, { hint: 'install the same buttersink version on both ends' });
    }
    const operation = op as Operation;
    const { mode, store, directory } = this.#options;
    if (!modeAllows(mode, operation)) {
      const needed = REQUIRED_MODE[operation];
      throw new PermissionError(`${VERBS[operation]} refused: the server runs in mode ${MODE_NAMES[mode]}, this needs mode ${MODE_NAMES[needed]}`, {
        hint: `allow 'buttersink server --mode ${needed} ${directory}' for this key on the remote (sudoers)`,
      });
    }
    const signal = this.#abort.signal;
    switch (operation) {
      case 'list':
        return (await store.list()).map(toWireSnapshot);
      case 'measure': {
        const [snapshot, parent] = await this.#snapshots(request.snapshot, request.parent);
        const size = await store.measureDiff(snapshot!, parent ?? null, signal);
        return { bytes: size.bytes, exact: size.exact };
      }
      case 'browse':
        return browse(directory, request, (name) => this.#isSnapshot(name));
      case 'delete': {
        const [snapshot] = await this.#snapshots(request.snapshot);
        await store.delete(snapshot!, signal);
        return null;
      }
      case 'lock':
        if (this.#releaseLock) throw new StoreError('this channel holds the lock already');
        this.#releaseLock = await store.lock();
        return null;
      case 'unlock': {
        const release = this.#releaseLock;
        this.#releaseLock = undefined;
        await release?.();
        return null;
      }
      case 'send':
        return this.#send(request, ready);
      case 'receive':
        return this.#receive(request, ready);
    }
  }

  /**
   * Whether `name` is one of the directory's read-only snapshots (what `list` shows), for
   * browsing: only snapshots are browsed, since only what cannot change stays as checked.
   * A name not in the last listing (a snapshot received since) lists the directory again;
   * concurrent misses share one listing.
   */
  async #isSnapshot(name: string): Promise<boolean> {
    const known = await this.#snapshotNames?.catch(() => undefined);
    if (known?.has(name)) return true;
    this.#listing ??= this.#options.store
      .list()
      .then((listed) => new Set(listed.map((s) => s.name)))
      .finally(() => (this.#listing = undefined));
    this.#snapshotNames = this.#listing;
    return (await this.#listing).has(name);
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

  /** `btrfs send` writes straight into the channel. */
  async #send(request: Record<string, unknown>, ready: () => Promise<void>): Promise<null> {
    const clones = Array.isArray(request.cloneSources) ? request.cloneSources : [];
    const [snapshot, parent, ...cloneSources] = await this.#snapshots(request.snapshot, request.parent, ...clones);
    const args = this.#options.store.sendArguments(
      snapshot!,
      parent ?? null,
      cloneSources.filter((c): c is Snapshot => c !== null),
    );
    await ready();
    const { code, stderr } = await runChild('btrfs', args, ['ignore', this.#options.io.outputFd, 'pipe']);
    if (code !== 0) {
      const tail = lastLines(stderr, 3);
      throw new TransferError(`btrfs send of ${snapshot!.name} failed${tail ? `: ${tail.replaceAll('\n', ' | ')}` : ''}`, { stderrTail: tail });
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
    const expectedBytes = typeof request.expectedBytes === 'number' && Number.isSafeInteger(request.expectedBytes) ? request.expectedBytes : 0;
    const received = await store.receive(io.rest(ready), { name, snapshot: snapshot!, parent: parent ?? null, expectedBytes }, this.#abort.signal);
    return toWireSnapshot(received);
  }
}

/** Runs a child with the given stdio; resolves with its exit code and stderr (tail). */
async function runChild(command: string, args: readonly string[], stdio: ['ignore' | number, 'ignore' | number, 'pipe']): Promise<{ code: number; stderr: string }> {
  const child = spawn(command, args, { stdio });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-8192)));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code: code ?? (signal ? 128 : 1), stderr };
}
