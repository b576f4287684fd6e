import {
  BusyError,
  ButtersinkError,
  InterruptedError,
  messageOf,
  PermissionError,
  StoreError,
  TransferError,
  type ErrorKind,
} from '../model/errors.js';
import type { WireError } from './protocol.js';

/**
 * `text` with the server's paths made relative to the directory it serves: a path below it
 * becomes the name inside it (`/srv/snaps/a/b` -> `a/b`), the directory itself stays as the
 * client named it on the command line (no secret to the client), and any other absolute
 * path (a mount point, a cache file, a link's target) becomes `<path outside the directory>`.
 * Pure. Applied to everything the server says, so no message leaks its filesystem's layout.
 */
export function confineToDirectory(text: string, directory: string): string {
  // Where a path may start, and which characters end one (paths with spaces or colons end
  // early: the rest of them is then plain text, which is harmless).
  const before = `(^|[\\s'"(=\`\\[])`;
  const pathCharacters = `[^\\s'"\`)\\],;:|]+`;
  const absolute = new RegExp(`${before}/${pathCharacters}`, 'g');
  if (directory === '/') return text.replace(absolute, (match, start: string) => `${start}${match.slice(start.length + 1) || '/'}`);
  const mark = '\u0000';
  const escaped = directory.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text
    .replace(new RegExp(`${escaped}(?=$|/|[\\s'"\`)\\],;:|])`, 'g'), mark)
    .replace(absolute, (_match, start: string) => `${start}<path outside the directory>`)
    .replace(new RegExp(`${mark}/(?=[^\\s'"\`)\\],;:|])`, 'g'), '')
    .replaceAll(mark, directory);
}

/**
 * A typed error as the server sends it; anything untyped is a bug and says so. With
 * `directory`, paths in it are confined ({@link confineToDirectory}).
 */
export function toWireError(error: unknown, directory?: string): WireError {
  const wire = wireErrorOf(error);
  if (directory === undefined) return wire;
  const confine = (text: string): string => confineToDirectory(text, directory);
  return {
    kind: wire.kind,
    message: confine(wire.message),
    ...(wire.hint === undefined ? {} : { hint: confine(wire.hint) }),
    ...(wire.stderrTail === undefined ? {} : { stderrTail: confine(wire.stderrTail) }),
  };
}

/** The server's table: the wire kind of each kind of buttersink error. */
const WIRE_KINDS: Readonly<Record<ErrorKind, WireError['kind']>> = {
  usage: 'usage',
  permission: 'permission',
  store: 'store',
  'still-needed': 'store',
  exists: 'store',
  'no-such-snapshot': 'store',
  transfer: 'transfer',
  busy: 'busy',
  interrupted: 'interrupted',
};

function wireErrorOf(error: unknown): WireError {
  if (error instanceof ButtersinkError) {
    return {
      kind: WIRE_KINDS[error.kind],
      message: error.message,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(error instanceof TransferError && error.stderrTail !== undefined ? { stderrTail: error.stderrTail } : {}),
    };
  }
  return { kind: 'internal', message: `internal error in buttersink server: ${messageOf(error)}` };
}

/**
 * The client's side: the same typed error, its message prefixed with where it happened.
 * A remote usage error means the two ends disagree, so it becomes a store error here.
 */
export function fromWireError(value: unknown, where: string): ButtersinkError {
  const wire = (typeof value === 'object' && value !== null ? value : {}) as Partial<WireError>;
  const message = `${where}: ${typeof wire.message === 'string' ? wire.message : 'the remote end failed without saying why'}`;
  const options = typeof wire.hint === 'string' ? { hint: wire.hint } : {};
  switch (wire.kind) {
    case 'permission':
      return new PermissionError(message, options);
    case 'transfer':
      return new TransferError(message, { ...options, ...(typeof wire.stderrTail === 'string' ? { stderrTail: wire.stderrTail } : {}) });
    case 'busy':
      return new BusyError(message, options);
    case 'interrupted':
      return new InterruptedError(message, options);
    default:
      return new StoreError(message, options);
  }
}
