/**
 * The wire format between `buttersink` (the client, an SSH store) and `buttersink server` on
 * the remote end of an SSH exec channel, over the channel's stdin/stdout. Pure: no I/O.
 *
 * Messages are frames: `u32 BE payload length | u8 type (1) | UTF-8 JSON object`. Both ends
 * greet first ({@link Hello}); then the client sends requests `{id, op, ...}` and the server
 * answers each with `{id, ok: true, result}` or `{id, ok: false, error}`. An answer carrying
 * file bytes (a browse `read`) is a data frame instead, so the bytes need no base64:
 * `u32 BE payload length | u8 type (2) | u32 BE JSON length | JSON | bytes`, the bytes being
 * `result.data` (a Buffer once decoded). Only the server sends data frames.
 *
 * A send or receive gets an exec channel (a server process) of its own. Its server answers
 * the request with `{id, ready: true}`, and from then on the stream's bytes flow *raw* on the
 * channel — from `btrfs send` straight into the channel, or from the channel straight into
 * `btrfs receive` — so the remote side copies nothing through node, and SSH's channel window
 * is the flow control (memory stays bounded whatever the snapshot size). A complete stream
 * ends with the send stream's own END command, which `btrfs receive` requires: a cut stream
 * is never taken for a whole one. After a receive the server answers with a frame as usual;
 * after a send it exits, with status 0 when `btrfs send` succeeded, else with
 * {@link RAW_ERROR_PREFIX} and the error as JSON on its last stderr line.
 *
 * `lock` answers null, or with `list: true` in the request `{snapshots}`: the listing made
 * under the lock, as `list` answers it (one round trip where a run needs both).
 *
 * `measure` answers `{bytes, exact}`; with `stopAbove` (a safe non-negative integer) in the
 * request it may answer `{bytes, exact: false, atLeast: true}` instead, a lower bound above it
 * (Store.measureDiff). A server that ignores `stopAbove` answers the exact size, which is as
 * valid: the field needed no new protocol version.
 */

/** Bumped whenever either end could misunderstand the other. Both ends must agree exactly. */
export const PROTOCOL_VERSION = 2; // 2: `lock` may ask for the listing with it

const MESSAGE_FRAME = 1;
const DATA_FRAME = 2;
export const FRAME_HEADER_BYTES = 5;
const DATA_JSON_LENGTH_BYTES = 4;
/** JSON messages are small (a listing of 10,000 snapshots is ~3 MB); more is a broken peer. */
export const MAX_MESSAGE_BYTES = 64 << 20;
/** How the server reports a failure on stderr once stdout carries a raw stream. */
export const RAW_ERROR_PREFIX = 'buttersink-server-error: ';

/** Thrown for bytes that are not this protocol (e.g. a shell profile printing to stdout). */
export class ProtocolError extends Error {}

export function encodeMessage(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(json.length, 0);
  header.writeUInt8(MESSAGE_FRAME, 4);
  return Buffer.concat([header, json]);
}

/** An answer `{id, ok: true, result}` whose `result.data` are raw bytes, as a data frame. */
export function encodeDataAnswer(id: unknown, result: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify({ id, ok: true, result: { ...result, data: null } }), 'utf8');
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + DATA_JSON_LENGTH_BYTES);
  header.writeUInt32BE(DATA_JSON_LENGTH_BYTES + json.length + data.length, 0);
  header.writeUInt8(DATA_FRAME, 4);
  header.writeUInt32BE(json.length, FRAME_HEADER_BYTES);
  return Buffer.concat([header, json, data]);
}

/**
 * The payload length a frame header announces (`bytes` may go on past the header).
 * @param isFirst the first frame of a peer: a non-protocol peer's first bytes are shown.
 * @param maxBytes the largest payload accepted (the server takes far smaller requests).
 * @throws ProtocolError for anything but a message frame of sane size.
 */
export function parseFrameHeader(bytes: Buffer, isFirst: boolean, allowData = false, maxBytes = MAX_MESSAGE_BYTES): number {
  const length = bytes.readUInt32BE(0);
  const type = bytes.readUInt8(4);
  const known = type === MESSAGE_FRAME || (allowData && type === DATA_FRAME && length >= DATA_JSON_LENGTH_BYTES);
  if (!known || length > maxBytes) {
    const shown = isFirst ? `: ${JSON.stringify(printable(bytes.subarray(0, 80)))}` : '';
    throw new ProtocolError(`unexpected bytes instead of a buttersink protocol frame${shown}`);
  }
  return length;
}

/**
 * Incremental decoder for the client: feed it what the channel delivered, take messages one
 * at a time. After a `ready` message the rest is a raw stream: {@link FrameDecoder.takeRest}
 * hands over the bytes that came with the frame.
 */
export class FrameDecoder {
  /** What arrived and was not taken yet, in pieces: joined once a whole frame is there. */
  #chunks: Buffer[] = [];
  #length = 0;
  #sawAnything = false;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** The next complete message, or undefined until more bytes arrive. */
  next(): Record<string, unknown> | undefined {
    if (this.#length < FRAME_HEADER_BYTES) return undefined;
    if (this.#chunks[0]!.length < FRAME_HEADER_BYTES) this.#join();
    const length = parseFrameHeader(this.#chunks[0]!, !this.#sawAnything, this.#sawAnything);
    if (this.#length < FRAME_HEADER_BYTES + length) return undefined;
    // Joining only here keeps a large frame that came in many pieces linear to assemble.
    const buffer = this.#join();
    this.#sawAnything = true;
    const payload = buffer.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
    const message = buffer.readUInt8(4) === DATA_FRAME ? parseDataAnswer(payload) : parseMessage(payload);
    this.#take(FRAME_HEADER_BYTES + length);
    return message;
  }

  /** The bytes after the last message taken; the decoder is empty afterwards. */
  takeRest(): Buffer {
    const rest = this.#join();
    this.#chunks = [];
    this.#length = 0;
    return rest;
  }

  #join(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0]!;
  }

  #take(bytes: number): void {
    const rest = this.#chunks[0]!.subarray(bytes);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length -= bytes;
  }
}

/** A data frame's payload: the answer, with the bytes (copied out of the frame) as `result.data`. */
function parseDataAnswer(payload: Buffer): Record<string, unknown> {
  const jsonLength = payload.readUInt32BE(0);
  if (DATA_JSON_LENGTH_BYTES + jsonLength > payload.length) throw new ProtocolError('a data frame is shorter than its JSON');
  const message = parseMessage(payload.subarray(DATA_JSON_LENGTH_BYTES, DATA_JSON_LENGTH_BYTES + jsonLength));
  const result = message.result;
  if (typeof result !== 'object' || result === null) throw new ProtocolError('a data frame carries no result');
  // A copy: the frame's buffer holds whatever else arrived with it.
  (result as Record<string, unknown>).data = Buffer.from(payload.subarray(DATA_JSON_LENGTH_BYTES + jsonLength));
  return message;
}

export function parseMessage(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ProtocolError('a protocol message is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('a protocol message is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function printable(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[^\x20-\x7e\n]/g, '.');
}

/** What both ends say first. `program` tells a buttersink apart from anything else. */
export interface Hello {
  readonly program: 'buttersink';
  readonly protocol: number;
  /** The package version, for messages. */
  readonly version: string;
  /** The server's mode (server hello only). */
  readonly mode?: string;
}

export function makeHello(version: string, mode?: string): Hello {
  return mode === undefined
    ? { program: 'buttersink', protocol: PROTOCOL_VERSION, version }
    : { program: 'buttersink', protocol: PROTOCOL_VERSION, version, mode };
}

/**
 * Checks the other end's hello. Returns null when it is compatible, else a sentence saying
 * which end is older, for the user.
 */
export function checkHello(value: Record<string, unknown>, own: { readonly version: string }): string | null {
  if (value.program !== 'buttersink' || typeof value.protocol !== 'number') {
    return 'the other end did not greet as buttersink';
  }
  if (value.protocol === PROTOCOL_VERSION) return null;
  const theirs = typeof value.version === 'string' ? value.version : 'unknown';
  const older = value.protocol < PROTOCOL_VERSION ? 'remote' : 'local';
  return `protocol version mismatch: local buttersink ${own.version} speaks protocol ${PROTOCOL_VERSION}, remote ${theirs} speaks ${value.protocol} (the ${older} one is older)`;
}

/** The server's modes: what a client may ask for. Each includes the ones before it. */
export type ServerMode = 'r' | 'a' | 'w';
export const SERVER_MODES: readonly ServerMode[] = ['r', 'a', 'w'];

/**
 * Requests a client sends; `id` pairs each with its response. `browse` reads a snapshot's
 * files for the mount (see browse.ts): a read, allowed in every mode.
 */
export type Operation = 'list' | 'measure' | 'browse' | 'send' | 'receive' | 'delete' | 'lock' | 'unlock';

/** The least mode each operation needs. */
export const REQUIRED_MODE: Readonly<Record<Operation, ServerMode>> = {
  list: 'r',
  measure: 'r',
  browse: 'r',
  send: 'r',
  receive: 'a',
  lock: 'a',
  unlock: 'a',
  delete: 'w',
};

export function modeAllows(mode: ServerMode, operation: Operation): boolean {
  return SERVER_MODES.indexOf(mode) >= SERVER_MODES.indexOf(REQUIRED_MODE[operation]);
}

/** A typed error crossing the wire; `kind` names the {@link ButtersinkError} class. */
export interface WireError {
  readonly kind: 'usage' | 'permission' | 'store' | 'transfer' | 'busy' | 'interrupted' | 'internal';
  readonly message: string;
  readonly hint?: string;
  readonly stderrTail?: string;
}
