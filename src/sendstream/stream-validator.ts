import { Transform, type TransformCallback } from 'node:stream';
import { messageOf, TransferError } from '../model/errors.js';
import { CommandReader, MalformedStreamError, type SendCommand } from './command-reader.js';
import { PathModel, PathModelError, type SourceTree } from './path-model.js';
import { Attribute, Command } from './stream-format.js';

/**
 * What a receive was asked for, and what a stream for it may refer to.
 * UUIDs are lowercase and dashed, as `btrfs subvolume list` prints them.
 */
export interface ReceiveScope {
  /** The UUID the stream's `subvol`/`snapshot` command must carry (the requested snapshot's effective UUID). */
  readonly uuid: string;
  /** The UUID a `snapshot` command must name as its parent; null: only a full (`subvol`) stream. */
  readonly parentUuid: string | null;
  /**
   * The snapshots a `snapshot` parent or a `clone` source may be, keyed by every UUID that
   * `btrfs receive` would resolve to exactly that snapshot (see `receiveSources` in the btrfs store).
   */
  readonly sources: ReadonlyMap<string, SourceTree>;
  /** Why a UUID that names one of the directory's snapshots is still not among `sources`, for messages. */
  readonly unsafe?: ReadonlyMap<string, string>;
}

/** A stream from elsewhere tried something a receive may not do; nothing of it was applied. */
export class RefusedStreamError extends TransferError {}

/** PATH_MAX: btrfs-progs joins paths into buffers of 4096 bytes (with the terminating NUL). */
export const MAX_PATH_BYTES = 4095;
/** NAME_MAX. */
export const MAX_NAME_BYTES = 255;

/** Commands that open their path and so would follow a symbolic link at its end. */
const FOLLOWS_LAST = new Set<number>([
  Command.Mkfile, // creat(2) opens an existing path, link or not
  Command.Write,
  Command.Clone,
  Command.Truncate,
  Command.Chmod,
  Command.Fallocate,
  Command.EncodedWrite,
]);
/** Commands that act on the path itself: chown is lchown, utimes uses AT_SYMLINK_NOFOLLOW, xattrs the l* calls. */
const ON_PATH_ITSELF = new Set<number>([Command.Chown, Command.Utimes, Command.SetXattr, Command.RemoveXattr, Command.Fileattr]);
const CREATES = new Map<number, 'file' | 'directory' | 'symlink'>([
  [Command.Mkfile, 'file'],
  [Command.Mkdir, 'directory'],
  [Command.Mknod, 'file'],
  [Command.Mkfifo, 'file'],
  [Command.Mksock, 'file'],
  [Command.Symlink, 'symlink'],
]);
/** File types mknod may create (the kernel refuses links and directories, but say so first). */
const MKNOD_TYPES = new Set([0o020000, 0o060000, 0o010000, 0o140000, 0o100000, 0]);
const S_IFMT = 0o170000;
/** Runs of small commands are passed on together, up to this many bytes, to save writes. */
const BATCH_BYTES = 64 * 1024;
/** A command this large (file data) goes on by itself rather than be copied into a batch. */
const LARGE_COMMAND_BYTES = 16 * 1024;

/**
 * Passes a btrfs send stream from another machine through to `btrfs receive`, refusing it
 * before receive acts on anything that could reach outside the one new subvolume: every
 * command is checked whole (CRC included) before any of its bytes go on, so receive, which
 * also acts only on whole commands, never sees a refused one. Refused are:
 * - anything but exactly one `subvol`/`snapshot` first, naming the requested UUID (and parent);
 *   bytes after `end`; unknown commands or attributes; version 3 (verity); `update_extent`;
 * - a `snapshot` parent or a `clone` source that is not one of {@link ReceiveScope.sources};
 * - paths that are absolute, have empty, `.` or `..` components, NUL bytes, or exceed
 *   PATH_MAX/NAME_MAX;
 * - paths through a symbolic link — one the stream made, moved or hard-linked, or one the
 *   parent snapshot or the clone source holds — and a link at the end of the path of a
 *   command that opens its path ({@link FOLLOWS_LAST}).
 * Memory: one command plus the {@link PathModel}. Errors are {@link RefusedStreamError}s.
 */
export class StreamValidator extends Transform {
  readonly #scope: ReceiveScope;
  readonly #reader = new CommandReader();
  #model: PathModel | undefined;
  /** The source trees answers came from (parent, clone sources): confirmed before commands go on. */
  readonly #trees = new Set<SourceTree>();
  /** The END command, held back until the input ends: receive -e stops at END, so what may follow must be checked first. */
  #end: Buffer | undefined;
  #endPassed = false;
  #commands = 0;

  constructor(scope: ReceiveScope) {
    super({ highWaterMark: 1 << 20 });
    this.#scope = scope;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#reader.push(chunk);
    this.#drain().then(
      () => callback(),
      (error: unknown) => callback(refusal(error)),
    );
  }

  override _flush(callback: TransformCallback): void {
    if (this.#reader.version === 0) return callback(new RefusedStreamError('the stream was refused: it ends before its header'));
    if (this.#reader.pendingBytes > 0) return callback(new RefusedStreamError('the stream was refused: it is cut inside a command'));
    if (this.#end === undefined) return callback(new RefusedStreamError('the stream was refused: it is cut (no end command)'));
    this.#endPassed = true;
    callback(null, this.#end);
  }

  /**
   * True once the whole stream was checked and its END passed on. `btrfs receive -e` exits on
   * END, possibly before the writer noticed the stream's end: a closed pipe after that is no failure.
   */
  get isComplete(): boolean {
    return this.#endPassed;
  }

  async #drain(): Promise<void> {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    /** Passes on what was checked (and `large`), once the answers it relied on are confirmed. */
    const flush = async (large?: Buffer): Promise<void> => {
      if (batch.length === 0 && large === undefined) return;
      for (const tree of this.#trees) await tree.confirm?.();
      if (batch.length > 0) this.push(batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes));
      if (large !== undefined) this.push(large);
      batch = [];
      batchBytes = 0;
    };
    try {
      const header = this.#reader.header();
      if (header !== undefined) {
        batch.push(header);
        batchBytes += header.length;
      }
      for (let command = this.#next(); command !== undefined; command = this.#next()) {
        await this.#check(command);
        if (command.command === Command.End) this.#end = command.bytes;
        else if (command.bytes.length >= LARGE_COMMAND_BYTES) await flush(command.bytes);
        else {
          batch.push(command.bytes);
          batchBytes += command.bytes.length;
          if (batchBytes >= BATCH_BYTES) await flush();
        }
      }
    } finally {
      await flush(); // what was checked goes on; a refusal then ends the stream there
    }
  }

  #next(): SendCommand | undefined {
    if (this.#end !== undefined && this.#reader.pendingBytes > 0)
      throw new RefusedStreamError('the stream was refused: it has data after its end command');
    return this.#reader.next();
  }

  async #check(c: SendCommand): Promise<void> {
    const first = this.#commands++ === 0;
    const command = c.command;
    if (command === Command.Subvol || command === Command.Snapshot) {
      if (!first) throw refuse(`it creates a second subvolume (command ${command} after the first)`);
      return this.#checkStart(c);
    }
    if (first) throw refuse(`it does not start with a subvol or snapshot command (command ${command})`);
    if (command === Command.End) return;
    if (command === Command.UpdateExtent) throw refuse('it is a --no-data stream (update_extent), which carries no file data');
    if (command > (this.#reader.version >= 2 ? Command.EncodedWrite : Command.UpdateExtent) || command === 0) {
      throw refuse(`unknown command ${command} for a version ${this.#reader.version} stream`);
    }
    const model = this.#model!;
    const path = pathOf(c, Attribute.Path, { root: ON_PATH_ITSELF.has(command) || command === Command.Chmod });
    const kind = await model.kindOf(path);
    if (FOLLOWS_LAST.has(command) && kind === 'symlink')
      throw refuse(`${show(path)} is a symbolic link, which ${name(command)} would follow`);

    const creates = CREATES.get(command);
    if (creates !== undefined) {
      if (command === Command.Mknod && !MKNOD_TYPES.has(Number(u64(c, Attribute.Mode) & BigInt(S_IFMT)))) {
        throw refuse(`mknod of an unsupported file type at ${show(path)}`);
      }
      if (command === Command.Symlink) stringOf(c, Attribute.PathLink);
      return model.create(path, creates);
    }
    switch (command) {
      case Command.Rename:
        return model.rename(path, pathOf(c, Attribute.PathTo));
      case Command.Link:
        return model.link(pathOf(c, Attribute.PathLink), path);
      case Command.Unlink:
      case Command.Rmdir:
        return model.remove(path);
      case Command.SetXattr:
      case Command.RemoveXattr:
        if (stringOf(c, Attribute.XattrName).length === 0) throw refuse('an empty xattr name');
        return;
      case Command.Clone:
        return this.#checkCloneSource(c);
    }
  }

  async #checkStart(c: SendCommand): Promise<void> {
    const scope = this.#scope;
    const uuid = uuidOf(c, Attribute.Uuid);
    if (uuid !== scope.uuid) throw refuse(`it creates snapshot ${uuid}, not the requested ${scope.uuid}`);
    if (c.command === Command.Subvol) {
      if (scope.parentUuid !== null) throw refuse(`it is a full stream, but an incremental one from ${scope.parentUuid} was announced`);
      this.#model = new PathModel(undefined);
      return;
    }
    const parent = uuidOf(c, Attribute.CloneUuid);
    if (scope.parentUuid === null) throw refuse(`it is an incremental stream from ${parent}, but a full one was announced`);
    if (parent !== scope.parentUuid) throw refuse(`its parent is ${parent}, not the announced ${scope.parentUuid}`);
    const tree = scope.sources.get(parent);
    if (tree === undefined)
      throw refuse(scope.unsafe?.get(parent) ?? `its parent ${parent} is not a read-only snapshot of the receiving directory`);
    this.#trees.add(tree);
    this.#model = new PathModel(tree);
  }

  /** The clone's source file: in the new subvolume itself, or in a snapshot of the scope. */
  async #checkCloneSource(c: SendCommand): Promise<void> {
    const source = uuidOf(c, Attribute.CloneUuid);
    const clonePath = pathOf(c, Attribute.ClonePath);
    // btrfs receive compares with the new subvolume's received UUID first: then the path is inside it.
    if (source === this.#scope.uuid) {
      if ((await this.#model!.kindOf(clonePath)) === 'symlink') throw refuse(`clone source ${show(clonePath)} is a symbolic link`);
      return;
    }
    const tree = this.#scope.sources.get(source);
    if (tree === undefined)
      throw refuse(this.#scope.unsafe?.get(source) ?? `clone source ${source} is not a read-only snapshot of the receiving directory`);
    this.#trees.add(tree);
    for (let i = 1; i <= clonePath.length; i++) {
      const kind = await tree.kindOf(clonePath.slice(0, i).join('/'));
      if (kind === 'symlink') throw refuse(`clone source path ${show(clonePath.slice(0, i))} in ${source} is a symbolic link`);
      if (i < clonePath.length && kind !== 'directory') return; // receive will fail to open it: nothing to follow
    }
  }
}

function refuse(why: string): RefusedStreamError {
  return new RefusedStreamError(`the stream was refused: ${why}`);
}

/** Errors of the parts (malformed framing, a link on the way) become refusals with their reason. */
function refusal(error: unknown): Error {
  if (error instanceof RefusedStreamError) return error;
  if (error instanceof MalformedStreamError) {
    // Damage in transit or at rest looks like this too: say so, it is the likelier cause.
    return new RefusedStreamError(`the stream was refused: ${error.message}`, { hint: 'the stream is corrupt or was tampered with' });
  }
  if (error instanceof PathModelError) return refuse(error.message);
  // A lookup that failed (EIO, a source snapshot deleted meanwhile): the stream cannot be shown safe.
  return refuse(`it could not be checked: ${messageOf(error)}`);
}

function attribute(c: SendCommand, type: number): Buffer {
  const value = c.attributes.get(type);
  if (value === undefined) throw refuse(`${name(c.command)} lacks attribute ${type}`);
  return value;
}

/** A C string attribute, as latin1 (bytes kept one to one); NUL would cut it short in btrfs-progs. */
function stringOf(c: SendCommand, type: number): string {
  const value = attribute(c, type);
  if (value.includes(0)) throw refuse(`${name(c.command)} has a NUL byte in attribute ${type}`);
  return value.toString('latin1');
}

/**
 * A path attribute as components, checked: relative, no empty/`.`/`..` component, within
 * PATH_MAX and NAME_MAX. `root`: the empty path (the subvolume's root) is allowed.
 */
function pathOf(c: SendCommand, type: number, options: { root?: boolean } = {}): string[] {
  const value = stringOf(c, type);
  if (value === '') {
    if (options.root) return [];
    throw refuse(`${name(c.command)} has an empty path`);
  }
  if (value.length > MAX_PATH_BYTES) throw refuse(`a path of ${value.length} bytes in ${name(c.command)} is longer than PATH_MAX`);
  const components = value.split('/');
  for (const part of components) {
    if (part === '' || part === '.' || part === '..') {
      throw refuse(`${name(c.command)} path ${show(components)} is absolute or has an empty, "." or ".." component`);
    }
    if (part.length > MAX_NAME_BYTES) throw refuse(`a name of ${part.length} bytes in ${name(c.command)} is longer than NAME_MAX`);
  }
  return components;
}

function uuidOf(c: SendCommand, type: number): string {
  const value = attribute(c, type);
  if (value.length !== 16) throw refuse(`${name(c.command)} has a malformed UUID`);
  const hex = value.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function u64(c: SendCommand, type: number): bigint {
  const value = attribute(c, type);
  if (value.length !== 8) throw refuse(`${name(c.command)} has a malformed number`);
  return value.readBigUInt64LE(0);
}

/** A path for messages: JSON-quoted so control characters show as escapes. */
function show(components: readonly string[]): string {
  return JSON.stringify(Buffer.from(components.join('/'), 'latin1').toString('utf8'));
}

const NAMES = new Map(Object.entries(Command).map(([key, value]) => [value as number, key.toLowerCase()]));
function name(command: number): string {
  return NAMES.get(command) ?? `command ${command}`;
}
