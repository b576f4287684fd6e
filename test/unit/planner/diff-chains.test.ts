import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainDepths, chainIntermediates, type ChainLink } from '../../../src/planner/diff-chains.js';

// s1 full; s2 from s1; s3 from s2; s3 also full but huge; s4 from s3.
const links: ChainLink[] = [
  { to: 's1', from: null, bytes: 100 },
  { to: 's2', from: 's1', bytes: 10 },
  { to: 's3', from: 's2', bytes: 10 },
  { to: 's3', from: null, bytes: 1000 },
  { to: 's4', from: 's3', bytes: 10 },
];

test('restoring one snapshot brings the cheapest chain to it', () => {
  assert.deepEqual([...chainIntermediates(links, new Set(['s4']), new Set())].sort(), ['s1', 's2', 's3']);
});

test('a chain stops at what the destination has', () => {
  assert.deepEqual([...chainIntermediates(links, new Set(['s4']), new Set(['s2']))].sort(), ['s3']);
  assert.deepEqual([...chainIntermediates(links, new Set(['s4']), new Set(['s3']))], []);
});

test('a full stream cheaper than the chain wins', () => {
  const cheapFull: ChainLink[] = [...links.slice(0, 3), { to: 's3', from: null, bytes: 50 }, links[4]!];
  assert.deepEqual([...chainIntermediates(cheapFull, new Set(['s4']), new Set())], ['s3']);
});

test('wanted snapshots are not intermediates; unreachable ones add nothing', () => {
  assert.deepEqual([...chainIntermediates(links, new Set(['s2', 's4']), new Set())].sort(), ['s1', 's3']);
  assert.deepEqual([...chainIntermediates([{ to: 'x', from: 'missing', bytes: 1 }], new Set(['x']), new Set())], []);
});

test('depths count diffs from the nearest full stream', () => {
  const depth = chainDepths(links);
  assert.deepEqual(Object.fromEntries(depth), { s1: 0, s2: 1, s3: 0, s4: 1 });
  assert.equal(chainDepths([{ to: 'x', from: 'y', bytes: 1 }]).has('x'), false);
});
