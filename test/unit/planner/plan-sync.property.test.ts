/**
 * Properties of planSync over random inventories, checked against a brute-force planner
 * written straight from the specification (no graphs, no arborescences).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isCorrelated, type Snapshot } from '../../../src/model/snapshot.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import type { CandidateEdge, PlanInput } from '../../../src/planner/plan-types.js';
import { NOW, sendSteps } from './scenario.js';

function snap(name: string, uuid: string, receivedUuid: string | null, gen: number): Snapshot {
  return { name, uuid, parentUuid: null, receivedUuid, generation: gen, creationGeneration: gen, createdAt: null };
}

/**
 * Random inventories. Source snapshot i has UUID `s<i>`, sometimes a received UUID from a
 * small pool (so several can share one); the destination holds copies of some of them plus
 * strays whose received UUIDs may or may not match anything. Names collide on purpose.
 */
const inputs = (maxSources: number) =>
  fc.noBias(fc.integer({ min: 0, max: maxSources })).chain((n) =>
    fc
      .record({
        sources: fc.array(
          fc.record({
            // Mostly snapshots made at the source, a few received ones sharing an origin.
            origin: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(3) }),
            copied: fc.nat(2).map((k) => k === 0),
            gen: fc.nat(4),
          }),
          { minLength: n, maxLength: n },
        ),
        strays: fc.array(fc.record({ name: fc.nat(n + 1), received: fc.option(fc.nat(n + 2), { nil: null }) }), { maxLength: 3 }),
        // Indexes 0..n-1 name source snapshots; n and n+1 an unknown UUID and a destination UUID.
        edges: fc.array(
          fc.record({
            to: fc.oneof({ weight: 9, arbitrary: fc.nat(Math.max(n - 1, 0)) }, { weight: 1, arbitrary: fc.nat(n + 1) }),
            from: fc.option(fc.nat(n + 1), { nil: null, freq: 4 }),
            bytes: fc.integer({ min: 0, max: 30 }),
            exact: fc.boolean(),
          }),
          { minLength: n, maxLength: 5 * n, size: 'max' },
        ),
        delete: fc.boolean(),
        destinationStoresDiffs: fc.boolean(),
        chainLinkPenaltyBytes: fc.integer({ min: 0, max: 10 }),
      })
      .map((r): PlanInput => {
        const source = r.sources.map((s, i) => snap(`n${i}`, `s${i}`, s.origin === null ? null : `o${s.origin}`, s.gen));
        const copies = r.sources.flatMap((s, i) =>
          s.copied ? [snap(`n${i}`, `d${i}`, source[i]!.receivedUuid ?? source[i]!.uuid, s.gen)] : [],
        );
        // A stray's received UUID points at a source UUID, an origin, or nothing known.
        const strays = r.strays.map((x, j) =>
          snap(`n${x.name}`, `x${j}`, x.received === null ? null : x.received % 2 ? `s${x.received}` : `o${x.received}`, 0),
        );
        const uuid = (i: number): string => (i < n ? `s${i}` : i === n ? 'unknown' : 'x0');
        const edges: CandidateEdge[] = r.edges.map((x) => ({
          to: uuid(x.to),
          from: x.from === null ? null : uuid(x.from),
          bytes: x.bytes,
          exact: x.exact,
        }));
        const policy = {
          delete: r.delete,
          destinationStoresDiffs: r.destinationStoresDiffs,
          chainLinkPenaltyBytes: r.chainLinkPenaltyBytes,
        };
        return { source, destination: [...copies, ...strays], edges, policy, now: NOW };
      }),
  );

const isPresent = (input: PlanInput, s: Snapshot): boolean => input.destination.some((d) => isCorrelated(s, d));

/** The cost the planner minimizes, for one send. */
function sendCost(input: PlanInput, bytes: number, incremental: boolean): number {
  return bytes + (incremental && input.policy.destinationStoresDiffs ? input.policy.chainLinkPenaltyBytes : 0);
}

/**
 * The cheapest valid plan's cost and the snapshots no plan can send, by trying every
 * choice of edge for every needed snapshot. A choice is valid when each parent is either
 * at the destination or itself sent, and following parents never loops.
 */
function bruteForce(input: PlanInput): { cost: number; unreachable: Set<string> } {
  const needed = input.source.filter((s) => !isPresent(input, s));
  const neededUuids = new Set(needed.map((s) => s.uuid));
  const presentUuids = new Set(input.source.filter((s) => isPresent(input, s)).map((s) => s.uuid));
  const usable = (x: CandidateEdge): boolean =>
    neededUuids.has(x.to) && (x.from === null || presentUuids.has(x.from) || (neededUuids.has(x.from) && x.from !== x.to));

  // Sendable = reachable from "already there" through usable edges (a fixed point).
  const sendable = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const x of input.edges) {
      if (!usable(x) || sendable.has(x.to)) continue;
      if (x.from === null || presentUuids.has(x.from) || sendable.has(x.from)) {
        sendable.add(x.to);
        grew = true;
      }
    }
  }

  const nodes = [...sendable];
  const options = nodes.map((v) =>
    input.edges.filter((x) => x.to === v && usable(x) && (x.from === null || !neededUuids.has(x.from) || sendable.has(x.from))),
  );
  const parentOf = new Map<string, string | null>();
  let best = Infinity;
  const choose = (i: number, cost: number): void => {
    if (cost >= best) return;
    if (i === nodes.length) {
      const grounded = nodes.every((v) => {
        let u: string | null | undefined = v;
        for (let steps = 0; u !== null && u !== undefined && neededUuids.has(u); steps++) {
          if (steps > nodes.length) return false;
          u = parentOf.get(u);
        }
        return true;
      });
      if (grounded) best = cost;
      return;
    }
    for (const x of options[i]!) {
      parentOf.set(nodes[i]!, x.from);
      choose(i + 1, cost + sendCost(input, x.bytes, x.from !== null));
    }
  };
  choose(0, 0);
  return { cost: nodes.length === 0 ? 0 : best, unreachable: new Set(needed.map((s) => s.uuid).filter((u) => !sendable.has(u))) };
}

describe('planSync properties', () => {
  test('every parent is at the destination or sent by an earlier step', () => {
    fc.assert(
      fc.property(inputs(8), (input) => {
        const plan = planSync(input);
        const available = new Set(plan.alreadyPresent);
        for (const step of sendSteps(plan)) {
          if (step.parent) assert.ok(available.has(step.parent), `${step.snapshot.name} needs ${step.parent.name} first`);
          available.add(step.snapshot);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('never deletes a destination snapshot that a source snapshot correlates with', () => {
    fc.assert(
      fc.property(inputs(8), (input) => {
        const plan = planSync(input);
        const deleted = plan.steps.filter((s) => s.kind === 'delete').map((s) => s.snapshot);
        for (const d of deleted) assert.ok(!input.source.some((s) => isCorrelated(s, d)), `${d.uuid} is in use`);
        // ... and deletes everything else when asked to, after the sends.
        const expected = input.policy.delete ? input.destination.filter((d) => !input.source.some((s) => isCorrelated(s, d))) : [];
        assert.equal(deleted.length, expected.length);
        const firstDelete = plan.steps.findIndex((s) => s.kind === 'delete');
        if (firstDelete >= 0) assert.ok(plan.steps.slice(firstDelete).every((s) => s.kind === 'delete'));
      }),
      { numRuns: 500 },
    );
  });

  test('each needed snapshot is sent exactly once or reported unreachable, nothing else is sent', () => {
    fc.assert(
      fc.property(inputs(8), (input) => {
        const plan = planSync(input);
        const needed = input.source.filter((s) => !isPresent(input, s));
        const accounted = [...sendSteps(plan).map((s) => s.snapshot), ...plan.unreachable];
        assert.deepEqual(accounted.map((s) => s.uuid).sort(), needed.map((s) => s.uuid).sort());
        assert.deepEqual(
          plan.alreadyPresent,
          input.source.filter((s) => isPresent(input, s)),
        );
        assert.equal(
          plan.totalBytes,
          sendSteps(plan).reduce((sum, s) => sum + s.bytes, 0),
        );
      }),
      { numRuns: 500 },
    );
  });

  test('costs exactly as much as the brute-force optimum, and agrees on what is unreachable', () => {
    fc.assert(
      fc.property(inputs(6), (input) => {
        const plan = planSync(input);
        const expected = bruteForce(input);
        const cost = sendSteps(plan).reduce((sum, s) => sum + sendCost(input, s.bytes, s.parent !== null), 0);
        assert.equal(cost, expected.cost);
        assert.deepEqual(new Set(plan.unreachable.map((s) => s.uuid)), expected.unreachable);
      }),
      { numRuns: 1000 },
    );
  });

  test('does not depend on the order of the candidate edges', () => {
    fc.assert(
      fc.property(
        inputs(8).chain((input) => fc.tuple(fc.constant(input), fc.shuffledSubarray([...input.edges], { minLength: input.edges.length }))),
        ([input, shuffled]) => {
          assert.deepEqual(planSync({ ...input, edges: shuffled }), planSync(input));
        },
      ),
      { numRuns: 300 },
    );
  });
});
