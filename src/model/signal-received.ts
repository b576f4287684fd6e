/** The signals buttersink stops on, with their numbers (exit status 128 + number, as shells report). */
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
export type StopSignal = keyof typeof SIGNAL_NUMBERS;

/**
 * The abort reason when a signal stops a run (src/cli/main.ts), so that whatever stops
 * can exit with the status a shell expects after that signal (143 for SIGTERM).
 */
export class SignalReceived extends Error {
  readonly signalName: StopSignal;
  readonly exitCode: number;

  constructor(signalName: StopSignal) {
    super(`received ${signalName}`);
    this.name = 'SignalReceived';
    this.signalName = signalName;
    this.exitCode = 128 + SIGNAL_NUMBERS[signalName];
  }
}
