import { toWireSnapshot } from '../remote/wire-snapshot.js';
import type { Snapshot } from '../model/snapshot.js';
import type { DiffSize } from '../model/store.js';
import { formatBytes } from '../util/format-bytes.js';
import { hasControlCharacter, quoteName } from '../model/printable-name.js';

export interface ListedSnapshot {
  readonly snapshot: Snapshot;
  /** Size of a full send of it; in a diff store, the bytes stored for it. */
  readonly size: DiffSize;
  /** In a diff store: the diffs held for it, by parent name (null: full; a UUID when the parent is not there). */
  readonly diffs?: readonly { readonly from: string | null; readonly bytes: number }[];
}

/** The listing's header row (the last column: where a received snapshot came from, or a diff store's diffs). */
const HEADER = ['NAME', 'SIZE', 'CREATED', 'UUID', 'ORIGIN'];

/**
 * `buttersink DST`: a header, then one line per snapshot, columns aligned. A name with
 * control characters is shown quoted and escaped: printed raw, a newline in it would print
 * rows of its own.
 */
export function renderList(listed: readonly ListedSnapshot[]): string[] {
  if (listed.length === 0) return [];
  const rows = listed.map(({ snapshot: s, size, diffs }) => [
    hasControlCharacter(s.name) ? quoteName(s.name) : s.name,
    `${size.exact ? '' : '~'}${formatBytes(size.bytes)}`,
    s.createdAt ? formatLocal(s.createdAt) : '-',
    s.uuid,
    diffs
      ? diffs.map((d) => (d.from === null ? 'full' : `from ${d.from}`)).join(', ')
      : s.receivedUuid
        ? `received from ${s.receivedUuid}`
        : '',
  ]);
  rows.unshift(HEADER);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : i < 4 ? cell.padEnd(widths[i]!) : cell))
      .join('  ')
      .trimEnd(),
  );
}

/** Oldest first, as `ls -tr` and btrbk list show them; the same time (or none) by name. */
export function byCreation(a: Snapshot, b: Snapshot): number {
  const ta = a.createdAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  const tb = b.createdAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function listToJson(listed: readonly ListedSnapshot[]): unknown {
  // The snapshot's fields as the SSH protocol sends them: one JSON shape for a snapshot.
  return listed.map(({ snapshot: s, size, diffs }) => ({
    ...toWireSnapshot(s),
    bytes: size.bytes,
    exact: size.exact,
    ...(diffs ? { diffs: diffs.map((d) => ({ from: d.from, bytes: d.bytes })) } : {}),
  }));
}

function formatLocal(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
