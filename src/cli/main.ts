#!/usr/bin/env node
import { SignalReceived, type StopSignal } from '../model/signal-received.js';
import { runCli } from './run-cli.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (name: StopSignal): void => {
  signals += 1;
  // The first signal aborts cleanly (children killed, partial receives removed); a second
  // one means "now", and the next run's lock() removes what is left.
  if (signals > 1) process.exit(new SignalReceived(name).exitCode);
  controller.abort(new SignalReceived(name));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A closed terminal (SIGHUP) would otherwise kill node outright: a `mount -f` would leave a
// dead mount behind and a sync its partial receive until the next run.
process.on('SIGHUP', onSignal);

// `buttersink --help | head`, or a listing piped to a reader that stops early: a closed pipe is
// no error of ours (as for any Unix tool), and must not crash node with a stack trace nor stop
// a sync half way; what is left to print is dropped.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
  });
}

// Not a top-level await: the installed command runs this as one CommonJS bundle (see
// scripts/bundle.mjs), which has none.
void runCli(process.argv, controller.signal).then((code) => {
  process.exitCode = code;
});
