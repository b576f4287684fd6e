import pLimit from 'p-limit';
import { CorrelationIndex, effectiveUuid, type Snapshot } from '../model/snapshot.js';
import type { DiffSize, Store, StoredDiff } from '../model/store.js';
import { chainDepths, chainIntermediates } from '../planner/diff-chains.js';
import type { CandidateEdge, Plan, PlanPolicy } from '../planner/plan-types.js';
import { planSync } from '../planner/plan-sync.js';
import { candidatePairs, type CandidatePair } from './candidate-parents.js';

/**
 * What planning asks of the source store: what it can do, its stored diffs and diff sizes;
 * never its snapshots' data. A narrow type, so that tests (and any future caller) hand in
 * exactly this much.
 */
export type PlanSource = Pick<Store, 'capabilities' | 'storedDiffs' | 'estimateDiff' | 'measureDiff'>;

export interface ChoosePlanInput {
  readonly source: PlanSource;
  /** Source snapshots to bring over (exclusions applied). */
  readonly wanted: readonly Snapshot[];
  /** All source snapshots (parents may come from outside `wanted`). */
  readonly sourceAll: readonly Snapshot[];
  readonly destination: readonly Snapshot[];
  readonly policy: PlanPolicy;
  /**
   * `-e`: start from estimates and measure only the diffs the plan relies on, re-planning
   * until the plan uses measured sizes only. Otherwise every candidate diff is measured first.
   */
  readonly estimateFirst: boolean;
  readonly now: Date;
  readonly signal?: AbortSignal;
  /** Called before each measurement, for progress and `-V`. */
  readonly onMeasure?: (pair: CandidatePair) => void;
  /**
   * When the destination is a diff store: the diffs it holds, and the longest chain of
   * incremental diffs a restore may have to replay. Longer chains are cut with a full send.
   */
  readonly destinationChains?: { readonly diffs: readonly StoredDiff[]; readonly maxLength: number };
}

/** How many `btrfs send --no-data` run at once: each is short, so more than the cores hides process start-up. */
export const MEASURE_CONCURRENCY = 4;

/**
 * The I/O shell around the pure planner: finds candidate diffs, sizes them through the source
 * store, and asks {@link planSync} for the cheapest plan.
 *
 * Measured sizes replace estimates and lower bounds until the plan relies on measured sizes
 * only. An estimate can only be wrong in a way that makes the planner look at a diff it then
 * measures, so the loop ends after at most one round per candidate; a lower bound on an edge
 * the plan does not use leaves the plan the cheapest whatever the edge's real size.
 */
export async function choosePlan(input: ChoosePlanInput): Promise<Plan> {
  const { source, destination } = input;
  const atDestination = new CorrelationIndex(destination);
  const needed = input.wanted.filter((s) => !atDestination.has(s));
  const present = input.sourceAll.filter((s) => atDestination.has(s));
  if (!source.capabilities.canDiffAnyPair) return planFromStoredDiffs(input, needed, present);
  const planSource = uniqueByUuid([...input.wanted, ...present]);

  const pairs = candidatePairs(needed, present);
  const sizes = new Map<CandidatePair, DiffSize>();
  const limit = pLimit(MEASURE_CONCURRENCY);
  const measureOne = (pair: CandidatePair, stopAbove?: Promise<number | undefined>): Promise<void> =>
    limit(async () => {
      input.signal?.throwIfAborted();
      input.onMeasure?.(pair);
      sizes.set(pair, await source.measureDiff(pair.snapshot, pair.parent, input.signal, stopAbove === undefined ? {} : { stopAbove }));
    });
  const measure = (toMeasure: readonly CandidatePair[]): Promise<unknown[]> => Promise.all(toMeasure.map((pair) => measureOne(pair)));

  for (const pair of pairs) sizes.set(pair, source.estimateDiff(pair.snapshot, pair.parent));
  if (!input.estimateFirst) {
    // The diffs first, then each full send only until it is known to be larger than its
    // snapshot's smallest diff (plus the chain penalty a diff store adds): the full's size
    // then only matters if the plan uses it, and then it is measured below. A full send of a
    // snapshot of many files is a long walk (100,000 files: 3.2 s to the end, 0.15 s to its
    // first MB), where a nightly diff is short. The fulls are queued right behind the diffs
    // and may start before their bound is known (it comes once the snapshot's diffs are
    // measured): a full's walk has a fixed cost of tens of ms however little of it is read,
    // better spent beside the diffs than after them. A full with no diff to compare with is
    // measured with the diffs.
    const unmeasured = pairs.filter((p) => !sizes.get(p)!.exact);
    const withDiffs = new Set(pairs.filter((p) => p.parent !== null).map((p) => p.snapshot.uuid));
    const later = (p: CandidatePair): boolean => p.parent === null && withDiffs.has(p.snapshot.uuid);
    const diffRuns = new Map<string, Promise<void>[]>();
    const runs: Promise<void>[] = [];
    for (const pair of unmeasured.filter((p) => !later(p))) {
      const run = measureOne(pair);
      runs.push(run);
      diffRuns.set(pair.snapshot.uuid, [...(diffRuns.get(pair.snapshot.uuid) ?? []), run]);
    }
    const penalty = input.policy.destinationStoresDiffs ? input.policy.chainLinkPenaltyBytes : 0;
    const boundOf = (snapshot: Snapshot): Promise<number | undefined> =>
      // Settled, never rejected: a diff that failed fails the plan through its own run.
      Promise.allSettled(diffRuns.get(snapshot.uuid) ?? []).then(() => {
        let best: number | undefined;
        for (const pair of pairs) {
          const size = sizes.get(pair)!;
          if (pair.snapshot.uuid !== snapshot.uuid || pair.parent === null || !size.exact) continue;
          if (best === undefined || size.bytes < best) best = size.bytes;
        }
        return best === undefined ? undefined : best + penalty;
      });
    for (const pair of unmeasured.filter(later)) runs.push(measureOne(pair, boundOf(pair.snapshot)));
    await Promise.all(runs);
  }

  const byEdge = new Map(pairs.map((p) => [edgeKey(p.snapshot.uuid, p.parent?.uuid ?? null), p]));
  const banned = new Set<string>();
  for (let round = 0; ; round++) {
    const edges: CandidateEdge[] = pairs.flatMap((p) => {
      if (banned.has(edgeKey(p.snapshot.uuid, p.parent?.uuid ?? null))) return [];
      const size = sizes.get(p)!;
      // Estimates may improve as measurements come in (the store learns sizes): ask again.
      // A lower bound stays one (an estimate below it is known to be wrong).
      if (!size.exact && size.atLeast !== true) sizes.set(p, source.estimateDiff(p.snapshot, p.parent));
      const { bytes, exact, atLeast } = sizes.get(p)!;
      return [{ to: p.snapshot.uuid, from: p.parent?.uuid ?? null, bytes, exact, ...(atLeast === true ? { atLeast } : {}) }];
    });
    const plan = planSync({ source: planSource, destination, edges, policy: input.policy, now: input.now });
    const tooLong = input.destinationChains ? overlongLinks(plan, input.destinationChains) : [];
    if (tooLong.length > 0 && round <= pairs.length) {
      for (const key of tooLong) banned.add(key);
      continue;
    }
    const guessed = plan.steps.flatMap((step) =>
      step.kind === 'send' && !step.exact ? [byEdge.get(edgeKey(step.snapshot.uuid, step.parent?.uuid ?? null))!] : [],
    );
    if (guessed.length === 0 || round > pairs.length) return plan;
    await measure(guessed);
  }
}

/**
 * A restore from a diff store replays every diff of a chain, and one corrupt diff breaks all
 * later ones; the original ButterSink's risk term, (chain bytes) x 2^(depth - 8), makes a
 * chain 8 links deep cost at least a full send. The same limit here, as a hard cap: the
 * first incremental send (in plan order) that would end deeper than `maxLength`, as the
 * edge key to ban.
 */
function overlongLinks(plan: Plan, chains: NonNullable<ChoosePlanInput['destinationChains']>): string[] {
  const depth = chainDepths(chains.diffs);
  for (const step of plan.steps) {
    if (step.kind !== 'send') continue;
    const parentDepth = step.parent === null ? -1 : (depth.get(effectiveUuid(step.parent)) ?? 0);
    const own = parentDepth + 1;
    depth.set(effectiveUuid(step.snapshot), own);
    // Only the first offender: the ones after it may be fine once it is re-planned.
    if (own > chains.maxLength && step.parent !== null) return [edgeKey(step.snapshot.uuid, step.parent.uuid)];
  }
  return [];
}

/**
 * Planning from a diff store (S3): its stored diffs, with the exact sizes the listing gave,
 * are the only ways out of it. A wanted snapshot whose diffs all start from snapshots the
 * destination lacks brings the cheapest chain of them along (intermediate snapshots).
 */
async function planFromStoredDiffs(input: ChoosePlanInput, needed: readonly Snapshot[], present: readonly Snapshot[]): Promise<Plan> {
  const stored = await input.source.storedDiffs();
  const byUuid = new Map(input.sourceAll.map((s) => [s.uuid, s]));
  const intermediates = chainIntermediates(stored, new Set(needed.map((s) => s.uuid)), new Set(present.map((s) => s.uuid)));
  const planSource = uniqueByUuid([
    ...input.wanted,
    ...[...intermediates].flatMap((uuid) => (byUuid.has(uuid) ? [byUuid.get(uuid)!] : [])),
    ...present,
  ]);
  const edges: CandidateEdge[] = stored.map((d) => ({ to: d.to, from: d.from, bytes: d.bytes, exact: true }));
  return planSync({ source: planSource, destination: input.destination, edges, policy: input.policy, now: input.now });
}

function edgeKey(to: string, from: string | null): string {
  return `${to}<${from ?? ''}`;
}

function uniqueByUuid(snapshots: readonly Snapshot[]): Snapshot[] {
  return [...new Map(snapshots.map((s) => [s.uuid, s])).values()];
}
