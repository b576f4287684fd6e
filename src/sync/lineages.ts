import type { Snapshot } from '../model/snapshot.js';

/**
 * Groups snapshots into lineages: connected components of "was snapshotted from"
 * (`parentUuid`) links. Snapshots of one subvolume share a parent UUID; a chain of received
 * snapshots links each to the previous one. Diffs inside a lineage are small, across
 * lineages they are about as big as a full send, so only the former are candidates.
 * Returns a lineage key per snapshot UUID.
 */
export function lineageKeys(snapshots: readonly Snapshot[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let root = x;
    while (parent.has(root) && parent.get(root) !== root) root = parent.get(root)!;
    // Path compression keeps later lookups O(1)-ish for long chains.
    let at = x;
    while (at !== root) {
      const next = parent.get(at)!;
      parent.set(at, root);
      at = next;
    }
    return root;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  };
  for (const s of snapshots) {
    if (!parent.has(s.uuid)) parent.set(s.uuid, s.uuid);
    if (s.parentUuid !== null) {
      if (!parent.has(s.parentUuid)) parent.set(s.parentUuid, s.parentUuid);
      union(s.uuid, s.parentUuid);
    }
    // A received snapshot and the one it came from hold the same data: same lineage.
    if (s.receivedUuid !== null) {
      if (!parent.has(s.receivedUuid)) parent.set(s.receivedUuid, s.receivedUuid);
      union(s.uuid, s.receivedUuid);
    }
  }
  return new Map(snapshots.map((s) => [s.uuid, find(s.uuid)]));
}
