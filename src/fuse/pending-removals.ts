/**
 * `rm -r` (and `mv`'s removal of its source, which is the same code in coreutils) of a
 * snapshot, as the mount sees it: one `unlink` per file, one `rmdir` per directory bottom-up,
 * then `rmdir` of the snapshot itself. A snapshot cannot lose files one by one, so the mount
 * hides what such a walk removed and deletes the snapshot at the walk's final `rmdir`, once
 * the snapshot looks empty.
 *
 * FUSE tells the mount nothing about the caller, so a lone `rm FILE` and an `rm -r` walking
 * past FILE look alike — except that the walk holds the directory it removes from open: GNU
 * rm (gnulib fts) reads each directory and then calls `unlinkat(dirfd, name)` with that
 * directory's descriptor still open, which the mount sees as an `opendir` not yet released.
 * `rm FILE` opens nothing. So a removal is accepted (and hidden) only while its parent
 * directory is open; otherwise it is refused (EROFS), and nothing hides that is not being
 * removed. A walk that stops before its final `rmdir` deletes nothing; what it hid shows
 * again after `idleMs` without a removal.
 *
 * Pure apart from the injected clock: the tests drive it without a mount.
 */
export interface PendingRemovalsOptions {
  readonly now: () => number;
  /** A walk with no removal for this long is forgotten: its hidden entries show again. */
  readonly idleMs: number;
}

interface Walk {
  readonly hidden: Set<string>;
  last: number;
}

export class PendingRemovals {
  readonly #now: () => number;
  readonly #idleMs: number;
  /** Mount paths of directories held open (opendir without releasedir yet), with counts. */
  readonly #open = new Map<string, number>();
  /** Per snapshot (any string key the caller chooses): the entries its walk removed. */
  readonly #walks = new Map<string, Walk>();

  constructor(options: PendingRemovalsOptions) {
    this.#now = options.now;
    this.#idleMs = options.idleMs;
  }

  /** A directory at `mountPath` was opened (FUSE `opendir`). */
  opened(mountPath: string): void {
    const path = normalize(mountPath);
    this.#open.set(path, (this.#open.get(path) ?? 0) + 1);
  }

  /** A handle from {@link opened} was released (FUSE `releasedir`). */
  closed(mountPath: string): void {
    const path = normalize(mountPath);
    const count = (this.#open.get(path) ?? 0) - 1;
    if (count > 0) this.#open.set(path, count);
    else this.#open.delete(path);
  }

  /** Is a removal at `mountPath` part of a walk (its parent directory is held open)? */
  isWalking(mountPath: string): boolean {
    return this.#open.has(parentOf(normalize(mountPath)));
  }

  /**
   * Records a removal of `relative` in snapshot `snapshotKey` at `mountPath`: hidden from now
   * on, when a walk is removing it. Returns false (nothing hidden) otherwise.
   */
  remove(snapshotKey: string, relative: string, mountPath: string): boolean {
    if (!this.isWalking(mountPath)) return false;
    let walk = this.#walks.get(snapshotKey);
    if (walk === undefined) this.#walks.set(snapshotKey, (walk = { hidden: new Set(), last: this.#now() }));
    walk.hidden.add(relative);
    walk.last = this.#now();
    return true;
  }

  /** Is `relative` (or a directory above it) hidden in snapshot `snapshotKey`? */
  isHidden(snapshotKey: string, relative: string): boolean {
    const walk = this.#walks.get(snapshotKey);
    if (walk === undefined) return false;
    const parts = relative.split('/');
    for (let i = 1; i <= parts.length; i++) if (walk.hidden.has(parts.slice(0, i).join('/'))) return true;
    return false;
  }

  /** The names of directory `relative` ('' for the snapshot) that are not hidden. */
  visible(snapshotKey: string, relative: string, names: readonly string[]): string[] {
    const walk = this.#walks.get(snapshotKey);
    if (walk === undefined) return [...names];
    const base = relative === '' ? '' : `${relative}/`;
    return names.filter((n) => !walk.hidden.has(`${base}${n}`));
  }

  /** The snapshot was deleted (or its removal given up): forget its walk. */
  forget(snapshotKey: string): void {
    this.#walks.delete(snapshotKey);
  }

  /** Forgets walks without a removal for `idleMs`; returns their keys (for the log). */
  sweep(): string[] {
    const now = this.#now();
    const stale: string[] = [];
    for (const [key, walk] of this.#walks) {
      if (now - walk.last >= this.#idleMs) {
        this.#walks.delete(key);
        stale.push(key);
      }
    }
    return stale;
  }
}

function normalize(mountPath: string): string {
  const trimmed = mountPath.replace(/\/+/g, '/').replace(/\/$/, '');
  return trimmed === '' ? '/' : trimmed;
}

function parentOf(mountPath: string): string {
  const cut = mountPath.lastIndexOf('/');
  return cut <= 0 ? '/' : mountPath.slice(0, cut);
}
