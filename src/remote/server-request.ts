import { PermissionError } from '../model/errors.js';
import { fromWireSnapshot, toWireSnapshot, type WireSnapshot } from './wire-snapshot.js';

/**
 * The largest request frame the server reads. Requests are small (the largest, a send, names
 * four snapshots: a few KiB); the protocol's 64 MiB is for answers. JSON parsed from a frame
 * can take tens of times its size in memory, so this bounds what one request can cost.
 */
export const MAX_REQUEST_BYTES = 256 << 10;

/** More clone sources than any client sends (it picks two besides the parent). */
const MAX_CLONE_SOURCES = 16;

/**
 * A request as the server keeps it while working on it: only the fields some operation reads,
 * each of the type that operation expects or absent, snapshots re-encoded from their checked
 * fields. Whatever else a client packs into a request is dropped as soon as it is read, so a
 * request in flight holds no more than its few fields.
 */
export type ServerRequest = {
  /** Echoed in the answer: a number, or null when the client sent anything else. */
  readonly id: number | null;
  readonly op: string | undefined;
  /**
   * A snapshot: checked and re-encoded, null, or `{}` (malformed: refused when used); a
   * browse request names its snapshot by name instead.
   */
  readonly snapshot?: string | WireSnapshot | null | Record<string, never>;
  readonly parent?: WireSnapshot | null | Record<string, never>;
  readonly cloneSources?: (WireSnapshot | Record<string, never>)[];
  readonly name?: string;
  readonly expectedBytes?: number;
  readonly action?: string;
  readonly path?: string;
  readonly offset?: number;
  readonly length?: number;
  /** A lock request that also wants the listing (taken while partials are removed). */
  readonly list?: boolean;
  /** A measure request's `stopAbove` (Store.measureDiff): a safe non-negative integer, else absent. */
  readonly stopAbove?: number;
};

/** The request's id, for answering even a request that {@link toServerRequest} refuses. */
export function requestId(message: Record<string, unknown>): number | null {
  return typeof message.id === 'number' && Number.isSafeInteger(message.id) ? message.id : null;
}

/**
 * The {@link ServerRequest} in a message as parsed from a request frame. Pure.
 * @throws PermissionError for a request no client sends (too many clone sources).
 */
export function toServerRequest(message: Record<string, unknown>): ServerRequest {
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const number = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
  const clones = message.cloneSources;
  if (Array.isArray(clones) && clones.length > MAX_CLONE_SOURCES) {
    throw new PermissionError(`refused a request with ${clones.length} clone sources (at most ${MAX_CLONE_SOURCES})`);
  }
  return dropUndefined({
    id: requestId(message),
    op: text(message.op),
    snapshot: typeof message.snapshot === 'string' ? message.snapshot : snapshotField(message.snapshot),
    parent: snapshotField(message.parent),
    cloneSources: Array.isArray(clones) ? clones.map((c) => snapshotField(c) ?? {}) : undefined,
    name: text(message.name),
    expectedBytes: number(message.expectedBytes),
    action: text(message.action),
    path: text(message.path),
    offset: number(message.offset),
    length: number(message.length),
    list: message.list === true ? true : undefined,
    stopAbove: Number.isSafeInteger(message.stopAbove) && (message.stopAbove as number) >= 0 ? (message.stopAbove as number) : undefined,
  });
}

function snapshotField(value: unknown): WireSnapshot | null | Record<string, never> | undefined {
  if (value === undefined || value === null) return value;
  try {
    return toWireSnapshot(fromWireSnapshot(value));
  } catch {
    return {};
  }
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
