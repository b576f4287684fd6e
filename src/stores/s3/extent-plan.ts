import { MAX_COMMAND_PAYLOAD } from '../../sendstream/command-reader.js';
import { COMMAND_HEADER_BYTES } from '../../sendstream/stream-format.js';

/**
 * The pure half of reading file bytes out of stored send streams (`extent-reader.ts` does the
 * I/O): which `write` commands a read needs, which ranged GETs fetch them, and when a file read
 * in order gets its next commands fetched ahead. Everything here treats the index as untrusted
 * input (a bucket can be written by anyone with its keys): numbers are checked before any is
 * used to size or place anything.
 */

/** One data extent of a file with its object resolved to a key (see `Extent` in snapshot-index.ts). */
export interface ResolvedExtent {
  /** Offset of the extent's first byte in the file. */
  readonly fileOffset: number;
  readonly length: number;
  /** The object (stored stream) holding the `write` command that carried the bytes. */
  readonly key: string;
  /** That command's first byte in the object, and its whole length (header and payload). */
  readonly commandStart: number;
  readonly commandBytes: number;
  /** Where the extent's first byte lies in the object (inside the command's data). */
  readonly dataStart: number;
}

export interface ReadableFile {
  /** Identifies the file across reads (cache and read-ahead key), e.g. `${indexId}:${inode}`. */
  readonly id: string;
  readonly size: number;
  /** Sorted by fileOffset, non-overlapping; gaps below size are holes (zeros). */
  readonly extents: readonly ResolvedExtent[];
}

/** One `write` command of one object. */
export interface CommandRef {
  readonly key: string;
  readonly start: number;
  readonly bytes: number;
}

/** A stretch of a read served from one command: `length` bytes from `dataOffset` into the command. */
export interface Piece {
  readonly fileOffset: number;
  readonly length: number;
  readonly command: CommandRef;
  readonly dataOffset: number;
}

/** One ranged GET: adjacent commands of one object, `bytes=start-(start+bytes-1)`. */
export interface FetchRun {
  readonly key: string;
  readonly start: number;
  readonly bytes: number;
  readonly commands: readonly CommandRef[];
}

/** The largest command an extent may point into (what `CommandReader` accepts). */
export const MAX_COMMAND_BYTES = MAX_COMMAND_PAYLOAD + COMMAND_HEADER_BYTES;

/** The index does not make sense: a read of this file cannot be served. */
export class MalformedIndexError extends Error {}

/** The cache key of a command (its length too: a hostile index could give one start two lengths). */
export function commandKey(command: CommandRef): string {
  return `${command.key}\0${command.start}\0${command.bytes}`;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Why this extent cannot be used, or undefined. */
export function extentProblem(extent: ResolvedExtent): string | undefined {
  const { fileOffset, length, key, commandStart, commandBytes, dataStart } = extent;
  for (const [name, value] of Object.entries({ fileOffset, length, commandStart, commandBytes, dataStart })) {
    if (!isCount(value)) return `its ${name} ${String(value)} is not a non-negative integer`;
  }
  if (typeof key !== 'string' || key === '') return 'it names no object';
  if (!Number.isSafeInteger(fileOffset + length) || !Number.isSafeInteger(commandStart + commandBytes)) return 'its numbers overflow';
  if (commandBytes < COMMAND_HEADER_BYTES || commandBytes > MAX_COMMAND_BYTES) {
    return `its command of ${commandBytes} bytes is not between ${COMMAND_HEADER_BYTES} and ${MAX_COMMAND_BYTES}`;
  }
  if (dataStart < commandStart + COMMAND_HEADER_BYTES || dataStart + length > commandStart + commandBytes) {
    return `its data (${length} bytes at ${dataStart}) lies outside its command (${commandBytes} bytes at ${commandStart})`;
  }
  return undefined;
}

/**
 * Checks a whole file's extents (each usable, in order, not overlapping) and its size, once
 * per file: afterwards reads can find their extents by binary search.
 * @throws MalformedIndexError naming the file and the extent.
 */
export function checkFile(file: ReadableFile): void {
  if (!isCount(file.size))
    throw new MalformedIndexError(`the index of ${file.id} is malformed: its size ${String(file.size)} is not a count`);
  let previousEnd = 0;
  file.extents.forEach((extent, i) => {
    const problem = extentProblem(extent);
    if (problem !== undefined) throw new MalformedIndexError(`the index of ${file.id} is malformed: extent ${i} is unusable (${problem})`);
    if (extent.fileOffset < previousEnd) {
      throw new MalformedIndexError(`the index of ${file.id} is malformed: extent ${i} overlaps the one before it`);
    }
    previousEnd = extent.fileOffset + extent.length;
  });
}

/** The index of the first extent that may overlap `offset` (extents are sorted by fileOffset). */
function firstAt(extents: readonly ResolvedExtent[], offset: number): number {
  let low = 0;
  let high = extents.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const e = extents[middle]!;
    if (e.fileOffset + e.length <= offset) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The pieces of commands that hold the file's bytes in `[offset, end)`, in file order (the
 * gaps between them are holes). Each extent used is checked, and that they are in order (a
 * cheap second line behind {@link checkFile}, which makes the binary search sound).
 * @throws MalformedIndexError naming the file and the extent.
 */
export function piecesOf(file: ReadableFile, offset: number, end: number): Piece[] {
  const pieces: Piece[] = [];
  const { extents } = file;
  let previousEnd = 0;
  for (let i = firstAt(extents, offset); i < extents.length; i++) {
    const extent = extents[i]!;
    const problem = extentProblem(extent);
    if (problem !== undefined) throw new MalformedIndexError(`the index of ${file.id} is malformed: extent ${i} is unusable (${problem})`);
    if (extent.fileOffset >= end) break;
    if (extent.fileOffset < previousEnd) {
      throw new MalformedIndexError(`the index of ${file.id} is malformed: extent ${i} overlaps the one before it`);
    }
    previousEnd = extent.fileOffset + extent.length;
    const from = Math.max(offset, extent.fileOffset);
    const to = Math.min(end, previousEnd);
    if (to <= from) continue;
    pieces.push({
      fileOffset: from,
      length: to - from,
      command: { key: extent.key, start: extent.commandStart, bytes: extent.commandBytes },
      dataOffset: extent.dataStart - extent.commandStart + (from - extent.fileOffset),
    });
  }
  return pieces;
}

/** The distinct commands of some pieces, in the order first needed. */
export function commandsOf(pieces: readonly Piece[]): CommandRef[] {
  const seen = new Map<string, CommandRef>();
  for (const { command } of pieces) if (!seen.has(commandKey(command))) seen.set(commandKey(command), command);
  return [...seen.values()];
}

/**
 * The ranged GETs that fetch `commands`: one per run of commands that lie back to back in one
 * object (a command's start + bytes is the next one's start), in object order. Duplicates are
 * fetched once; overlapping commands (only a hostile index has them) go in separate GETs.
 */
export function coalesce(commands: readonly CommandRef[]): FetchRun[] {
  const unique = new Map<string, CommandRef>();
  for (const command of commands) unique.set(commandKey(command), command);
  const sorted = [...unique.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.start - b.start || a.bytes - b.bytes));
  const runs: { key: string; start: number; bytes: number; commands: CommandRef[] }[] = [];
  for (const command of sorted) {
    const last = runs.at(-1);
    if (last !== undefined && last.key === command.key && last.start + last.bytes === command.start) {
      last.commands.push(command);
      last.bytes += command.bytes;
    } else {
      runs.push({ key: command.key, start: command.start, bytes: command.bytes, commands: [command] });
    }
  }
  return runs;
}

/** What is remembered of a file between reads, to tell reads in order and how far ahead was fetched. */
export interface ReadState {
  /** Where the last read ended. */
  readonly end: number;
  /** How far into the file read-ahead has been started. */
  readonly ahead: number;
}

/**
 * Read-ahead for a file read in order (a read starting at 0, or where the last one ended, as
 * `cat` and `cp` through the mount read, 128 KiB at a time): the file range whose commands to
 * fetch too, and the state to remember. The window is `window` bytes past the read's end; it
 * is topped up only once less than half of it is left, so a file read in order costs one GET
 * per half window instead of a small GET for every read.
 */
export function planReadAhead(
  state: ReadState | undefined,
  offset: number,
  end: number,
  size: number,
  window: number,
): { state: ReadState; fetch?: { from: number; to: number } } {
  const continuing = state !== undefined && state.end === offset;
  if (!continuing && offset !== 0) return { state: { end, ahead: end } };
  const ahead = continuing ? Math.max(state.ahead, end) : end;
  const to = Math.min(size, end + window);
  if (window <= 0 || ahead >= to || ahead - end >= window / 2) return { state: { end, ahead } };
  return { state: { end, ahead: to }, fetch: { from: end, to } };
}
