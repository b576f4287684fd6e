import { type Command, InvalidArgumentError } from 'commander';
import { appendFileSync } from 'node:fs';
import pLimit from 'p-limit';
import { messageOf, UsageError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import type { Store } from '../model/store.js';
import { ProgressReporter } from '../progress/progress-reporter.js';
import { silentObserver } from '../progress/transfer-observer.js';
import { formatBytes } from '../util/format-bytes.js';
import { setCommandTracer } from '../stores/btrfs/run-btrfs.js';
import { defaultCacheDirectory, MeasurementCache } from '../stores/cache/measurement-cache.js';
import { openStore, type StoreContext } from '../stores/open-store.js';
import type { S3Settings } from '../stores/s3/s3-settings.js';
import { parseStoreUrl } from '../stores/parse-store-url.js';
import type { ServerMode } from '../remote/protocol.js';
import { MEASURE_CONCURRENCY } from '../sync/choose-plan.js';
import { runSync, selectSnapshots } from '../sync/run-sync.js';
import { Output } from './output.js';
import { listToJson, renderList, type ListedSnapshot } from './render-list.js';
import { planToJson, renderPlan } from './render-plan.js';
import type { CliContext } from './cli-context.js';

interface SyncFlags {
  dryRun?: boolean;
  delete?: boolean;
  estimate?: boolean;
  quiet: number;
  verbose?: boolean;
  logfile?: string;
  partSize: number;
  exclude: RegExp[];
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
  knownHosts: string[];
}

const EXAMPLES = `
Stores:
  /path/dir/  btrfs:///path/dir/  file:///path/dir/   a directory of snapshots on local btrfs
  /path/dir/name                                     one snapshot (no trailing slash)
  s3://bucket/prefix/  s3://bucket/prefix/name        an S3 bucket in the original ButterSink's layout
  ssh://[user@]host[:port]/path/dir/                 a directory of snapshots on another machine,
                                                     through 'sudo -n buttersink server' over SSH

Examples:
  buttersink /mnt/pool/snaps/                    list the snapshots there, with sizes
  buttersink -n /snaps/ /mnt/backup/snaps/       show what would be sent, change nothing
  buttersink /snaps/ /mnt/backup/snaps/          send every snapshot the backup lacks
  buttersink -d /snaps/ /mnt/backup/snaps/       ... and delete those /snaps/ no longer has
  buttersink /snaps/2026-11-28 /mnt/backup/snaps/  send one snapshot
  buttersink /snaps/ s3://bucket/host1/           upload, as diffs (AWS credentials as usual)
  buttersink s3://bucket/host1/ /restore/         restore from S3, replaying the chains
  buttersink /snaps/ ssh://backup@nas/backup/snaps/  push to a backup server over SSH
  buttersink ssh://nas:2222/backup/snaps/ /restore/  pull from it

Each snapshot is sent as the smallest diff from a snapshot the destination already has (or
gets earlier in the same run), sizes measured with 'btrfs send --no-data'. Runs as root.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 permission (not root), 4 store unusable,
5 transfer failed, 6 destination busy (another buttersink), 130 interrupted.`;

export const SYNC_HELP = EXAMPLES;

export function addSyncCommand(program: Command, context: CliContext): void {
  program
    .command('sync', { isDefault: true })
    .summary('send the snapshots dst lacks (default command); with only dst, list it')
    .description('Send every snapshot in SRC that DST lacks, each as the cheapest diff. With only DST, list its snapshots.')
    .argument('[src]', 'where snapshots come from')
    .argument('[dst]', 'where they go (a directory: end it with /)')
    .option('-n, --dry-run', 'print the plan with sizes and reasons; change nothing')
    .option('-d, --delete', 'after sending, delete snapshots in DST that SRC does not have')
    .option('-e, --estimate', 'plan from cheap estimates, measuring only the diffs the plan uses')
    .option('-q, --quiet', 'no progress bar; twice (-qq): errors only', (_v: string, n: number) => n + 1, 0)
    .option('-v, --verbose', 'show the btrfs commands run and why each parent was chosen')
    .option('-l, --logfile <file>', 'append a timestamped log of everything done to FILE')
    .option('--part-size <MiB>', 'upload part size for S3 stores, in MiB', parsePartSize, 20)
    .option('--exclude <regex>', 'leave out snapshots whose name matches (repeatable); never deleted', collectRegex, [])
    .option('--json', 'print the listing or the plan (-n) as JSON')
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (MinIO, Ceph, Backblaze, Wasabi...); default AWS_ENDPOINT_URL_S3, else AWS')
    .option('--s3-region <region>', 'S3 region; default AWS_REGION or the AWS profile, else us-east-1')
    .option('--s3-path-style', 'path-style bucket addressing (default with --s3-endpoint)')
    .option('--no-s3-path-style', 'virtual-hosted bucket addressing even with --s3-endpoint')
    .option(
      '--s3-checksum <when>',
      "SDK request checksums: 'when-supported' or 'when-required' (default with --s3-endpoint)",
      parseChecksum,
    )
    .option('--s3-sse <mode>', "server-side encryption: 'AES256', 'aws:kms' or 'none'", parseSse, 'AES256')
    .option('--s3-storage-class <class>', 'storage class of uploads (STANDARD, STANDARD_IA, GLACIER_IR, ...)')
    .option('--s3-parallel <n>', 'parts uploaded at once; memory is about part size x (n + 1)', parseParallel, 4)
    .option(
      '--remote-command <cmd>',
      "what runs buttersink on an ssh:// store's host (default 'sudo -n buttersink', 'buttersink' as root; env BUTTERSINK_REMOTE_COMMAND)",
    )
    .option(
      '--known-hosts <file>',
      'check SSH host keys against FILE instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; env BUTTERSINK_KNOWN_HOSTS, colon-separated)',
      collectString,
      [],
    )
    .addHelpText('after', EXAMPLES)
    .action(async (src: string | undefined, dst: string | undefined, flags: SyncFlags) => {
      const output = new Output({ quiet: flags.quiet, verbose: flags.verbose === true }, checkLogFile(flags.logfile));
      context.output = output;
      context.verbose = flags.verbose === true;
      setCommandTracer((command) => output.debug(`$ ${command}`));
      if (flags.quiet > 0 && flags.verbose) throw new UsageError('-q and -v contradict each other: use one of them');
      if (flags.quiet > 0 && flags.progress) throw new UsageError('-q and --progress contradict each other: use one of them');
      if (src === undefined) throw new UsageError('missing store URL', { hint: 'see buttersink --help' });
      if (dst === undefined) await listStore(src, flags, output, context.signal);
      else await syncStores(src, dst, flags, output, context.signal);
    });
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
  const knownHostsFiles = flags.knownHosts.length > 0 ? flags.knownHosts : fromEnv;
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
  const store = await openStore(location, withSsh(storeContext(flags, output), 'r', flags));
  try {
    const all = await store.list();
    const chosen = selectSnapshots(all, { store, selection: location.selection }).filter(
      (s) => !flags.exclude.some((re) => re.test(s.name)),
    );
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

async function syncStores(srcUrl: string, dstUrl: string, flags: SyncFlags, output: Output, signal: AbortSignal): Promise<void> {
  const srcLocation = parseStoreUrl(srcUrl);
  const dstLocation = parseStoreUrl(dstUrl);
  if (srcLocation.kind === 'btrfs' && dstLocation.kind === 'btrfs' && srcLocation.directory === dstLocation.directory) {
    throw new UsageError('source and destination are the same directory');
  }
  if (flags.json && !flags.dryRun) throw new UsageError('--json prints a plan: use it with -n');
  const context = storeContext(flags, output);
  const stores: Store[] = [];
  try {
    const src = await openStore(srcLocation, withSsh(context, 'r', flags));
    stores.push(src);
    const dst = await openStore(dstLocation, withSsh(context, flags.dryRun ? 'r' : flags.delete ? 'w' : 'a', flags));
    stores.push(dst);
    let reporter: ProgressReporter | undefined;
    try {
      const result = await runSync(
        { store: src, selection: srcLocation.selection },
        { store: dst, selection: dstLocation.selection },
        {
          dryRun: flags.dryRun === true,
          delete: flags.delete === true,
          estimate: flags.estimate === true,
          excludes: flags.exclude,
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
        output.result(
          sent + deleted === 0
            ? `${dst.url} is up to date (${result.plan.alreadyPresent.length} snapshots)`
            : `done: sent ${sent} snapshot${sent === 1 ? '' : 's'} (${formatBytes(bytes)}), deleted ${deleted}`,
        );
      }
    } finally {
      reporter?.stop();
    }
  } finally {
    for (const store of stores) await store.close().catch(() => {});
  }
}

function parsePartSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 5 || n > 5120) {
    throw new InvalidArgumentError('expected a whole number of MiB from 5 to 5120 (S3 limits)');
  }
  return n;
}

function parseChecksum(value: string): 'when-supported' | 'when-required' {
  if (value !== 'when-supported' && value !== 'when-required')
    throw new InvalidArgumentError("expected 'when-supported' or 'when-required'");
  return value;
}

function parseSse(value: string): string {
  if (value !== 'AES256' && value !== 'aws:kms' && value !== 'none')
    throw new InvalidArgumentError("expected 'AES256', 'aws:kms' or 'none'");
  return value;
}

function parseParallel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

function collectString(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collectRegex(value: string, previous: RegExp[]): RegExp[] {
  try {
    return [...previous, new RegExp(value)];
  } catch (error) {
    throw new InvalidArgumentError(`not a valid regular expression: ${messageOf(error)}`);
  }
}

function checkLogFile(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    appendFileSync(file, '');
  } catch (error) {
    throw new UsageError(`cannot write the log file ${file}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`);
  }
  return file;
}
