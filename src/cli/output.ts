import { appendFileSync } from 'node:fs';

/** How chatty the CLI is: `-q` once drops progress, twice drops everything but errors. */
export interface Verbosity {
  readonly quiet: number;
  readonly verbose: boolean;
}

/**
 * The CLI's one way to talk: results on stdout, progress and diagnostics on stderr, and
 * everything (with timestamps) in the `-l` log file when one is given.
 */
export class Output {
  readonly #verbosity: Verbosity;
  readonly #logFile: string | undefined;

  constructor(verbosity: Verbosity, logFile?: string) {
    this.#verbosity = verbosity;
    this.#logFile = logFile;
  }

  get showsProgress(): boolean {
    return this.#verbosity.quiet === 0;
  }

  /** A result line (plan, listing, summary): stdout, hidden by `-qq`. */
  result(line: string): void {
    this.#log('info', line);
    if (this.#verbosity.quiet < 2) process.stdout.write(`${line}\n`);
  }

  /** Raw stdout (JSON), never hidden: the caller asked for it. */
  data(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** What is happening (one line per step): stderr, hidden by `-q`. */
  info(line: string): void {
    this.#log('info', line);
    if (this.#verbosity.quiet < 1) process.stderr.write(`${line}\n`);
  }

  /** Only into the log file (the terminal showed it another way). */
  record(line: string): void {
    this.#log('info', line);
  }

  /** Details for `-v` (commands run, measurements), always in the log file. */
  debug(line: string): void {
    this.#log('debug', line);
    if (this.#verbosity.verbose) process.stderr.write(`${line}\n`);
  }

  warn(line: string): void {
    this.#log('warn', line);
    if (this.#verbosity.quiet < 2) process.stderr.write(`buttersink: warning: ${line}\n`);
  }

  error(line: string): void {
    this.#log('error', line);
    process.stderr.write(`buttersink: ${line}\n`);
  }

  #log(level: string, line: string): void {
    if (this.#logFile === undefined) return;
    try {
      appendFileSync(this.#logFile, `${new Date().toISOString()} ${level} ${line}\n`);
    } catch {
      // A log file that cannot be written must not break a backup; the CLI checked it at start.
    }
  }
}
