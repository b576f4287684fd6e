import { PassThrough, type Readable, type Writable } from 'node:stream';
import { PermissionError, StoreError, TransferError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import { checkNoSymlinks, checkSnapshotName } from './contain-path.js';
import {
  checkHello,
  dataHeader,
  encodeEnd,
  encodeMessage,
  FrameDecoder,
  makeHello,
  modeAllows,
  REQUIRED_MODE,
  type Operation,
  type ServerMode,
} from './protocol.js';
import { toWireError } from './wire-errors.js';
import { fromWireSnapshot, toWireSnapshot } from './wire-snapshot.js';

export interface ServerOptions {
  readonly mode: ServerMode;
  /** The one directory this server serves (a BtrfsStore on it). */
  readonly store: Store;
  readonly directory: string;
  /** The SSH channel: requests and stream data in, responses and stream data out. */
  readonly input: Readable;
  readonly output: Writable;
  readonly version: string;
}

const OPERATIONS = new Set<string>(Object.keys(REQUIRED_MODE));
const MODE_NAMES: Record<ServerMode, string> = { r: 'r (read)', a: 'a (add)', w: 'w (add and delete)' };
const VERBS: Record<Operation, string> = {
  list: 'listing',
  measure: 'measuring',
  send: 'sending',
  receive: 'receiving',
  lock: 'locking',
  unlock: 'unlocking',
  delete: 'deleting',
};

/**
 * `buttersink server`: serves one store over one SSH exec channel until the client closes
 * its side. Everything the client asks passes two gates first: the mode the server was
 * started with (which sudoers can pin), and path containment (names stay inside the
 * directory: no `..`, no absolute paths, no symbolic links on the way).
 *
 * The client closing its side (or the connection dropping) means it is gone: running sends
 * and receives are aborted — a receive removes its partial — and the lock is released.
 */
export async function serve(options: ServerOptions): Promise<void> {
  await new ServerSession(options).run();
}

class ServerSession {
  readonly #options: ServerOptions;
  readonly #abort = new AbortController();
  readonly #running = new Set<Promise<void>>();
  #greeted = false;
  /** Where stream data of the running receive goes; one stream per channel. */
  #incoming: PassThrough | undefined;
  #hasStream = false;
  #releaseLock: (() => Promise<void>) | undefined;

  constructor(options: ServerOptions) {
    this.#options = options;
    options.output.on('error', () => this.#abort.abort(new Error('the client went away')));
  }

  async run(): Promise<void> {
    const { input, output, version, mode } = this.#options;
    output.write(encodeMessage(makeHello(version, mode)));
    const decoder = new FrameDecoder();
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        for (const event of decoder.push(chunk)) {
          if (event.kind === 'message') {
            if (!this.#greeted) {
              const problem = checkHello(event.value, { version });
              if (problem !== null) {
                output.end(encodeMessage({ error: toWireError(new StoreError(problem, { hint: 'install the same buttersink version on both ends' })) }));
                return;
              }
              this.#greeted = true;
            } else {
              this.#track(this.#handle(event.value));
            }
          } else if (event.kind === 'data') {
            const incoming = this.#incoming;
            // Data for a receive that already failed is dropped: the client has its error.
            if (incoming === undefined || incoming.destroyed) continue;
            if (!incoming.write(event.chunk)) await drained(incoming);
          } else {
            this.#incoming?.end();
            this.#incoming = undefined;
          }
        }
      }
    } catch (error) {
      process.stderr.write(`buttersink server: ${(error as Error).message}\n`);
    } finally {
      // The client is gone (or spoke nonsense): a receive without its end mark was cut.
      this.#incoming?.destroy(new TransferError('the connection was cut in the middle of the stream'));
      this.#abort.abort(new Error('the client went away'));
      await Promise.allSettled([...this.#running]);
      await this.#releaseLock?.().catch(() => {});
      await this.#options.store.close().catch(() => {});
      output.end();
    }
  }

  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  async #handle(request: Record<string, unknown>): Promise<void> {
    const id = request.id;
    try {
      const result = await this.#run(request);
      this.#write(encodeMessage({ id, ok: true, result }));
    } catch (error) {
      this.#write(encodeMessage({ id, ok: false, error: toWireError(error) }));
    }
  }

  /** Runs one request; stays synchronous up to a receive's stream sink (see below). */
  async #run(request: Record<string, unknown>): Promise<unknown> {
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
        return this.#send(request, signal);
      case 'receive':
        return this.#receive(request, signal);
    }
  }

  /** Checks and converts snapshots named in a request (null stays null). */
  async #snapshots(...values: unknown[]): Promise<(Snapshot | null)[]> {
    const snapshots = values.map((v, i) => (i > 0 && v === null ? null : fromWireSnapshot(v)));
    for (const s of snapshots) if (s) await this.#checkName(s.name);
    return snapshots;
  }

  async #checkName(name: string): Promise<void> {
    checkSnapshotName(name);
    await checkNoSymlinks(this.#options.directory, name);
  }

  #claimStream(): void {
    if (this.#hasStream) throw new StoreError('one stream per channel');
    this.#hasStream = true;
  }

  async #send(request: Record<string, unknown>, signal: AbortSignal): Promise<null> {
    this.#claimStream();
    const clones = Array.isArray(request.cloneSources) ? request.cloneSources : [];
    const [snapshot, parent, ...cloneSources] = await this.#snapshots(request.snapshot, request.parent, ...clones);
    const sending = await this.#options.store.send(snapshot!, parent ?? null, {
      cloneSources: cloneSources.filter((c): c is Snapshot => c !== null),
      signal,
    });
    const { output } = this.#options;
    try {
      for await (const chunk of sending.stream as AsyncIterable<Buffer>) {
        if (output.destroyed || signal.aborted) throw new TransferError('the client went away');
        // Header and payload in one writev; nothing else writes on a stream channel meanwhile.
        output.cork();
        output.write(dataHeader(chunk.length));
        const ok = output.write(chunk);
        output.uncork();
        if (!ok) await drained(output);
      }
    } catch (error) {
      sending.stream.destroy();
      await sending.done; // btrfs send's own error explains more than a broken pipe
      throw error;
    }
    await sending.done;
    this.#write(encodeEnd());
    return null;
  }

  /**
   * Receives the stream that follows the request. The sink is set up before the first
   * `await`, so that data frames decoded right after the request find it.
   */
  async #receive(request: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    this.#claimStream();
    const incoming = new PassThrough({ highWaterMark: 1 << 20 });
    this.#incoming = incoming;
    try {
      const name = typeof request.name === 'string' ? request.name : '';
      checkSnapshotName(name);
      const expectedBytes = typeof request.expectedBytes === 'number' ? request.expectedBytes : 0;
      await checkNoSymlinks(this.#options.directory, name);
      const [snapshot, parent] = await this.#snapshots(request.snapshot, request.parent);
      const received = await this.#options.store.receive(incoming, { name, snapshot: snapshot!, parent: parent ?? null, expectedBytes }, signal);
      return toWireSnapshot(received);
    } finally {
      incoming.destroy();
    }
  }

  #write(frame: Buffer): void {
    const { output } = this.#options;
    if (!output.destroyed && !output.writableEnded) output.write(frame);
  }
}

/** Resolves when `stream` wants more, or can never take more (closed, failed). */
function drained(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
