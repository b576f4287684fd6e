/**
 * Faults of the SSH paths (local-ssh, ssh-local), beyond those of every sync path: the
 * connection cut mid-stream (sshd's per-connection processes killed), the remote
 * `buttersink server` killed, and a full disk on the remote side.
 */
import { execFileSync } from 'node:child_process';
import type { Campaign } from './context.js';
import { CLI } from './processes.js';
import { diskFull, interrupted } from './sync.js';

export async function sshFaults(c: Campaign, name: 'local-ssh' | 'ssh-local'): Promise<void> {
  c.log(`${name}: connection cut, remote buttersink killed`);
  const count = Math.max(3, Math.round(c.kills / 4));
  await interrupted(c, name, 'connection cut mid-stream', count, (at) => ({ at, action: () => c.sshd!.cutConnections() }));
  await interrupted(c, name, 'remote buttersink killed', count, (at) => ({ at, action: killRemoteServers }));
}

export async function remoteDiskFull(c: Campaign): Promise<void> {
  c.log('local-ssh: remote disk full');
  await diskFull(c, 'local-ssh', (dir) => `ssh://buttersink-test${dir}/`);
}

/** The remote `buttersink server` processes (started by our sshd for our runs). */
function killRemoteServers(): void {
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-f', `${CLI} server`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
  } catch {
    // none running at this moment
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
