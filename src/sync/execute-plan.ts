import { pipeline } from 'node:stream/promises';
import { CorrelationIndex, type Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import type { Plan, SendStep } from '../planner/plan-types.js';
import { ByteCounter } from '../progress/byte-counter.js';
import type { TransferObserver } from '../progress/transfer-observer.js';
import { Throttle } from '../util/throttle.js';
import { lineageKeys } from './lineages.js';

/** How many extra clone sources (`btrfs send -c`) a send may use besides its parent. */
const MAX_EXTRA_CLONE_SOURCES = 2;

export interface ExecuteResult {
  readonly sent: number;
  readonly deleted: number;
  readonly bytes: number;
}

/**
 * Runs a plan step by step: each send goes by the destination's direct path from the source
 * when it has one (kernel pipes between two local btrfs stores), else streams from the source
 * store through a byte counter into the destination store; deletes come last. Stops at the first failure — the failed
 * step left nothing complete-looking behind (the Store contract) — and rethrows it.
 */
export async function executePlan(
  plan: Plan,
  source: Store,
  destination: Store,
  sourceAll: readonly Snapshot[],
  destinationBefore: readonly Snapshot[],
  observer: TransferObserver,
  signal?: AbortSignal,
  /** At most this many bytes per second per stream (`--rate-limit`); unlimited when undefined. */
  rateLimit?: number,
): Promise<ExecuteResult> {
  const atDestination = new CorrelationIndex(destinationBefore);
  const held = sourceAll.filter((s) => atDestination.has(s));
  const lineage = lineageKeys(sourceAll);
  let sent = 0;
  let deleted = 0;
  let bytes = 0;
  const steps = plan.steps;
  // An SSH store starts a server ahead for the next transfer: not after the last one.
  const sends = steps.filter((s) => s.kind === 'send').length;
  source.expectTransfers?.(sends);
  destination.expectTransfers?.(sends);
  for (const [index, step] of steps.entries()) {
    signal?.throwIfAborted();
    observer.stepStarted(step, index, steps.length);
    const started = performance.now();
    if (step.kind === 'send') {
      const cloneSources = pickCloneSources(step, held, lineage);
      const moved = await transfer(step, cloneSources, source, destination, observer, signal, rateLimit);
      held.push(step.snapshot);
      bytes += moved;
      sent += 1;
      observer.stepFinished(step, { bytes: moved, seconds: (performance.now() - started) / 1000 });
    } else {
      await destination.delete(step.snapshot, signal);
      deleted += 1;
      observer.stepFinished(step, { bytes: 0, seconds: (performance.now() - started) / 1000 });
    }
  }
  return { sent, deleted, bytes };
}

async function transfer(
  step: SendStep,
  cloneSources: readonly Snapshot[],
  source: Store,
  destination: Store,
  observer: TransferObserver,
  signal?: AbortSignal,
  rateLimit?: number,
): Promise<number> {
  const request = { name: step.snapshot.name, snapshot: step.snapshot, parent: step.parent, expectedBytes: step.bytes };
  let reported = 0;
  const direct = await destination.receiveDirect?.(source, request, {
    cloneSources,
    signal,
    rateLimit,
    onBytes: (total) => {
      observer.bytesMoved(total - reported);
      reported = total;
    },
  });
  if (direct !== undefined) {
    if (direct.bytes > reported) observer.bytesMoved(direct.bytes - reported);
    return direct.bytes;
  }

  const sending = await source.send(step.snapshot, step.parent, { cloneSources, signal });
  const counter = new ByteCounter((n) => observer.bytesMoved(n));
  const piping = rateLimit === undefined ? pipeline(sending.stream, counter) : pipeline(sending.stream, new Throttle(rateLimit), counter);
  piping.catch(() => {}); // reported through receive or done below
  try {
    await destination.receive(counter, sending.origin === undefined ? request : { ...request, origin: sending.origin }, signal);
  } catch (error) {
    sending.stream.destroy();
    await sending.done.catch(() => {});
    throw error;
  }
  await sending.done;
  return counter.bytes;
}

/**
 * Snapshots of the same lineage already on both sides, nearest in time first: `btrfs send
 * -c` lets the stream reference their extents instead of carrying the data again (files
 * copied or reflinked from them). The parent is a clone source anyway.
 */
function pickCloneSources(step: SendStep, held: readonly Snapshot[], lineage: Map<string, string>): Snapshot[] {
  const family = lineage.get(step.snapshot.uuid);
  return held
    .filter((s) => s.uuid !== step.parent?.uuid && lineage.get(s.uuid) === family)
    .sort(
      (a, b) =>
        Math.abs(a.creationGeneration - step.snapshot.creationGeneration) -
        Math.abs(b.creationGeneration - step.snapshot.creationGeneration),
    )
    .slice(0, MAX_EXTRA_CLONE_SOURCES);
}
