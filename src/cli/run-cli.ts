import { Command, CommanderError } from 'commander';
import { ButtersinkError, ExitCode, InterruptedError } from '../model/errors.js';
import { addMountCommands } from './mount-command.js';
import { packageVersion } from '../model/package-version.js';
import type { CliContext } from './cli-context.js';
import { Output } from './output.js';
import { addRunCommand } from './run-command.js';
import { addServerCommand } from './server-command.js';
import { addSyncCommand, SYNC_HELP } from './sync-command.js';

/**
 * Runs the CLI and returns the exit code. This is the one error boundary: commands throw
 * typed {@link ButtersinkError}s, and only here are they turned into a message and a code.
 */
export async function runCli(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const context: CliContext = { output: new Output({ quiet: 0, verbose: false }), verbose: false, signal };
  const program = buildProgram(context);
  try {
    await program.parseAsync([...argv]);
    return context.exitCode ?? ExitCode.Ok;
  } catch (error) {
    return report(error, context);
  }
}

/**
 * Every command, option and help text: what `--help` prints, and what the man page and the
 * shell completions are made from (`completion`, scripts/docs.mjs), so they never disagree.
 */
export function buildProgram(context: CliContext): Command {
  const signal = context.signal;
  const program = new Command('buttersink')
    .description('Synchronize btrfs read-only snapshots between stores, like rsync for snapshots.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`buttersink: ${text.replace(/^error: /, '')}`) });
  addSyncCommand(program, context);
  addRunCommand(program, context);
  addMountCommands(program, context);
  addServerCommand(program, packageVersion(), signal);
  program.addHelpText(
    'after',
    `\nThe default command is sync: 'buttersink [options] [src] dst'. Its main options (all of them: 'buttersink sync --help'):\n${mainSyncOptions(program)}\n${SYNC_HELP}`,
  );
  program
    .command('completion')
    .summary('print a shell completion script (bash, zsh or fish)')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      `
  bash:  buttersink completion bash > /etc/bash_completion.d/buttersink
  zsh:   buttersink completion zsh > "\${fpath[1]}/_buttersink"
  fish:  buttersink completion fish > ~/.config/fish/completions/buttersink.fish`,
    )
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(program, shell));
    });
  return program;
}

/** The sync options a newcomer needs first, as `sync --help` words them (one source for both). */
const MAIN_SYNC_OPTIONS = ['-n', '-d', '-e', '-q', '-v', '-l', '--exclude', '--json'];

function mainSyncOptions(program: Command): string {
  const sync = program.commands.find((c) => c.name() === 'sync');
  const options = (sync?.options ?? []).filter((o) => MAIN_SYNC_OPTIONS.includes(o.short ?? o.long ?? ''));
  const width = Math.max(...options.map((o) => o.flags.length));
  return options.map((o) => `  ${o.flags.padEnd(width)}  ${o.description}`).join('\n');
}

function report(error: unknown, context: CliContext): number {
  const { output } = context;
  if (error instanceof CommanderError) {
    // Commander printed its own message already (help, version, or the usage error).
    return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  }
  if (context.signal.aborted && !(error instanceof ButtersinkError && error.exitCode !== ExitCode.Interrupted)) {
    const interrupted = error instanceof InterruptedError ? error : new InterruptedError('interrupted');
    output.error(`${interrupted.message}; partial work was removed`);
    return ExitCode.Interrupted;
  }
  if (error instanceof ButtersinkError) {
    output.error(error.hint ? `${error.message} (${error.hint})` : error.message);
    if (context.verbose && error.cause) output.debug(`caused by: ${String(error.cause)}`);
    return error.exitCode;
  }
  const err = error instanceof Error ? error : new Error(String(error));
  output.error(`internal error: ${err.message}${context.verbose ? '' : ' (run with -v for details)'}`);
  if (context.verbose && err.stack) output.debug(err.stack);
  return ExitCode.Internal;
}
