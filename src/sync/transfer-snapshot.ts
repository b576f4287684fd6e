import { StoreError } from '../model/errors.js';
import { CorrelationIndex, type Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import type { Plan, PlanPolicy, SendStep } from '../planner/plan-types.js';
import type { TransferObserver } from '../progress/transfer-observer.js';
import { choosePlan } from './choose-plan.js';
import { executePlan } from './execute-plan.js';

/** A store with the name it has among several (the mount's directory name). */
export interface NamedStore {
  readonly name: string;
  readonly store: Store;
}

/** The destination already has a snapshot of that name, or the same snapshot under another. */
export class SnapshotExistsError extends StoreError {}

/** No other store has a snapshot of that name. */
export class NoSuchSnapshotError extends StoreError {}

export interface TransferSnapshotInput {
  /** The snapshot's name, the same in the source and the destination. */
  readonly name: string;
  readonly destination: NamedStore;
  /** Every store it may come from; the cheapest plan over all of them wins. */
  readonly sources: readonly NamedStore[];
  readonly now: Date;
  readonly signal?: AbortSignal;
  /** Called with the chosen source and plan before anything changes; returns the observer. */
  readonly onPlan: (source: NamedStore, step: SendStep, plan: Plan) => TransferObserver;
  /** A store that could not be listed or planned from; the others are still tried. */
  readonly onSkippedSource?: (source: NamedStore, error: unknown) => void;
}

const POLICY: Omit<PlanPolicy, 'destinationStoresDiffs'> = { delete: false, chainLinkPenaltyBytes: 0 };

/**
 * Brings one snapshot into a store from whichever other store can send it cheapest: each
 * store holding a snapshot of that name (the same data as the first one found) is planned
 * from, with its own parents, and the plan with the fewest bytes runs — the source `cp` read
 * from is only one candidate. Runs under the destination's lock, with the Store contract's
 * guarantee that a failed or aborted receive leaves nothing complete-looking.
 * @throws NoSuchSnapshotError when no source has it; SnapshotExistsError when the destination has it.
 */
export async function transferSnapshot(input: TransferSnapshotInput): Promise<Snapshot> {
  const { name, destination } = input;
  const release = await destination.store.lock();
  try {
    const destinationAll = await destination.store.list();
    if (destinationAll.some((s) => s.name === name)) {
      throw new SnapshotExistsError(`${destination.name} already has a snapshot named ${name}`);
    }
    const found = await Promise.all(
      input.sources.map(async (source) => {
        try {
          const all = await source.store.list();
          const snapshot = all.find((s) => s.name === name);
          return snapshot === undefined ? undefined : { source, all, snapshot };
        } catch (error) {
          input.onSkippedSource?.(source, error);
          return undefined;
        }
      }),
    );
    const holders = found.filter((f) => f !== undefined);
    const reference = holders[0];
    if (reference === undefined) throw new NoSuchSnapshotError(`no mounted store has a snapshot named ${name}`);
    const atDestination = new CorrelationIndex(destinationAll).find(reference.snapshot)[0];
    if (atDestination !== undefined) {
      throw new SnapshotExistsError(`${destination.name} already holds ${name}, as ${atDestination.name}`);
    }
    const same = new CorrelationIndex([reference.snapshot]);
    const candidates = holders.filter((h) => same.has(h.snapshot));

    let best: { source: NamedStore; all: Snapshot[]; plan: Plan; step: SendStep } | undefined;
    let lastError: unknown;
    for (const candidate of candidates) {
      input.signal?.throwIfAborted();
      try {
        const plan = await choosePlan({
          source: candidate.source.store,
          wanted: [candidate.snapshot],
          sourceAll: candidate.all,
          destination: destinationAll,
          policy: { ...POLICY, destinationStoresDiffs: destination.store.capabilities.storesDiffs },
          estimateFirst: false,
          now: input.now,
          signal: input.signal,
        });
        const step = plan.steps[0];
        if (plan.unreachable.length > 0 || step?.kind !== 'send') continue;
        if (best === undefined || plan.totalBytes < best.plan.totalBytes) best = { source: candidate.source, all: candidate.all, plan, step };
      } catch (error) {
        if (input.signal?.aborted) throw error;
        lastError = error;
        input.onSkippedSource?.(candidate.source, error);
      }
    }
    if (best === undefined) {
      throw lastError instanceof Error ? lastError : new StoreError(`no mounted store can send ${name} to ${destination.name}`);
    }
    const observer = input.onPlan(best.source, best.step, best.plan);
    await executePlan(best.plan, best.source.store, destination.store, best.all, destinationAll, observer, input.signal);
    const received = (await destination.store.list()).find((s) => s.name === name);
    if (received === undefined) throw new StoreError(`${name} was received but ${destination.name} does not list it`);
    return received;
  } finally {
    await release();
  }
}
