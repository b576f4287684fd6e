import { execFileSync, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

/** The errno code a call throws (`ENOENT`, `EROFS`, ...), or `ok`. */
export function errnoOf(call: () => unknown): string {
  try {
    call();
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** Runs a command to its end (never one that needs this process to answer it). */
export function run(command: string, args: readonly string[]): { code: number | null; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  return { code: result.status, stderr: result.stderr };
}

/** Runs a command without blocking this process (one that may wait on a mount or a proxy here). */
export function runAsync(
  command: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** A subvolume's own UUID, as `btrfs subvolume show` prints it. */
export function uuidOf(subvolume: string): string {
  return /^\s*UUID:\s+(\S+)/m.exec(execFileSync('btrfs', ['subvolume', 'show', subvolume], { encoding: 'utf8' }))![1]!;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port on 127.0.0.1 nothing listens on (bound, then closed again). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
