import { type Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import pLimit from 'p-limit';
import { loadTokenKey } from '../remote/parent-uuid-tokens.js';
import { MAX_CHILD_PROCESSES, serve } from '../remote/server.js';
import { confineToDirectory } from '../remote/wire-errors.js';
import { fileDescriptorIo } from '../remote/server-io.js';
import { SERVER_MODES, type ServerMode } from '../remote/protocol.js';
import { BtrfsStore } from '../stores/btrfs/btrfs-store.js';
import { defaultCacheDirectory, MeasurementCache } from '../stores/cache/measurement-cache.js';

/**
 * `buttersink server --mode r|a|w DIR`: the remote end of an SSH store, started by the client
 * over SSH (`sudo -n buttersink server ...`). It speaks the protocol on stdin/stdout only;
 * the mode and directory are fixed on its command line, so sudoers can allow exactly one
 * such command per key.
 */
export function addServerCommand(program: Command, version: string, signal: AbortSignal): void {
  program
    .command('server')
    .summary('the remote end of an ssh:// store (started by buttersink over SSH)')
    .description(
      'Serve the snapshots in DIR over stdin/stdout for a buttersink client on the other end of SSH. ' +
        'Mode r lists and sends, a also receives, w also deletes. Not meant to be run by hand.',
    )
    .requiredOption('--mode <mode>', 'r (read), a (add) or w (add and delete)', parseMode)
    .argument('<dir>', 'the directory of snapshots to serve (absolute)')
    .addHelpText(
      'after',
      `
Example sudoers line on the backup server, allowing the key's user to add snapshots to
/backup/snaps/ and nothing else:
  backup ALL=(root) NOPASSWD: /usr/local/bin/buttersink server --mode a /backup/snaps
(the directory as the client passes it: absolute, without a trailing slash)`,
    )
    .action(async (dir: string, flags: { mode: ServerMode }) => {
      const directory = path.resolve(dir);
      const cacheDirectory = defaultCacheDirectory();
      // One limit for every child the session starts, the store's included.
      const childLimit = pLimit(MAX_CHILD_PROCESSES);
      const store = new BtrfsStore({
        url: dir,
        directory,
        cache: new MeasurementCache(cacheDirectory),
        childLimit,
        // The client shows the server's stderr when something fails.
        onWarning: (message) => process.stderr.write(`buttersink server: warning: ${confineToDirectory(message, directory)}\n`),
      });
      let key: Promise<Buffer> | undefined;
      const code = await serve({
        mode: flags.mode,
        store,
        directory,
        io: fileDescriptorIo(0, 1),
        version,
        childLimit,
        tokenKey: () => (key ??= loadTokenKey(path.join(cacheDirectory, 'parent-token.key'))),
        signal,
      });
      // Exit now: nothing may linger reading the channel once the client is done.
      process.exit(code);
    });
}

function parseMode(value: string): ServerMode {
  if (!(SERVER_MODES as readonly string[]).includes(value)) throw new InvalidArgumentError('expected r, a or w');
  return value as ServerMode;
}
