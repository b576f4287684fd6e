import { FsError } from './fs-error.js';

/**
 * Transfers started by `mkdir` and still running, and what waits for them.
 *
 * The kernel keeps a directory locked (exclusively) for as long as a `mkdir` in it runs, so
 * a mkdir that waited for its transfer would make every listing of the store, and every
 * lookup of a name not cached, wait too. So mkdir only starts the transfer; the operations
 * that need its outcome wait here instead: everything that goes into the new snapshot
 * (cp's creates, `ls` of it), and the opening of the source snapshot by cp and mv right
 * after their mkdir (so that they end once it is complete, and fail with its error).
 *
 * Pure: the tests drive it with promises of their own.
 */
export class Arrivals {
  /** `store\0name` -> the transfer, resolved or rejected (with an FsError) when it ends. */
  readonly #running = new Map<string, Promise<void>>();
  /**
   * Transfers that failed with nobody waiting for them, for a while: mkdir answered 0 before
   * the transfer could fail, so the next look at the name answers the failure (EBUSY,
   * ENOSPC...), rather than ENOENT; for {@link ANSWER_FOR_MS} from that first answer, then
   * no more. A failure some operation was told of already (a cancelled transfer's EINTR) is
   * not kept: a retry must find the name free.
   */
  readonly #failed = new Map<string, { error: unknown; at: number; answeredAt?: number }>();
  /** Transfers an operation waited for (below, elsewhere): their failure was answered. */
  readonly #waitedFor = new Set<string>();
  readonly #now: () => number;
  readonly #rememberMs: number;

  /** @param rememberMs how long a failure answers for the name (see {@link failure}). */
  constructor(options: { now?: () => number; rememberMs?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#rememberMs = options.rememberMs ?? 30_000;
  }

  get size(): number {
    return this.#running.size;
  }

  /** Is a transfer of this snapshot into this store running? (its listing shows it once complete) */
  has(store: string, name: string): boolean {
    return this.#running.has(key(store, name));
  }

  /** @throws FsError EEXIST while a transfer of this snapshot into this store runs: one at a time. */
  refuseSecond(store: string, name: string): void {
    if (this.has(store, name)) throw new FsError('EEXIST', `${name} is being transferred to ${store} already`);
  }

  /** Tracks a started transfer until it settles (its failure goes to those that wait). */
  add(store: string, name: string, transfer: Promise<void>): void {
    this.refuseSecond(store, name);
    const id = key(store, name);
    this.#failed.delete(id);
    this.#waitedFor.delete(id);
    const tracked = transfer.finally(() => this.#running.delete(id));
    tracked.then(
      () => this.#waitedFor.delete(id),
      (error: unknown) => {
        if (!this.#waitedFor.delete(id)) this.#failed.set(id, { error, at: this.#now() });
      },
    );
    this.#running.set(id, tracked);
  }

  /**
   * What an operation on a path below a store (as `names`) waits for: the transfer into the
   * snapshot the path is in — below its root, or the root too when `includeRoot` (a lookup
   * of the root, right after mkdir, must answer at once); with the snapshot's name.
   */
  below(store: string, names: readonly string[], includeRoot: boolean): { name: string; transfer: Promise<void> } | undefined {
    if (this.#running.size === 0) return undefined;
    for (let n = names.length - (includeRoot ? 0 : 1); n >= 1; n--) {
      const name = names.slice(0, n).join('/');
      const transfer = this.#running.get(key(store, name));
      if (transfer !== undefined) {
        this.#waitedFor.add(key(store, name));
        return { name, transfer };
      }
    }
    return undefined;
  }

  /**
   * The failure of a recent transfer into the snapshot a path below a store (as `names`) is
   * in, or undefined. Asked only for a name that is not there: once the snapshot exists
   * (received another way), it shows. Answered for a moment from the first answer on (see
   * {@link ANSWER_FOR_MS}), then forgotten: a retry finds the name free.
   */
  failure(store: string, names: readonly string[]): unknown {
    if (this.#failed.size === 0) return undefined;
    for (let n = names.length; n >= 1; n--) {
      const id = key(store, names.slice(0, n).join('/'));
      const failed = this.#failed.get(id);
      if (failed === undefined) continue;
      const now = this.#now();
      failed.answeredAt ??= now;
      if (now - failed.at < this.#rememberMs && now - failed.answeredAt < ANSWER_FOR_MS) return failed.error;
      this.#failed.delete(id);
    }
    return undefined;
  }

  /** The transfers of snapshot `name` out of `store` into the others, by destination. */
  elsewhere(store: string, name: string): { store: string; transfer: Promise<void> }[] {
    const found: { store: string; transfer: Promise<void> }[] = [];
    for (const [id, transfer] of this.#running) {
      const cut = id.indexOf('\0');
      if (id.slice(cut + 1) === name && id.slice(0, cut) !== store) {
        this.#waitedFor.add(id);
        found.push({ store: id.slice(0, cut), transfer });
      }
    }
    return found;
  }
}

/**
 * How long a failure goes on answering after its first answer. Not only once: one `stat` of a
 * name the kernel has cached (mkdir made it) can ask twice. It revalidates the cached entry
 * with a LOOKUP, takes any error of it for "the entry is stale", and looks the name up
 * afresh: the failure, answered only once, went to the revalidation and `ls` said ENOENT
 * (seen under load: fuse_dentry_revalidate in the kernel's fs/fuse/dir.c).
 */
const ANSWER_FOR_MS = 1000;

function key(store: string, name: string): string {
  return `${store}\0${name}`;
}
