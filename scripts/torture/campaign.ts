/**
 * The fault campaign as a function: drives real transfers through faults and checks, after
 * each, that nothing was lost and nothing incomplete ever looked complete; returns the tallies
 * as data. scripts/torture.ts is its command line; test/e2e/fault-campaign.test.ts runs a small
 * one. Needs root, btrfs, loop devices, FUSE, sshd (for the SSH paths) and s3rver, like the
 * integration tests.
 *
 * Everything lives in loop-device pools and a loopback S3 server under one temporary directory
 * (below BUTTERSINK_TEST_ROOT when set, which scripts/test sweeps even after a crash), removed
 * at the end, also on failure. The test support modules read BUTTERSINK_TEST_ROOT when first
 * loaded, so the campaign points it at that directory (restoring it at the end) and loads them,
 * and every family module that uses them, only then. In a process that loaded them before, its
 * pools and mounts go below that process's root instead; nothing is left behind either way.
 */
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { ALL_PATHS, rng, type Campaign, type PathName } from './context.js';
import { Tallies, type CampaignRow } from './results.js';
import { Teardown } from './teardown.js';

export { ALL_PATHS, type PathName } from './context.js';
export type { CampaignRow } from './results.js';

export interface CampaignOptions {
  /** Seeds every random choice: kill points, which snapshot, offsets (default 1). */
  readonly seed?: number;
  /** Seeded kill -9 points per path (default 20); SIGTERM, cuts and the like get a quarter, at least 3. */
  readonly kills?: number;
  /** Which paths, in this order (default all of ALL_PATHS). */
  readonly paths?: readonly PathName[];
  /** Progress, one message a call (default: `[torture HH:MM:SS] message` lines on stderr). */
  readonly log?: (message: string) => void;
  /**
   * Aborting takes everything down at once and then rejects with the signal's reason; the
   * campaign's own steps are not waited for (the command line exits right after).
   */
  readonly signal?: AbortSignal;
}

export interface CampaignResult {
  readonly seed: number;
  readonly kills: number;
  readonly paths: readonly PathName[];
  /** One row per path and fault, in the order they ran. */
  readonly rows: readonly CampaignRow[];
  /** Why the campaign stopped before its end (the error's stack): a setup step or a clean reference run failed. */
  readonly aborted?: string;
}

/** Every run of every row survived with nothing left behind, and the campaign ran to its end. */
export function survivedAll(result: CampaignResult): boolean {
  return result.aborted === undefined && result.rows.every((r) => r.survived === r.runs && r.partialsLeft === 0);
}

const logToStderr = (message: string): void => {
  process.stderr.write(`[torture ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};

export async function runCampaign(options: CampaignOptions = {}): Promise<CampaignResult> {
  const { seed = 1, kills = 20, paths = ALL_PATHS, log = logToStderr, signal } = options;
  signal?.throwIfAborted();
  const outerRoot = process.env.BUTTERSINK_TEST_ROOT;
  const work = mkdtempSync(path.join(outerRoot ?? '/tmp', 'buttersink-torture.'));
  process.env.BUTTERSINK_TEST_ROOT = work;
  const teardown = new Teardown(work, log);
  const tallies = new Tallies();

  const campaign = async (): Promise<CampaignResult> => {
    let aborted: string | undefined;
    try {
      // Only now: the test support puts its pools and servers below BUTTERSINK_TEST_ROOT.
      const [{ setUpWorld }, sync, ssh, s3, mount] = await Promise.all([
        import('./world.js'),
        import('./sync.js'),
        import('./ssh.js'),
        import('./s3.js'),
        import('./mount.js'),
      ]);
      const world = await setUpWorld(
        work,
        paths.some((p) => p.includes('ssh')),
        teardown,
      );
      const c: Campaign = { ...world, kills, paths, random: rng(seed), tallies, state: { destinations: 0, s3SourceUploaded: false }, log };
      log(`seed ${seed}, ${kills} kills per path, paths ${paths.join(', ')}`);
      if (paths.includes('mount')) await mount.mountFaults(c);
      for (const name of paths.filter((p) => p !== 'mount')) await sync.syncFaults(c, name);
      if (paths.includes('local-local')) {
        log('local-local: disk full');
        await sync.diskFull(c, 'local-local', (dir) => `${dir}/`);
      }
      for (const name of paths.filter((p): p is 'local-ssh' | 'ssh-local' => p.includes('ssh'))) await ssh.sshFaults(c, name);
      if (paths.includes('local-ssh')) await ssh.remoteDiskFull(c);
      if (paths.includes('local-s3')) await s3.uploadFaults(c);
      if (paths.includes('s3-local')) await s3.downloadFaults(c);
    } catch (error) {
      aborted = (error as Error).stack ?? String(error);
      log(`campaign aborted: ${aborted}`);
    } finally {
      await teardown.run();
    }
    return { seed, kills, paths, rows: tallies.rows(), ...(aborted === undefined ? {} : { aborted }) };
  };

  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    onAbort = () => void teardown.run().finally(() => reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([campaign(), stopped]);
  } finally {
    signal?.removeEventListener('abort', onAbort!);
    if (outerRoot === undefined) delete process.env.BUTTERSINK_TEST_ROOT;
    else process.env.BUTTERSINK_TEST_ROOT = outerRoot;
  }
}
