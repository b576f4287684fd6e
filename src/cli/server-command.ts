import { type Command, InvalidArgumentError } from 'commander';
import { encodeMessage, makeHello, SERVER_MODES, type ServerMode } from '../remote/protocol.js';

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
      // The client waits for the hello before anything else: it goes out before the server's
      // modules (the store, the stream checks: ~12 ms) are loaded, which --help and --version
      // never load at all.
      const { fileDescriptorIo } = await import('../remote/server-io.js');
      const io = fileDescriptorIo(0, 1);
      const helloSent = io.write(encodeMessage(makeHello(version, flags.mode)));
      helloSent.catch(() => {}); // awaited by the session, which reports a failed write
      const { runServerCommand } = await import('./server-action.js');
      await runServerCommand(dir, flags.mode, version, signal, { io, helloSent });
    });
}

function parseMode(value: string): ServerMode {
  if (!(SERVER_MODES as readonly string[]).includes(value)) throw new InvalidArgumentError('expected r, a or w');
  return value as ServerMode;
}
