import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planSync } from '../../../src/planner/plan-sync.js';
import { NOW, deletes, names, scenario, sendSteps, sends } from './scenario.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('planSync: choosing parents', () => {
  test('sends a chain incrementally from what the destination has', () => {
    const plan = scenario()
      .source('daily/1')
      .source('daily/2')
      .source('daily/3')
      .dest('daily/1')
      .full('daily/2', GiB)
      .full('daily/3', GiB)
      .diff('daily/1', 'daily/2', 3 * KiB)
      .diff('daily/2', 'daily/3', 5 * KiB)
      .plan();

    assert.deepEqual(sends(plan), ['daily/2 <- daily/1', 'daily/3 <- daily/2']);
    const [second, third] = sendSteps(plan);
    assert.equal(second?.reason, 'incremental from daily/1 (already at destination), vs full 1 GiB');
    assert.equal(third?.reason, 'incremental from daily/2 (sent earlier in this run), vs full 1 GiB');
    assert.equal(plan.totalBytes, 8 * KiB);
    assert.deepEqual(names(plan.alreadyPresent), ['daily/1']);
  });

  test('picks a KiB diff over a GiB one', () => {
    const plan = scenario()
      .source('a')
      .source('b')
      .source('c')
      .dest('a')
      .dest('b')
      .full('c', 2 * GiB)
      .diff('a', 'c', GiB)
      .diff('b', 'c', KiB)
      .plan();

    assert.deepEqual(sends(plan), ['c <- b']);
    assert.equal(sendSteps(plan)[0]?.reason, 'incremental from b (already at destination), vs incremental from a 1 GiB');
  });

  test('prefers a parent sent earlier in this run when it is cheaper than a present one', () => {
    const plan = scenario()
      .source('old')
      .source('mid')
      .source('new')
      .dest('old')
      .full('mid', 10 * GiB)
      .full('new', 10 * GiB)
      .diff('old', 'mid', MiB)
      .diff('old', 'new', GiB)
      .diff('mid', 'new', KiB)
      .plan();

    assert.deepEqual(sends(plan), ['mid <- old', 'new <- mid']);
    assert.match(sendSteps(plan)[1]!.reason, /sent earlier in this run.*vs incremental from old 1 GiB/);
    assert.equal(plan.totalBytes, MiB + KiB);
  });

  test('solves a cycle that picking the cheapest parent per snapshot would create', () => {
    // Greedy: a <- b and b <- a, a plan that can never start. One of them must go full.
    const plan = scenario()
      .source('a')
      .source('b')
      .full('a', GiB)
      .full('b', GiB + 1)
      .diff('b', 'a', KiB)
      .diff('a', 'b', KiB)
      .plan();

    assert.deepEqual(sends(plan), ['a <- full', 'b <- a']);
    assert.equal(plan.totalBytes, GiB + KiB);
    assert.equal(sendSteps(plan)[0]?.reason, 'full: incremental from b (1 KiB) is not cheaper overall');
  });

  test('a chain-link penalty above the saving turns a diff chain into full sends', () => {
    const chain = () =>
      scenario()
        .source('s1')
        .source('s2')
        .source('s3')
        .source('s4')
        .dest('s1')
        .full('s2', 50 * MiB)
        .full('s3', 50 * MiB)
        .full('s4', 50 * MiB)
        .diff('s1', 's2', 10 * MiB)
        .diff('s2', 's3', 10 * MiB)
        .diff('s3', 's4', 10 * MiB);

    const cheapLinks = chain().policy({ destinationStoresDiffs: true, chainLinkPenaltyBytes: MiB }).plan();
    assert.deepEqual(sends(cheapLinks), ['s2 <- s1', 's3 <- s2', 's4 <- s3']);

    const riskyLinks = chain()
      .policy({ destinationStoresDiffs: true, chainLinkPenaltyBytes: 100 * MiB })
      .plan();
    assert.deepEqual(sends(riskyLinks), ['s2 <- full', 's3 <- full', 's4 <- full']);
    assert.equal(riskyLinks.totalBytes, 150 * MiB);
    assert.equal(sendSteps(riskyLinks)[0]?.reason, 'full: incremental from s1 (10 MiB) is not worth its chain-link penalty of 100 MiB');

    // The penalty only counts for stores that keep diffs.
    const btrfs = chain()
      .policy({ destinationStoresDiffs: false, chainLinkPenaltyBytes: 100 * MiB })
      .plan();
    assert.deepEqual(sends(btrfs), ['s2 <- s1', 's3 <- s2', 's4 <- s3']);
  });

  test('explains a full send that had no alternative', () => {
    const plan = scenario().source('a').full('a', 512).plan();
    assert.deepEqual(
      sendSteps(plan).map((s) => s.reason),
      ['full: no related snapshot at destination'],
    );
  });
});

describe('planSync: what is present', () => {
  test('plans nothing when the destination has everything', () => {
    const plan = scenario().source('a').source('b').dest('a').dest('b').full('a', GiB).diff('a', 'b', KiB).policy({ delete: true }).plan();

    assert.deepEqual(plan.steps, []);
    assert.deepEqual(names(plan.alreadyPresent), ['a', 'b']);
    assert.equal(plan.totalBytes, 0);
    assert.equal(plan.isExact, true);
  });

  test('a destination snapshot received from the source snapshot counts as present', () => {
    // Different name on purpose: identity is by UUID, never by name.
    const plan = scenario()
      .source('a', { uuid: 'A' })
      .source('b')
      .dest('renamed', { receivedUuid: 'A' })
      .full('a', GiB)
      .full('b', GiB)
      .diff('a', 'b', KiB)
      .plan();

    assert.deepEqual(names(plan.alreadyPresent), ['a']);
    assert.deepEqual(sends(plan), ['b <- a']);
  });

  test('a source snapshot that was itself received matches a destination copy of the same origin', () => {
    const plan = scenario()
      .source('a', { receivedUuid: 'ORIGIN' })
      .source('b')
      .dest('a', { uuid: 'elsewhere', receivedUuid: 'ORIGIN' })
      .full('a', GiB)
      .full('b', GiB)
      .diff('a', 'b', KiB)
      .policy({ delete: true })
      .plan();

    assert.deepEqual(names(plan.alreadyPresent), ['a']);
    assert.deepEqual(sends(plan), ['b <- a']);
    assert.deepEqual(deletes(plan), []);
  });

  test('two destination snapshots sharing a received UUID are both kept and both count', () => {
    // `a-rw-snap` is a snapshot of the received `a`: it inherited a's received UUID.
    const plan = scenario()
      .source('a')
      .source('b')
      .dest('a')
      .dest('a-rw-snap', { copyOf: 'a' })
      .full('a', GiB)
      .full('b', GiB)
      .diff('a', 'b', KiB)
      .policy({ delete: true })
      .plan();

    assert.deepEqual(names(plan.alreadyPresent), ['a']);
    assert.deepEqual(sends(plan), ['b <- a']);
    assert.deepEqual(deletes(plan), []);
  });

  test('two source snapshots sharing a received UUID are both present via one copy', () => {
    const plan = scenario()
      .source('x', { receivedUuid: 'R' })
      .source('x-snap', { receivedUuid: 'R' })
      .dest('x')
      .full('x', GiB)
      .full('x-snap', GiB)
      .plan();

    assert.deepEqual(names(plan.alreadyPresent), ['x', 'x-snap']);
    assert.deepEqual(plan.steps, []);
  });
});

describe('planSync: deletes', () => {
  const withExtras = () =>
    scenario()
      .source('a', { uuid: 'A' })
      .source('b')
      .dest('a')
      .dest('moved-a', { receivedUuid: 'A' })
      .dest('zzz-old', { receivedUuid: null })
      .dest('old')
      .full('b', GiB);

  test('with -d, deletes uncorrelated destination snapshots after all sends', () => {
    const plan = withExtras().policy({ delete: true }).plan();

    assert.deepEqual(
      plan.steps.map((s) => `${s.kind} ${s.snapshot.name}`),
      ['send b', 'delete old', 'delete zzz-old'],
    );
    assert.ok(plan.steps.filter((s) => s.kind === 'delete').every((s) => s.reason === 'not in source'));
  });

  test('never deletes a destination snapshot correlated with a source snapshot', () => {
    const plan = withExtras().policy({ delete: true }).plan();
    assert.ok(!deletes(plan).includes('a'));
    assert.ok(!deletes(plan).includes('moved-a'));
  });

  test('without -d, deletes nothing', () => {
    assert.deepEqual(deletes(withExtras().plan()), []);
  });
});

describe('planSync: problems', () => {
  test('reports a needed snapshot whose name is taken by other data', () => {
    const plan = scenario().source('a').source('b').dest('a', { receivedUuid: null }).dest('b').full('a', GiB).plan();

    assert.deepEqual(
      plan.conflicts.map((c) => [c.source.uuid, c.destination.uuid]),
      [['src:a', 'dst:a']],
    );
    // Still planned: the caller decides whether a conflict stops the run.
    assert.deepEqual(sends(plan), ['a <- full']);
  });

  test('reports needed snapshots that no edge chain reaches', () => {
    const plan = scenario()
      .source('a')
      .source('b')
      .source('c')
      .source('d')
      .dest('a')
      .diff('c', 'b', KiB) // c is needed but has no way in itself
      .diff('b', 'c', KiB)
      .diff('a', 'd', KiB)
      .plan();

    assert.deepEqual(sends(plan), ['d <- a']);
    assert.deepEqual(names(plan.unreachable), ['b', 'c']);
  });

  test('ignores edges it cannot use', () => {
    const plan = scenario()
      .source('a')
      .source('b')
      .dest('a')
      .dest('other', { receivedUuid: null })
      .full('b', GiB)
      .diff('no-such-uuid', 'b', 1) // unknown parent
      .diff('dst:other', 'b', 1) // a destination UUID is no source snapshot
      .diff('b', 'b', 1) // self-loop
      .diff('b', 'a', 1) // a is present already
      .full('no-such-uuid', 1)
      .plan();

    assert.deepEqual(sends(plan), ['b <- full']);
    assert.equal(plan.totalBytes, GiB);
  });

  test('rejects a nonsensical edge size', () => {
    const input = scenario().source('a').full('a', Number.NaN).build();
    assert.throws(() => planSync(input), RangeError);
  });
});

describe('planSync: plan shape', () => {
  test('orders sends parents first, then by creation generation, then name', () => {
    // `a` is older but is sent as a diff from the newer `c`, so it must wait for `c`.
    const plan = scenario()
      .source('c', { gen: 3 })
      .source('b', { gen: 2 })
      .source('a', { gen: 1 })
      .source('b2', { gen: 2 })
      .full('a', GiB)
      .full('b', GiB)
      .full('b2', GiB)
      .full('c', GiB)
      .diff('c', 'a', KiB)
      .plan();

    assert.deepEqual(sends(plan), ['b <- full', 'b2 <- full', 'c <- full', 'a <- c']);
  });

  test('sums bytes, tracks exactness and stamps the given time', () => {
    const plan = scenario().source('a').source('b').full('a', 100, { exact: false }).full('b', 200).plan();

    assert.equal(plan.totalBytes, 300);
    assert.equal(plan.isExact, false);
    assert.equal(plan.createdAt, NOW);
  });

  test('prefers a measured edge over an estimate of the same size', () => {
    const plan = scenario().source('a').source('b').dest('a').full('b', KiB, { exact: false }).diff('a', 'b', KiB, { exact: true }).plan();

    assert.deepEqual(sends(plan), ['b <- a']);
    assert.equal(plan.isExact, true);
  });

  test('does not depend on the order of the candidate edges', () => {
    const input = scenario()
      .source('a')
      .source('b')
      .source('c')
      .dest('a')
      .full('b', 10)
      .full('c', 10)
      .diff('a', 'b', 5)
      .diff('b', 'c', 5)
      .diff('a', 'c', 5)
      .diff('c', 'b', 5)
      .build();

    const forward = planSync(input);
    const backward = planSync({ ...input, edges: [...input.edges].reverse() });
    assert.deepEqual(backward, forward);
  });
});
