/**
 * The mount's directory shape as a pure function of the stores' inventories (restic's FUSE
 * view is built the same way): no I/O here, so every path rule is unit-tested without a mount.
 *
 * ```
 * /                              the mount: one directory per store, and .buttersink
 * /.buttersink/status, /log      what is happening (text)
 * /<store>/                      a store
 * /<store>/<group>/…             directories between the store and nested snapshot names
 * /<store>/<snapshot>            a snapshot (its name may contain '/': daily/2026-11-28)
 * /<store>/<snapshot>/<path>     a file inside it, shown by the store or a copy window
 * ```
 */

/** The mount's own directory of status files; a store may not have this name. */
export const CONTROL_DIRECTORY = '.buttersink';
export const CONTROL_FILES = ['log', 'status'] as const;
export type ControlFile = (typeof CONTROL_FILES)[number];

export type PathNode =
  | { readonly kind: 'root' }
  | { readonly kind: 'control' }
  | { readonly kind: 'control-file'; readonly file: ControlFile }
  | { readonly kind: 'store'; readonly store: string }
  /** A directory on the way to nested snapshot names; `prefix` is its path in the store. */
  | { readonly kind: 'group'; readonly store: string; readonly prefix: string }
  | { readonly kind: 'snapshot'; readonly store: string; readonly snapshot: string }
  /** Something inside a snapshot; `relative` is its `/`-separated path in the snapshot. */
  | { readonly kind: 'inside'; readonly store: string; readonly snapshot: string; readonly relative: string };

/** Where a path that is not there would go: its parent directory and its last name. */
export interface MissingEntry {
  readonly parent: PathNode;
  readonly name: string;
}

export type Resolution =
  | { readonly kind: 'found'; readonly node: PathNode }
  | ({ readonly kind: 'missing' } & MissingEntry)
  /** A component on the way is missing or no directory. */
  | { readonly kind: 'invalid'; readonly reason: 'ENOENT' | 'ENOTDIR' };

/** Splits a mount path (`/a/b`) into its names; `/` is `[]`. Empty names and `.` are dropped. */
export function splitPath(mountPath: string): string[] {
  return mountPath.split('/').filter((part) => part !== '' && part !== '.');
}

type ChildKind = 'snapshot' | 'group';

/**
 * One store's names as directories: which names each directory holds and whether each is a
 * snapshot or a group on the way to deeper snapshots. A name that is both (a snapshot `a`
 * and another `a/b`) is a snapshot: `a/b` is then inside it, as btrfs shows it.
 */
export class StoreTree {
  readonly store: string;
  /** Directory prefix ('' for the store itself) -> its children. */
  readonly #directories = new Map<string, Map<string, ChildKind>>();
  readonly #snapshots: ReadonlySet<string>;

  /**
   * @param snapshots the store's snapshot names, `/`-separated.
   * @param extraDirectories group directories to show although no snapshot is below them
   *   (made by `mkdir` on the way to a nested name, or left by deleting the last one).
   */
  constructor(store: string, snapshots: readonly string[], extraDirectories: readonly string[] = []) {
    this.store = store;
    this.#directories.set('', new Map());
    const sorted = [...snapshots].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
    const kept = new Set<string>();
    for (const name of sorted) {
      if (this.#add(name, 'snapshot')) kept.add(name);
    }
    this.#snapshots = kept;
    for (const dir of extraDirectories) this.#add(dir, 'group');
  }

  /** Adds a name and its groups; false when a snapshot above it hides it. */
  #add(name: string, kind: ChildKind): boolean {
    const parts = name.split('/').filter(Boolean);
    if (parts.length === 0) return false;
    let prefix = '';
    for (const [index, part] of parts.entries()) {
      const children = this.#directories.get(prefix);
      if (children === undefined) return false; // below a snapshot
      const isLast = index === parts.length - 1;
      const existing = children.get(part);
      const full = prefix === '' ? part : `${prefix}/${part}`;
      if (existing === 'snapshot') return false;
      if (isLast && kind === 'snapshot') {
        // A snapshot wins over a group of the same name: what was below it is inside it now.
        if (existing === 'group') this.#dropBelow(full);
        children.set(part, 'snapshot');
        return true;
      }
      if (existing === undefined) {
        children.set(part, 'group');
        this.#directories.set(full, new Map());
      }
      prefix = full;
    }
    return true;
  }

  #dropBelow(prefix: string): void {
    for (const key of [...this.#directories.keys()]) {
      if (key === prefix || key.startsWith(`${prefix}/`)) this.#directories.delete(key);
    }
  }

  /** The snapshot names this tree shows, sorted. */
  get snapshots(): string[] {
    return [...this.#snapshots].sort();
  }

  hasSnapshot(name: string): boolean {
    return this.#snapshots.has(name);
  }

  /** Is `prefix` a group directory of this store? */
  hasGroup(prefix: string): boolean {
    return prefix !== '' && this.#directories.has(prefix);
  }

  /** The names in a group directory ('' for the store's top), sorted; undefined if none. */
  childrenOf(prefix: string): string[] | undefined {
    const children = this.#directories.get(prefix);
    return children === undefined ? undefined : [...children.keys()].sort();
  }

  /** Resolves a path below the store, given as names. */
  resolve(names: readonly string[]): Resolution {
    let prefix = '';
    for (const [index, name] of names.entries()) {
      const kind = this.#directories.get(prefix)!.get(name);
      const full = prefix === '' ? name : `${prefix}/${name}`;
      const parent: PathNode = prefix === '' ? { kind: 'store', store: this.store } : { kind: 'group', store: this.store, prefix };
      if (kind === undefined) {
        return index === names.length - 1 ? { kind: 'missing', parent, name } : { kind: 'invalid', reason: 'ENOENT' };
      }
      if (kind === 'snapshot') {
        const rest = names.slice(index + 1);
        if (rest.length === 0) return { kind: 'found', node: { kind: 'snapshot', store: this.store, snapshot: full } };
        return { kind: 'found', node: { kind: 'inside', store: this.store, snapshot: full, relative: rest.join('/') } };
      }
      prefix = full;
    }
    return {
      kind: 'found',
      node: prefix === '' ? { kind: 'store', store: this.store } : { kind: 'group', store: this.store, prefix },
    };
  }
}

/** The first step of every lookup: which area of the mount a path is in. */
export type MountArea =
  | { readonly kind: 'resolved'; readonly resolution: Resolution }
  /** Below a store: resolve `names` with that store's {@link StoreTree}. */
  | { readonly kind: 'store'; readonly store: string; readonly names: readonly string[] };

/** Resolves what needs no inventory (root, control files, unknown stores); the rest goes to a store's tree. */
export function locate(mountPath: string, storeNames: readonly string[]): MountArea {
  const names = splitPath(mountPath);
  const [first, ...rest] = names;
  if (first === undefined) return { kind: 'resolved', resolution: { kind: 'found', node: { kind: 'root' } } };
  if (first === CONTROL_DIRECTORY) {
    if (rest.length === 0) return { kind: 'resolved', resolution: { kind: 'found', node: { kind: 'control' } } };
    const file = CONTROL_FILES.find((f) => f === rest[0]);
    if (rest.length === 1) {
      return {
        kind: 'resolved',
        resolution: file
          ? { kind: 'found', node: { kind: 'control-file', file } }
          : { kind: 'missing', parent: { kind: 'control' }, name: rest[0]! },
      };
    }
    return { kind: 'resolved', resolution: { kind: 'invalid', reason: file ? 'ENOTDIR' : 'ENOENT' } };
  }
  if (!storeNames.includes(first)) {
    return {
      kind: 'resolved',
      resolution: rest.length === 0 ? { kind: 'missing', parent: { kind: 'root' }, name: first } : { kind: 'invalid', reason: 'ENOENT' },
    };
  }
  return { kind: 'store', store: first, names: rest };
}

/** The root's entries: the control directory, then the stores in the order given. */
export function rootEntries(storeNames: readonly string[]): string[] {
  return [CONTROL_DIRECTORY, ...storeNames];
}

/** The full snapshot name a missing entry would have in its store (for `mkdir`). */
export function nameInStore(entry: MissingEntry): string | undefined {
  if (entry.parent.kind === 'store') return entry.name;
  if (entry.parent.kind === 'group') return `${entry.parent.prefix}/${entry.name}`;
  return undefined;
}
