import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../src/model/snapshot.js';
import type { Plan } from '../../../src/planner/plan-types.js';
import { planToJson, renderPlan } from '../../../src/cli/render-plan.js';

const KiB = 1024;
const GiB = 1024 ** 3;

function snap(name: string, uuid: string): Snapshot {
  return { name, uuid, parentUuid: null, receivedUuid: null, generation: 1, creationGeneration: 1, createdAt: null };
}

const d1 = snap('daily/1', 'u-1');
const d2 = snap('daily/2', 'u-2');
const d3 = snap('daily/3', 'u-3');
const stale = snap('old snap', 'u-old');

const plan: Plan = {
  steps: [
    {
      kind: 'send',
      snapshot: d2,
      parent: d1,
      bytes: 3 * KiB,
      exact: true,
      reason: 'incremental from daily/1 (already at destination), vs full 1 GiB',
    },
    { kind: 'send', snapshot: d3, parent: null, bytes: 1.5 * GiB, exact: false, reason: 'full: no parent at destination' },
    { kind: 'delete', snapshot: stale, reason: 'not in source (-d)' },
  ],
  alreadyPresent: [d1],
  unreachable: [],
  conflicts: [],
  totalBytes: 3 * KiB + 1.5 * GiB,
  isExact: false,
  createdAt: new Date('2026-11-28T23:43:34Z'),
};

describe('renderPlan', () => {
  test('dry run: "would" lines, sizes, parents, reasons and a summary', () => {
    assert.deepEqual(renderPlan(plan, true), [
      'would send daily/2  3 KiB  incremental from daily/1 (already at destination), vs full 1 GiB',
      'would send daily/3  ~1.5 GiB  full: no parent at destination',
      'would delete old snap  (not in source (-d))',
      '2 to send (~1.5 GiB), 1 to delete, 1 already there',
    ]);
  });

  test('a real run: plain verbs', () => {
    const lines = renderPlan(plan, false);
    assert.equal(lines[0], 'send daily/2  3 KiB  incremental from daily/1 (already at destination), vs full 1 GiB');
    assert.equal(lines[1], 'send daily/3  ~1.5 GiB  full: no parent at destination');
    assert.equal(lines[2], 'delete old snap  (not in source (-d))');
    assert.equal(lines[3], '2 to send (~1.5 GiB), 1 to delete, 1 already there');
  });

  test('an exact plan has no "~" in its total', () => {
    const exact: Plan = { ...plan, steps: [plan.steps[0]!], isExact: true, totalBytes: 3 * KiB, alreadyPresent: [d1, d3] };
    assert.deepEqual(renderPlan(exact, true), [
      'would send daily/2  3 KiB  incremental from daily/1 (already at destination), vs full 1 GiB',
      '1 to send (3 KiB), 0 to delete, 2 already there',
    ]);
  });

  test('an empty plan is just the summary', () => {
    const empty: Plan = { ...plan, steps: [], alreadyPresent: [], totalBytes: 0, isExact: true };
    assert.deepEqual(renderPlan(empty, true), ['0 to send (0 B), 0 to delete, 0 already there']);
  });
});

describe('planToJson', () => {
  test('stable field names, sizes in bytes, names for snapshots', () => {
    assert.deepEqual(planToJson(plan), {
      createdAt: '2026-11-28T23:43:34.000Z',
      totalBytes: 3 * KiB + 1.5 * GiB,
      isExact: false,
      alreadyPresent: ['daily/1'],
      keptForDependents: [],
      steps: [
        {
          kind: 'send',
          snapshot: 'daily/2',
          uuid: 'u-2',
          parent: 'daily/1',
          bytes: 3 * KiB,
          exact: true,
          reason: 'incremental from daily/1 (already at destination), vs full 1 GiB',
        },
        {
          kind: 'send',
          snapshot: 'daily/3',
          uuid: 'u-3',
          parent: null,
          bytes: 1.5 * GiB,
          exact: false,
          reason: 'full: no parent at destination',
        },
        { kind: 'delete', snapshot: 'old snap', uuid: 'u-old', reason: 'not in source (-d)' },
      ],
    });
  });

  test('survives JSON round trip unchanged', () => {
    const json = planToJson(plan);
    assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
  });
});
