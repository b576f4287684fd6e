import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI } from './run-cli.js';

/**
 * A real OpenSSH sshd on 127.0.0.1 with throwaway host and client keys (FACTS "SSH on
 * loopback"), for tests that log in as root with a key. Also a HOME for the client with
 * that key, an ssh config naming the server `buttersink-test`, and a known_hosts file.
 */
export interface TestSshd {
  readonly port: number;
  readonly pid: number;
  /** A HOME for the client: `.ssh/id_ed25519`, `.ssh/config` (Host buttersink-test), `.ssh/known_hosts`. */
  readonly home: string;
  /** known_hosts holding the server's real key as `[127.0.0.1]:PORT`. */
  readonly knownHosts: string;
  /** The server's public host key line (`ssh-ed25519 AAAA...`). */
  readonly hostPublicKey: string;
  /** Another key the server does not have (for "changed key" tests). */
  readonly otherPublicKey: string;
  /** What the remote runs instead of `buttersink`: this checkout's CLI, with its own cache. */
  readonly remoteCommand: string;
  /** Environment for running the CLI as a client of this server. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Drops every connection as a network failure would: SIGKILLs the per-connection sshd
   * processes (not the listener, not the commands they run, which see their stdin end).
   * Returns how many were killed.
   */
  cutConnections(): number;
  /** Stops sshd (SIGTERM, by PID) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-sshd-'));
  chmodSync(dir, 0o755);
  const key = (name: string): string => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(dir, name)]);
    return readFileSync(path.join(dir, `${name}.pub`), 'utf8')
      .trim()
      .split(' ')
      .slice(0, 2)
      .join(' ');
  };
  const hostPublicKey = key('host_ed25519');
  const otherPublicKey = key('other_ed25519');
  const clientPublicKey = key('client_ed25519');
  writeFileSync(path.join(dir, 'authorized_keys'), `${clientPublicKey}\n`);
  // sshd needs its privilege separation directory; without systemd nobody makes it.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${dir}/host_ed25519`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'MaxSessions 30',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Last line of defence, as for pools: a test process that dies still stops its sshd.
  const killOnExit = (): void => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);
  await waitForPort(port, child, () => stderr);

  const home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  copyFileSync(path.join(dir, 'client_ed25519'), path.join(home, '.ssh/id_ed25519'));
  chmodSync(path.join(home, '.ssh/id_ed25519'), 0o600);
  const knownHosts = path.join(home, '.ssh/known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  writeFileSync(
    path.join(home, '.ssh/config'),
    `Host buttersink-test\n  HostName 127.0.0.1\n  Port ${port}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n  UserKnownHostsFile ~/.ssh/known_hosts\n`,
  );
  const cache = path.join(dir, 'remote-cache');
  const remoteCommand = `env BUTTERSINK_CACHE_DIR=${cache} ${process.execPath} ${CLI}`;
  let stopped = false;
  return {
    port,
    pid: child.pid!,
    home,
    knownHosts,
    hostPublicKey,
    otherPublicKey,
    remoteCommand,
    env: { HOME: home, SSH_AUTH_SOCK: '', BUTTERSINK_REMOTE_COMMAND: remoteCommand },
    cutConnections() {
      const pids = sshdDescendants(child.pid!);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      return pids.length;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', killOnExit);
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** sshd processes below `root` (the per-connection monitors and their session processes). */
function sshdDescendants(root: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3)
    .map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm: comm! }));
  const found: number[] = [];
  const walk = (parent: number): void => {
    for (const p of table) {
      if (p.ppid === parent && p.comm.startsWith('sshd')) {
        found.push(p.pid);
        walk(p.pid);
      }
    }
  };
  walk(root);
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  throw new Error(`sshd did not listen on ${port}: ${stderr()}`);
}
