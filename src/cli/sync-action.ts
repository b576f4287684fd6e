import { appendFileSync } from 'node:fs';
import pLimit from 'p-limit';
import { messageOf, UsageError } from '../model/errors.js';
import { type KeepPolicy, parseKeepPolicy } from '../planner/retention.js';
import type { Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import { ProgressReporter } from '../progress/progress-reporter.js';
import { silentObserver } from '../progress/transfer-observer.js';
import { formatBytes } from '../util/format-bytes.js';
import { parseRate } from '../util/throttle.js';
import { setCommandTracer } from '../stores/btrfs/run-btrfs.js';
import { defaultCacheDirectory, MeasurementCache } from '../stores/cache/measurement-cache.js';
import { openStore, type StoreContext } from '../stores/open-store.js';
import type { S3Settings } from '../stores/s3/s3-settings.js';
import { parseStoreUrl } from '../stores/parse-store-url.js';
import type { ServerMode } from '../remote/protocol.js';
import { MEASURE_CONCURRENCY } from '../sync/choose-plan.js';
import { runSync, selectSnapshots } from '../sync/run-sync.js';
import { Output } from './output.js';
import { byCreation, listToJson, renderList, type ListedSnapshot } from './render-list.js';
import { planToJson, renderPlan } from './render-plan.js';
import type { CliContext } from './cli-context.js';

export interface SyncFlags {
  dryRun?: boolean;
  delete?: boolean;
  /** --keep's policy, as given (parsed here: the planner loads only when sync runs). */
  keep?: string;
  /** --rate-limit, as given. */
  rateLimit?: string;
  estimate?: boolean;
  quiet: number;
  verbose?: boolean;
  logfile?: string;
  partSize: number;
  /** Undefined when none was given. */
  exclude?: RegExp[];
  json?: boolean;
  progress?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Checksum?: 'when-supported' | 'when-required';
  s3Sse: string;
  s3StorageClass?: string;
  s3Parallel: number;
  remoteCommand?: string;
  /** Undefined when none was given. */
  knownHosts?: string[];
}

/** The sync command's action (`buttersink [options] [src] dst`), loaded when it runs. */
export async function runSyncCommand(
  src: string | undefined,
  dst: string | undefined,
  flags: SyncFlags,
  context: CliContext,
): Promise<void> {
  const output = new Output({ quiet: flags.quiet, verbose: flags.verbose === true }, checkLogFile(flags.logfile));
  context.output = output;
  context.verbose = flags.verbose === true;
  setCommandTracer((command) => output.debug(`$ ${command}`));
  if (flags.quiet > 0 && flags.verbose) throw new UsageError('-q and -v contradict each other: use one of them');
  if (flags.quiet > 0 && flags.progress) throw new UsageError('-q and --progress contradict each other: use one of them');
  if (src === undefined) throw new UsageError('missing store URL', { hint: 'see buttersink --help' });
  // `buttersink list DIR/` (and `ls`) as btrbk users type it; a path named so needs `./list`.
  if ((src === 'list' || src === 'ls') && dst !== undefined) [src, dst] = [dst, undefined];
  if (dst === undefined) {
    // With one URL there is nothing to send or delete: a -n or -d meant for a sync is a mistake.
    const meant = [flags.dryRun && '-n/--dry-run', flags.delete && '-d/--delete', flags.keep && '--keep'].filter(Boolean).join(' and ');
    if (meant !== '') {
      throw new UsageError(
        `${meant} need${meant.includes(' and ') ? '' : 's'} a source and a destination; with one URL buttersink only lists it`,
        {
          hint: `buttersink ${flags.dryRun ? '-n ' : ''}${flags.delete ? '-d ' : ''}SRC/ ${src}`,
        },
      );
    }
    await listStore(src, flags, output, context.signal);
  } else await syncStores(src, dst, flags, output, context.signal);
}

function storeContext(flags: SyncFlags, output: Output): StoreContext {
  const cacheDirectory = defaultCacheDirectory();
  return {
    cache: new MeasurementCache(cacheDirectory),
    isRoot: process.getuid?.() === 0,
    cacheDirectory,
    warn: (message) => output.info(`warning: ${message}`),
    s3: {
      endpoint: flags.s3Endpoint,
      region: flags.s3Region,
      pathStyle: flags.s3PathStyle,
      checksum: flags.s3Checksum,
      serverSideEncryption: flags.s3Sse as S3Settings['serverSideEncryption'],
      storageClass: flags.s3StorageClass as S3Settings['storageClass'],
      partBytes: flags.partSize * 1024 * 1024,
      uploadConcurrency: flags.s3Parallel,
    },
  };
}

/**
 * The same context for one store, with what an ssh:// store needs: the least server mode its
 * role needs (so that sudoers can allow exactly that), and how to reach it.
 */
function withSsh(context: StoreContext, mode: ServerMode, flags: SyncFlags): StoreContext {
  const remoteCommand = flags.remoteCommand ?? (process.env.BUTTERSINK_REMOTE_COMMAND || undefined);
  const fromEnv = (process.env.BUTTERSINK_KNOWN_HOSTS ?? '').split(':').filter(Boolean);
  const knownHostsFiles = flags.knownHosts ?? fromEnv;
  return {
    ...context,
    ssh: {
      mode,
      ...(remoteCommand === undefined ? {} : { remoteCommand }),
      ...(knownHostsFiles.length > 0 ? { knownHostsFiles } : {}),
    },
  };
}

async function listStore(url: string, flags: SyncFlags, output: Output, signal: AbortSignal): Promise<void> {
  const location = parseStoreUrl(url);
  const context = storeContext(flags, output);
  // -e shows cached measurements as exact: estimates only look at what is loaded already.
  if (flags.estimate) await context.cache.load();
  const store = await openStore(location, withSsh(context, 'r', flags));
  try {
    const all = await store.list();
    const chosen = selectSnapshots(all, { store, selection: location.selection })
      .filter((s) => !(flags.exclude ?? []).some((re) => re.test(s.name)))
      .sort(byCreation);
    const listed = store.capabilities.storesDiffs
      ? await listDiffStore(store, chosen, all)
      : await listMeasured(store, chosen, flags, signal);
    if (flags.json) return output.data(JSON.stringify(listToJson(listed), null, 2));
    if (listed.length === 0) output.info(`no read-only snapshots in ${store.url}`);
    for (const line of renderList(listed)) output.result(line);
  } finally {
    await store.close();
  }
}

/** A diff store lists what it holds per snapshot: its diffs and their bytes, from the listing alone. */
async function listDiffStore(store: Store, chosen: readonly Snapshot[], all: readonly Snapshot[]): Promise<ListedSnapshot[]> {
  const diffs = await store.storedDiffs();
  const nameOf = new Map(all.map((s) => [s.uuid, s.name]));
  return chosen.map((snapshot) => {
    const own = diffs
      .filter((d) => d.to === snapshot.uuid)
      .map((d) => ({ from: d.from === null ? null : (nameOf.get(d.from) ?? d.from), bytes: d.bytes }));
    return { snapshot, size: { bytes: own.reduce((sum, d) => sum + d.bytes, 0), exact: true }, diffs: own };
  });
}

async function listMeasured(store: Store, chosen: readonly Snapshot[], flags: SyncFlags, signal: AbortSignal): Promise<ListedSnapshot[]> {
  const limit = pLimit(MEASURE_CONCURRENCY);
  return Promise.all(
    chosen.map((snapshot) =>
      limit(async () => ({
        snapshot,
        size: flags.estimate ? store.estimateDiff(snapshot, null) : await store.measureDiff(snapshot, null, signal),
      })),
    ),
  );
}

/** --rate-limit in bytes per second. @throws UsageError saying what is wrong with it. */
export function rateOf(text: string): number {
  try {
    return parseRate(text);
  } catch (error) {
    throw new UsageError(`--rate-limit: ${messageOf(error)}`);
  }
}

/** --keep's policy. @throws UsageError saying what is wrong with it. */
function keepPolicy(text: string): KeepPolicy {
  try {
    return parseKeepPolicy(text);
  } catch (error) {
    throw new UsageError(messageOf(error), { hint: "e.g. --keep '5 24h 7d 4w 12m *y'" });
  }
}

/**
 * One sync from `srcUrl` to `dstUrl` with the flags of `buttersink sync`, its output on
 * `output`; returns its summary line (`buttersink run`'s table shows it).
 */
export async function syncStores(srcUrl: string, dstUrl: string, flags: SyncFlags, output: Output, signal: AbortSignal): Promise<string> {
  const srcLocation = parseStoreUrl(srcUrl);
  const dstLocation = parseStoreUrl(dstUrl);
  if (srcLocation.kind === 'btrfs' && dstLocation.kind === 'btrfs' && srcLocation.directory === dstLocation.directory) {
    throw new UsageError('source and destination are the same directory');
  }
  if (flags.json && !flags.dryRun) throw new UsageError('--json prints a plan: use it with -n');
  const keep = flags.keep === undefined ? undefined : keepPolicy(flags.keep);
  const rateLimit = flags.rateLimit === undefined ? undefined : rateOf(flags.rateLimit);
  if (keep && flags.delete) {
    throw new UsageError('-d/--delete and --keep contradict each other: -d mirrors the source, --keep keeps what its policy says', {
      hint: 'use one of them',
    });
  }
  const context = storeContext(flags, output);
  // -e plans from estimates, which use cached measurements only once they are loaded.
  if (flags.estimate) await context.cache.load();
  const stores: Store[] = [];
  try {
    const src = await openStore(srcLocation, withSsh(context, 'r', flags));
    stores.push(src);
    const dst = await openStore(dstLocation, withSsh(context, flags.dryRun ? 'r' : flags.delete || keep ? 'w' : 'a', flags));
    stores.push(dst);
    let reporter: ProgressReporter | undefined;
    try {
      const result = await runSync(
        { store: src, selection: srcLocation.selection },
        { store: dst, selection: dstLocation.selection },
        {
          dryRun: flags.dryRun === true,
          delete: flags.delete === true,
          keep,
          rateLimit,
          estimate: flags.estimate === true,
          excludes: flags.exclude ?? [],
          now: new Date(),
          signal,
          onMeasure: (pair) => output.debug(`measuring ${pair.snapshot.name} ${pair.parent ? `from ${pair.parent.name}` : '(full)'}`),
          onPlan: (plan) => {
            if (flags.json) {
              output.data(JSON.stringify(planToJson(plan), null, 2));
            } else {
              // A dry run's plan is its result; before a real run it is a detail for -v.
              const show = flags.dryRun ? output.result.bind(output) : output.debug.bind(output);
              for (const line of renderPlan(plan, flags.dryRun === true)) show(line);
            }
            if (flags.dryRun) return silentObserver;
            const showBar = output.showsProgress && (flags.progress === true || process.stderr.isTTY === true);
            reporter = new ProgressReporter(plan, { line: (t) => output.info(t), record: (t) => output.record(t) }, showBar);
            return reporter;
          },
        },
      );
      reporter?.stop(); // the bar goes before the summary line
      if (result.executed) {
        const { sent, deleted, bytes } = result.executed;
        const line =
          sent + deleted === 0
            ? `${dst.url} is up to date (${result.plan.alreadyPresent.length} snapshots)`
            : `done: sent ${sent} snapshot${sent === 1 ? '' : 's'} (${formatBytes(bytes)}), deleted ${deleted}`;
        output.result(line);
        return line;
      }
      const sends = result.plan.steps.filter((step) => step.kind === 'send').length;
      return `would send ${sends} (${result.plan.isExact ? '' : '~'}${formatBytes(result.plan.totalBytes)}), delete ${result.plan.steps.length - sends}`;
    } finally {
      reporter?.stop();
    }
  } finally {
    for (const store of stores) await store.close().catch(() => {});
  }
}

export function checkLogFile(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    appendFileSync(file, '');
  } catch (error) {
    throw new UsageError(`cannot write the log file ${file}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`);
  }
  return file;
}
