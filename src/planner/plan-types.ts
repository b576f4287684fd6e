import type { Snapshot } from '../model/snapshot.js';

/**
 * A way to get snapshot `to` into the destination: a full stream (`from` null) or a diff
 * from `from`. Both are UUIDs of snapshots in the *source* inventory (own `uuid`).
 */
export interface CandidateEdge {
  readonly to: string;
  readonly from: string | null;
  /** Stream bytes, measured (`exact`) or estimated. */
  readonly bytes: number;
  readonly exact: boolean;
  /**
   * `bytes` is a lower bound (measuring stopped there: `DiffSize.atLeast`), not a guess.
   * Sound for the plan: a plan that does not use the edge stays the cheapest whatever its
   * real size; one that does gets it measured and is made again.
   */
  readonly atLeast?: boolean;
}

export interface PlanPolicy {
  /** Delete destination snapshots that no source snapshot correlates with (`-d`). */
  readonly delete: boolean;
  /** The destination keeps diffs (S3): each incremental link adds chain-length risk. */
  readonly destinationStoresDiffs: boolean;
  /**
   * Cost added per incremental link when `destinationStoresDiffs`, in bytes: a corrupted
   * diff breaks every later one, so a slightly bigger full stream can be worth it.
   */
  readonly chainLinkPenaltyBytes: number;
}

/** Everything the pure planner looks at. No I/O happens inside it. */
export interface PlanInput {
  /** Source snapshots the user asked for (exclusions already applied). */
  readonly source: readonly Snapshot[];
  /** Destination snapshots (exclusions already applied: excluded ones are never deleted). */
  readonly destination: readonly Snapshot[];
  /** Candidate ways to send each source snapshot; edges naming unknown UUIDs are ignored. */
  readonly edges: readonly CandidateEdge[];
  readonly policy: PlanPolicy;
  /** The planning time, passed in so that plans are reproducible. */
  readonly now: Date;
}

export interface SendStep {
  readonly kind: 'send';
  /** The source snapshot to send. */
  readonly snapshot: Snapshot;
  /** Source-side parent of the diff, or null for a full stream. */
  readonly parent: Snapshot | null;
  /** Stream bytes of the chosen edge. */
  readonly bytes: number;
  readonly exact: boolean;
  /** One line a person can read: why this parent. */
  readonly reason: string;
}

export interface DeleteStep {
  readonly kind: 'delete';
  /** The destination snapshot to delete. */
  readonly snapshot: Snapshot;
  readonly reason: string;
}

export type PlanStep = SendStep | DeleteStep;

/** A destination snapshot that has the name of a needed source snapshot but other data. */
export interface NameConflict {
  readonly source: Snapshot;
  readonly destination: Snapshot;
}

export interface Plan {
  /** Sends in an order where every parent is at the destination before it is used; deletes last. */
  readonly steps: readonly PlanStep[];
  /** Source snapshots the destination already holds (correlated), by source UUID. */
  readonly alreadyPresent: readonly Snapshot[];
  /** Needed source snapshots with no usable edge (e.g. a diff store lacks their parent). */
  readonly unreachable: readonly Snapshot[];
  readonly conflicts: readonly NameConflict[];
  /** Snapshots `-d` or `--keep` would delete but keeps, because diffs stored in a diff store start from them. */
  readonly keptForDependents?: readonly Snapshot[];
  /** With `--keep`: destination snapshots it keeps, and source snapshots it does not send, each with why. */
  readonly retention?: {
    readonly kept: readonly { readonly snapshot: Snapshot; readonly reason: string }[];
    readonly skipped: readonly { readonly snapshot: Snapshot; readonly reason: string }[];
  };
  /** Sum of the send steps' bytes. */
  readonly totalBytes: number;
  /** True when every send step's size was measured. */
  readonly isExact: boolean;
  readonly createdAt: Date;
}
