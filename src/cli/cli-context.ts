import type { Output } from './output.js';

/** What every command gets from the CLI's one error boundary (`run-cli.ts`). */
export interface CliContext {
  output: Output;
  verbose: boolean;
  readonly signal: AbortSignal;
  /** Set by a command that ends without an error but with another code (a daemon's parent passes on its child's). */
  exitCode?: number;
}
