/**
 * Times planSync on a large inventory: 10,000 snapshots in a few lineages, each with a
 * full-send edge and about four diff candidates (its predecessors in the lineage and the
 * newest snapshot of a sibling lineage), with none or every other one at the destination.
 *
 *   node dist/scripts/bench-planner.js
 */
import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../src/model/snapshot.js';
import { planSync } from '../src/planner/plan-sync.js';
import type { CandidateEdge, PlanInput } from '../src/planner/plan-types.js';

const SNAPSHOTS = 10_000;
const LINEAGES = 5;
const RUNS = 9;
const MiB = 1024 * 1024;

function snapshot(lineage: number, index: number, generation: number): Snapshot {
  return {
    name: `vol${lineage}/${String(index).padStart(5, '0')}`,
    uuid: `src-${lineage}-${index}`,
    parentUuid: null,
    receivedUuid: null,
    generation,
    creationGeneration: generation,
    createdAt: null,
  };
}

function buildInput(presentEvery: number | null): PlanInput {
  const perLineage = SNAPSHOTS / LINEAGES;
  const lineages: Snapshot[][] = [];
  for (let l = 0; l < LINEAGES; l++) {
    lineages.push(Array.from({ length: perLineage }, (_, i) => snapshot(l, i, i * LINEAGES + l + 1)));
  }
  const source = lineages.flat();

  // Diff sizes grow with the distance between snapshots; a deterministic wobble gives ties and near-ties.
  const edges: CandidateEdge[] = [];
  for (let l = 0; l < LINEAGES; l++) {
    const lineage = lineages[l]!;
    lineage.forEach((s, i) => {
      edges.push({ to: s.uuid, from: null, bytes: 20_000 * MiB + ((i * 7919) % 1000) * MiB, exact: false });
      for (let back = 1; back <= 3 && i - back >= 0; back++) {
        edges.push({ to: s.uuid, from: lineage[i - back]!.uuid, bytes: back * 50 * MiB + ((i * 31 + back) % 97) * MiB, exact: true });
      }
      const sibling = lineages[(l + 1) % LINEAGES]![i];
      if (sibling) edges.push({ to: s.uuid, from: sibling.uuid, bytes: 5_000 * MiB + (i % 13) * MiB, exact: false });
    });
  }

  const destination =
    presentEvery === null
      ? []
      : source.filter((_, i) => i % presentEvery === 0).map((s): Snapshot => ({ ...s, uuid: `dst-${s.uuid}`, receivedUuid: s.uuid }));
  return {
    source,
    destination,
    edges,
    policy: { delete: true, destinationStoresDiffs: false, chainLinkPenaltyBytes: 0 },
    now: new Date(0),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

for (const [label, presentEvery] of [
  ['none present', null],
  ['half present', 2],
] as const) {
  const input = buildInput(presentEvery);
  planSync(input); // warm-up: let the JIT compile before timing
  const times: number[] = [];
  let sends = 0;
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    const plan = planSync(input);
    times.push(performance.now() - start);
    sends = plan.steps.filter((s) => s.kind === 'send').length;
  }
  console.log(
    `| planSync, ${SNAPSHOTS.toLocaleString('en')} snapshots, ${label} | ${input.edges.length.toLocaleString('en')} edges | ` +
      `${sends.toLocaleString('en')} sends | median ${median(times).toFixed(1)} ms of ${RUNS} runs |`,
  );
}
