import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A btrfs filesystem on a loop device, mounted in a temporary directory. */
export interface BtrfsPool {
  readonly mountPoint: string;
  /** Unmounts (the loop device is autoclear, so it goes too) and removes the image. Idempotent. */
  destroy(): void;
}

const live = new Set<BtrfsPool>();
// Last line of defence: a test that crashed still unmounts its pools on exit.
process.once('exit', () => {
  for (const pool of live) pool.destroy();
});

/** Root for every pool of this test process; .ci/run also sweeps it after the run. */
export const POOL_ROOT = process.env.BUTTERSINK_TEST_ROOT ?? path.join(os.tmpdir(), 'buttersink-test');

export function createPool(sizeMiB = 256): BtrfsPool {
  mkdirSync(POOL_ROOT, { recursive: true });
  const dir = mkdtempSync(path.join(POOL_ROOT, 'pool-'));
  const image = path.join(dir, 'image');
  const mountPoint = path.join(dir, 'mnt');
  mkdirSync(mountPoint);
  execFileSync('truncate', ['-s', `${sizeMiB}M`, image]);
  execFileSync('mkfs.btrfs', ['-q', image], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  let destroyed = false;
  const pool: BtrfsPool = {
    mountPoint,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(pool);
      // Children of a killed run may take a moment to exit and release the filesystem.
      let unmounted = false;
      for (let attempt = 0; attempt < 50 && !unmounted; attempt++) {
        try {
          execFileSync('umount', [mountPoint], { stdio: 'ignore' });
          unmounted = true;
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
      // Still busy: detach lazily so nothing stays mounted; the loop device follows once free.
      if (!unmounted) execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(pool);
  return pool;
}

/** Runs a shell script (for fixtures) and returns stdout. */
export function sh(script: string, cwd?: string): string {
  return execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
