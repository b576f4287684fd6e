import type { Snapshot } from '../model/snapshot.js';
import { lineageKeys } from './lineages.js';

/** How many related snapshots are tried as parents of each snapshot, on each side in time. */
export interface CandidatePolicy {
  /** Nearest older snapshots, at the destination or to be sent. */
  readonly olderParents: number;
  /**
   * Nearest newer snapshots already at the destination (a backward diff). Newer ones that
   * are still to be sent are left out: sending a newer snapshot first to diff backwards from
   * it is almost never cheaper, and each candidate costs a measurement.
   */
  readonly newerParents: number;
}

export const DEFAULT_CANDIDATE_POLICY: CandidatePolicy = { olderParents: 2, newerParents: 1 };

/** One way to produce `snapshot` from the source: full (`parent` null) or a diff. */
export interface CandidatePair {
  readonly snapshot: Snapshot;
  readonly parent: Snapshot | null;
}

/**
 * The diffs worth sizing for each needed snapshot: a full send, diffs from the nearest older
 * snapshots of the same lineage (by creation generation) that will be at the destination
 * when it is sent — those already there and the other needed ones — and from the nearest
 * newer ones already there. Nearest is where small diffs are; farther ones only cost
 * measuring time.
 */
export function candidatePairs(
  needed: readonly Snapshot[],
  usableParents: readonly Snapshot[],
  policy: CandidatePolicy = DEFAULT_CANDIDATE_POLICY,
): CandidatePair[] {
  const all = [...new Map([...needed, ...usableParents].map((s) => [s.uuid, s])).values()];
  const lineage = lineageKeys(all);
  const byLineage = new Map<string, Snapshot[]>();
  for (const s of all) {
    const key = lineage.get(s.uuid)!;
    const list = byLineage.get(key);
    if (list) list.push(s);
    else byLineage.set(key, [s]);
  }
  const present = new Set(usableParents.map((s) => s.uuid));
  const position = new Map<string, number>();
  // For each position, the next one (later in time) already at the destination, or -1.
  const nextPresent = new Map<Snapshot[], number[]>();
  for (const list of byLineage.values()) {
    list.sort(byCreation);
    for (const [i, s] of list.entries()) position.set(s.uuid, i);
    const next = new Array<number>(list.length).fill(-1);
    for (let i = list.length - 2; i >= 0; i--) next[i] = present.has(list[i + 1]!.uuid) ? i + 1 : next[i + 1]!;
    nextPresent.set(list, next);
  }

  const pairs: CandidatePair[] = [];
  for (const snapshot of needed) {
    pairs.push({ snapshot, parent: null });
    const family = byLineage.get(lineage.get(snapshot.uuid)!)!;
    const at = position.get(snapshot.uuid)!;
    for (let i = at - 1; i >= Math.max(0, at - policy.olderParents); i--) pairs.push({ snapshot, parent: family[i]! });
    const next = nextPresent.get(family)!;
    for (let i = next[at]!, n = 0; i >= 0 && n < policy.newerParents; i = next[i]!, n++) {
      pairs.push({ snapshot, parent: family[i]! });
    }
  }
  return pairs;
}

function byCreation(a: Snapshot, b: Snapshot): number {
  return a.creationGeneration - b.creationGeneration || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
