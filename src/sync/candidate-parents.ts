import type { Snapshot } from '../model/snapshot.js';
import { lineageKeys } from './lineages.js';

/** How many related snapshots are tried as parents of each snapshot, on each side in time. */
export interface CandidatePolicy {
  readonly olderParents: number;
  readonly newerParents: number;
}

export const DEFAULT_CANDIDATE_POLICY: CandidatePolicy = { olderParents: 3, newerParents: 1 };

/** One way to produce `snapshot` from the source: full (`parent` null) or a diff. */
export interface CandidatePair {
  readonly snapshot: Snapshot;
  readonly parent: Snapshot | null;
}

/**
 * The diffs worth sizing for each needed snapshot: a full send, and diffs from the nearest
 * snapshots of the same lineage (by creation generation, both older and newer) that will be
 * at the destination when it is sent — those already there and the other needed ones.
 * Nearest is where small diffs are; farther ones only cost measuring time.
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
  const position = new Map<string, number>();
  for (const list of byLineage.values()) {
    list.sort(byCreation);
    list.forEach((s, i) => position.set(s.uuid, i));
  }

  const pairs: CandidatePair[] = [];
  for (const snapshot of needed) {
    pairs.push({ snapshot, parent: null });
    const family = byLineage.get(lineage.get(snapshot.uuid)!)!;
    const at = position.get(snapshot.uuid)!;
    for (let i = at - 1; i >= Math.max(0, at - policy.olderParents); i--) pairs.push({ snapshot, parent: family[i]! });
    for (let i = at + 1; i <= Math.min(family.length - 1, at + policy.newerParents); i++) {
      pairs.push({ snapshot, parent: family[i]! });
    }
  }
  return pairs;
}

function byCreation(a: Snapshot, b: Snapshot): number {
  return a.creationGeneration - b.creationGeneration || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
