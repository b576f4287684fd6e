import type { Command } from 'commander';
import type { CliContext } from './cli-context.js';
import type { RunFlags } from './run-action.js';

export const RUN_HELP = `
Jobs are tables of the configuration file (--config, else $XDG_CONFIG_HOME/buttersink/config.toml,
else /etc/buttersink/config.toml); keys are sync's long options without their dashes:

  [stores]
  local = "/mnt/pool/snaps/"
  backup = "/mnt/backup/snaps/"

  [jobs.nightly]
  source = "local"                                  # a store of [stores], or a URL
  destinations = ["backup", "s3://bucket/host1/"]   # or destination = "backup"
  keep = "5 24h 7d 4w 12m *y"                       # retention (--keep); or delete = true
  exclude = ['\\.tmp$']

Each job syncs its source to each destination in turn; a failure is reported and the others
still run. A table sums up every job at the end; the exit code is 0 when all succeeded, else
that of the first failure (see buttersink --help). Runs into one destination never overlap:
each holds the destination's lock.`;

export function addRunCommand(program: Command, context: CliContext): void {
  program
    .command('run')
    .summary('run the sync jobs of the configuration file ([jobs.NAME])')
    .description('Run the named jobs of the configuration file, or all of them in file order.')
    .argument('[name...]', 'jobs to run (default: all)')
    .option('-c, --config <file>', 'configuration file (TOML) with [jobs.NAME] tables')
    .option('-n, --dry-run', 'print each plan with sizes and reasons; change nothing')
    .option('-q, --quiet', 'no progress bar; twice (-qq): errors only', (_v: string, n: number) => n + 1, 0)
    .option('-v, --verbose', 'show the btrfs commands run and why each parent was chosen')
    .option('-l, --logfile <file>', 'append a timestamped log of everything done to FILE')
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--list', "print the jobs' names, one a line, and run nothing")
    .addHelpText('after', RUN_HELP)
    .action(async (names: string[], flags: RunFlags) => {
      const { runJobsCommand } = await import('./run-action.js');
      await runJobsCommand(names, flags, context);
    });
}
