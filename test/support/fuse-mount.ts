import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { POOL_ROOT } from './btrfs-pool.js';
import { CLI } from './run-cli.js';

/** A `buttersink mount -f` running in the background, with its output in a file. */
export interface RunningMount {
  readonly mountPoint: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** What the mount process printed so far. */
  output(): string;
  /** SIGTERM (or `signal`), wait for it to exit, and make sure nothing stays mounted. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<RunningMount>();
// Last line of defence, like the pools: a crashed test still detaches its mounts.
process.once('exit', () => {
  for (const m of live) {
    m.child.kill('SIGKILL');
    spawnSync('fusermount', ['-uz', m.mountPoint], { stdio: 'ignore' });
  }
});

export function isMounted(mountPoint: string): boolean {
  const escaped = mountPoint.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === escaped);
}

/** A fresh directory under the test root (swept by scripts/test even if a test crashes). */
/** Stops every mount (also after a failed test) and asserts none is left mounted. */
export async function stopMounts(mounts: readonly RunningMount[]): Promise<void> {
  for (const m of mounts) await m.stop();
  for (const m of mounts) assert.ok(!isMounted(m.mountPoint), `${m.mountPoint} is still mounted`);
}

export function freshDirectory(prefix: string): string {
  mkdirSync(POOL_ROOT, { recursive: true });
  return mkdtempSync(path.join(POOL_ROOT, prefix));
}

/** Starts `buttersink mount -f ARGS MOUNTPOINT` and waits until the mount answers. */
export async function startMount(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunningMount> {
  const base = freshDirectory('mount-');
  const mountPoint = path.join(base, 'mnt');
  mkdirSync(mountPoint);
  const logFile = path.join(base, 'output.log');
  const fd = openSync(logFile, 'w');
  // Output into a file, not a pipe: a test blocked in a sync call on the mount must never
  // leave the mount process stuck writing to a full pipe.
  const child = spawn(process.execPath, [CLI, 'mount', '-f', ...args, mountPoint], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stopped = false;
  const mount: RunningMount = {
    mountPoint,
    child,
    exited,
    output: () => readFileSync(logFile, 'utf8'),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (stopped) return;
      stopped = true;
      live.delete(mount);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
      await exited;
      if (isMounted(mountPoint)) spawnSync('fusermount', ['-uz', mountPoint], { stdio: 'ignore' });
    },
  };
  live.add(mount);
  for (let waited = 0; !isMounted(mountPoint); waited += 50) {
    if (child.exitCode !== null || waited > 20_000) {
      await mount.stop();
      throw new Error(`buttersink mount did not come up:\n${mount.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return mount;
}

/**
 * `mkdir` of a snapshot in a store, then `ls` of it: mkdir returns once the transfer has
 * started, and listing the new snapshot waits for the transfer (and throws its error).
 */
export function mkdirAndWait(directory: string): void {
  mkdirSync(directory);
  readdirSync(directory);
}
