import { LRUCache } from 'lru-cache';
import { TransferError } from '../../model/errors.js';
import type { FileAttributes, SnapshotFiles } from '../../model/store.js';

/** Sends one `browse` request on the control channel; resolves with the server's result. */
export type BrowseRequest = (args: Record<string, unknown>) => Promise<unknown>;

/** File contents travel in blocks of this size (one round trip each), cached as blocks. */
export const BROWSE_BLOCK_BYTES = 512 * 1024;
/** Blocks asked for ahead of a file read in order (4 MiB). */
const READ_AHEAD_BLOCKS = 8;
/** How long answers are kept: snapshots are read-only, but may be deleted and made again. */
const CACHE_TTL_MS = 60_000;

type Answer<T> = { ok: T } | { errno: string };

/**
 * The files of snapshots in an SSH store, read through `buttersink server` (`browse`
 * requests on the control channel), for the FUSE mount. Listings, attributes and link
 * targets are cached (a listing brings its entries' attributes along, so `ls -l` costs one
 * round trip per directory), and file contents in {@link BROWSE_BLOCK_BYTES} blocks, so a
 * kernel reading 128 KiB at a time does not pay a round trip per read; a file read in order
 * has its next blocks asked for ahead: one 256 KiB block at a time took ~17 ms each on
 * loopback (15 MiB/s; small requests take 0.5 ms, so the time goes to large replies one at a
 * time), four ahead reached ~100 MiB/s in-process; through the mount, 512 KiB blocks with
 * eight ahead did best of the sizes tried (scripts/bench-ssh). Errors the remote
 * filesystem answers (ENOENT, ...) are cached too and reject with that `code`.
 */
export class RemoteFiles {
  readonly #request: BrowseRequest;
  readonly #where: string;
  readonly #answers = new LRUCache<string, Promise<Answer<unknown>>>({ max: 20_000, ttl: CACHE_TTL_MS });
  readonly #blocks = new LRUCache<string, Promise<Buffer>>({
    maxSize: 64 << 20,
    sizeCalculation: () => BROWSE_BLOCK_BYTES,
    ttl: CACHE_TTL_MS,
  });

  /** Where the last read of each file ended, to tell reads in order. */
  readonly #readEnds = new LRUCache<string, number>({ max: 1024 });

  constructor(request: BrowseRequest, where: string) {
    this.#request = request;
    this.#where = where;
  }

  /** The read-only view of one snapshot. */
  of(snapshot: string): SnapshotFiles {
    return {
      lstat: (relative) => this.#ask<FileAttributes>(snapshot, 'lstat', relative, (r) => r as FileAttributes),
      readdir: async (relative) => (await this.#readdir(snapshot, relative)).map((e) => e.name),
      readlink: (relative) => this.#ask(snapshot, 'readlink', relative, (r) => String((r as { target?: unknown }).target)),
      read: (relative, offset, length) => this.#read(snapshot, relative, offset, length),
      xattrs: (relative) =>
        this.#ask(snapshot, 'xattrs', relative, (r) => {
          const values = (r as { xattrs?: unknown }).xattrs;
          if (typeof values !== 'object' || values === null) throw new TransferError(`${this.#where}: the server's xattrs are malformed`);
          return new Map(Object.entries(values).map(([name, value]) => [name, Buffer.from(String(value), 'base64')]));
        }),
    };
  }

  /** Forgets everything (after the connection came back, or a snapshot was deleted). */
  clear(): void {
    this.#answers.clear();
    this.#blocks.clear();
  }

  async #readdir(snapshot: string, relative: string): Promise<{ name: string }[]> {
    const entries = await this.#ask(snapshot, 'readdir', relative, (r) => {
      const list = (r as { entries?: unknown }).entries;
      if (!Array.isArray(list)) throw new TransferError(`${this.#where}: the server's directory listing is malformed`);
      return list as { name: string; attributes: FileAttributes | null }[];
    });
    // Prime the attributes of the entries (`ls -l` asks for each next).
    for (const { name, attributes } of entries) {
      if (attributes === null) continue;
      const k = cacheKey(snapshot, 'lstat', relative === '' ? name : `${relative}/${name}`);
      if (!this.#answers.has(k)) this.#answers.set(k, Promise.resolve({ ok: attributes }));
    }
    return entries;
  }

  async #ask<T>(snapshot: string, action: string, relative: string, convert: (result: unknown) => T): Promise<T> {
    const k = cacheKey(snapshot, action, relative);
    let pending = this.#answers.get(k);
    if (pending === undefined) {
      pending = this.#request({ action, snapshot, path: relative }).then((result): Answer<unknown> => {
        const errno = (result as { errno?: unknown } | null)?.errno;
        return typeof errno === 'string' ? { errno } : { ok: convert(result) };
      });
      this.#answers.set(k, pending);
      // A failed request (a dropped connection, a refusal) is not an answer to keep.
      pending.catch(() => {
        if (this.#answers.get(k) === pending) this.#answers.delete(k);
      });
    }
    const answer = await pending;
    if ('errno' in answer) throw errnoError(answer.errno, relative);
    return answer.ok as T;
  }

  async #read(snapshot: string, relative: string, offset: number, length: number): Promise<Buffer> {
    const file = cacheKey(snapshot, 'read', relative);
    // The size from a cached lstat (the mount always asks before opening): reads stop there,
    // and read-ahead, which needs it, does not ask for blocks past the end.
    const size = await this.#cachedSize(snapshot, relative);
    const end = Math.min(offset + length, size ?? Infinity);
    if (end <= offset) return Buffer.alloc(0);
    const first = Math.floor(offset / BROWSE_BLOCK_BYTES);
    const last = Math.floor((end - 1) / BROWSE_BLOCK_BYTES);
    const blocks: Promise<Buffer>[] = [];
    for (let index = first; index <= last; index++) blocks.push(this.#block(snapshot, relative, index));
    // A file read in order (cat, cp) gets its next blocks asked for before it needs them: the
    // requests overlap on the connection instead of paying a round trip each.
    const sequential = offset === 0 || this.#readEnds.get(file) === offset;
    this.#readEnds.set(file, end);
    if (sequential && size !== undefined) {
      const lastBlock = Math.min(last + READ_AHEAD_BLOCKS, Math.floor((size - 1) / BROWSE_BLOCK_BYTES));
      for (let index = last + 1; index <= lastBlock; index++) this.#block(snapshot, relative, index).catch(() => {});
    }
    const parts: Buffer[] = [];
    let position = offset;
    for (const [i, pending] of blocks.entries()) {
      const block = await pending;
      const start = position - (first + i) * BROWSE_BLOCK_BYTES;
      const piece = block.subarray(start, Math.min(block.length, start + (end - position)));
      if (piece.length === 0) break;
      parts.push(piece);
      position += piece.length;
      if (block.length < BROWSE_BLOCK_BYTES) break; // the end of the file
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** A file's size when its attributes are cached (undefined otherwise: nothing is asked). */
  async #cachedSize(snapshot: string, relative: string): Promise<number | undefined> {
    const pending = this.#answers.get(cacheKey(snapshot, 'lstat', relative));
    if (pending === undefined) return undefined;
    const answer = await pending.catch(() => undefined);
    return answer !== undefined && 'ok' in answer ? (answer.ok as FileAttributes).size : undefined;
  }

  #block(snapshot: string, relative: string, index: number): Promise<Buffer> {
    const k = `${cacheKey(snapshot, 'read', relative)}\0${index}`;
    let pending = this.#blocks.get(k);
    if (pending === undefined) {
      pending = this.#request({
        action: 'read',
        snapshot,
        path: relative,
        offset: index * BROWSE_BLOCK_BYTES,
        length: BROWSE_BLOCK_BYTES,
      }).then((result) => {
        const r = result as { errno?: unknown; data?: unknown } | null;
        if (typeof r?.errno === 'string') throw errnoError(r.errno, relative);
        if (!Buffer.isBuffer(r?.data)) throw new TransferError(`${this.#where}: the server's file data is malformed`);
        return r.data;
      });
      this.#blocks.set(k, pending);
      pending.catch(() => {
        if (this.#blocks.get(k) === pending) this.#blocks.delete(k);
      });
    }
    return pending;
  }
}

function cacheKey(snapshot: string, action: string, relative: string): string {
  return `${action}\0${snapshot}\0${relative}`;
}

/** An error like node's fs errors, with the remote errno as `code`. */
function errnoError(code: string, relative: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${relative || '.'}`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}
