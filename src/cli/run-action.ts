import { loadConfig, type JobConfig } from '../config/load-config.js';
import { ButtersinkError, ExitCode, messageOf, UsageError } from '../model/errors.js';
import { parseKeepPolicy } from '../planner/retention.js';
import { setCommandTracer } from '../stores/btrfs/run-btrfs.js';
import type { CliContext } from './cli-context.js';
import { Output } from './output.js';
import { checkLogFile, rateOf, type SyncFlags, syncStores } from './sync-action.js';
import { collectRegex, parseChecksum, parsePartSize, parseParallel, parseSse } from './sync-command.js';

/** `buttersink run`'s flags. */
export interface RunFlags {
  config?: string;
  dryRun?: boolean;
  quiet: number;
  verbose?: boolean;
  logfile?: string;
  progress?: boolean;
  list?: boolean;
}

/** One line of the summary: a job's sync into one of its destinations. */
interface Outcome {
  readonly job: string;
  readonly destination: string;
  /** Undefined when it succeeded. */
  readonly exitCode: number | undefined;
  readonly text: string;
}

/**
 * `buttersink run [NAME...]`: the jobs of the configuration file, each source synced to each
 * of its destinations with the same code as `buttersink sync`. A failure is reported and the
 * rest still runs (a nightly run with one unreachable disk still backs up to the others); an
 * interruption stops everything. Ends with a table; the exit code is that of the first failure.
 */
export async function runJobsCommand(names: readonly string[], flags: RunFlags, context: CliContext): Promise<void> {
  const output = new Output({ quiet: flags.quiet, verbose: flags.verbose === true }, checkLogFile(flags.logfile));
  context.output = output;
  context.verbose = flags.verbose === true;
  setCommandTracer((command) => output.debug(`$ ${command}`));
  if (flags.quiet > 0 && flags.verbose) throw new UsageError('-q and -v contradict each other: use one of them');
  const config = await loadConfig(flags.config);
  if (flags.list) {
    for (const name of config.jobs.keys()) output.data(name);
    return;
  }
  const where = config.file ?? 'the configuration file';
  if (config.jobs.size === 0) {
    throw new UsageError(`no jobs in ${config.file ?? 'any configuration file (none was found)'}`, {
      hint: 'add one: [jobs.nightly] source = "/snaps/" destination = "/mnt/backup/snaps/"; see \'buttersink run --help\'',
    });
  }
  const unknown = names.filter((n) => !config.jobs.has(n));
  if (unknown.length > 0) {
    throw new UsageError(`no job named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in ${where}`, {
      hint: `known: ${[...config.jobs.keys()].join(', ')}`,
    });
  }
  const jobs = names.length === 0 ? [...config.jobs.values()] : [...new Set(names)].map((n) => config.jobs.get(n)!);
  // Every job's options are checked before the first one runs: a typo fails at once, not at 3 am after the others.
  const prepared = jobs.map((job) => ({ job, flags: syncFlagsOf(job, flags, where) }));

  const outcomes: Outcome[] = [];
  for (const { job, flags: syncFlags } of prepared) {
    for (const destination of job.destinations) {
      output.info(`job ${job.name}: ${job.source} -> ${destination}`);
      try {
        const text = await syncStores(job.source, destination, syncFlags, output, context.signal);
        outcomes.push({ job: job.name, destination, exitCode: undefined, text });
      } catch (error) {
        if (context.signal.aborted) throw error;
        const exitCode = error instanceof ButtersinkError ? error.exitCode : ExitCode.Internal;
        const hint = error instanceof ButtersinkError && error.hint ? ` (${error.hint})` : '';
        output.error(`job ${job.name} -> ${destination}: ${messageOf(error)}${hint}`);
        outcomes.push({ job: job.name, destination, exitCode, text: `failed (exit ${exitCode}): ${messageOf(error)}` });
      }
    }
  }
  for (const line of renderOutcomes(outcomes)) output.result(line);
  const failed = outcomes.find((o) => o.exitCode !== undefined);
  if (failed) context.exitCode = failed.exitCode;
}

/** A job's settings as `buttersink sync`'s flags, checked as the flags are. @throws UsageError naming the job. */
export function syncFlagsOf(job: JobConfig, run: RunFlags, where: string): SyncFlags {
  const o = job.options;
  const check = <T>(key: string, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      throw new UsageError(`${where}: [jobs.${job.name}] ${key}: ${messageOf(error)}`);
    }
  };
  /** A setting sync takes as text and parses when the job runs: checked now, passed on as it is. */
  const checkedText = (key: string, text: string | undefined, parse: (text: string) => unknown): string | undefined =>
    text === undefined
      ? undefined
      : check(key, () => {
          parse(text);
          return text;
        });
  return {
    dryRun: run.dryRun,
    delete: o.delete,
    keep: checkedText('keep', o.keep, parseKeepPolicy),
    rateLimit: checkedText('rate-limit', o.rateLimit, rateOf),
    estimate: o.estimate,
    quiet: run.quiet,
    verbose: run.verbose,
    logfile: run.logfile,
    progress: run.progress,
    partSize: o.partSize === undefined ? 20 : check('part-size', () => parsePartSize(String(o.partSize))),
    exclude:
      o.exclude === undefined ? undefined : check('exclude', () => o.exclude!.reduce<RegExp[]>((all, e) => collectRegex(e, all), [])),
    s3Endpoint: o.s3Endpoint,
    s3Region: o.s3Region,
    s3PathStyle: o.s3PathStyle,
    s3Checksum: o.s3Checksum === undefined ? undefined : check('s3-checksum', () => parseChecksum(o.s3Checksum!)),
    s3Sse: o.s3Sse === undefined ? 'AES256' : check('s3-sse', () => parseSse(o.s3Sse!)),
    s3StorageClass: o.s3StorageClass,
    s3Parallel: o.s3Parallel === undefined ? 4 : check('s3-parallel', () => parseParallel(String(o.s3Parallel))),
    remoteCommand: o.remoteCommand,
    knownHosts: o.knownHosts === undefined ? undefined : [...o.knownHosts],
  };
}

/** The summary table: job, destination, what happened. */
export function renderOutcomes(outcomes: readonly Outcome[]): string[] {
  const rows = [['job', 'destination', 'result'], ...outcomes.map((o) => [o.job, o.destination, o.text])];
  const widths = [0, 1].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const failed = outcomes.filter((o) => o.exitCode !== undefined).length;
  return [
    ...rows.map((r) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}`),
    failed === 0 ? `${outcomes.length} of ${outcomes.length} succeeded` : `${failed} of ${outcomes.length} failed`,
  ];
}
