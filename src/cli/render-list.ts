import type { Snapshot } from '../model/snapshot.js';
import type { DiffSize } from '../model/store.js';
import { formatBytes } from '../planner/format-bytes.js';

export interface ListedSnapshot {
  readonly snapshot: Snapshot;
  /** Size of a full send of it. */
  readonly size: DiffSize;
}

/** `buttersink DST`: one line per snapshot, columns aligned. */
export function renderList(listed: readonly ListedSnapshot[]): string[] {
  const rows = listed.map(({ snapshot: s, size }) => [
    s.name,
    `${size.exact ? '' : '~'}${formatBytes(size.bytes)}`,
    s.createdAt ? formatLocal(s.createdAt) : '-',
    s.uuid,
    s.receivedUuid ? `received from ${s.receivedUuid}` : '',
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : i < 4 ? cell.padEnd(widths[i]!) : cell))
      .join('  ')
      .trimEnd(),
  );
}

export function listToJson(listed: readonly ListedSnapshot[]): unknown {
  return listed.map(({ snapshot: s, size }) => ({
    name: s.name,
    uuid: s.uuid,
    parentUuid: s.parentUuid,
    receivedUuid: s.receivedUuid,
    generation: s.generation,
    creationGeneration: s.creationGeneration,
    createdAt: s.createdAt?.toISOString() ?? null,
    bytes: size.bytes,
    exact: size.exact,
  }));
}

function formatLocal(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
