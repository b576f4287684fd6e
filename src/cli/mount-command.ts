import { type Command, InvalidArgumentError } from 'commander';
import { parseStoreOption } from '../config/store-option.js';
import { messageOf } from '../model/errors.js';
import type { CliContext } from './cli-context.js';
import type { MountFlags } from './mount-action.js';

export const MOUNT_HELP = `
Layout:  MOUNTPOINT/<store>/<snapshot>/...   MOUNTPOINT/.buttersink/status, log

  mkdir MNT/B/NAME            transfer snapshot NAME (from the cheapest store having it) into B
  cp -r MNT/A/NAME MNT/B/     the same; cp's copy is compared with what was received
  rmdir MNT/B/NAME, rm -r     delete the snapshot from B
  mv MNT/B/OLD MNT/B/NEW      rename it within B
  watch cat MNT/.buttersink/status

Snapshots in local and SSH stores show their files read-only (SSH: read through the remote
buttersink server, cached); snapshots in S3 show as empty directories.

Before mounting, every store is listed: one that cannot be (a typo in a path, a host or
bucket not reachable) fails the mount with the error sync gives for it, unless
--no-check-stores.

Stores come from [stores] in the configuration file (--config, else
$XDG_CONFIG_HOME/buttersink/config.toml, else /etc/buttersink/config.toml) and --store.`;

export function addMountCommands(program: Command, context: CliContext): void {
  program
    .command('mount')
    .summary('mount stores as directories: mkdir/cp -r transfer, rmdir/rm -r delete')
    .description('Mount every configured store under MOUNTPOINT as a directory of snapshots.')
    .argument('<mountpoint>', 'an existing empty directory')
    .option('-s, --store <NAME=URL>', 'a store to mount (repeatable; adds to or overrides the config file)', collectStore)
    .option('-c, --config <file>', 'configuration file (TOML) naming the stores')
    .option('-f, --foreground', 'stay in the foreground (otherwise it daemonizes once mounted)')
    .option('-r, --read-only', 'browse only: no transfers, deletes or renames')
    .option('--allow-other', 'let users other than root see the mount (FUSE allow_other)')
    .option('-l, --logfile <file>', 'append a timestamped log to FILE')
    .option('-v, --verbose', 'log every failed filesystem operation')
    .option('--copy-idle <seconds>', 'close a copy window after this long without an operation', parseSeconds, 3)
    .option('--listing-ttl <seconds>', 'refresh cached store listings after this long', parseSeconds, 30)
    .option(
      '--store-timeout <seconds>',
      'answer EIO when a store does not list within this long (S3 endpoint not answering)',
      parseSeconds,
      30,
    )
    .option(
      '--no-check-stores',
      'mount without listing every store first: one that cannot be listed answers EIO until it can (a remote not up yet at boot)',
    )
    .addHelpText('after', MOUNT_HELP)
    .action(async (mountPoint: string, flags: MountFlags) => {
      // Loaded only when the command runs: the stores, the configuration file and FUSE.
      const { runMountCommand } = await import('./mount-action.js');
      await runMountCommand(mountPoint, flags, context);
    });

  program
    .command('umount')
    .alias('unmount')
    .summary('unmount a buttersink mount (transfers in flight are aborted cleanly)')
    .argument('<mountpoint>')
    .option(
      '--timeout <seconds>',
      'how long the mount process gets to abort transfers and unmount; after it, what waits on the mount is failed and the process stopped at once',
      parseSeconds,
      90,
    )
    .action(async (mountPoint: string, flags: { timeout: number }) => {
      const { runUmountCommand } = await import('./mount-action.js');
      await runUmountCommand(mountPoint, flags.timeout * 1000, context);
    });
}

// Starts undefined, not [] (commander would print "(default: [])").
function collectStore(value: string, previous: [string, string][] | undefined): [string, string][] {
  try {
    return [...(previous ?? []), parseStoreOption(value)];
  } catch (error) {
    throw new InvalidArgumentError(messageOf(error));
  }
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}
