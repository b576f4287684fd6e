import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (tsc's output, dist/src/), which the tests run. */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** The installed command (package.json `bin`): it runs the bundle, dist/bundle/. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/buttersink.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function cli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; prefix?: readonly string[] } = {}): CliResult {
  return cliAt(CLI, args, options.prefix ?? [], options.env);
}

/** Runs a CLI build at `main`, optionally behind a command prefix (e.g. setpriv). */
export function cliAt(main: string, args: readonly string[], prefix: readonly string[] = [], env?: NodeJS.ProcessEnv): CliResult {
  const command = prefix.length > 0 ? prefix[0]! : process.execPath;
  const argv = prefix.length > 0 ? [...prefix.slice(1), process.execPath, main, ...args] : [main, ...args];
  const result = spawnSync(command, argv, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts the CLI in the background, for interrupting it. */
export function cliInBackground(args: readonly string[], env?: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : null), stdout, stderr })),
  );
  return { child, done };
}
