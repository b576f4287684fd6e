import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fuse from 'fuse-native';
import { ButtersinkError, InterruptedError, messageOf, StoreError, UsageError } from '../model/errors.js';
import type { NamedStore } from '../model/store.js';
import { ownIdentityText } from '../util/process-info.js';
import { interruptWatch } from './interrupted-callers.js';
import { MountFilesystem } from './mount-filesystem.js';
import { mountOps, OP_TIMEOUTS } from './mount-ops.js';
import type { TransferStatus } from './transfer-status.js';

export interface MountSessionOptions {
  readonly mountPoint: string;
  readonly stores: readonly NamedStore[];
  readonly readOnly: boolean;
  readonly allowOther: boolean;
  readonly copyIdleMs: number;
  readonly listingTtlMs: number;
  /** A lookup waits this long for a store's listing, then answers EIO. */
  readonly storeTimeoutMs: number;
  /** List every store before mounting, and fail if one cannot be (see {@link checkStores}). */
  readonly checkStores: boolean;
  readonly status: TransferStatus;
  /** Aborted by SIGINT/SIGTERM: transfers are aborted (partials removed), then it unmounts. */
  readonly signal: AbortSignal;
  /** Called once the mount answers, with a line that says where and what (the daemon's parent prints it and exits). */
  readonly onReady: (mounted: string) => void;
  readonly trace?: (line: string) => void;
}

/**
 * The kernel's read-ahead for the mount, in KiB (its default for FUSE is 128). FUSE reads
 * come in 128 KiB requests (libfuse 2 cannot negotiate bigger ones), and with 128 KiB of
 * read-ahead about two are in flight: a sequential `cat` waits for each round trip through
 * this process. 1 MiB keeps up to eight in flight (under the kernel's 12 background
 * requests), so the requests queue up and this process serves several per wake-up.
 */
const READ_AHEAD_KIB = 1024;

/** How often the session checks that nobody unmounted it from outside (`fusermount -u`). */
const MOUNTED_POLL_MS = 500;
/** How long aborted transfers (and deletes, renames) get to clean up before we unmount anyway. */
const ABORT_GRACE_MS = 60_000;

/**
 * Mounts the stores at `mountPoint` and serves until SIGINT/SIGTERM or an unmount from
 * outside. On the way out, transfers in flight are aborted and their partial receives
 * removed (the Store contract) before the mount goes, so nothing complete-looking is left.
 */
export async function runMountSession(options: MountSessionOptions): Promise<void> {
  const given = path.resolve(options.mountPoint);
  const info = await stat(given).catch(() => undefined);
  if (info === undefined) throw new UsageError(`mount point ${given} does not exist`, { hint: `mkdir -p ${given}` });
  // Canonical (no symlinks): the kernel shows callers' paths so (see interruptWatch).
  const mountPoint = await realpath(given);
  if (!info.isDirectory()) throw new UsageError(`mount point ${mountPoint} is not a directory`);
  if (await isMounted(mountPoint)) {
    throw new StoreError(`something is mounted at ${mountPoint} already`, { hint: `buttersink umount ${mountPoint}` });
  }
  // libfuse 2 refuses a non-empty directory with its own text; and what is in it would be hidden.
  const inside = await readdir(mountPoint);
  if (inside.length > 0) {
    throw new UsageError(`mount point ${mountPoint} is not empty: it holds ${inside.length} entr${inside.length === 1 ? 'y' : 'ies'}`, {
      hint: 'mount on an empty directory: what is in this one would be hidden while mounted',
    });
  }
  if (options.checkStores) await checkStores(options.stores, options.storeTimeoutMs);

  const fs = new MountFilesystem({
    stores: options.stores,
    readOnly: options.readOnly,
    copyIdleMs: options.copyIdleMs,
    listingTtlMs: options.listingTtlMs,
    storeTimeoutMs: options.storeTimeoutMs,
    removalIdleMs: Math.max(30_000, options.copyIdleMs * 10),
    status: options.status,
    isInterrupted: interruptWatch(mountPoint),
  });
  const fuse = new Fuse(mountPoint, mountOps(fs, options.trace), {
    fsname: 'buttersink',
    subtype: 'buttersink',
    allowOther: options.allowOther,
    // The kernel asks for attributes (almost) every time: the status files change size, and
    // stores change under us. 0 cannot be passed (fuse-native drops falsy options): 1 ms.
    // Lookups stay cached for the default second.
    attrTimeout: 0.001,
    timeout: OP_TIMEOUTS,
  });
  await new Promise<void>((resolve, reject) =>
    fuse.mount((error) => (error ? reject(new StoreError(`cannot mount at ${mountPoint}: ${error.message}`)) : resolve())),
  );
  const readAhead = await raiseReadAhead(mountPoint, READ_AHEAD_KIB);
  if (readAhead !== undefined) options.trace?.(`read-ahead stays at the kernel's default: ${readAhead}`);
  // Last line of defence: a process that dies anyway (a second signal) detaches the mount
  // lazily, which needs no answer from this process, so it cannot deadlock.
  const onExit = (): void => void spawnSync('fusermount', ['-uz', mountPoint], { stdio: 'ignore' });
  process.once('exit', onExit);
  const pidFile = await writePidFile(mountPoint);
  const mounted = `mounted ${options.stores.map((s) => `${s.name}=${s.store.url}`).join(', ')} at ${mountPoint}${options.readOnly ? ' (read-only)' : ''}`;
  options.status.log(mounted);
  options.onReady(mounted);

  let reason: Error;
  try {
    reason = await waitForEnd(mountPoint, options.signal);
  } finally {
    await rm(pidFile, { force: true });
  }
  options.status.log(`unmounting: ${reason.message}`);
  fs.shutdown(new InterruptedError(reason.message));
  const deadline = Date.now() + ABORT_GRACE_MS;
  while (fs.changesInFlight > 0 && Date.now() < deadline) await sleep(100);
  if (await isMounted(mountPoint)) {
    await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
  }
  process.removeListener('exit', onExit);
  for (const { store } of options.stores) await store.close().catch(() => {});
}

/** Resolves with why the session ends: a signal, or the mount went away. */
async function waitForEnd(mountPoint: string, signal: AbortSignal): Promise<Error> {
  while (!signal.aborted) {
    await sleep(MOUNTED_POLL_MS, undefined, { signal }).catch(() => {});
    if (!signal.aborted && !(await isMounted(mountPoint))) return new Error('unmounted from outside');
  }
  return signal.reason instanceof Error ? signal.reason : new Error('interrupted');
}

/**
 * The pre-flight: every store is listed before anything is mounted, all at once, each within
 * `timeoutMs`. A typo in a path, a directory not on btrfs, a bucket or host that cannot be
 * reached fails the mount with the error `buttersink sync` gives for it (its class, so its
 * exit code, and its hint), naming the store; instead of a mount that shows `??????????`.
 * @throws the first failing store's error, its message naming every store that failed.
 */
export async function checkStores(stores: readonly NamedStore[], timeoutMs: number): Promise<void> {
  const results = await Promise.allSettled(stores.map(({ store }) => listWithin(store, timeoutMs)));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ store: stores[i]!, error: r.reason as unknown }] : []));
  if (failures.length === 0) return;
  const text = failures.map(({ store, error }) => `store ${store.name} (${store.store.url}): ${messageOf(error)}`).join('; ');
  const first = failures[0]!.error;
  if (first instanceof ButtersinkError) {
    // The same error, so the same exit code and hint as sync's; its message names the stores.
    first.message = `cannot mount: ${text}`;
    throw first;
  }
  throw new StoreError(`cannot mount: ${text}`, { cause: first });
}

async function listWithin(store: NamedStore['store'], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError(`no answer within ${Number((timeoutMs / 1000).toFixed(3))} s`)), timeoutMs);
  });
  try {
    await Promise.race([store.list(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Is something mounted exactly at `mountPoint`? (/proc/self/mounts escapes blanks as \040 etc.) */
export async function isMounted(mountPoint: string): Promise<boolean> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  const wanted = escapeMountPath(path.resolve(mountPoint));
  return text.split('\n').some((line) => line.split(' ')[1] === wanted);
}

/**
 * Sets the read-ahead of the FUSE mount at `mountPoint` (its backing device's
 * `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb`; the libfuse option `max_readahead` can only
 * lower it). Only root may; resolves why not when it could not, else undefined.
 */
async function raiseReadAhead(mountPoint: string, kib: number): Promise<string | undefined> {
  const device = deviceOfMount(await readFile('/proc/self/mountinfo', 'utf8'), mountPoint);
  if (device === undefined) return `${mountPoint} is not in /proc/self/mountinfo`;
  return writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, `${kib}\n`).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.message,
  );
}

/**
 * Aborts the FUSE connection of the mount at `mountPoint` (`/sys/fs/fuse/connections/MINOR/abort`,
 * mounting fusectl there if nothing is): every request waiting on it fails with ENOTCONN at
 * once, so a process stuck waiting on the mount (its own server included) can go on. The last
 * resort of an unmount; resolves what went wrong, else undefined.
 */
export async function abortFuseConnection(mountPoint: string): Promise<string | undefined> {
  const device = deviceOfMount(await readFile('/proc/self/mountinfo', 'utf8'), mountPoint);
  if (device === undefined) return `${mountPoint} is not mounted`;
  const connections = '/sys/fs/fuse/connections';
  const ours = !(await isMounted(connections));
  if (ours) {
    const mounted = spawnSync('mount', ['-t', 'fusectl', 'fusectl', connections], { encoding: 'utf8' });
    if (mounted.status !== 0) return `cannot mount fusectl at ${connections}: ${String(mounted.stderr).trim()}`;
  }
  try {
    await writeFile(`${connections}/${device.split(':')[1]}/abort`, '1\n');
    return undefined;
  } catch (error) {
    return messageOf(error);
  } finally {
    // Leave the machine as it was (systemd mounts fusectl at boot; a container may not).
    if (ours) spawnSync('umount', [connections], { stdio: 'ignore' });
  }
}

/** The `MAJOR:MINOR` of the filesystem mounted at `mountPoint`, from mountinfo's text. */
export function deviceOfMount(mountinfo: string, mountPoint: string): string | undefined {
  const wanted = escapeMountPath(path.resolve(mountPoint));
  // Fields: ID, parent ID, MAJOR:MINOR, root, mount point, ... (the last match is on top).
  const lines = mountinfo.split('\n').filter((line) => line.split(' ')[4] === wanted);
  return lines.at(-1)?.split(' ')[2];
}

function escapeMountPath(p: string): string {
  return p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Where mount processes note their PID, so that `buttersink umount` can stop them cleanly. */
export function runDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.BUTTERSINK_RUN_DIR ?? '/run/buttersink';
}

export function pidFileFor(mountPoint: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(runDirectory(env), `mount-${encodeURIComponent(path.resolve(mountPoint))}.pid`);
}

async function writePidFile(mountPoint: string): Promise<string> {
  const file = pidFileFor(mountPoint);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  // With the start time: `buttersink umount` must never signal a later process that got this PID.
  // Written whole, then renamed into place: an umount must never read it empty or half written
  // (it would take the mount for one without a process and only run fusermount).
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${ownIdentityText()}\n`);
  await rename(temporary, file);
  return file;
}
