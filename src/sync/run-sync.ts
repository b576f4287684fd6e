import { StoreError, UsageError } from '../model/errors.js';
import { effectiveUuid, type Snapshot } from '../model/snapshot.js';
import type { Store, StoredDiff } from '../model/store.js';
import { chainDepths } from '../planner/diff-chains.js';
import type { DeleteStep, Plan, PlanPolicy } from '../planner/plan-types.js';
import { type KeepPolicy, planRetention, type RetentionPlan } from '../planner/retention.js';
import type { TransferObserver } from '../progress/transfer-observer.js';
import type { CandidatePair } from './candidate-parents.js';
import { choosePlan } from './choose-plan.js';
import { executePlan, type ExecuteResult } from './execute-plan.js';
import { soleParents } from '../model/stored-dependents.js';

export interface SyncSide {
  readonly store: Store;
  /** One snapshot's name (URL without trailing slash), or null for the whole directory. */
  readonly selection: string | null;
}

export interface SyncOptions {
  readonly dryRun: boolean;
  readonly delete: boolean;
  readonly estimate: boolean;
  /** Snapshot names matching any of these are neither sent nor deleted. */
  readonly excludes: readonly RegExp[];
  readonly now: Date;
  readonly onMeasure?: (pair: CandidatePair) => void;
  /**
   * Retention on the destination (`--keep`): only what it keeps is sent, and destination
   * snapshots it does not keep are deleted after the transfers (see {@link planRetention}).
   * Not with `delete`.
   */
  readonly keep?: KeepPolicy;
  /** At most this many bytes per second per stream (`--rate-limit`). */
  readonly rateLimit?: number;
  /**
   * Called with the plan before anything changes (also in dry runs); returns what watches
   * the transfers (progress, log).
   */
  readonly onPlan: (plan: Plan) => TransferObserver;
  readonly signal?: AbortSignal;
}

export interface SyncResult {
  readonly plan: Plan;
  /** Undefined for a dry run. */
  readonly executed: ExecuteResult | undefined;
}

const BTRFS_POLICY: Omit<PlanPolicy, 'delete'> = { destinationStoresDiffs: false, chainLinkPenaltyBytes: 0 };
/**
 * Into a diff store every incremental link is a risk (a corrupt diff breaks all later ones):
 * a full send wins unless the diff saves more than this, and chains stop at
 * {@link MAX_CHAIN_LENGTH} links, where the original ButterSink's risk term outweighs a full.
 */
const DIFF_STORE_POLICY: Omit<PlanPolicy, 'delete'> = { destinationStoresDiffs: true, chainLinkPenaltyBytes: 64 * 1024 };
export const MAX_CHAIN_LENGTH = 8;

/**
 * `buttersink sync`: lists both stores, plans the cheapest transfers, and (unless dry run)
 * carries them out under the destination's lock, then deletes what the source lacks (`-d`).
 * Everything that can be refused is refused before anything changes.
 */
export async function runSync(src: SyncSide, dst: SyncSide, options: SyncOptions): Promise<SyncResult> {
  if (dst.selection !== null) {
    throw new UsageError(`the destination must be a directory of snapshots: ${dst.store.url}`, {
      hint: `end it with a slash: ${dst.store.url}/`,
    });
  }
  if (options.delete && options.keep) {
    throw new UsageError('-d/--delete and --keep contradict each other: -d mirrors the source, --keep keeps what its policy says', {
      hint: 'use one of them',
    });
  }
  if (options.delete && src.selection !== null) {
    throw new UsageError('-d/--delete needs a directory of snapshots as source, not a single snapshot', {
      hint: `end the source with a slash to mirror the whole directory: ${src.store.url}/`,
    });
  }
  const isExcluded = (s: Snapshot): boolean => options.excludes.some((re) => re.test(s.name));
  // A remote store connects while the other is listed (the lock is still taken after that):
  // its CPU-bound part first, so that the remote end starts as early as it can.
  await Promise.all([src.store.warmUp?.(), dst.store.warmUp?.()]);
  const sourceAll = await src.store.list();
  if (sourceAll.length === 0) {
    // Also with -d: an empty source is far more often a wrong path than a wish to delete all.
    throw new StoreError(`no read-only snapshots in ${src.store.url}`, {
      hint: src.selection === null ? undefined : `without a trailing slash the URL names one snapshot; with it, a directory`,
    });
  }
  const wanted = selectSnapshots(sourceAll, src).filter((s) => !isExcluded(s));
  if (wanted.length === 0 && !options.delete) {
    throw new StoreError(`nothing to send: no snapshots in ${src.store.url}${options.excludes.length ? ' (after --exclude)' : ''}`);
  }

  // The lock right after the source's listing: the sooner it is held, the less room a
  // concurrent writer (a mount between two of its transfers) has to take it in between.
  const { release, snapshots } = options.dryRun
    ? { release: async () => {}, snapshots: await dst.store.list() }
    : await lockAndList(dst.store);
  try {
    const destination = snapshots.filter((s) => !isExcluded(s));
    const diffStore = dst.store.capabilities.storesDiffs;
    const destinationDiffs = diffStore ? await dst.store.storedDiffs() : [];
    const retention = options.keep && planRetention({ wanted, sourceAll, destination, policy: options.keep, now: options.now });
    const skipped = new Set(retention ? retention.skipped.map((k) => k.snapshot) : []);
    const chosen = await choosePlan({
      source: src.store,
      // What --keep would not keep is not sent (what the destination holds stays "already there").
      wanted: wanted.filter((s) => !skipped.has(s)),
      sourceAll,
      destination,
      policy: { ...(diffStore ? DIFF_STORE_POLICY : BTRFS_POLICY), delete: options.delete },
      destinationChains: diffStore ? { diffs: destinationDiffs, maxLength: MAX_CHAIN_LENGTH } : undefined,
      estimateFirst: options.estimate,
      now: options.now,
      signal: options.signal,
      onMeasure: options.onMeasure,
    });
    const retained = retention ? withRetention(chosen, retention) : chosen;
    const plan = diffStore ? keepNeededParents(retained, destination, destinationDiffs) : retained;
    refuseImpossiblePlans(plan, dst.store);
    const observer = options.onPlan(plan);
    if (options.dryRun) return { plan, executed: undefined };
    const executed = await executePlan(plan, src.store, dst.store, sourceAll, destination, observer, options.signal, options.rateLimit);
    if (options.delete) await dst.store.removeStale?.(options.signal);
    return { plan, executed };
  } finally {
    await release();
  }
}

/** The plan with `--keep`'s deletes (after the sends) and its reasons for what stays. */
function withRetention(plan: Plan, retention: RetentionPlan): Plan {
  const deletes: DeleteStep[] = retention.deletes.map(({ snapshot, reason }) => ({ kind: 'delete', snapshot, reason }));
  return { ...plan, steps: [...plan.steps, ...deletes], retention: { kept: retention.kept, skipped: retention.skipped } };
}

/** The store's lock and then its listing, overlapped when the store can. */
async function lockAndList(store: Store): Promise<{ release: () => Promise<void>; snapshots: Snapshot[] }> {
  if (store.lockAndList) return store.lockAndList();
  const release = await store.lock();
  try {
    return { release, snapshots: await store.list() };
  } catch (error) {
    await release();
    throw error;
  }
}

/** The snapshots a side names; a missing single snapshot is an error with the original's hint. */
export function selectSnapshots(all: readonly Snapshot[], side: SyncSide): Snapshot[] {
  if (side.selection === null) return [...all];
  const one = all.filter((s) => s.name === side.selection);
  if (one.length === 0) {
    throw new StoreError(`no read-only snapshot named ${JSON.stringify(side.selection)} in ${side.store.url.replace(/[^/]*$/, '')}`, {
      hint: `to use a directory of snapshots, end the URL with a slash: ${side.store.url}/`,
    });
  }
  return one;
}

/**
 * In a diff store, a snapshot whose diff others are stored as cannot go while they stay:
 * they could not be restored any more. Such deletes are dropped (with `kept` as the
 * reason in the plan), the rest ordered dependents first, so a crash part way never leaves
 * a stored diff without its parent.
 */
export function keepNeededParents(plan: Plan, destination: readonly Snapshot[], diffs: readonly StoredDiff[]): Plan {
  const deletes = plan.steps.filter((s): s is DeleteStep => s.kind === 'delete');
  if (deletes.length === 0) return plan;
  const doomed = new Set(deletes.map((d) => effectiveUuid(d.snapshot)));
  const stays = (uuid: string): boolean => !doomed.has(uuid);
  // A listed snapshot needs its sole parent (the rule the store's delete enforces, too).
  const listed = new Set(destination.map(effectiveUuid));
  const needs = [...soleParents(diffs)].filter(([uuid]) => listed.has(uuid));
  // Undo deletes of parents that a staying snapshot needs, until nothing changes.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [uuid, parent] of needs) {
      if (stays(uuid) && doomed.delete(parent)) changed = true;
    }
  }
  const kept = deletes.filter((d) => !doomed.has(effectiveUuid(d.snapshot)));
  const depth = chainDepths(diffs);
  const ordered = deletes
    .filter((d) => doomed.has(effectiveUuid(d.snapshot)))
    .sort((a, b) => (depth.get(effectiveUuid(b.snapshot)) ?? 0) - (depth.get(effectiveUuid(a.snapshot)) ?? 0));
  return {
    ...plan,
    steps: [...plan.steps.filter((s) => s.kind === 'send'), ...ordered],
    keptForDependents: kept.map((d) => d.snapshot),
  };
}

function refuseImpossiblePlans(plan: Plan, destination: Store): void {
  for (const step of plan.steps) {
    const problem = step.kind === 'send' ? destination.nameProblem?.(step.snapshot.name) : undefined;
    if (problem !== undefined) throw new StoreError(problem, { hint: 'leave it out with --exclude, or rename it at the source' });
  }
  const conflict = plan.conflicts[0];
  if (conflict) {
    throw new StoreError(
      `${destination.url} already has a different snapshot named ${JSON.stringify(conflict.destination.name)}` +
        (plan.conflicts.length > 1 ? ` (and ${plan.conflicts.length - 1} more)` : ''),
      { hint: 'rename or delete it there, or leave it out with --exclude' },
    );
  }
  const lost = plan.unreachable[0];
  if (lost) {
    throw new StoreError(`cannot send ${lost.name}: no full stream and no parent of it is available`);
  }
}
