import { CorrelationIndex, type Snapshot } from '../model/snapshot.js';
import { formatBytes } from '../util/format-bytes.js';
import { minArborescence } from './min-arborescence.js';
import type { CandidateEdge, DeleteStep, NameConflict, Plan, PlanInput, PlanPolicy, SendStep } from './plan-types.js';

/** Graph node 0 is the virtual root; needed snapshot i is node i + 1. */
const ROOT = 0;

/**
 * Decides what to send (and delete) to make the destination hold the source's snapshots,
 * moving as few bytes as possible. Pure: no I/O, no clock, no randomness.
 *
 * The choice of parents is a minimum-cost arborescence: one node per needed snapshot plus
 * a virtual root standing for "what the destination already has". A full stream, or a diff
 * from a snapshot the destination already holds, is an edge from the root; a diff from
 * another needed snapshot is an edge from that snapshot, which must then be sent first.
 * The cheapest tree over these edges is the cheapest valid plan.
 */
export function planSync(input: PlanInput): Plan {
  const { present, needed } = classify(input);
  const graph = buildGraph(input, present, needed);
  const tree = minArborescence(needed.length + 1, ROOT, graph);

  const chosen = (node: number): GraphEdge | undefined => graph[tree.inEdge[node]!];
  const runnerUp = runnersUp(graph, tree.inEdge);
  const sends: SendStep[] = sendOrder(needed, chosen).map((node) => {
    const edge = chosen(node)!;
    return {
      kind: 'send',
      snapshot: needed[node - 1]!,
      parent: edge.parent,
      bytes: edge.candidate.bytes,
      exact: edge.candidate.exact,
      reason: sendReason(edge, graph[runnerUp[node]!], input.policy),
    };
  });

  return {
    steps: [...sends, ...deletes(input)],
    alreadyPresent: present,
    unreachable: tree.unreachable.map((node) => needed[node - 1]!),
    conflicts: conflicts(input.destination, needed),
    totalBytes: sends.reduce((sum, s) => sum + s.bytes, 0),
    isExact: sends.every((s) => s.exact),
    createdAt: input.now,
  };
}

/** How a send would get its data onto the destination. */
type Via = 'full' | 'present parent' | 'parent sent earlier';

interface GraphEdge {
  readonly from: number;
  readonly to: number;
  /** Bytes plus the chain-link penalty; what the tree minimizes. */
  readonly cost: number;
  readonly candidate: CandidateEdge;
  /** Source-side parent, null for a full stream. */
  readonly parent: Snapshot | null;
  readonly via: Via;
}

/** Splits the source into snapshots the destination holds already and those it needs. */
function classify(input: PlanInput): { present: Snapshot[]; needed: Snapshot[] } {
  const atDestination = new CorrelationIndex(input.destination);
  const present: Snapshot[] = [];
  const needed: Snapshot[] = [];
  for (const s of input.source) (atDestination.has(s) ? present : needed).push(s);
  return { present, needed };
}

/**
 * Turns candidate edges into graph edges, dropping the ones that cannot be used: unknown
 * UUIDs, targets that are not needed, self-loops, parents neither present nor needed.
 * Sorted by cost, then exact before estimated, then by content, so that ties resolve the
 * same way whatever order the candidates came in.
 */
function buildGraph(input: PlanInput, present: readonly Snapshot[], needed: readonly Snapshot[]): GraphEdge[] {
  // Source UUIDs are unique within one filesystem; if not, the first snapshot owns the UUID.
  const nodeOf = new Map<string, number>();
  needed.forEach((s, i) => {
    if (!nodeOf.has(s.uuid)) nodeOf.set(s.uuid, i + 1);
  });
  const presentByUuid = new Map<string, Snapshot>();
  for (const s of present) if (!presentByUuid.has(s.uuid)) presentByUuid.set(s.uuid, s);
  const penalty = input.policy.destinationStoresDiffs ? input.policy.chainLinkPenaltyBytes : 0;

  const graph: GraphEdge[] = [];
  for (const candidate of input.edges) {
    if (!(Number.isFinite(candidate.bytes) && candidate.bytes >= 0)) {
      throw new RangeError(`edge to ${candidate.to} has size ${candidate.bytes}`);
    }
    const to = nodeOf.get(candidate.to);
    if (to === undefined) continue;
    if (candidate.from === null) {
      graph.push({ from: ROOT, to, cost: candidate.bytes, candidate, parent: null, via: 'full' });
      continue;
    }
    if (candidate.from === candidate.to) continue;
    const cost = candidate.bytes + penalty;
    const presentParent = presentByUuid.get(candidate.from);
    if (presentParent) {
      graph.push({ from: ROOT, to, cost, candidate, parent: presentParent, via: 'present parent' });
      continue;
    }
    const from = nodeOf.get(candidate.from);
    if (from !== undefined) {
      graph.push({ from, to, cost, candidate, parent: needed[from - 1]!, via: 'parent sent earlier' });
    }
  }
  return graph.sort(
    (a, b) =>
      a.cost - b.cost ||
      Number(b.candidate.exact) - Number(a.candidate.exact) ||
      compareStrings(a.candidate.to, b.candidate.to) ||
      compareStrings(a.candidate.from ?? '', b.candidate.from ?? ''),
  );
}

/**
 * For each node, the cheapest edge into it that uses another parent than the chosen one
 * (index, or -1). A second candidate for the same parent is no real alternative.
 */
function runnersUp(graph: readonly GraphEdge[], inEdge: readonly number[]): Int32Array {
  const result = new Int32Array(inEdge.length).fill(-1);
  // The graph is sorted by cost: the first such edge met for a node is its runner-up.
  graph.forEach((edge, i) => {
    const chosen = graph[inEdge[edge.to]!];
    if (result[edge.to] === -1 && chosen && edge.parent !== chosen.parent) result[edge.to] = i;
  });
  return result;
}

/**
 * Nodes in the tree, parents before children; among the nodes ready to go, the oldest
 * (creation generation, then name) first, so the plan reads like the source's history.
 */
function sendOrder(needed: readonly Snapshot[], chosen: (node: number) => GraphEdge | undefined): number[] {
  const children: number[][] = Array.from({ length: needed.length + 1 }, () => []);
  for (let node = 1; node <= needed.length; node++) {
    const edge = chosen(node);
    if (edge) children[edge.from]!.push(node);
  }
  const ready = new MinQueue<number>((a, b) => compareSnapshots(needed[a - 1]!, needed[b - 1]!));
  for (const node of children[ROOT]!) ready.push(node);
  const order: number[] = [];
  for (let node = ready.pop(); node !== undefined; node = ready.pop()) {
    order.push(node);
    for (const child of children[node]!) ready.push(child);
  }
  return order;
}

/** One line on why this parent: what was chosen and what the best other option was. */
function sendReason(chosen: GraphEdge, runnerUp: GraphEdge | undefined, policy: PlanPolicy): string {
  const head =
    chosen.parent === null
      ? 'full'
      : `incremental from ${chosen.parent.name} (${chosen.via === 'present parent' ? 'already at destination' : 'sent earlier in this run'})`;
  if (!runnerUp) return chosen.parent === null ? 'full: no related snapshot at destination' : head;

  const other = `${describe(runnerUp)} (${sizeOf(runnerUp.candidate)})`;
  if (runnerUp.cost <= chosen.cost) {
    // Only the tree as a whole explains it, e.g. the cheaper parent would itself need this one.
    return `${head}: ${other} is not cheaper overall`;
  }
  if (runnerUp.candidate.bytes <= chosen.candidate.bytes) {
    return `${head}: ${other} is not worth its chain-link penalty of ${formatBytes(policy.chainLinkPenaltyBytes)}`;
  }
  return `${head}, vs ${describe(runnerUp)} ${sizeOf(runnerUp.candidate)}`;
}

/** An edge's size as the reason shows it: a lower bound says so. */
function sizeOf(candidate: CandidateEdge): string {
  return candidate.atLeast === true ? `over ${formatBytes(candidate.bytes)}` : formatBytes(candidate.bytes);
}

function describe(edge: GraphEdge): string {
  return edge.parent ? `incremental from ${edge.parent.name}` : 'full';
}

/** With `-d`: destination snapshots that no source snapshot correlates with, by name. */
function deletes(input: PlanInput): DeleteStep[] {
  if (!input.policy.delete) return [];
  const inSource = new CorrelationIndex(input.source);
  return input.destination
    .filter((d) => !inSource.has(d))
    .sort((a, b) => compareStrings(a.name, b.name))
    .map((snapshot) => ({ kind: 'delete', snapshot, reason: 'not in source' }));
}

/**
 * Needed snapshots whose name is taken at the destination by other data. A needed snapshot
 * correlates with no destination snapshot, so every namesake there is a conflict.
 */
function conflicts(destination: readonly Snapshot[], needed: readonly Snapshot[]): NameConflict[] {
  const byName = new Map<string, Snapshot[]>();
  for (const d of destination) {
    const list = byName.get(d.name);
    if (list) list.push(d);
    else byName.set(d.name, [d]);
  }
  return needed.flatMap((source) => (byName.get(source.name) ?? []).map((dest) => ({ source, destination: dest })));
}

function compareSnapshots(a: Snapshot, b: Snapshot): number {
  return a.creationGeneration - b.creationGeneration || compareStrings(a.name, b.name) || compareStrings(a.uuid, b.uuid);
}

/** Code-unit order: unlike localeCompare, the same on every machine. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A binary min-heap; just enough for ordering the sends. */
class MinQueue<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  push(item: T): void {
    const items = this.#items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(items[parent]!, item) <= 0) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.#compare(items[child + 1]!, items[child]!) < 0) child++;
      if (this.#compare(last, items[child]!) <= 0) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
