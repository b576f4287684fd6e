/**
 * The wire format between `buttersink` (the client, an SSH store) and `buttersink server` on
 * the remote end of an SSH exec channel, over the channel's stdin/stdout. Pure: no I/O.
 *
 * Every frame is `u32 BE payload length | u8 type | payload`:
 * - {@link FrameType.Message}: a UTF-8 JSON object (hello, request, response);
 * - {@link FrameType.Data}: bytes of the one send stream the channel carries;
 * - {@link FrameType.End}: that stream ended cleanly (a channel that closes without it was cut).
 *
 * Stream data is framed rather than sent raw so that a cut stream is told apart from a
 * complete one, and so that errors can follow data on the same channel. Flow control is the
 * SSH channel's own window: each stream gets its own channel, and both ends stop reading
 * when the consumer lags, so memory stays bounded whatever the snapshot size.
 */

/** Bumped whenever either end could misunderstand the other. Both ends must agree exactly. */
export const PROTOCOL_VERSION = 1;

export const FrameType = {
  Message: 1,
  Data: 2,
  End: 3,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const HEADER_BYTES = 5;
/** JSON messages are small (a listing of 10,000 snapshots is ~3 MB); more is a broken peer. */
export const MAX_MESSAGE_BYTES = 64 << 20;

/** Thrown for bytes that are not this protocol (e.g. a shell profile printing to stdout). */
export class ProtocolError extends Error {}

export function encodeMessage(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  return Buffer.concat([header(FrameType.Message, json.length), json]);
}

/** The header of a data frame; the payload is written after it as is (no copy). */
export function dataHeader(length: number): Buffer {
  return header(FrameType.Data, length);
}

export function encodeEnd(): Buffer {
  return header(FrameType.End, 0);
}

function header(type: FrameType, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  h.writeUInt8(type, 4);
  return h;
}

/** What {@link FrameDecoder} finds, in order. Data may come in several pieces per frame. */
export type DecodedEvent =
  | { readonly kind: 'message'; readonly value: Record<string, unknown> }
  | { readonly kind: 'data'; readonly chunk: Buffer }
  | { readonly kind: 'end' };

/**
 * Incremental decoder: feed it whatever the channel delivered, get events back. Data
 * payloads are handed out as they arrive (sub-slices, no copy, no waiting for the whole
 * frame), so a large frame never has to sit in memory; only JSON messages are assembled.
 */
export class FrameDecoder {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes of the current data frame still to come (0: expecting a header). */
  #dataLeft = 0;
  #sawAnything = false;

  push(chunk: Buffer): DecodedEvent[] {
    const events: DecodedEvent[] = [];
    let input = chunk;
    while (input.length > 0) {
      if (this.#dataLeft > 0) {
        const piece = input.subarray(0, this.#dataLeft);
        this.#dataLeft -= piece.length;
        input = input.subarray(piece.length);
        events.push({ kind: 'data', chunk: piece });
        continue;
      }
      this.#pending.push(input);
      this.#pendingBytes += input.length;
      input = Buffer.alloc(0);
      if (this.#pendingBytes < HEADER_BYTES) break;
      const buffered = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      const length = buffered.readUInt32BE(0);
      const type = buffered.readUInt8(4);
      this.#checkHeader(type, length, buffered);
      this.#sawAnything = true;
      if (type === FrameType.Data) {
        this.#reset();
        this.#dataLeft = length;
        input = buffered.subarray(HEADER_BYTES);
        continue;
      }
      if (type === FrameType.End) {
        this.#reset();
        events.push({ kind: 'end' });
        input = buffered.subarray(HEADER_BYTES);
        continue;
      }
      if (buffered.length < HEADER_BYTES + length) {
        this.#pending = [buffered];
        break;
      }
      this.#reset();
      events.push({ kind: 'message', value: parseMessage(buffered.subarray(HEADER_BYTES, HEADER_BYTES + length)) });
      input = buffered.subarray(HEADER_BYTES + length);
    }
    return events;
  }

  /** True while a frame is half received: the peer stopped mid-frame. */
  get isMidFrame(): boolean {
    return this.#dataLeft > 0 || this.#pendingBytes > 0;
  }

  #reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #checkHeader(type: number, length: number, buffered: Buffer): void {
    const known = type === FrameType.Message || type === FrameType.Data || type === FrameType.End;
    if (!known || (type === FrameType.Message && length > MAX_MESSAGE_BYTES) || (type === FrameType.End && length !== 0)) {
      // The first bytes of a non-buttersink peer are usually text: show them.
      const shown = this.#sawAnything ? '' : `: ${JSON.stringify(printable(buffered.subarray(0, 80)))}`;
      throw new ProtocolError(`unexpected bytes instead of a buttersink protocol frame${shown}`);
    }
  }
}

function parseMessage(bytes: Buffer): Record<string, unknown> {
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

/** Requests a client sends; `id` pairs each with its response. */
export type Operation = 'list' | 'measure' | 'send' | 'receive' | 'delete' | 'lock' | 'unlock';

/** The least mode each operation needs. */
export const REQUIRED_MODE: Readonly<Record<Operation, ServerMode>> = {
  list: 'r',
  measure: 'r',
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
