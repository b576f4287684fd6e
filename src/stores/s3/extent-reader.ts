import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { InterruptedError } from '../../model/errors.js';
import { writeCommandProblem } from '../../sendstream/command-check.js';
import {
  type CommandRef,
  checkFile,
  coalesce,
  commandKey,
  commandsOf,
  type FetchRun,
  MalformedIndexError,
  piecesOf,
  planReadAhead,
  type ReadableFile,
  type ReadState,
  type ResolvedExtent,
} from './extent-plan.js';
import { httpStatus, isNotFound, isTransient, toStoreError } from './s3-errors.js';

export type { ReadableFile, ResolvedExtent } from './extent-plan.js';

/** Verified commands kept (64 MiB: a few files read in order with their windows). */
const DEFAULT_CACHE_BYTES = 64 << 20;
/** How far ahead of a file read in order its commands are fetched (4 MiB, as RemoteFiles). */
const DEFAULT_READ_AHEAD_BYTES = 4 << 20;
/** Tries per stretch of a body without progress, after the SDK's own request retries. */
const MAX_RETRIES = 4;

export interface ExtentReaderOptions {
  readonly client: S3Client;
  readonly bucket: string;
  readonly endpoint: string;
  readonly cacheBytes?: number;
  readonly readAheadBytes?: number;
  /** Told about every corruption found (a bad CRC, a malformed index), for the mount's status file. */
  readonly onCorrupt?: (message: string) => void;
  /** First pause between tries, doubled each time (tests make it small). */
  readonly backoffMs?: number;
}

/** A read that cannot be served, like node's fs errors: `code` is what the mount answers. */
export class ReadError extends Error {
  readonly code = 'EIO';
}

const eio = (message: string): ReadError => new ReadError(message);

/**
 * Reads regular files' bytes out of stored send streams with ranged GETs, for the FUSE mount
 * of an S3 store: each extent of a file points into one `write` command of one object, and
 * only those commands are fetched. Adjacent commands go in one GET; each command's CRC32C is
 * checked before a byte of it is served, and verified commands are kept in an LRU bounded by
 * bytes. Concurrent reads of one command share its GET (the cache holds promises). A file read
 * in order has its next commands fetched ahead ({@link planReadAhead}), so `cat` through the
 * mount does not pay a round trip per 128 KiB read: the same shape as `RemoteFiles` for SSH
 * stores (blocks there, commands here; read-ahead; an LRU of promises).
 *
 * A command arrives whole before it is checked, but a GET of several commands hands each one
 * over as soon as its own bytes are in: a read waits for its commands, not for the read-ahead
 * behind them in the same GET.
 *
 * Failures answer errors with `code: 'EIO'` (a bad CRC, a malformed index, a deleted object)
 * or the store's typed errors (access denied, an unreachable endpoint): they fail the reads
 * that touch that command only, and are not cached (the next read tries again).
 */
export class ExtentReader {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #endpoint: string;
  readonly #readAheadBytes: number;
  readonly #backoffMs: number;
  readonly #onCorrupt: (message: string) => void;
  readonly #commands: LRUCache<string, Promise<Buffer>>;
  /** Where the last read of each file ended and how far ahead was fetched. */
  readonly #reads = new LRUCache<string, ReadState>({ max: 1024 });
  /** Extent lists checked whole already (the same list is read many times; checked once). */
  readonly #checked = new WeakSet<readonly ResolvedExtent[]>();
  /** Aborts GETs in flight when the reader is closed. */
  readonly #closing = new AbortController();
  #fetchedBytes = 0;

  constructor(options: ExtentReaderOptions) {
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#endpoint = options.endpoint;
    this.#readAheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    this.#backoffMs = options.backoffMs ?? 200;
    this.#onCorrupt = options.onCorrupt ?? (() => {});
    this.#commands = new LRUCache<string, Promise<Buffer>>({
      maxSize: Math.max(1, options.cacheBytes ?? DEFAULT_CACHE_BYTES),
      // Each entry is set with its command's length: what its buffer will hold.
    });
  }

  /** Bytes fetched from the server so far (bodies of GETs), for tests and benchmarks. */
  get fetchedBytes(): number {
    return this.#fetchedBytes;
  }

  /**
   * Forgets the cached commands and read positions (after a snapshot was deleted: a diff sent
   * again is stored under the same key, and its commands need not lie where the old ones did).
   */
  clear(): void {
    this.#commands.clear();
    this.#reads.clear();
  }

  /** Stops GETs in flight (their reads reject as interrupted) and forgets the cache. */
  close(): void {
    this.#closing.abort();
    this.#commands.clear();
  }

  /** Up to `length` bytes from `offset` (fewer only at the file's end; 0 at or past it). */
  async read(file: ReadableFile, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw Object.assign(new Error(`reading ${file.id}: bad offset ${offset} or length ${length}`), { code: 'EINVAL' });
    }
    // The size is checked at every read; the extents once per list (a file keeps its list).
    if (!this.#checked.has(file.extents) || !Number.isSafeInteger(file.size) || file.size < 0) {
      this.#guard(() => checkFile(file));
      this.#checked.add(file.extents);
    }
    if (signal?.aborted) throw new InterruptedError(`interrupted while reading ${file.id}`);
    const end = Math.min(offset + length, file.size);
    if (end <= offset) return Buffer.alloc(0);

    const pieces = this.#guard(() => piecesOf(file, offset, end));
    const planned = planReadAhead(this.#reads.get(file.id), offset, end, file.size, this.#readAheadBytes);
    this.#reads.set(file.id, planned.state);
    let ahead: CommandRef[] = [];
    if (planned.fetch !== undefined) {
      // A malformed extent further on is reported when a read reaches it, not by read-ahead.
      try {
        ahead = commandsOf(piecesOf(file, planned.fetch.from, planned.fetch.to));
      } catch {}
    }
    const wanted = this.#fetch([...commandsOf(pieces), ...ahead]);

    const out = Buffer.alloc(end - offset); // zeros: holes stay as they are
    for (const piece of pieces) {
      const command = await abortable(wanted.get(commandKey(piece.command))!, signal, file.id);
      command.copy(out, piece.fileOffset - offset, piece.dataOffset, piece.dataOffset + piece.length);
    }
    return out;
  }

  /** Runs a check of the index: a malformed one is reported (onCorrupt) and answers EIO. */
  #guard<T>(check: () => T): T {
    try {
      return check();
    } catch (error) {
      if (error instanceof MalformedIndexError) this.#corrupt(error.message);
      throw error;
    }
  }

  #corrupt(message: string): never {
    this.#onCorrupt(message);
    throw eio(message);
  }

  /**
   * The promises of these commands' verified bytes: from the cache, or from new GETs of the
   * missing ones (coalesced), which are put in the cache at once so that other reads share them.
   */
  #fetch(commands: readonly CommandRef[]): Map<string, Promise<Buffer>> {
    const found = new Map<string, Promise<Buffer>>();
    const missing: CommandRef[] = [];
    for (const command of commands) {
      const cached = this.#commands.get(commandKey(command));
      if (cached !== undefined) found.set(commandKey(command), cached);
      else missing.push(command); // coalesce() fetches a command asked for twice once
    }
    for (const run of coalesce(missing)) {
      const settlers = run.commands.map((command) => {
        const k = commandKey(command);
        let settle!: { resolve: (b: Buffer) => void; reject: (e: unknown) => void };
        const pending = new Promise<Buffer>((resolve, reject) => (settle = { resolve, reject }));
        // A failure is not an answer to keep: the next read tries again. Nobody may be waiting
        // (read-ahead), so the rejection is handled here too.
        pending.catch(() => {
          if (this.#commands.get(k) === pending) this.#commands.delete(k);
        });
        this.#commands.set(k, pending, { size: command.bytes });
        found.set(k, pending);
        return settle;
      });
      void this.#get(run, settlers);
    }
    return found;
  }

  /**
   * One ranged GET of a run of commands, handing each over (checked) as its bytes complete.
   * A body that breaks off is asked for again from the first command not yet complete.
   */
  async #get(run: FetchRun, settlers: readonly { resolve: (b: Buffer) => void; reject: (e: unknown) => void }[]): Promise<void> {
    const { commands, key } = run;
    const where = `s3://${this.#bucket}/${key}`;
    const runEnd = run.start + run.bytes;
    let index = 0; // the first command not yet handed over
    let failures = 0;
    let etag: string | undefined;
    const failRest = (error: unknown): void => {
      for (; index < commands.length; index++) settlers[index]!.reject(error);
    };
    while (index < commands.length) {
      const from = commands[index]!.start;
      let buffer: Buffer | undefined;
      let filled = 0;
      try {
        const answer = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Range: `bytes=${from}-${runEnd - 1}`,
            ...(etag !== undefined ? { IfMatch: etag } : {}),
          }),
          { abortSignal: this.#closing.signal },
        );
        etag ??= answer.ETag;
        const body = answer.Body as Readable;
        if (answer.ContentLength !== undefined && answer.ContentLength !== runEnd - from) {
          body.destroy();
          throw eio(
            `${where} answered ${answer.ContentLength} bytes for the ${runEnd - from} at ${from} asked for (too short, or a server ignoring ranges)`,
          );
        }
        for await (const chunk of body as AsyncIterable<Buffer>) {
          this.#fetchedBytes += chunk.length;
          for (let at = 0; at < chunk.length; ) {
            const command = commands[index];
            if (command === undefined) {
              body.destroy();
              throw eio(`${where} sent more than the ${runEnd - from} bytes at ${from} asked for`);
            }
            buffer ??= Buffer.allocUnsafe(command.bytes);
            const n = Math.min(chunk.length - at, command.bytes - filled);
            chunk.copy(buffer, filled, at, at + n);
            filled += n;
            at += n;
            if (filled === command.bytes) {
              this.#handOver(where, command, buffer, settlers[index]!);
              index++;
              buffer = undefined;
              filled = 0;
              failures = 0;
            }
          }
        }
        if (index < commands.length) throw new Error(`body cut short at byte ${commands[index]!.start + filled}`);
      } catch (error) {
        if (this.#closing.signal.aborted) return failRest(new InterruptedError(`interrupted while reading ${where}`));
        if (error instanceof ReadError) return failRest(error);
        if (isNotFound(error)) {
          return failRest(eio(`${where} is gone: ${codeOf(error)} (deleted since the snapshot was indexed?)`));
        }
        if (httpStatus(error) === 412) return failRest(eio(`${where} was replaced while it was being read`));
        failures += 1;
        if (!isTransient(error) || failures > MAX_RETRIES) {
          return failRest(
            toStoreError(error, `reading ${where} (at byte ${from + filled})`, { bucket: this.#bucket, endpoint: this.#endpoint }),
          );
        }
        try {
          await sleep(this.#backoffMs * 2 ** (failures - 1), undefined, { signal: this.#closing.signal });
        } catch {
          return failRest(new InterruptedError(`interrupted while reading ${where}`));
        }
      }
    }
  }

  /** Checks one whole command and settles its promise: its bytes, or EIO naming where it lies. */
  #handOver(
    where: string,
    command: CommandRef,
    bytes: Buffer,
    settle: { resolve: (b: Buffer) => void; reject: (e: unknown) => void },
  ): void {
    const problem = writeCommandProblem(bytes);
    if (problem === undefined) return settle.resolve(bytes);
    const message = `${where} is corrupt: the write command at byte ${command.start} (${command.bytes} bytes): ${problem}`;
    this.#onCorrupt(message);
    settle.reject(eio(message));
  }
}

function codeOf(error: unknown): string {
  const e = error as { name?: string; Code?: string } | undefined;
  return e?.Code ?? e?.name ?? 'NotFound';
}

/** `pending`, or an interruption as soon as `signal` aborts (the GET goes on for others and the cache). */
function abortable<T>(pending: Promise<T>, signal: AbortSignal | undefined, id: string): Promise<T> {
  if (signal === undefined) return pending;
  if (signal.aborted) return Promise.reject(new InterruptedError(`interrupted while reading ${id}`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new InterruptedError(`interrupted while reading ${id}`));
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
