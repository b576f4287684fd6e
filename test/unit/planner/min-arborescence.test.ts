import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { minArborescence, type WeightedEdge } from '../../../src/planner/min-arborescence.js';

const e = (from: number, to: number, cost: number): WeightedEdge => ({ from, to, cost });

/** Checks that `inEdge` is an arborescence of the reachable nodes: one in-edge each, no cycles. */
function assertArborescence(
  nodeCount: number,
  root: number,
  edges: readonly WeightedEdge[],
  inEdge: readonly number[],
  unreachable: readonly number[],
): void {
  const unreached = new Set(unreachable);
  for (let v = 0; v < nodeCount; v++) {
    if (v === root || unreached.has(v)) {
      assert.equal(inEdge[v], -1, `node ${v} must have no in-edge`);
      continue;
    }
    assert.equal(edges[inEdge[v]!]?.to, v, `node ${v} needs an in-edge`);
    // Following in-edges must reach the root within nodeCount steps.
    let u = v;
    for (let steps = 0; u !== root; steps++) {
      assert.ok(steps < nodeCount, `cycle through node ${v}`);
      u = edges[inEdge[u]!]!.from;
    }
  }
}

/** Minimum cost by trying every in-edge choice; only for tiny graphs. */
function bruteForceCost(nodeCount: number, root: number, edges: readonly WeightedEdge[], unreachable: readonly number[]): number {
  const unreached = new Set(unreachable);
  const nodes = [...Array(nodeCount).keys()].filter((v) => v !== root && !unreached.has(v));
  const options = nodes.map((v) => edges.filter((x) => x.to === v && x.from !== v && !unreached.has(x.from)));
  const parent = new Map<number, number>();
  let best = Infinity;
  const choose = (i: number, cost: number): void => {
    if (i === nodes.length) {
      const acyclic = nodes.every((v) => {
        let u = v;
        for (let steps = 0; u !== root; steps++) {
          if (steps > nodeCount) return false;
          u = parent.get(u)!;
        }
        return true;
      });
      if (acyclic) best = Math.min(best, cost);
      return;
    }
    for (const x of options[i]!) {
      parent.set(nodes[i]!, x.from);
      choose(i + 1, cost + x.cost);
    }
  };
  choose(0, 0);
  return nodes.length === 0 ? 0 : best;
}

/** Textbook O(V·E) Chu–Liu/Edmonds, cost only: an independent reference for mid-size graphs. */
function edmondsCost(nodeCount: number, root: number, edges: readonly WeightedEdge[]): number {
  let n = nodeCount;
  let r = root;
  let current = edges.filter((x) => x.from !== x.to);
  let total = 0;
  for (;;) {
    const minIn = new Array<number>(n).fill(Infinity);
    const pre = new Array<number>(n).fill(-1);
    for (const x of current) {
      if (x.to !== r && x.cost < minIn[x.to]!) {
        minIn[x.to] = x.cost;
        pre[x.to] = x.from;
      }
    }
    const id = new Array<number>(n).fill(-1);
    const mark = new Array<number>(n).fill(-1);
    let cycles = 0;
    minIn[r] = 0;
    for (let v = 0; v < n; v++) {
      total += minIn[v]!;
      let u = v;
      while (mark[u] !== v && id[u] === -1 && u !== r) {
        mark[u] = v;
        u = pre[u]!;
      }
      if (u !== r && id[u] === -1) {
        for (let w = pre[u]!; w !== u; w = pre[w]!) id[w] = cycles;
        id[u] = cycles++;
      }
    }
    if (cycles === 0) return total;
    for (let v = 0; v < n; v++) if (id[v] === -1) id[v] = cycles++;
    current = current.map((x) => ({ from: id[x.from]!, to: id[x.to]!, cost: x.cost - minIn[x.to]! })).filter((x) => x.from !== x.to);
    n = cycles;
    r = id[r]!;
  }
}

/** Random graphs whose nodes are all reachable from node 0 (a spanning path of root edges is added). */
const graphs = (maxNodes: number, maxEdges: number) =>
  fc.integer({ min: 1, max: maxNodes }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(fc.record({ from: fc.nat(n - 1), to: fc.nat(n - 1), cost: fc.integer({ min: 0, max: 20 }) }), {
        maxLength: maxEdges,
      }),
    }),
  );

describe('minArborescence', () => {
  test('takes the cheapest in-edges when they form no cycle', () => {
    const edges = [e(0, 1, 5), e(0, 2, 1), e(2, 1, 2), e(1, 3, 1), e(2, 3, 7)];
    const result = minArborescence(4, 0, edges);
    assert.deepEqual(result.inEdge, [-1, 2, 1, 3]);
    assert.equal(result.totalCost, 4);
    assert.deepEqual(result.unreachable, []);
  });

  test('breaks a cycle of cheapest edges at its cheapest entry', () => {
    // 1 <-> 2 cost 1 both ways; entering at 1 costs 10, at 2 costs 11.
    const edges = [e(0, 1, 10), e(0, 2, 11), e(1, 2, 1), e(2, 1, 1)];
    const result = minArborescence(3, 0, edges);
    assert.deepEqual(result.inEdge, [-1, 0, 2]);
    assert.equal(result.totalCost, 11);
  });

  test('enters a cycle where the entry minus the dropped cycle edge is cheapest', () => {
    // Cheapest entry is 0 -> 2 (8), but it drops 1 -> 2 (1) and keeps 2 -> 1 (5): 13.
    // Entering at 1 (10) keeps 1 -> 2 (1): 11.
    const edges = [e(0, 1, 10), e(0, 2, 8), e(1, 2, 1), e(2, 1, 5)];
    const result = minArborescence(3, 0, edges);
    assert.deepEqual(result.inEdge, [-1, 0, 2]);
    assert.equal(result.totalCost, 11);
  });

  test('expands nested contractions', () => {
    // Cycle 1-2-3, then the contracted node forms a cycle with 4; the only way in is 0 -> 4.
    const edges = [e(1, 2, 1), e(2, 3, 1), e(3, 1, 1), e(4, 1, 2), e(2, 4, 2), e(0, 4, 50), e(0, 3, 100)];
    const result = minArborescence(5, 0, edges);
    assertArborescence(5, 0, edges, result.inEdge, result.unreachable);
    assert.equal(result.totalCost, 50 + 2 + 1 + 1);
    assert.deepEqual(result.inEdge, [-1, 3, 0, 1, 5]);
  });

  test('reports nodes the root cannot reach, including ones reached only from them', () => {
    const edges = [e(0, 1, 1), e(2, 3, 1), e(3, 2, 1), e(3, 1, 0), e(1, 0, 1)];
    const result = minArborescence(5, 0, edges);
    assert.deepEqual(result.unreachable, [2, 3, 4]);
    assert.deepEqual(result.inEdge, [-1, 0, -1, -1, -1]);
    assert.equal(result.totalCost, 1);
  });

  test('handles a single node and no edges', () => {
    assert.deepEqual(minArborescence(1, 0, []), { inEdge: [-1], totalCost: 0, unreachable: [] });
  });

  test('rejects edges naming missing nodes', () => {
    assert.throws(() => minArborescence(2, 0, [e(0, 2, 1)]), RangeError);
    assert.throws(() => minArborescence(2, 5, []), RangeError);
  });

  test('does not overflow the stack on a huge cycle', () => {
    // 1 -> 2 -> ... -> N -> 1 all cost 1, plus expensive root edges: one giant contraction.
    const n = 200_000;
    const edges: WeightedEdge[] = [];
    for (let v = 1; v < n; v++) edges.push(e(v, (v % (n - 1)) + 1, 1), e(0, v, 1000 + v));
    const result = minArborescence(n, 0, edges);
    assert.equal(result.totalCost, 1001 + (n - 2));
    assert.equal(result.inEdge[1], 1); // entered at node 1 from the root
  });

  test('is optimal: matches brute force on small graphs', () => {
    fc.assert(
      fc.property(graphs(6, 16), ({ n, edges }) => {
        const result = minArborescence(n, 0, edges);
        assertArborescence(n, 0, edges, result.inEdge, result.unreachable);
        assert.equal(result.totalCost, bruteForceCost(n, 0, edges, result.unreachable));
      }),
      { numRuns: 1000 },
    );
  });

  test('is optimal: matches textbook Edmonds on mid-size graphs', () => {
    fc.assert(
      fc.property(graphs(40, 200), ({ n, edges }) => {
        // Root edges to everything keep the reference simple (it assumes all nodes reachable).
        const all = [...edges, ...Array.from({ length: n - 1 }, (_, i) => e(0, i + 1, 1000))];
        const result = minArborescence(n, 0, all);
        assertArborescence(n, 0, all, result.inEdge, result.unreachable);
        assert.deepEqual(result.unreachable, []);
        assert.equal(result.totalCost, edmondsCost(n, 0, all));
      }),
      { numRuns: 300 },
    );
  });
});
