/**
 * Running the CLI and other commands for the fault campaign: always asynchronously, since the
 * fault proxy lives in the campaign's own process (a synchronous child would stall it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: this file is dist/scripts/torture/processes.js. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(REPO, 'dist/src/cli/main.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** What a fault does to a running transfer, `at` ms after it started. */
export interface Interrupt {
  readonly at: number;
  readonly action: (child: ChildProcess) => void;
}

export const killNineAt = (at: number): Interrupt => ({ at, action: (child) => child.kill('SIGKILL') });

/** Runs the CLI with `env` over this process's environment; `interrupt` acts on it mid-run. */
export function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, interrupt?: Interrupt): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = interrupt === undefined ? undefined : setTimeout(() => interrupt.action(child), interrupt.at);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -9 : null), stdout, stderr, seconds: (performance.now() - started) / 1000 });
    }),
  );
}

/** Runs a command (not the CLI) asynchronously: the mount lives in another process, but stay safe. */
export function command(file: string, argv: readonly string[], delayMs = 0): Promise<Run> {
  return new Promise((resolve) =>
    setTimeout(() => {
      const started = performance.now();
      const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code, signal) =>
        resolve({ code: code ?? (signal ? -9 : null), stdout, stderr, seconds: (performance.now() - started) / 1000 }),
      );
    }, delayMs),
  );
}

export const lastLine = (r: Run): string => r.stderr.trim().split('\n').at(-1) ?? '';
