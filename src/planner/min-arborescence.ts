/**
 * Minimum-cost arborescence (directed minimum spanning tree), O(E log E).
 *
 * This is Tarjan's/Gabow's formulation of Chu–Liu/Edmonds, as in KACTL's DirectedMST:
 * walk from each node along its cheapest in-edge until the walk reaches the finished part
 * (or the root) or closes a cycle; a cycle is contracted into one super-node whose
 * in-edges are the members' remaining in-edges, each reduced by the cost of the member's
 * cycle edge. Mergeable heaps with a lazy "add to every key" make both the reduction and
 * the contraction cheap; a union-find with rollback lets us expand the contractions at
 * the end to recover which original edge enters each node.
 *
 * Nothing here recurses: leftist heaps keep right spines O(log E) and merge walks them in
 * a loop, so graphs with hundreds of thousands of nodes are fine on the JS stack.
 */

export interface WeightedEdge {
  readonly from: number;
  readonly to: number;
  readonly cost: number;
}

export interface Arborescence {
  /** For every node, the index in `edges` of its chosen in-edge; -1 for the root and unreachable nodes. */
  readonly inEdge: readonly number[];
  /** Sum of the chosen edges' costs. */
  readonly totalCost: number;
  /** Nodes that no path from the root reaches, ascending. They are left out of the tree. */
  readonly unreachable: readonly number[];
}

const NONE = -1;

/**
 * Finds the cheapest set of edges that gives every node reachable from `root` exactly one
 * in-edge, such that following in-edges from any node leads to `root`.
 *
 * Deterministic: among equally cheap choices the lower edge index wins each comparison,
 * so the same input always yields the same tree. Edges into the root and self-loops are
 * never chosen. Costs may be any finite numbers; integer costs below 2^53 stay exact.
 */
export function minArborescence(nodeCount: number, root: number, edges: readonly WeightedEdge[]): Arborescence {
  checkInput(nodeCount, root, edges);
  const reachable = reachableFrom(nodeCount, root, edges);

  const heaps = new LazyLeftistHeaps(edges.map((e) => e.cost));
  // heapOf[r]: in-edges of the super-node whose union-find representative is r.
  const heapOf = new Int32Array(nodeCount).fill(NONE);
  edges.forEach((e, i) => {
    if (e.to === root || e.from === e.to || !reachable[e.from]) return;
    heapOf[e.to] = heaps.merge(heapOf[e.to]!, i);
  });

  const uf = new RollbackUnionFind(nodeCount);
  // seen[r]: the walk (its start node) that gave super-node r its in-edge; NONE while it has none.
  const seen = new Int32Array(nodeCount).fill(NONE);
  for (let v = 0; v < nodeCount; v++) if (v === root || !reachable[v]) seen[v] = v;

  const inEdge = new Int32Array(nodeCount).fill(NONE);
  const pathNode = new Int32Array(nodeCount);
  const pathEdge = new Int32Array(nodeCount);
  const contractions: Contraction[] = [];

  for (let start = 0; start < nodeCount; start++) {
    let depth = 0;
    let u = start;
    while (seen[u] === NONE) {
      const edge = popCheapestEntering(u);
      pathNode[depth] = u;
      pathEdge[depth] = edge;
      depth++;
      seen[u] = start;
      u = uf.find(edges[edge]!.from);
      if (seen[u] !== start) continue;

      // The walk closed a cycle: fold its nodes (the path from u to the end) into one.
      const end = depth;
      const time = uf.time();
      let merged = NONE;
      let member: number;
      do {
        member = pathNode[--depth]!;
        merged = heaps.merge(merged, heapOf[member]!);
      } while (uf.join(u, member));
      u = uf.find(u);
      heapOf[u] = merged;
      seen[u] = NONE; // the super-node still needs an in-edge: the walk continues from it
      contractions.push({ representative: u, time, cycleEdges: pathEdge.slice(depth, end) });
    }
    for (let i = 0; i < depth; i++) inEdge[pathNode[i]!] = pathEdge[i]!;
  }

  // Expand the newest contraction first: the edge entering a super-node enters one member,
  // which keeps it; every other member keeps its cycle edge.
  for (let c = contractions.length - 1; c >= 0; c--) {
    const { representative, time, cycleEdges } = contractions[c]!;
    uf.rollback(time);
    const entering = inEdge[representative]!;
    for (const e of cycleEdges) inEdge[uf.find(edges[e]!.to)] = e;
    inEdge[uf.find(edges[entering]!.to)] = entering;
  }

  let totalCost = 0;
  const unreachable: number[] = [];
  for (let v = 0; v < nodeCount; v++) {
    if (inEdge[v] !== NONE) totalCost += edges[inEdge[v]!]!.cost;
    else if (!reachable[v]) unreachable.push(v);
  }
  return { inEdge: Array.from(inEdge), totalCost, unreachable };

  /** Takes the cheapest edge entering super-node `u` from outside, and makes the rest relative to it. */
  function popCheapestEntering(u: number): number {
    let top = heapOf[u]!;
    // Edges from inside the super-node are leftovers of earlier contractions: drop them.
    while (top !== NONE && uf.find(edges[top]!.from) === u) top = heaps.pop(top);
    // Cannot happen: every reachable super-node has an edge from outside it.
    if (top === NONE) throw new Error(`minArborescence: node ${u} has no in-edge left`);
    const cost = heaps.key(top);
    const rest = heaps.pop(top);
    // Choosing another edge later means swapping this one out: only the difference counts.
    heaps.addToAll(rest, -cost);
    heapOf[u] = rest;
    return top;
  }
}

interface Contraction {
  readonly representative: number;
  /** Union-find time before the cycle's joins, to undo them. */
  readonly time: number;
  readonly cycleEdges: Int32Array;
}

function checkInput(nodeCount: number, root: number, edges: readonly WeightedEdge[]): void {
  if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new RangeError(`nodeCount must be a positive integer, got ${nodeCount}`);
  const isNode = (v: number): boolean => Number.isInteger(v) && v >= 0 && v < nodeCount;
  if (!isNode(root)) throw new RangeError(`root ${root} is not a node`);
  edges.forEach((e, i) => {
    if (!isNode(e.from) || !isNode(e.to)) throw new RangeError(`edge ${i} (${e.from} -> ${e.to}) names a missing node`);
    if (!Number.isFinite(e.cost)) throw new RangeError(`edge ${i} has cost ${e.cost}`);
  });
}

/** Breadth-first search over the edges; `result[v]` is true when a path root -> v exists. */
function reachableFrom(nodeCount: number, root: number, edges: readonly WeightedEdge[]): Uint8Array {
  // Adjacency in compressed-row form: out-edges of v are targets[start[v] .. start[v + 1]).
  const start = new Int32Array(nodeCount + 1);
  for (const e of edges) start[e.from + 1]!++;
  for (let v = 0; v < nodeCount; v++) start[v + 1]! += start[v]!;
  const fill = start.slice(0, nodeCount);
  const targets = new Int32Array(edges.length);
  for (const e of edges) targets[fill[e.from]!++] = e.to;

  const reached = new Uint8Array(nodeCount);
  const queue = new Int32Array(nodeCount);
  let head = 0;
  let tail = 0;
  reached[root] = 1;
  queue[tail++] = root;
  while (head < tail) {
    const v = queue[head++]!;
    for (let i = start[v]!; i < start[v + 1]!; i++) {
      const w = targets[i]!;
      if (!reached[w]) {
        reached[w] = 1;
        queue[tail++] = w;
      }
    }
  }
  return reached;
}

/**
 * A forest of min-heaps (leftist trees) over items 0..n-1, ordered by (key, item), with a
 * lazy "add d to every key of this heap". A heap is named by its root item; NONE is empty.
 */
class LazyLeftistHeaps {
  readonly #key: Float64Array;
  /** Pending addition for the item and its whole subtree, not yet applied to `#key`. */
  readonly #pending: Float64Array;
  readonly #left: Int32Array;
  readonly #right: Int32Array;
  /** Length of the right spine (null path length); the left child's is never shorter. */
  readonly #rank: Int32Array;
  readonly #spine: number[] = [];

  constructor(keys: readonly number[]) {
    const n = keys.length;
    this.#key = Float64Array.from(keys);
    this.#pending = new Float64Array(n);
    this.#left = new Int32Array(n).fill(NONE);
    this.#right = new Int32Array(n).fill(NONE);
    this.#rank = new Int32Array(n).fill(1);
  }

  /** The current key of `top`, which must be a heap's root. */
  key(top: number): number {
    this.#push(top);
    return this.#key[top]!;
  }

  addToAll(heap: number, delta: number): void {
    if (heap !== NONE) this.#pending[heap]! += delta;
  }

  /** Removes the root of `heap`; returns the remaining heap. */
  pop(heap: number): number {
    this.#push(heap);
    return this.merge(this.#left[heap]!, this.#right[heap]!);
  }

  /** Merges two heaps (either may be NONE or a single fresh item); returns the new root. */
  merge(a: number, b: number): number {
    // Walk down the right spines, always keeping the smaller root, and remember the path.
    const spine = this.#spine;
    spine.length = 0;
    while (a !== NONE && b !== NONE) {
      this.#push(a);
      this.#push(b);
      if (this.#less(b, a)) {
        const t = a;
        a = b;
        b = t;
      }
      spine.push(a);
      a = this.#right[a]!;
    }
    // Hang the rest under the path bottom-up, restoring the leftist property on the way.
    let merged = a === NONE ? b : a;
    for (let i = spine.length - 1; i >= 0; i--) {
      const node = spine[i]!;
      const left = this.#left[node]!;
      if (this.#rankOf(left) < this.#rankOf(merged)) {
        this.#left[node] = merged;
        this.#right[node] = left;
      } else {
        this.#right[node] = merged;
      }
      this.#rank[node] = this.#rankOf(this.#right[node]!) + 1;
      merged = node;
    }
    return merged;
  }

  #rankOf(item: number): number {
    return item === NONE ? 0 : this.#rank[item]!;
  }

  #less(a: number, b: number): boolean {
    const ka = this.#key[a]!;
    const kb = this.#key[b]!;
    return ka < kb || (ka === kb && a < b);
  }

  /** Applies the item's pending addition to its key and hands it down to its children. */
  #push(item: number): void {
    const delta = this.#pending[item]!;
    if (delta === 0) return;
    this.#key[item]! += delta;
    const left = this.#left[item]!;
    const right = this.#right[item]!;
    if (left !== NONE) this.#pending[left]! += delta;
    if (right !== NONE) this.#pending[right]! += delta;
    this.#pending[item] = 0;
  }
}

/** Union by size without path compression, so that joins can be undone in reverse order. */
class RollbackUnionFind {
  /** Parent, or minus the set size for a representative. */
  readonly #parent: Int32Array;
  /** (slot, previous value) pairs, flattened, newest last. */
  readonly #history: number[] = [];

  constructor(n: number) {
    this.#parent = new Int32Array(n).fill(-1);
  }

  find(x: number): number {
    while (this.#parent[x]! >= 0) x = this.#parent[x]!;
    return x;
  }

  time(): number {
    return this.#history.length;
  }

  /** Undoes every join made after `time()` returned `time`. */
  rollback(time: number): void {
    while (this.#history.length > time) {
      const previous = this.#history.pop()!;
      const slot = this.#history.pop()!;
      this.#parent[slot] = previous;
    }
  }

  /** Joins the sets of `a` and `b`; false when they were one set already. */
  join(a: number, b: number): boolean {
    a = this.find(a);
    b = this.find(b);
    if (a === b) return false;
    if (this.#parent[a]! > this.#parent[b]!) {
      const t = a;
      a = b;
      b = t;
    }
    this.#history.push(a, this.#parent[a]!, b, this.#parent[b]!);
    this.#parent[a]! += this.#parent[b]!;
    this.#parent[b] = a;
    return true;
  }
}
