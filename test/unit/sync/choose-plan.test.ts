import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../src/model/snapshot.js';
import type { DiffSize, MeasureOptions } from '../../../src/model/store.js';
import { choosePlan, type PlanSource } from '../../../src/sync/choose-plan.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function snap(name: string, gen: number, extra: Partial<Snapshot> = {}): Snapshot {
  return {
    name,
    uuid: `u-${name}`,
    parentUuid: 'u-origin',
    receivedUuid: null,
    generation: gen,
    creationGeneration: gen,
    createdAt: null,
    ...extra,
  };
}

/**
 * The two sizing calls of a store, scripted: estimates and true sizes per `to<from` key.
 * Only the measuring loop is under test here; real stores are tested on real btrfs.
 */
function sizingStore(sizes: Record<string, { estimate: number; real: number }>, delays: Record<string, Promise<void>> = {}) {
  const measured: string[] = [];
  /** Each measurement as it was asked for, before its bound was known. */
  const started: string[] = [];
  const key = (s: Snapshot, p: Snapshot | null): string => `${s.name}<${p?.name ?? 'full'}`;
  const lookup = (s: Snapshot, p: Snapshot | null) => {
    const entry = sizes[key(s, p)];
    if (!entry) throw new Error(`unexpected diff ${key(s, p)}`);
    return entry;
  };
  const store: PlanSource = {
    capabilities: { canDiffAnyPair: true, canReceive: true, canDelete: true, storesDiffs: false },
    storedDiffs: async () => [],
    estimateDiff: (s: Snapshot, p: Snapshot | null): DiffSize => ({ bytes: lookup(s, p).estimate, exact: false }),
    // Honours stopAbove as a btrfs store does: a lower bound just past it (a promised bound
    // once it is known).
    measureDiff: async (s: Snapshot, p: Snapshot | null, _signal?: AbortSignal, options: MeasureOptions = {}): Promise<DiffSize> => {
      const { real } = lookup(s, p);
      started.push(key(s, p));
      await delays[key(s, p)];
      const stopAbove = await options.stopAbove;
      if (stopAbove !== undefined && real > stopAbove) {
        measured.push(`${key(s, p)} above ${stopAbove}`);
        return { bytes: stopAbove + 1, exact: false, atLeast: true };
      }
      measured.push(key(s, p));
      return { bytes: real, exact: true };
    },
  };
  return { store, measured, started };
}

const policy = { delete: false, destinationStoresDiffs: false, chainLinkPenaltyBytes: 0 };
const now = new Date('2026-01-01T00:00:00Z');

describe('choosePlan', () => {
  const s1 = snap('s1', 1);
  const s2 = snap('s2', 2);
  const atDestination = [snap('s1-copy', 5, { uuid: 'd-s1', receivedUuid: 'u-s1', parentUuid: null })];

  test('with -e, a misleading estimate is measured and the plan redone until it uses measured sizes only', async () => {
    const { store, measured } = sizingStore({
      's2<s1': { estimate: 1024, real: 5 * GiB },
      's2<full': { estimate: 2 * GiB, real: 100 * MiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s1, s2],
      sourceAll: [s1, s2],
      destination: atDestination,
      policy,
      estimateFirst: true,
      now,
    });
    assert.deepEqual(
      plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : s.kind)),
      ['s2<full'],
    );
    assert.equal(plan.isExact, true);
    assert.equal(plan.totalBytes, 100 * MiB);
    assert.deepEqual(measured, ['s2<s1', 's2<full']);
  });

  test('with -e and good estimates, only the diffs the plan uses are measured', async () => {
    const s3 = snap('s3', 3);
    const { store, measured } = sizingStore({
      's2<full': { estimate: 2 * GiB, real: 2 * GiB },
      's2<s1': { estimate: 10 * MiB, real: 9 * MiB },
      's2<s3': { estimate: 30 * MiB, real: 30 * MiB },
      's3<full': { estimate: 2 * GiB, real: 2 * GiB },
      's3<s2': { estimate: 10 * MiB, real: 11 * MiB },
      's3<s1': { estimate: 20 * MiB, real: 20 * MiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s1, s2, s3],
      sourceAll: [s1, s2, s3],
      destination: atDestination,
      policy,
      estimateFirst: true,
      now,
    });
    assert.deepEqual(
      plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : s.kind)),
      ['s2<s1', 's3<s2'],
    );
    assert.deepEqual(measured.sort(), ['s2<s1', 's3<s2']);
  });

  test('without -e, every candidate is measured once before planning', async () => {
    const { store, measured } = sizingStore({
      's2<s1': { estimate: 1024, real: 5 * GiB },
      's2<full': { estimate: 2 * GiB, real: 100 * MiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s1, s2],
      sourceAll: [s1, s2],
      destination: atDestination,
      policy,
      estimateFirst: false,
      now,
    });
    assert.equal(plan.totalBytes, 100 * MiB);
    assert.deepEqual(measured.sort(), ['s2<full', 's2<s1']);
  });

  test('without -e, a full send is measured after the diffs, only until it is larger than the smallest', async () => {
    const s3 = snap('s3', 3);
    const { store, measured } = sizingStore({
      's2<full': { estimate: 2 * GiB, real: 2 * GiB },
      's2<s1': { estimate: 10 * MiB, real: 9 * MiB },
      's3<full': { estimate: 2 * GiB, real: 2 * GiB },
      's3<s2': { estimate: 10 * MiB, real: 11 * MiB },
      's3<s1': { estimate: 20 * MiB, real: 20 * MiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s1, s2, s3],
      sourceAll: [s1, s2, s3],
      destination: atDestination,
      policy,
      estimateFirst: false,
      now,
    });
    assert.deepEqual(
      plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : s.kind)),
      ['s2<s1', 's3<s2'],
    );
    assert.equal(plan.isExact, true);
    assert.equal(plan.totalBytes, 20 * MiB);
    // Diffs (in any order, 4 at a time), then the fulls, each bounded by its smallest diff.
    assert.deepEqual(measured.slice(0, 3).sort(), ['s2<s1', 's3<s1', 's3<s2']);
    assert.deepEqual(measured.slice(3).sort(), [`s2<full above ${9 * MiB}`, `s3<full above ${11 * MiB}`]);
    // The reason says the full's size is a bound, not what it is.
    const s2Step = plan.steps.find((s) => s.kind === 'send' && s.snapshot.name === 's2');
    assert.match(s2Step?.kind === 'send' ? s2Step.reason : '', /vs full over 9/);
  });

  test('without -e, a full send starts beside its diffs and gets its bound once they are measured', async () => {
    let releaseDiff = (): void => {};
    const slowDiff = new Promise<void>((resolve) => (releaseDiff = resolve));
    const { store, measured, started } = sizingStore(
      {
        's2<full': { estimate: 2 * GiB, real: 2 * GiB },
        's2<s1': { estimate: 10 * MiB, real: 9 * MiB },
      },
      { 's2<s1': slowDiff },
    );
    const planning = choosePlan({
      source: store,
      wanted: [s1, s2],
      sourceAll: [s1, s2],
      destination: atDestination,
      policy: { ...policy, destinationStoresDiffs: true, chainLinkPenaltyBytes: 1000 },
      estimateFirst: false,
      now,
    });
    await new Promise((resolve) => setImmediate(resolve));
    // Both asked for while the diff is still being measured, the diff first.
    assert.deepEqual(started, ['s2<s1', 's2<full']);
    assert.deepEqual(measured, []);
    releaseDiff();
    const plan = await planning;
    // The bound: the smallest diff plus the chain penalty of a diff store.
    assert.deepEqual(measured, ['s2<s1', `s2<full above ${9 * MiB + 1000}`]);
    assert.equal(plan.totalBytes, 9 * MiB);
  });

  test('without -e, a full smaller than every diff is measured to its end and chosen', async () => {
    const { store, measured } = sizingStore({
      's2<s1': { estimate: 1024, real: 5 * GiB },
      's2<full': { estimate: 2 * GiB, real: 100 * MiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s2],
      sourceAll: [s1, s2],
      destination: atDestination,
      policy,
      estimateFirst: false,
      now,
    });
    assert.equal(plan.totalBytes, 100 * MiB);
    assert.deepEqual(measured, ['s2<s1', 's2<full']);
  });

  test('a stopped full that the plan needs after all (the diff is not allowed) is measured to its end', async () => {
    const { store, measured } = sizingStore({
      's2<s1': { estimate: 10 * MiB, real: 10 * MiB },
      's2<full': { estimate: 2 * GiB, real: 3 * GiB },
    });
    const plan = await choosePlan({
      source: store,
      wanted: [s2],
      sourceAll: [s1, s2],
      destination: atDestination,
      policy: { ...policy, destinationStoresDiffs: true },
      estimateFirst: false,
      now,
      // s1 at the destination is the end of a chain already as long as allowed.
      destinationChains: {
        diffs: [
          { to: 'u-s0', from: null, bytes: 1 },
          { to: 'u-s1', from: 'u-s0', bytes: 1 },
        ],
        maxLength: 1,
      },
    });
    assert.deepEqual(
      plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : s.kind)),
      ['s2<full'],
    );
    assert.equal(plan.isExact, true);
    assert.equal(plan.totalBytes, 3 * GiB);
    assert.deepEqual(measured, ['s2<s1', `s2<full above ${10 * MiB}`, 's2<full']);
  });

  test('an aborted signal stops measuring', async () => {
    const { store } = sizingStore({ 's2<s1': { estimate: 1, real: 1 }, 's2<full': { estimate: 2, real: 2 } });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(
      choosePlan({
        source: store,
        wanted: [s2],
        sourceAll: [s1, s2],
        destination: atDestination,
        policy,
        estimateFirst: false,
        now,
        signal: controller.signal,
      }),
      /stop/,
    );
  });
});
