import { spawn } from 'node:child_process';
import { BusyError, StoreError } from '../model/errors.js';

const CONFLICT_EXIT = 75;

/**
 * Takes an exclusive `flock(2)` on `lockFile` and holds it in a small child process
 * (`flock FILE cat`) whose stdin is a pipe from us. The kernel drops the lock when that child
 * exits, and the child exits when the pipe closes — also when buttersink is killed with
 * SIGKILL — so a crashed run never leaves a stale lock behind, unlike lock files.
 * Spawned with `node:child_process`, not execa: every writing run takes a lock, and a no-op
 * run then never loads execa (see run-captured.ts).
 * @throws BusyError when another process holds the lock.
 */
export async function lockDirectory(lockFile: string, what: string): Promise<() => Promise<void>> {
  const holder = spawn(
    'flock',
    ['--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let spawnError: NodeJS.ErrnoException | undefined;
  holder.on('error', (error: NodeJS.ErrnoException) => {
    spawnError = error;
  });
  // The holder may be gone when we close its stdin (EPIPE): the lock is released either way.
  holder.stdin.on('error', () => {});
  let stderr = '';
  holder.stderr.setEncoding('utf8');
  holder.stderr.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  // Not events.once: it would reject on 'error', which a failed spawn emits before 'close'.
  const closed = new Promise<number | null>((resolve) => holder.once('close', resolve));
  const acquired = new Promise<boolean>((resolve) => {
    holder.stdout.once('data', () => resolve(true));
    holder.stdout.once('end', () => resolve(false));
    void closed.then(() => resolve(false)); // also when it never started (no 'end' then)
  });
  if (!(await acquired)) {
    const code = await closed;
    if (code === CONFLICT_EXIT) {
      throw new BusyError(`another buttersink is writing to ${what}`, {
        hint: 'wait for it to finish; the lock goes away by itself when that process ends',
      });
    }
    const reason = stderr.trim() || (spawnError ? `cannot run flock: ${spawnError.message}` : `flock ended with code ${code}`);
    throw new StoreError(`cannot lock ${what}: ${reason}`);
  }
  // The rest of what it prints (nothing) must not fill the pipe.
  holder.stdout.resume();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    holder.stdin.end();
    await closed;
  };
}
