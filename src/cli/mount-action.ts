import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync, write } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { loadConfig } from '../config/load-config.js';
import { TransferStatus } from '../fuse/transfer-status.js';
import { BusyError, PermissionError, StoreError, UsageError } from '../model/errors.js';
import { isRunning, parseIdentity, type ProcessIdentity, whereStuck } from '../util/process-info.js';
import { setCommandTracer } from '../stores/btrfs/run-btrfs.js';
import { defaultCacheDirectory, MeasurementCache } from '../stores/cache/measurement-cache.js';
import { openStore, type SshContext } from '../stores/open-store.js';
import { parseStoreUrl } from '../stores/parse-store-url.js';
import type { NamedStore } from '../model/store.js';
import { Output } from './output.js';
import type { CliContext } from './cli-context.js';

export interface MountFlags {
  /** Undefined when none was given. */
  store?: [string, string][];
  /** False with --no-check-stores. */
  checkStores: boolean;
  config?: string;
  foreground?: boolean;
  readOnly?: boolean;
  allowOther?: boolean;
  logfile?: string;
  verbose?: boolean;
  copyIdle: number;
  listingTtl: number;
  storeTimeout: number;
}

/** The daemon child tells its parent "mounted" on this file descriptor. */
const READY_FD_VARIABLE = 'BUTTERSINK_MOUNT_READY_FD';

/** `buttersink mount`'s action, loaded when it runs. */
export async function runMountCommand(mountPoint: string, flags: MountFlags, context: CliContext): Promise<void> {
  const daemonChild = process.env[READY_FD_VARIABLE] !== undefined;
  const output = new Output({ quiet: daemonChild ? 2 : 0, verbose: flags.verbose === true }, flags.logfile);
  context.output = output;
  context.verbose = flags.verbose === true;
  requireRoot();
  if (!flags.foreground) {
    context.exitCode = await daemonize((line) => output.info(line));
    return;
  }
  await mountForeground(mountPoint, flags, output, context.signal);
  // fuse-native's thread may keep the event loop alive after unmounting: leave anyway.
  setTimeout(() => process.exit(), 2000).unref();
}

/** `buttersink umount`'s action, loaded when it runs. */
export async function runUmountCommand(mountPoint: string, timeoutMs: number, context: CliContext): Promise<void> {
  requireRoot();
  await unmount(mountPoint, timeoutMs, (line) => context.output.warn(line));
}

async function mountForeground(mountPoint: string, flags: MountFlags, output: Output, signal: AbortSignal): Promise<void> {
  const config = await loadConfig(flags.config);
  const urls = new Map(config.stores);
  for (const [name, url] of flags.store ?? []) urls.set(name, url);
  if (urls.size === 0) {
    throw new UsageError('no stores to mount', { hint: 'name them in [stores] of the config file or with --store NAME=URL' });
  }
  const cacheDirectory = defaultCacheDirectory();
  // Not annotated: stores that need more (S3's cache directory, warnings) find it here.
  const context = {
    cache: new MeasurementCache(cacheDirectory),
    isRoot: true,
    cacheDirectory,
    warn: (m: string) => output.warn(m),
    ssh: mountSshContext(flags.readOnly === true),
  };
  const stores: NamedStore[] = [];
  for (const [name, url] of urls) {
    const parsed = parseStoreUrl(url);
    // A store is always a directory of snapshots here, trailing slash or not.
    const location = parsed.selection === null ? parsed : parseStoreUrl(`${url}/`);
    stores.push({ name, store: await openStore(location, context) });
  }
  if (flags.verbose) setCommandTracer((command) => output.debug(`$ ${command}`));
  const status = new TransferStatus(Date.now, (line) => output.info(line));
  // Loaded here, not with the CLI: fuse-native is for the mount alone (sync and the remote
  // server start faster without it).
  const { runMountSession } = await import('../fuse/mount-session.js');
  await runMountSession({
    mountPoint,
    stores,
    readOnly: flags.readOnly === true,
    allowOther: flags.allowOther === true,
    copyIdleMs: flags.copyIdle * 1000,
    listingTtlMs: flags.listingTtl * 1000,
    storeTimeoutMs: flags.storeTimeout * 1000,
    checkStores: flags.checkStores,
    status,
    signal,
    trace: flags.verbose ? (line) => output.debug(line) : undefined,
    onReady: (mounted) => signalReady(mounted),
  });
}

/**
 * How the mount reaches ssh:// stores: any of them may receive (mkdir, cp -r) and delete
 * (rmdir, rm -r), so the server runs in mode w; with --read-only in mode r. The remote
 * command and known_hosts files come from the environment, as for sync.
 */
export function mountSshContext(readOnly: boolean, env: NodeJS.ProcessEnv = process.env): SshContext {
  const remoteCommand = env.BUTTERSINK_REMOTE_COMMAND || undefined;
  const knownHostsFiles = (env.BUTTERSINK_KNOWN_HOSTS ?? '').split(':').filter(Boolean);
  return {
    mode: readOnly ? 'r' : 'w',
    ...(remoteCommand === undefined ? {} : { remoteCommand }),
    ...(knownHostsFiles.length > 0 ? { knownHostsFiles } : {}),
  };
}

/** In the daemon child: tells the waiting parent that the mount is up, with the line it prints (one line). */
function signalReady(mounted: string): void {
  const fd = Number(process.env[READY_FD_VARIABLE]);
  if (!Number.isInteger(fd)) return;
  write(fd, `${mounted.replaceAll('\n', ' ')}\n`, () => closeSync(fd));
}

/**
 * Starts this same command with `-f` as a detached child and waits until it mounted (exit 0,
 * after `onMounted` with the child's line saying where and what) or failed (its error and exit
 * code are passed on). Its stderr goes to a temporary file that is read only when it fails
 * before mounting.
 */
async function daemonize(onMounted: (line: string) => void): Promise<number> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-mount-'));
  const errorFile = path.join(directory, 'stderr');
  const errorFd = openSync(errorFile, 'w');
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--foreground'];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', 'ignore', errorFd, 'pipe'],
    env: { ...process.env, [READY_FD_VARIABLE]: '3' },
  });
  closeSync(errorFd);
  const readyPipe = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  const ready = new Promise<boolean>((resolve) => {
    readyPipe.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) resolve(true);
    });
    readyPipe.on('end', () => resolve(false));
    readyPipe.on('error', () => resolve(false));
  });
  const exited = once(child, 'exit').then(([code]) => (typeof code === 'number' ? code : 1));
  const outcome = await Promise.race([ready.then((ok) => (ok ? 'ready' : 'closed')), exited.then(() => 'exited' as const)]);
  if (outcome === 'ready') {
    onMounted(text.slice(0, text.indexOf('\n')));
    (readyPipe as unknown as { destroy(): void }).destroy();
    child.unref();
    rmSync(directory, { recursive: true, force: true });
    return 0;
  }
  const code = await exited;
  process.stderr.write(readFileSync(errorFile, 'utf8'));
  rmSync(directory, { recursive: true, force: true });
  return code === 0 ? 1 : code;
}

/**
 * Stops the mount process (SIGTERM: it aborts transfers, removes their partials and
 * unmounts) and waits until it is gone; without one, `fusermount -u`. A process that does
 * not stop within `graceMs` (default: its own 60 s for aborted transfers, plus a margin) is
 * stuck: what waits on the mount is failed (its FUSE connection aborted) and it is stopped at
 * once (a second signal, as a second Ctrl-C), with a warning saying where it was stuck.
 */
async function unmount(mountPoint: string, graceMs: number, warn: (line: string) => void): Promise<void> {
  const { abortFuseConnection, isMounted, pidFileFor } = await import('../fuse/mount-session.js');
  const target = path.resolve(mountPoint);
  if (!(await isMounted(target))) throw new UsageError(`nothing is mounted at ${target}`);
  const owner = parseIdentity(await readFile(pidFileFor(target), 'utf8').catch(() => ''));
  if (owner !== undefined && isRunning(owner)) {
    process.kill(owner.pid, 'SIGTERM');
    if (!(await stopped(owner, graceMs))) {
      const where = whereStuck(owner.pid);
      const aborted = await abortFuseConnection(target);
      // SIGCONT too: a stopped process (state T) acts on no signal until it continues.
      for (const signal of ['SIGTERM', 'SIGCONT'] as const) if (isRunning(owner)) process.kill(owner.pid, signal);
      if (!(await stopped(owner, STOP_MARGIN_MS))) {
        throw new BusyError(`the mount process ${owner.pid} did not stop within ${(graceMs + STOP_MARGIN_MS) / 1000} s (${where})`, {
          hint: `kill -9 ${owner.pid}; fusermount -uz ${target}`,
        });
      }
      warn(
        `the mount process ${owner.pid} did not stop within ${graceMs / 1000} s (${where}); ` +
          `${aborted === undefined ? 'aborted its FUSE connection and ' : `could not abort its FUSE connection (${aborted}) but `}` +
          'stopped it at once: the next sync removes a partial receive it left',
      );
    }
    if (!(await isMounted(target))) return;
  }
  const result = await execa('fusermount', ['-u', target], { reject: false });
  if (result.exitCode !== 0) {
    const why = String(result.stderr).trim();
    if (/busy/i.test(why))
      throw new BusyError(`${target} is busy: ${why}`, { hint: 'close what uses it (cd out, stop copies) and try again' });
    throw new StoreError(`cannot unmount ${target}: ${why}`);
  }
}

/** How long a stuck mount process gets to end after its FUSE connection is aborted and it is told again. */
const STOP_MARGIN_MS = 30_000;

/** Resolves whether the process ended within `ms`. */
async function stopped(owner: ProcessIdentity, ms: number): Promise<boolean> {
  for (let waited = 0; waited <= ms; waited += 100) {
    if (!isRunning(owner)) return true;
    await sleep(100);
  }
  return !isRunning(owner);
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new PermissionError('mounting stores needs root (btrfs send/receive and FUSE)', { hint: 'run it with sudo, or as root' });
  }
}
