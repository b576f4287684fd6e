import { once } from 'node:events';
import { BusyError, StoreError } from '../model/errors.js';
import { loadExeca } from './load-execa.js';

const CONFLICT_EXIT = 75;

/**
 * Takes an exclusive `flock(2)` on `lockFile` and holds it in a small child process
 * (`flock FILE cat`) whose stdin is a pipe from us. The kernel drops the lock when that child
 * exits, and the child exits when the pipe closes — also when buttersink is killed with
 * SIGKILL — so a crashed run never leaves a stale lock behind, unlike lock files.
 * @throws BusyError when another process holds the lock.
 */
export async function lockDirectory(lockFile: string, what: string): Promise<() => Promise<void>> {
  const { execa } = await loadExeca();
  const holder = execa(
    'flock',
    ['--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      reject: false,
      buffer: { stdout: false },
    },
  );
  const acquired = new Promise<boolean>((resolve) => {
    holder.stdout.once('data', () => resolve(true));
    holder.stdout.once('end', () => resolve(false));
  });
  if (!(await acquired)) {
    const result = await holder;
    if (result.exitCode === CONFLICT_EXIT) {
      throw new BusyError(`another buttersink is writing to ${what}`, {
        hint: 'wait for it to finish; the lock goes away by itself when that process ends',
      });
    }
    throw new StoreError(`cannot lock ${what}: ${result.stderr || result.shortMessage}`);
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    holder.stdin.end();
    if (holder.exitCode === null) await once(holder, 'exit').catch(() => {});
    await holder.catch(() => {});
  };
}
