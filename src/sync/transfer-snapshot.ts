import { NoSuchSnapshotError, SnapshotExistsError, StoreError } from '../model/errors.js';
import { CorrelationIndex } from '../model/snapshot.js';
import type { NamedStore } from '../model/store.js';
import type { Plan, SendStep } from '../planner/plan-types.js';
import { silentObserver, type TransferObserver } from '../progress/transfer-observer.js';
import { runSync, type SyncOptions } from './run-sync.js';

export interface TransferSnapshotInput {
  /** The snapshot's name, the same in the source and the destination. */
  readonly name: string;
  readonly destination: NamedStore;
  /** Every store it may come from; the cheapest plan over all of them wins. */
  readonly sources: readonly NamedStore[];
  readonly now: Date;
  readonly signal?: AbortSignal;
  /** Called with the chosen source and its send step before anything changes; returns the observer. */
  readonly onPlan: (source: NamedStore, step: SendStep, plan: Plan) => TransferObserver;
  /** A store that could not be listed or planned from; the others are still tried. */
  readonly onSkippedSource?: (source: NamedStore, error: unknown) => void;
}

/**
 * Brings one snapshot into a store from whichever other store can send it cheapest. This is
 * `buttersink sync SOURCE/NAME DESTINATION/` — the same planner, policies, lock and Store
 * guarantees (a failed or aborted receive leaves nothing complete-looking) — run for every
 * store holding a snapshot of that name (the same data as the first one found): when several
 * do, each is planned as a dry run and the one with the fewest bytes runs, so the source
 * `cp` read from is only one candidate.
 * @throws NoSuchSnapshotError when no source has it; SnapshotExistsError when the destination has it.
 */
export async function transferSnapshot(input: TransferSnapshotInput): Promise<void> {
  const { name, destination } = input;
  const [destinationAll, ...listed] = await Promise.all([
    destination.store.list(),
    ...input.sources.map(async (source) => {
      try {
        return (await source.store.list()).find((s) => s.name === name);
      } catch (error) {
        input.onSkippedSource?.(source, error);
        return undefined;
      }
    }),
  ]);
  if (destinationAll!.some((s) => s.name === name)) {
    throw new SnapshotExistsError(`${destination.name} already has a snapshot named ${name}`);
  }
  const reference = listed.find((s) => s !== undefined);
  if (reference === undefined) throw new NoSuchSnapshotError(`no mounted store has a snapshot named ${name}`);
  const same = new CorrelationIndex([reference]);
  const candidates = input.sources.filter((_, i) => listed[i] !== undefined && same.has(listed[i]!));

  const options = (onPlan: SyncOptions['onPlan'], dryRun: boolean): SyncOptions => ({
    dryRun,
    delete: false,
    estimate: false,
    excludes: [],
    now: input.now,
    signal: input.signal,
    onPlan,
  });
  const sync = (source: NamedStore, onPlan: SyncOptions['onPlan'], dryRun: boolean) =>
    runSync({ store: source.store, selection: name }, { store: destination.store, selection: null }, options(onPlan, dryRun));

  let best = candidates[0]!;
  if (candidates.length > 1) {
    let bestBytes = Infinity;
    let lastError: unknown;
    for (const candidate of candidates) {
      input.signal?.throwIfAborted();
      try {
        const { plan } = await sync(candidate, () => silentObserver, true);
        if (plan.unreachable.length === 0 && plan.totalBytes < bestBytes) {
          best = candidate;
          bestBytes = plan.totalBytes;
        }
      } catch (error) {
        if (input.signal?.aborted) throw error;
        lastError = error;
        input.onSkippedSource?.(candidate, error);
      }
    }
    if (bestBytes === Infinity) throw lastError instanceof Error ? lastError : new StoreError(`no mounted store can send ${name}`);
  }

  await sync(
    best,
    (plan) => {
      const step = plan.steps.find((s): s is SendStep => s.kind === 'send' && s.snapshot.name === name);
      if (step === undefined) {
        const there = new CorrelationIndex(plan.alreadyPresent).has(reference) ? ` (as another name)` : '';
        throw new SnapshotExistsError(`${destination.name} already holds ${name}${there}`);
      }
      return input.onPlan(best, step, plan);
    },
    false,
  );
}
