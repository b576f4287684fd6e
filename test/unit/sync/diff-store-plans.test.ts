import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../src/model/snapshot.js';
import type { DiffSize, StoredDiff } from '../../../src/model/store.js';
import type { Plan } from '../../../src/planner/plan-types.js';
import { choosePlan, type PlanSource } from '../../../src/sync/choose-plan.js';
import { keepNeededParents } from '../../../src/sync/run-sync.js';

const now = new Date('2026-01-01T00:00:00Z');
const MiB = 1024 ** 2;

/** A snapshot as a diff store lists it: its UUID is the effective one, also its received UUID. */
function stored(name: string, gen: number): Snapshot {
  return {
    name,
    uuid: `u-${name}`,
    parentUuid: null,
    receivedUuid: `u-${name}`,
    generation: gen,
    creationGeneration: gen,
    createdAt: null,
  };
}
function local(name: string, gen: number): Snapshot {
  return { name, uuid: `u-${name}`, parentUuid: 'u-origin', receivedUuid: null, generation: gen, creationGeneration: gen, createdAt: null };
}
function received(name: string, gen: number): Snapshot {
  return {
    name,
    uuid: `r-${name}`,
    parentUuid: null,
    receivedUuid: `u-${name}`,
    generation: gen,
    creationGeneration: gen,
    createdAt: null,
  };
}
const d = (to: string, from: string | null, bytes: number): StoredDiff => ({
  to: `u-${to}`,
  from: from === null ? null : `u-${from}`,
  bytes,
});
const steps = (plan: Plan): string[] =>
  plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : `delete ${s.snapshot.name}`));

function diffStore(diffs: StoredDiff[]): PlanSource {
  return {
    capabilities: { canDiffAnyPair: false, canReceive: true, canDelete: true, storesDiffs: true },
    storedDiffs: async () => diffs,
    estimateDiff: (): DiffSize => {
      throw new Error('a diff store is never asked to estimate');
    },
    measureDiff: async (): Promise<DiffSize> => {
      throw new Error('a diff store is never asked to measure');
    },
  };
}

describe('planning from a diff store (S3 -> btrfs)', () => {
  const [s1, s2, s3] = [stored('s1', 1), stored('s2', 2), stored('s3', 3)];
  const diffs = [d('s1', null, 100 * MiB), d('s2', 's1', 1 * MiB), d('s3', 's2', 2 * MiB), d('s3', null, 120 * MiB)];
  const policy = { delete: false, destinationStoresDiffs: false, chainLinkPenaltyBytes: 0 };

  test('only stored diffs are edges, with their listed sizes', async () => {
    const plan = await choosePlan({
      source: diffStore(diffs),
      wanted: [s1, s2, s3],
      sourceAll: [s1, s2, s3],
      destination: [],
      policy,
      estimateFirst: false,
      now,
    });
    assert.deepEqual(steps(plan), ['s1<full', 's2<s1', 's3<s2']);
    assert.equal(plan.totalBytes, 103 * MiB);
    assert.equal(plan.isExact, true);
  });

  test('restoring one snapshot brings the chain it needs; what the destination has shortens it', async () => {
    const fresh = await choosePlan({
      source: diffStore(diffs),
      wanted: [s3],
      sourceAll: [s1, s2, s3],
      destination: [],
      policy,
      estimateFirst: false,
      now,
    });
    assert.deepEqual(steps(fresh), ['s1<full', 's2<s1', 's3<s2']);
    const partly = await choosePlan({
      source: diffStore(diffs),
      wanted: [s3],
      sourceAll: [s1, s2, s3],
      destination: [received('s2', 9)],
      policy,
      estimateFirst: false,
      now,
    });
    assert.deepEqual(steps(partly), ['s3<s2']);
  });

  test('a snapshot whose parent diff is gone is unreachable, not guessed', async () => {
    const broken = [d('s3', 's2', 2 * MiB)];
    const plan = await choosePlan({
      source: diffStore(broken),
      wanted: [s3],
      sourceAll: [s3],
      destination: [],
      policy,
      estimateFirst: false,
      now,
    });
    assert.deepEqual(
      plan.unreachable.map((s) => s.name),
      ['s3'],
    );
  });
});

describe('planning into a diff store (btrfs -> S3)', () => {
  test('chains stop at the cap: a shallower parent, else a full send', async () => {
    const chain = Array.from({ length: 5 }, (_, i) => local(`s${i + 1}`, i + 1));
    const sizes = (_s: Snapshot, p: Snapshot | null): number => (p === null ? 50 * MiB : MiB);
    const source: PlanSource = {
      capabilities: { canDiffAnyPair: true, canReceive: true, canDelete: true, storesDiffs: false },
      storedDiffs: async () => [],
      estimateDiff: (s: Snapshot, p: Snapshot | null): DiffSize => ({ bytes: sizes(s, p), exact: true }),
      measureDiff: async (s: Snapshot, p: Snapshot | null): Promise<DiffSize> => ({ bytes: sizes(s, p), exact: true }),
    };
    const policy = { delete: false, destinationStoresDiffs: true, chainLinkPenaltyBytes: 64 * 1024 };
    const plan = await choosePlan({
      source,
      wanted: chain,
      sourceAll: chain,
      destination: [],
      policy,
      estimateFirst: false,
      now,
      destinationChains: { diffs: [], maxLength: 1 },
    });
    // Each snapshot may be one diff away from a full stream: s3 diffs from s1 instead of s2
    // (candidates include two older parents), s4 has no such parent and goes full.
    assert.deepEqual(steps(plan), ['s1<full', 's2<s1', 's3<s1', 's4<full', 's5<s4']);
  });

  test('-d keeps a snapshot that stored diffs start from, and deletes dependents first', () => {
    const [a, b, c, x] = [stored('a', 1), stored('b', 2), stored('c', 3), stored('x', 4)];
    const diffs = [d('a', null, 10), d('b', 'a', 1), d('c', 'b', 1), d('x', null, 5)];
    const plan: Plan = {
      steps: [
        { kind: 'delete', snapshot: a, reason: 'not in source' },
        { kind: 'delete', snapshot: b, reason: 'not in source' },
        { kind: 'delete', snapshot: x, reason: 'not in source' },
      ],
      alreadyPresent: [c],
      unreachable: [],
      conflicts: [],
      totalBytes: 0,
      isExact: true,
      createdAt: now,
    };
    // c stays and is stored as a diff from b, b as a diff from a: both must stay.
    const kept = keepNeededParents(plan, [a, b, c, x], diffs);
    assert.deepEqual(steps(kept), ['delete x']);
    assert.deepEqual(
      kept.keptForDependents?.map((s) => s.name),
      ['a', 'b'],
    );
    // When c goes too, all go, deepest chain first.
    const all = keepNeededParents(
      { ...plan, steps: [...plan.steps, { kind: 'delete', snapshot: c, reason: 'not in source' }] },
      [a, b, c, x],
      diffs,
    );
    assert.deepEqual(steps(all), ['delete c', 'delete b', 'delete a', 'delete x']);
  });
});
