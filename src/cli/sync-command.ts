import { type Command, InvalidArgumentError } from 'commander';
import { messageOf } from '../model/errors.js';
import type { CliContext } from './cli-context.js';
import type { SyncFlags } from './sync-action.js';

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
    .option(
      '--keep <policy>',
      "retention on DST instead of mirroring: keep only what POLICY keeps, delete the rest after sending, send nothing it would not keep; e.g. '5 24h 7d 4w 12m *y' (the newest 5; the first of each of the last 24 hours, 7 days, 4 weeks, 12 months; of every year)",
    )
    .option('--rate-limit <rate>', "at most RATE bytes per second per stream, as pv -L takes it: '500k', '10M', '1.5G'")
    .option('-e, --estimate', 'plan from cheap estimates, measuring only the diffs the plan uses')
    .option('-q, --quiet', 'no progress bar; twice (-qq): errors only', (_v: string, n: number) => n + 1, 0)
    .option('-v, --verbose', 'show the btrfs commands run and why each parent was chosen')
    .option('-l, --logfile <file>', 'append a timestamped log of everything done to FILE')
    .option('--part-size <MiB>', 'upload part size for S3 stores, in MiB', parsePartSize, 20)
    .option(
      '--exclude <regex>',
      "leave out snapshots whose name matches the regular expression (not a glob: '\\.4$', not '*.4'; repeatable); never deleted",
      collectRegex,
    )
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
    )
    .addHelpText('after', EXAMPLES)
    .action(async (src: string | undefined, dst: string | undefined, flags: SyncFlags) => {
      // Loaded only when the command runs: --help and --version need none of the stores.
      const { runSyncCommand } = await import('./sync-action.js');
      await runSyncCommand(src, dst, flags, context);
    });
}

export function parsePartSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 5 || n > 5120) {
    throw new InvalidArgumentError('expected a whole number of MiB from 5 to 5120 (S3 limits)');
  }
  return n;
}

export function parseChecksum(value: string): 'when-supported' | 'when-required' {
  if (value !== 'when-supported' && value !== 'when-required')
    throw new InvalidArgumentError("expected 'when-supported' or 'when-required'");
  return value;
}

export function parseSse(value: string): string {
  if (value !== 'AES256' && value !== 'aws:kms' && value !== 'none')
    throw new InvalidArgumentError("expected 'AES256', 'aws:kms' or 'none'");
  return value;
}

export function parseParallel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

// Repeatable options start undefined, not [] (commander would print "(default: [])").
function collectString(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function collectRegex(value: string, previous: RegExp[] | undefined): RegExp[] {
  try {
    return [...(previous ?? []), new RegExp(value)];
  } catch (error) {
    const reason = messageOf(error).replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '');
    const glob = /[*?]/.test(value) ? `; it is a regular expression, not a glob: for '${value}' write '${globToRegex(value)}'` : '';
    throw new InvalidArgumentError(`not a valid regular expression (${reason})${glob}`);
  }
}

/** The regular expression a shell glob means (`*.4` -> `^.*\.4$`), for the hint above. */
export function globToRegex(glob: string): string {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return `^${body}$`;
}
