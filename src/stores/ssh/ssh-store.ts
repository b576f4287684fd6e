import type { Readable } from 'node:stream';
import { ButtersinkError, InterruptedError, messageOf, TransferError } from '../../model/errors.js';
import type { Snapshot } from '../../model/snapshot.js';
import type {
  DiffSize,
  MeasureOptions,
  ReceiveRequest,
  SendStream,
  SnapshotFiles,
  Store,
  StoreCapabilities,
  StoredDiff,
} from '../../model/store.js';
import { modeAllows, type ServerMode } from '../../remote/protocol.js';
import { fromWireSnapshot, toWireSnapshot } from '../../remote/wire-snapshot.js';
import type { MeasurementCache } from '../cache/measurement-cache.js';
import type { SshConnection } from './connect.js';
import { RemoteFiles } from './remote-files.js';
import { ServerChannel } from './server-channel.js';

/** Rough cost per generation between related snapshots before anything was measured (as BtrfsStore). */
const ESTIMATED_BYTES_PER_GENERATION = 64 * 1024;

export interface SshStoreOptions {
  readonly url: string;
  readonly host: string;
  readonly user: string | null;
  readonly port: number | null;
  /** The directory of snapshots on the remote. */
  readonly directory: string;
  /** What this run needs there: r (a source, a listing), a (a destination), w (with -d). */
  readonly mode: ServerMode;
  readonly cache: MeasurementCache;
  /** This buttersink's version, which the remote one must speak. */
  readonly version: string;
  /**
   * What runs `buttersink` on the remote, before `server --mode M DIR`; default `sudo -n
   * buttersink`, or `buttersink` when logging in as root.
   */
  readonly remoteCommand?: string;
  /** known_hosts files instead of the user's and the system's. */
  readonly knownHostsFiles?: readonly string[];
  readonly configFile?: string;
}

/**
 * A directory of snapshots on another machine, through `buttersink server` over SSH.
 *
 * One SSH connection per store (a connection costs about a second with OpenSSH; reuse is
 * free), made again by the next request once it dropped or failed to come up. On it, one
 * long-lived control channel carries listings, measurements, deletes and the lock (the
 * remote lock is held by that channel's server process, so a dropped connection releases
 * it); each send or receive gets a channel and a server process of its own, started ahead
 * of need, whose stream flows raw between the channel and btrfs (see protocol.ts). The remote server is a BtrfsStore: a receive there keeps its guarantees
 * (hidden partial, removed on failure — also when the connection drops, because
 * `btrfs receive` then sees its input end before the stream's END command).
 */
export class SshStore implements Store {
  readonly url: string;
  readonly capabilities: StoreCapabilities;
  readonly #options: SshStoreOptions;
  #connection: Promise<SshConnection> | undefined;
  /** Resolves when the current connection attempt is under way (or over): see warmUp(). */
  #underWay: Promise<void> = Promise.resolve();
  /** Aborted by close(): a connection still coming up (a warm-up nobody used) is dropped. */
  readonly #connecting = new AbortController();
  #control: Promise<ServerChannel> | undefined;
  /** The control channel once it is up (it may hold the lock, which close() releases). */
  #openControl: ServerChannel | undefined;
  /** A server process started ahead for the next transfer (starting one costs ~0.2 s). */
  #spare: Promise<ServerChannel> | undefined;
  /** Transfers still to come, as {@link SshStore.expectTransfers} said; undefined: unknown. */
  #transfersAhead: number | undefined;
  #isClosed = false;
  /** Browsing snapshots' files for the mount, cached; made on first use. */
  #files: RemoteFiles | undefined;

  constructor(options: SshStoreOptions) {
    this.url = options.url;
    this.#options = options;
    this.capabilities = {
      canDiffAnyPair: true,
      canReceive: modeAllows(options.mode, 'receive'),
      canDelete: modeAllows(options.mode, 'delete'),
      storesDiffs: false,
    };
  }

  #connect(): Promise<SshConnection> {
    if (this.#connection !== undefined) return this.#connection;
    let underWay = (): void => {};
    this.#underWay = new Promise((resolve) => (underWay = resolve));
    const { host, user, port, knownHostsFiles, configFile } = this.#options;
    // ssh2 is loaded only when an SSH store is used (not by the server, nor local runs).
    const attempt: Promise<SshConnection> = import('./connect.js').then(async ({ connectSsh }) => {
      const connection = await connectSsh(
        { host, user, port },
        {
          ...(knownHostsFiles ? { knownHostsFiles } : {}),
          ...(configFile ? { configFile } : {}),
          signal: this.#connecting.signal,
          onConnecting: underWay,
        },
      );
      // Without a listener a dropped connection would crash the process; the channels
      // report it as a lost connection to whoever waits on them.
      connection.client.on('error', () => {});
      // What waits on it fails; the next request connects again (a mount outlives a
      // dropped connection or a host that was down for a while).
      connection.client.once('close', () => this.#forget(attempt));
      return connection;
    });
    attempt.catch(() => this.#forget(attempt)).finally(underWay);
    this.#connection = attempt;
    return attempt;
  }

  /** Drops a connection that closed or never came up, with its channels. */
  #forget(connection: Promise<SshConnection>): void {
    if (this.#connection !== connection || this.#isClosed) return;
    this.#connection = undefined;
    this.#control = undefined;
    this.#openControl = undefined;
    this.#spare = undefined;
  }

  /** A new `buttersink server` process on the shared connection. */
  async #openChannel(): Promise<ServerChannel> {
    const { client, target } = await this.#connect();
    const { remoteCommand, mode, directory, version } = this.#options;
    const prefix = remoteCommand ?? (target.user === 'root' ? 'buttersink' : 'sudo -n buttersink');
    return ServerChannel.open(client, `${prefix} server --mode ${mode} ${shellQuote(directory)}`, this.#where(target.alias), version);
  }

  #where(alias: string): string {
    return `${alias}:${this.#options.directory}`;
  }

  #controlChannel(): Promise<ServerChannel> {
    if (this.#control === undefined) {
      const opening = this.#openChannel();
      this.#control = opening;
      opening.then(
        (channel) => {
          if (this.#control === opening) this.#openControl = channel;
        },
        () => {},
      );
    }
    return this.#control;
  }

  /**
   * A server process of its own for one transfer; the next one starts meanwhile, unless this
   * is the last transfer announced (a spare nobody takes costs the remote a node start-up
   * while it receives).
   */
  #transferChannel(): Promise<ServerChannel> {
    const channel = this.#spare ?? this.#openChannel();
    this.#spare = undefined;
    if (this.#transfersAhead !== undefined) {
      this.#transfersAhead -= 1;
      if (this.#transfersAhead <= 0) this.#transfersAhead = undefined;
      else this.#startSpare();
    } else {
      this.#startSpare();
    }
    return channel;
  }

  /**
   * Connects and starts the control channel's server (no lock): the slowest part of a run's
   * start. Resolves once the socket is connecting: loading ssh2, reading the config and the
   * keys are CPU work on this thread, best done before the other store's listing takes it.
   */
  warmUp(): Promise<void> {
    this.#controlChannel().catch(() => {}); // the next request reports the failure
    return this.#underWay;
  }

  expectTransfers(count: number): void {
    this.#transfersAhead = count;
    if (count === 0) return;
    this.#startSpare();
  }

  #startSpare(): void {
    if (this.#spare !== undefined) return;
    this.#spare = this.#openChannel();
    this.#spare.catch(() => {}); // whoever takes it sees the failure
  }

  async list(): Promise<Snapshot[]> {
    const control = await this.#controlChannel();
    // Listing is how every run starts: have the first transfer's server ready by then.
    this.#startSpare();
    const result = await control.request('list');
    if (!Array.isArray(result)) throw new TransferError(`${this.url}: the server's listing is malformed`);
    return result.map(fromWireSnapshot);
  }

  async storedDiffs(): Promise<StoredDiff[]> {
    return [];
  }

  /** A cached measurement when there is one, else a guess from the generation distance. */
  estimateDiff(snapshot: Snapshot, parent: Snapshot | null): DiffSize {
    const cached = this.#options.cache.peek(snapshot.uuid, parent?.uuid ?? null);
    if (cached !== undefined) return { bytes: cached.bytes, exact: true };
    const generations = parent === null ? snapshot.generation : Math.abs(snapshot.generation - parent.generation) + 1;
    return { bytes: generations * ESTIMATED_BYTES_PER_GENERATION, exact: false };
  }

  /**
   * Measured on the remote (`btrfs send --no-data` there), cached here by UUID pair too, as
   * are lower bounds (stopAbove is passed on).
   */
  async measureDiff(snapshot: Snapshot, parent: Snapshot | null, signal?: AbortSignal, options: MeasureOptions = {}): Promise<DiffSize> {
    const cached = await this.#options.cache.get(snapshot.uuid, parent?.uuid ?? null);
    if (cached !== undefined) return { bytes: cached.bytes, exact: true };
    // A bound still to come is waited for: the request carries a number.
    const stopAbove = await options.stopAbove;
    const known = stopAbove === undefined ? undefined : await this.#options.cache.lowerBound(snapshot.uuid, parent?.uuid ?? null);
    if (known !== undefined && known > stopAbove!) return { bytes: known, exact: false, atLeast: true };
    if (signal?.aborted) throw new InterruptedError('interrupted while measuring');
    const result = (await (
      await this.#controlChannel()
    ).request('measure', {
      snapshot: toWireSnapshot(snapshot),
      parent: parent && toWireSnapshot(parent),
      ...(stopAbove === undefined ? {} : { stopAbove }),
    })) as { bytes?: unknown; atLeast?: unknown };
    const bytes = result?.bytes;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
      throw new TransferError(`${this.url}: the server's measurement is malformed`);
    }
    // A lower bound only where one was asked for, and only above what was asked: anything
    // else from the server would let it steer the plan with a size it never measured.
    if (result.atLeast === true) {
      if (stopAbove === undefined || bytes <= stopAbove) {
        throw new TransferError(`${this.url}: the server's measurement is malformed`);
      }
      await this.#options.cache.setLowerBound(snapshot.uuid, parent?.uuid ?? null, bytes);
      return { bytes, exact: false, atLeast: true };
    }
    await this.#options.cache.set(snapshot.uuid, parent?.uuid ?? null, { bytes });
    return { bytes, exact: true };
  }

  async send(
    snapshot: Snapshot,
    parent: Snapshot | null,
    options: { cloneSources?: readonly Snapshot[]; signal?: AbortSignal } = {},
  ): Promise<SendStream> {
    const channel = await this.#transferChannel();
    const { stream, done } = channel.download('send', {
      snapshot: toWireSnapshot(snapshot),
      parent: parent && toWireSnapshot(parent),
      cloneSources: (options.cloneSources ?? []).map(toWireSnapshot),
    });
    const onAbort = (): void => {
      stream.destroy(new InterruptedError('interrupted'));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const finished = done
      .then(
        () => {
          // The server may have sent everything before the abort arrived; the consumer still
          // stopped short of it, so the send is interrupted (as the btrfs store's is).
          if (options.signal?.aborted) throw new InterruptedError('interrupted');
        },
        (error: unknown) => {
          throw options.signal?.aborted ? new InterruptedError('interrupted') : asTransferError(error);
        },
      )
      .finally(async () => {
        options.signal?.removeEventListener('abort', onAbort);
        await channel.close();
      });
    finished.catch(() => {});
    return { stream, done: finished };
  }

  /**
   * Streams into a receive on the remote. On failure our side ends before the stream's END,
   * so the server's `btrfs receive` fails and the partial is removed; the error is reported
   * once the server confirmed that.
   */
  async receive(stream: Readable, request: ReceiveRequest, signal?: AbortSignal): Promise<Snapshot> {
    let channel: ServerChannel;
    try {
      channel = await this.#transferChannel();
    } catch (error) {
      stream.destroy();
      throw error;
    }
    const onAbort = (): void => {
      stream.destroy(new InterruptedError(`interrupted while receiving ${request.name}`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await channel.upload(
        'receive',
        {
          name: request.name,
          snapshot: toWireSnapshot(request.snapshot),
          parent: request.parent && toWireSnapshot(request.parent),
          expectedBytes: request.expectedBytes,
        },
        stream,
      );
      return fromWireSnapshot(result);
    } catch (error) {
      if (signal?.aborted) throw new InterruptedError(`interrupted while receiving ${request.name}`);
      if (error instanceof ButtersinkError) throw error;
      throw new TransferError(`receiving ${request.name} on ${this.url}: the stream failed: ${messageOf(error)}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.destroy();
      // What was browsed under this name before (a snapshot deleted by someone else) is gone.
      this.#files?.clear();
      // The server answered: it has nothing left to do but exit, which need not be waited for.
      void channel.close();
    }
  }

  async delete(snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new InterruptedError(`interrupted before deleting ${snapshot.name}`);
    try {
      await (await this.#controlChannel()).request('delete', { snapshot: toWireSnapshot(snapshot) });
    } finally {
      this.#files?.clear();
    }
  }

  /**
   * A snapshot's files, read-only, through the server on the control channel (`browse`
   * requests, allowed in every mode and contained in the snapshot there); answers are cached.
   */
  snapshotFiles(snapshot: Pick<Snapshot, 'name'>): SnapshotFiles {
    this.#files ??= new RemoteFiles(async (args) => (await this.#controlChannel()).request('browse', args), `${this.url}`);
    return this.#files.of(snapshot.name);
  }

  /** Held by the control channel's server process: closing the channel releases it too. */
  async lock(): Promise<() => Promise<void>> {
    const control = await this.#controlChannel();
    this.#startSpare();
    await control.request('lock');
    return releaser(control);
  }

  /** One request: the server lists while it removes partials, and answers both at once. */
  async lockAndList(): Promise<{ release: () => Promise<void>; snapshots: Snapshot[] }> {
    const control = await this.#controlChannel();
    this.#startSpare();
    const result = (await control.request('lock', { list: true })) as { snapshots?: unknown } | null;
    const release = releaser(control);
    if (!Array.isArray(result?.snapshots)) {
      await release();
      throw new TransferError(`${this.url}: the server's listing is malformed`);
    }
    try {
      return { release, snapshots: result.snapshots.map(fromWireSnapshot) };
    } catch (error) {
      await release();
      throw error;
    }
  }

  /**
   * Releases the control channel (and with it a lock still held) and ends the connection,
   * which ends a spare server process too, started or still starting. A connection or a
   * control channel still coming up is not waited for: a run that failed before it needed
   * the remote (an empty source, say) ends at once, not after a connect timeout.
   */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#connecting.abort();
    await this.#openControl?.close().catch(() => {});
    const connection = await this.#connection?.catch(() => undefined);
    connection?.client.end();
    await this.#options.cache.save();
  }
}

/** Releases the lock the control channel's server holds; a second call does nothing. */
function releaser(control: ServerChannel): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await control.request('unlock').catch(() => {});
  };
}

/** Errors of a transfer are TransferErrors unless they are typed already. */
function asTransferError(error: unknown): Error {
  if (error instanceof ButtersinkError) return error;
  return new TransferError(messageOf(error));
}

/** POSIX shell single quoting for the remote command line. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}
