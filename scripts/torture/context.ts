/** What every fault family of the campaign works with. */
import type { Tallies } from './results.js';
import type { World } from './world.js';

export const ALL_PATHS = ['local-local', 'local-s3', 's3-local', 'local-ssh', 'ssh-local', 'mount'] as const;
export type PathName = (typeof ALL_PATHS)[number];

/** The world (stores, data, checks) and the campaign's own state. */
export interface Campaign extends World {
  /** Seeded kill points per path (some faults run a quarter of that, at least 3). */
  readonly kills: number;
  readonly paths: readonly PathName[];
  /**
   * The campaign's seeded random numbers in [0, 1): one sequence for the whole campaign, so
   * that the families run in a fixed order make it reproducible from its seed.
   */
  readonly random: () => number;
  readonly tallies: Tallies;
  readonly state: {
    /** Numbers the fresh destinations (`d1/`, `p2/`, ...). */
    destinations: number;
    /** s3://torture/source/ holds the chain (for the s3-local path). */
    s3SourceUploaded: boolean;
    /** How long a clean copy of the chain through a mount took. */
    mountReferenceSeconds?: number;
  };
  log(message: string): void;
}

/** mulberry32: a small seeded PRNG, so a campaign is reproducible from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
