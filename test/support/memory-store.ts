import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BusyError, InterruptedError, StillNeededError, StoreError, TransferError } from '../../src/model/errors.js';
import { effectiveUuid, type Snapshot } from '../../src/model/snapshot.js';
import type { DiffSize, ReceiveRequest, SendStream, Store, StoreCapabilities, StoredDiff, StoreSpace } from '../../src/model/store.js';
import { storedDependents } from '../../src/model/stored-dependents.js';

/**
 * What one memory "location" holds (a directory, a prefix): shared by every {@link MemoryStore}
 * opened on it, as two processes would share a directory, so that the lock is exclusive
 * between them and a crashed receive's partial outlives the store that left it.
 */
export class MemoryLocation {
  snapshots: Snapshot[] = [];
  diffs: StoredDiff[] = [];
  /** A diff store's streams as received, by `to<from`. */
  readonly payloads = new Map<string, Buffer>();
  /** Receives in progress, or left behind by a crashed one (never listed): `<name>.partial-<random>`. */
  readonly partials = new Set<string>();
  /** What is there besides snapshots (a user's files, say): never listed, never touched. */
  readonly others = new Set<string>();
  /** Unfinished uploads {@link MemoryStore.removeStale} removes (a diff store's, like S3's). */
  stale = 0;
  isLocked = false;
  /** When false, the location does not exist: list fails with StoreError. */
  exists = true;
}

/** The stream format of the memory store: a header line, a JSON line, padding, an end marker. */
const MAGIC = 'buttersink-memory-stream\n';
const END = 'end\n';

interface StreamHeader {
  readonly to: string;
  readonly from: string | null;
  readonly generation: number;
  readonly creationGeneration: number;
  readonly createdAt: string | null;
  /** Bytes of padding (the "data") between the JSON line and the end marker. */
  readonly data: number;
}

/** Data bytes of a full stream and of an incremental one: enough to cut a stream half way. */
const FULL_DATA_BYTES = 64 * 1024;
const INCREMENTAL_DATA_BYTES = 8 * 1024;
const CHUNK_BYTES = 16 * 1024;

function encodeStream(snapshot: Snapshot, parent: Snapshot | null): Buffer {
  const header: StreamHeader = {
    to: effectiveUuid(snapshot),
    from: parent === null ? null : effectiveUuid(parent),
    generation: snapshot.generation,
    creationGeneration: snapshot.creationGeneration,
    createdAt: snapshot.createdAt?.toISOString() ?? null,
    data: parent === null ? FULL_DATA_BYTES : INCREMENTAL_DATA_BYTES,
  };
  return Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`), Buffer.alloc(header.data, 0x2e), Buffer.from(END)]);
}

/** The header of a whole stream, or a TransferError saying what is wrong with it. */
function decodeStream(bytes: Buffer): StreamHeader {
  if (!bytes.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) throw new TransferError('not a memory send stream');
  const newline = bytes.indexOf(0x0a, MAGIC.length);
  let header: StreamHeader;
  try {
    header = JSON.parse(bytes.subarray(MAGIC.length, newline < 0 ? bytes.length : newline).toString()) as StreamHeader;
  } catch {
    throw new TransferError('the memory send stream is cut inside its header');
  }
  if (bytes.length !== newline + 1 + header.data + END.length || !bytes.subarray(bytes.length - END.length).equals(Buffer.from(END))) {
    throw new TransferError('the memory send stream is cut: it has no end marker');
  }
  return header;
}

const diffKey = (to: string, from: string | null): string => `${to}<${from ?? ''}`;
const byName = (a: Snapshot, b: Snapshot): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export interface MemoryStoreOptions {
  /** A diff store (like S3): keeps streams, replays only those, refuses deletes others need. */
  readonly storesDiffs?: boolean;
  readonly canRename?: boolean;
  /** Share a location with other stores (default: a new one). */
  readonly location?: MemoryLocation;
  /** Answers {@link Store.space} with these numbers. */
  readonly space?: StoreSpace;
}

/**
 * A store in memory that honours the whole Store contract (`src/model/store.ts`; the contract
 * suite, `test/support/store-contract.ts`, runs against it), for unit tests of what uses stores:
 * the mount's rules without FUSE or btrfs, the planner's shell. It shows no files (like S3).
 * Streams are its own format (encodeStream): a receive checks them whole, so a cut or foreign
 * stream fails as btrfs receive would.
 *
 * Test switches: `isDown` (list fails), `isSilent` (list never answers), `hangReceive` (a
 * receive waits for its abort signal once it read the stream, calling `receiving` first).
 */
export class MemoryStore implements Store {
  readonly url: string;
  readonly capabilities: StoreCapabilities;
  readonly location: MemoryLocation;
  isDown = false;
  isSilent = false;
  hangReceive = false;
  receiving: (() => void) | undefined;
  rename?: Store['rename'];
  space?: Store['space'];
  #generation = 100;

  constructor(url: string, options: MemoryStoreOptions = {}) {
    this.url = url;
    const storesDiffs = options.storesDiffs ?? false;
    this.capabilities = { canDiffAnyPair: !storesDiffs, canReceive: true, canDelete: true, storesDiffs };
    this.location = options.location ?? new MemoryLocation();
    if (options.canRename) this.rename = (snapshot, newName) => this.#rename(snapshot, newName);
    const space = options.space;
    if (space) this.space = async () => space;
  }

  /** The snapshots at this location (tests read and replace them). */
  get snapshots(): Snapshot[] {
    return this.location.snapshots;
  }
  set snapshots(value: Snapshot[]) {
    this.location.snapshots = value;
  }
  /** A diff store's diffs (tests may set them without streams: then streams are made up). */
  get diffs(): StoredDiff[] {
    return this.location.diffs;
  }
  set diffs(value: StoredDiff[]) {
    this.location.diffs = value;
  }

  /** A snapshot as if taken here (no received UUID); for a diff store, with a full diff. */
  add(name: string, uuid: string = randomUUID(), extra: Partial<Snapshot> = {}): Snapshot {
    const snapshot: Snapshot = {
      name,
      uuid,
      parentUuid: null,
      receivedUuid: null,
      generation: 10,
      creationGeneration: 5,
      createdAt: new Date(0),
      ...extra,
    };
    this.location.snapshots.push(snapshot);
    return snapshot;
  }

  async list(): Promise<Snapshot[]> {
    if (this.isDown) throw new StoreError(`${this.url} cannot be reached`);
    if (this.isSilent) return new Promise<Snapshot[]>(() => {});
    if (!this.location.exists) throw new StoreError(`${this.url} does not exist`);
    return [...this.location.snapshots].sort(byName);
  }

  async storedDiffs(): Promise<StoredDiff[]> {
    return this.capabilities.storesDiffs ? [...this.location.diffs] : [];
  }

  #held(snapshot: Snapshot): boolean {
    return this.location.snapshots.some((s) => s.uuid === snapshot.uuid && s.name === snapshot.name);
  }

  #storedDiff(snapshot: Snapshot, parent: Snapshot | null): StoredDiff | undefined {
    const from = parent === null ? null : effectiveUuid(parent);
    return this.location.diffs.find((d) => d.to === effectiveUuid(snapshot) && d.from === from);
  }

  /** The stream send would produce, or a StoreError saying why there is none. */
  #stream(snapshot: Snapshot, parent: Snapshot | null): Buffer {
    const what = `${snapshot.name} ${parent ? `from ${parent.name}` : '(full)'}`;
    if (this.capabilities.storesDiffs) {
      const diff = this.#storedDiff(snapshot, parent);
      if (!diff) throw new StoreError(`${this.url} holds no diff of ${what}`);
      return this.location.payloads.get(diffKey(diff.to, diff.from)) ?? encodeStream(snapshot, parent);
    }
    if (!this.#held(snapshot) || (parent !== null && !this.#held(parent))) throw new StoreError(`${this.url} does not hold ${what}`);
    return encodeStream(snapshot, parent);
  }

  estimateDiff(snapshot: Snapshot, parent: Snapshot | null): DiffSize {
    return { bytes: this.#stream(snapshot, parent).length, exact: true };
  }

  async measureDiff(snapshot: Snapshot, parent: Snapshot | null, signal?: AbortSignal): Promise<DiffSize> {
    if (signal?.aborted) throw new InterruptedError('interrupted while measuring');
    try {
      return { bytes: this.#stream(snapshot, parent).length, exact: true };
    } catch (error) {
      // What is gone cannot be measured: a failed measurement, as btrfs send --no-data fails.
      if (!this.capabilities.storesDiffs && error instanceof StoreError) throw new TransferError(`measuring: ${error.message}`);
      throw error;
    }
  }

  async send(snapshot: Snapshot, parent: Snapshot | null, options: { signal?: AbortSignal } = {}): Promise<SendStream> {
    const bytes = this.#stream(snapshot, parent);
    const chunks = Array.from({ length: Math.ceil(bytes.length / CHUNK_BYTES) }, (_, i) =>
      bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES),
    );
    const stream = Readable.from(chunks, { objectMode: false });
    const done = new Promise<void>((resolve, reject) => {
      const onAbort = (): void => void stream.destroy(new InterruptedError(`interrupted while sending ${snapshot.name}`));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      stream.once('end', resolve);
      stream.once('close', () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (!stream.readableEnded)
          reject(
            options.signal?.aborted
              ? new InterruptedError('interrupted')
              : new TransferError(`sending ${snapshot.name}: the consumer stopped reading`),
          );
      });
    });
    done.catch(() => {});
    return { stream, done, origin: `${this.url}${snapshot.name}` };
  }

  nameProblem(name: string): string | undefined {
    const parts = name.split('/');
    if (name === '' || parts.some((p) => p === '' || p === '.' || p === '..') || /[\u0000-\u001f]/.test(name)) {
      return `cannot store a snapshot named ${JSON.stringify(name)} in ${this.url}`;
    }
    return undefined;
  }

  async receive(stream: Readable, request: ReceiveRequest, signal?: AbortSignal): Promise<Snapshot> {
    const to = effectiveUuid(request.snapshot);
    const refuse = (error: Error): never => {
      stream.destroy();
      throw error;
    };
    const problem = this.nameProblem(request.name);
    if (problem !== undefined) refuse(new StoreError(problem));
    const taken = (): Snapshot | undefined =>
      this.location.snapshots.find((s) => s.name === request.name && !(this.capabilities.storesDiffs && s.uuid === to));
    if (taken()) refuse(new StoreError(`${this.url}${request.name} already exists`));
    const partial = `${request.name}.partial-${randomUUID()}`;
    this.location.partials.add(partial);
    try {
      const bytes = await readAll(stream, signal, request.name);
      if (this.hangReceive) {
        this.receiving?.();
        await new Promise<void>((_, reject) => {
          const interrupted = (): void => reject(new InterruptedError(`interrupted while receiving ${request.name}`));
          if (signal?.aborted) interrupted();
          signal?.addEventListener('abort', interrupted, { once: true });
        });
      }
      const header = decodeStream(bytes);
      if (header.to !== to) throw new TransferError(`receiving ${request.name}: the stream makes ${header.to}, not ${to} as asked`);
      const parent =
        header.from === null ? undefined : this.location.snapshots.find((s) => effectiveUuid(s) === header.from || s.uuid === header.from);
      if (header.from !== null && parent === undefined)
        throw new TransferError(`receiving ${request.name}: its parent ${header.from} is not in ${this.url}`);
      if (taken()) throw new StoreError(`${this.url}${request.name} appeared while receiving; keeping the existing one`);
      return this.#keep(request, header, parent, bytes);
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      this.location.partials.delete(partial);
    }
  }

  #keep(request: ReceiveRequest, header: StreamHeader, parent: Snapshot | undefined, bytes: Buffer): Snapshot {
    const createdAt = header.createdAt === null ? null : new Date(header.createdAt);
    if (this.capabilities.storesDiffs) {
      const key = diffKey(header.to, header.from);
      this.location.payloads.set(key, bytes);
      this.location.diffs = [
        ...this.location.diffs.filter((d) => diffKey(d.to, d.from) !== key),
        { to: header.to, from: header.from, bytes: bytes.length },
      ];
      const existing = this.location.snapshots.find((s) => s.uuid === header.to);
      if (existing) return existing;
      const snapshot: Snapshot = {
        name: request.name,
        uuid: header.to,
        parentUuid: null,
        receivedUuid: header.to,
        generation: header.generation,
        creationGeneration: header.creationGeneration,
        createdAt,
      };
      this.location.snapshots.push(snapshot);
      return snapshot;
    }
    this.#generation += 1;
    const snapshot: Snapshot = {
      name: request.name,
      uuid: randomUUID(),
      parentUuid: parent?.uuid ?? null,
      receivedUuid: header.to,
      generation: this.#generation,
      creationGeneration: this.#generation,
      createdAt,
    };
    this.location.snapshots.push(snapshot);
    return snapshot;
  }

  async delete(snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new InterruptedError(`interrupted while deleting ${snapshot.name}`);
    if (this.capabilities.storesDiffs) {
      // The shared rule, as S3Store.delete applies it: refused with StillNeededError.
      const needing = storedDependents(effectiveUuid(snapshot), this.location.diffs);
      const names = this.location.snapshots.filter((s) => needing.includes(effectiveUuid(s))).map((s) => s.name);
      if (names.length > 0)
        throw new StillNeededError(`refusing to delete ${snapshot.name}: ${names.join(', ')} is stored as diffs from it`, names);
      this.location.diffs = this.location.diffs.filter((d) => d.to !== effectiveUuid(snapshot));
    }
    this.location.snapshots = this.location.snapshots.filter((s) => s.uuid !== snapshot.uuid);
  }

  async #rename(snapshot: Snapshot, newName: string): Promise<Snapshot> {
    if (this.location.snapshots.some((s) => s.name === newName)) {
      throw new StoreError(`${this.url}${newName} already exists`);
    }
    if (!this.#held(snapshot)) throw new StoreError(`${this.url} does not hold ${snapshot.name}`);
    const renamed = { ...snapshot, name: newName };
    this.location.snapshots = this.location.snapshots.map((s) => (s.uuid === snapshot.uuid ? renamed : s));
    return renamed;
  }

  async lock(): Promise<() => Promise<void>> {
    if (this.location.isLocked) throw new BusyError(`another buttersink is writing to ${this.url}`);
    this.location.isLocked = true;
    // What crashed receives left behind (none is running: they hold the lock).
    this.location.partials.clear();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.location.isLocked = false;
    };
  }

  async removeStale(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) throw new InterruptedError('interrupted while removing stale uploads');
    const removed = this.location.stale;
    this.location.stale = 0;
    return removed;
  }

  async close(): Promise<void> {}
}

/** Reads a stream to its end; an abort destroys it and rejects with InterruptedError. */
async function readAll(stream: Readable, signal: AbortSignal | undefined, name: string): Promise<Buffer> {
  const interrupted = (): InterruptedError => new InterruptedError(`interrupted while receiving ${name}`);
  if (signal?.aborted) throw interrupted();
  const onAbort = (): void => void stream.destroy(interrupted());
  signal?.addEventListener('abort', onAbort, { once: true });
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  } catch (error) {
    if (signal?.aborted) throw interrupted();
    throw new TransferError(`receiving ${name}: the stream failed: ${(error as Error).message}`, { cause: error });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return Buffer.concat(chunks);
}
