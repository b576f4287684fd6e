/**
 * The two ends of each path, a fresh destination per run, and `attempt`: one run of a fault,
 * counted in its tally, its destination removed afterwards.
 */
import { mkdirSync } from 'node:fs';
import { createPool, sh } from '../../test/support/btrfs-pool.js';
import type { Campaign, PathName } from './context.js';
import { runCli } from './processes.js';
import type { Tally } from './results.js';
import { journalEntries, s3Keys, s3RestoreVerify, s3Verify } from './s3-checks.js';

export interface Endpoint {
  url: string;
  verify(expectAll: boolean): Promise<string | null>;
  partials(): number;
  state(): Promise<string>;
  deepVerify(): Promise<string | null>;
  dispose(): Promise<void>;
  /**
   * Waits for work the store's server finishes on its own after a client died: s3rver writes
   * objects in place, so while it still completes an upload whose client was killed, a listing
   * can show a half-written file (S3 itself completes atomically).
   */
  settle(): Promise<void>;
}

export function localDestination(c: Campaign): Endpoint {
  const dir = `${c.dst.mountPoint}/d${++c.state.destinations}`;
  mkdirSync(dir, { recursive: true });
  return {
    url: `${dir}/`,
    verify: async (all) => c.btrfsVerify(dir, all),
    partials: () => c.btrfsState(dir).partials.length,
    state: async () => sh(`btrfs subvolume list -u ${c.dst.mountPoint}`),
    deepVerify: async () => c.btrfsVerify(dir, true),
    settle: async () => {},
    // The pool holds a few chains at most: every destination is removed after its checks.
    dispose: async () => {
      const { complete, partials } = c.btrfsState(dir);
      for (const name of [...complete, ...partials].sort().reverse()) sh(`btrfs -q subvolume delete '${dir}/${name}'`);
      sh(`btrfs subvolume sync ${c.dst.mountPoint} && rm -rf '${dir}'`);
    },
  };
}

function s3Destination(c: Campaign): Endpoint {
  const prefix = `p${++c.state.destinations}/`;
  return {
    url: `s3://torture/${prefix}`,
    verify: (all) => s3Verify(c, prefix, all),
    partials: () => journalEntries(c, prefix),
    dispose: async () => {},
    settle: () => new Promise((resolve) => setTimeout(resolve, 1000)),
    state: async () => JSON.stringify(await s3Keys(c, '')),
    deepVerify: () => s3RestoreVerify(c, prefix),
  };
}

async function s3Source(c: Campaign): Promise<string> {
  if (!c.state.s3SourceUploaded) {
    const res = await runCli([`${c.snaps}/`, 's3://torture/source/'], c.baseEnv);
    if (res.code !== 0) throw new Error(`seeding s3://torture/source/ failed: ${res.stderr}`);
    c.state.s3SourceUploaded = true;
  }
  return 's3://torture/source/';
}

export async function pathEnds(c: Campaign, name: PathName): Promise<{ from: string; to: Endpoint }> {
  switch (name) {
    case 'local-local':
      return { from: `${c.snaps}/`, to: localDestination(c) };
    case 'local-s3':
      return { from: `${c.snaps}/`, to: s3Destination(c) };
    case 's3-local':
      return { from: await s3Source(c), to: localDestination(c) };
    case 'local-ssh': {
      const to = localDestination(c);
      return { from: `${c.snaps}/`, to: { ...to, url: `ssh://buttersink-test${to.url}` } };
    }
    case 'ssh-local':
      return { from: `ssh://buttersink-test${c.snaps}/`, to: localDestination(c) };
    case 'mount':
      return { from: `${c.snaps}/`, to: localDestination(c) };
  }
}

/**
 * One run of a fault on a fresh destination, removed afterwards. `body` returns null when
 * the run survived with its data verified, or what went wrong.
 */
export async function attempt(
  c: Campaign,
  t: Tally,
  name: PathName,
  body: (from: string, to: Endpoint) => Promise<{ problem: string | null; verified?: boolean; detail?: string }>,
): Promise<void> {
  const { from, to } = await pathEnds(c, name);
  t.runs += 1;
  const started = performance.now();
  try {
    const { problem, verified = true, detail } = await body(from, to);
    const how = detail === undefined ? '' : `; ${detail}`;
    c.log(
      `  ${name}: run ${t.runs} ${problem === null ? 'survived' : `FAILED: ${problem}`} (${((performance.now() - started) / 1000).toFixed(1)} s${how})`,
    );
    if (problem !== null) {
      t.notes.add(problem);
      return;
    }
    t.survived += 1;
    if (verified) t.verified += 1;
    t.partialsLeft += to.partials();
  } finally {
    await to.dispose();
  }
}

/**
 * One run into a small pool left with ~30 MiB free (the 60 MiB first snapshot cannot fit):
 * `act` transfers into the pool's `backup` directory and says what was wrong with how that
 * failed (null: a clear failure); then no partial may be left and the source must be untouched.
 */
export async function fullPoolRun(c: Campaign, t: Tally, act: (backup: string) => Promise<string | null>): Promise<void> {
  const small = createPool(160);
  try {
    sh(
      'avail=$(df --output=avail -BM . | tail -n 1 | tr -dc 0-9); dd if=/dev/urandom of=filler bs=1M count=$((avail - 30)) status=none; sync',
      small.mountPoint,
    );
    mkdirSync(`${small.mountPoint}/backup`);
    const before = c.sourceState();
    t.runs += 1;
    const problem = await act(`${small.mountPoint}/backup`);
    const partials = sh(`btrfs subvolume list ${small.mountPoint}`)
      .split('\n')
      .filter((l) => l.includes('backup/')).length;
    if (problem !== null) t.notes.add(problem);
    else if (partials !== 0) t.notes.add(`${partials} subvolumes left in the full pool`);
    else if (c.sourceState() !== before) t.notes.add('the source changed');
    else {
      t.survived += 1;
      t.verified += 1;
    }
  } finally {
    small.destroy();
  }
}
