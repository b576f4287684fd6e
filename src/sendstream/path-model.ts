/**
 * What the subvolume a send stream builds looks like, as far as the question "does this path
 * go through a symbolic link?" needs: `btrfs receive` (run as root) resolves every path in the
 * stream with plain path syscalls, so a link the stream made, or one the parent snapshot holds,
 * would lead its writes anywhere on the machine. {@link PathModel} follows the stream's
 * namespace operations and answers, for any path, what each component is.
 *
 * Only what that answer needs is kept:
 * - directories and symbolic links are always nodes;
 * - in a directory the stream made, a name with no node is a regular/special file or nothing
 *   (both harmless on the way: receive fails with ENOTDIR/ENOENT), so a full stream costs
 *   memory for its directories and links only;
 * - in a directory that came from the parent snapshot, a name with no node is whatever the
 *   parent holds there (looked up through {@link SourceTree}, read-only so stable); whatever
 *   the stream puts or removes there is a node (files too: the parent cannot say they exist),
 *   and a removal leaves a `missing` node only where the parent has an entry to hide (the common
 *   orphan `o257-...` names leave nothing once renamed into place).
 *
 * Paths are raw bytes as latin1 strings: the kernel compares bytes, not UTF-8 text.
 */

/** What a name is, for path resolution. `file` is anything that is neither a directory nor a link. */
export type EntryKind = 'directory' | 'symlink' | 'file' | 'missing';

/** Read-only access to a snapshot's tree by relative path (latin1 bytes, '/'-separated). */
export interface SourceTree {
  /** What the entry at `relative` is, without following a link at its end; `''` is the root. */
  kindOf(relative: string): Promise<EntryKind>;
  /**
   * Optional: rejects when answers given since the last call may no longer hold (the snapshot
   * went away, so "missing" meant nothing). Called before commands that relied on them go on.
   */
  confirm?(): Promise<void>;
}

/** The stream (or the model's bound) does something the model refuses; the message says what. */
export class PathModelError extends Error {}

/** A path component the model keeps. */
interface Node {
  kind: EntryKind;
  /** Directories: the names whose kind differs from what a lookup would find. */
  children?: Map<string, Node>;
  /** Directories from the parent snapshot: their path there, where unknown names are looked up. */
  origin?: string;
  /** The parent snapshot has an entry at this node's place (so removing the node must leave a `missing`). */
  hidesParent?: boolean;
}

const FILE: EntryKind = 'file';
/** File nodes carry nothing of their own: two shared ones save memory in large incrementals. */
const NEW_FILE: Node = Object.freeze({ kind: FILE, hidesParent: false });
const FILE_HIDING_PARENT: Node = Object.freeze({ kind: FILE, hidesParent: true });

/**
 * Most nodes the model keeps before it refuses the stream: a bound on memory (a node costs
 * roughly 100-200 bytes) that real snapshots stay far below — a stream with this many
 * directories and links in flight is treated as an attempt to exhaust memory.
 */
export const MAX_NODES = 4_000_000;

export class PathModel {
  readonly #root: Node;
  readonly #parent: SourceTree | undefined;
  #nodes = 1;

  /** @param parent the snapshot an incremental stream starts from; undefined for a full stream. */
  constructor(parent: SourceTree | undefined) {
    this.#parent = parent;
    this.#root = { kind: 'directory', children: new Map(), ...(parent ? { origin: '' } : {}) };
  }

  /** Nodes kept now (for tests of the memory bound). */
  get nodeCount(): number {
    return this.#nodes;
  }

  /**
   * The kind of the entry at `components` (the root for none), checking that every component
   * before the last is a directory or missing — never a symbolic link.
   * @throws PathModelError when one is a link.
   */
  async kindOf(components: readonly string[]): Promise<EntryKind> {
    if (components.length === 0) return 'directory';
    const directory = await this.#directoryOf(components);
    if (directory === undefined) return 'missing';
    return (await this.#child(directory, components.at(-1)!))?.kind ?? FILE;
  }

  /** A new entry of `kind` at `components` (mkfile, mkdir, symlink, mknod, ...). */
  async create(components: readonly string[], kind: Exclude<EntryKind, 'missing'>): Promise<void> {
    const directory = await this.#directoryOf(components);
    if (directory === undefined) return; // receive will fail: nothing to model
    await this.#set(directory, components.at(-1)!, kind === 'directory' ? { kind, children: new Map() } : { kind });
  }

  /** unlink / rmdir. */
  async remove(components: readonly string[]): Promise<void> {
    const directory = await this.#directoryOf(components);
    if (directory === undefined) return;
    await this.#set(directory, components.at(-1)!, undefined);
  }

  /** A hard link at `to` of the entry at `from` (a link to a symbolic link is one too). */
  async link(from: readonly string[], to: readonly string[]): Promise<void> {
    const kind = await this.kindOf(from);
    if (kind === 'missing' || kind === 'directory') return; // link(2) fails: receive stops
    await this.create(to, kind);
  }

  /** rename(2): the entry (a whole directory tree with it) moves, replacing what was at `to`. */
  async rename(from: readonly string[], to: readonly string[]): Promise<void> {
    const fromDirectory = await this.#directoryOf(from);
    const toDirectory = await this.#directoryOf(to);
    if (fromDirectory === undefined || toDirectory === undefined) return;
    const name = from.at(-1)!;
    const moving = (await this.#child(fromDirectory, name)) ?? { kind: FILE };
    if (moving.kind === 'missing') return;
    await this.#set(fromDirectory, name, undefined);
    const moved: Node =
      moving.kind === FILE
        ? NEW_FILE
        : {
            kind: moving.kind,
            ...(moving.children ? { children: moving.children } : {}),
            ...(moving.origin !== undefined ? { origin: moving.origin } : {}),
          };
    await this.#set(toDirectory, to.at(-1)!, moved);
  }

  /** The node of the directory holding the last component, undefined when it does not exist. */
  async #directoryOf(components: readonly string[]): Promise<Node | undefined> {
    let node = this.#root;
    for (let i = 0; i < components.length - 1; i++) {
      const child = await this.#child(node, components[i]!);
      if (child === undefined || child.kind === 'file' || child.kind === 'missing') return undefined;
      if (child.kind === 'symlink') {
        throw new PathModelError(`a path goes through ${JSON.stringify(components.slice(0, i + 1).join('/'))}, a symbolic link`);
      }
      node = child;
    }
    return node;
  }

  /**
   * The node for `name` in `directory`: the one the stream made, else (in a directory from the
   * parent) what the parent holds, kept when it is a directory or a link. Undefined: a file or
   * nothing (in a directory the stream made).
   */
  async #child(directory: Node, name: string): Promise<Node | undefined> {
    const known = directory.children!.get(name);
    if (known !== undefined || directory.origin === undefined) return known;
    const origin = directory.origin === '' ? name : `${directory.origin}/${name}`;
    const kind = await this.#parent!.kindOf(origin);
    if (kind === 'file') return FILE_HIDING_PARENT;
    const node: Node =
      kind === 'directory' ? { kind, children: new Map(), origin, hidesParent: true } : { kind, hidesParent: kind !== 'missing' };
    if (kind !== 'missing') this.#remember(directory, name, node);
    return node;
  }

  /** Puts `node` (undefined: nothing) at `name`, keeping only what differs from a fresh lookup. */
  async #set(directory: Node, name: string, node: Node | undefined): Promise<void> {
    const previous = directory.children!.get(name);
    if (previous !== undefined) this.#nodes--;
    directory.children!.delete(name);
    if (directory.origin === undefined) {
      // A directory the stream made: no node means "a file or nothing".
      if (node !== undefined && node.kind !== 'file') this.#remember(directory, name, node);
      return;
    }
    const hidesParent =
      previous?.hidesParent ?? (await this.#parent!.kindOf(directory.origin === '' ? name : `${directory.origin}/${name}`)) !== 'missing';
    if (node === undefined) {
      if (hidesParent) this.#remember(directory, name, { kind: 'missing', hidesParent });
      return;
    }
    this.#remember(directory, name, node.kind === FILE ? (hidesParent ? FILE_HIDING_PARENT : NEW_FILE) : { ...node, hidesParent });
  }

  #remember(directory: Node, name: string, node: Node): void {
    if (++this.#nodes > MAX_NODES) throw new PathModelError(`more than ${MAX_NODES} directories and links to follow`);
    directory.children!.set(name, node);
  }
}
