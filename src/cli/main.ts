#!/usr/bin/env node
import { runCli } from './run-cli.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (name: NodeJS.Signals): void => {
  signals += 1;
  // The first signal aborts cleanly (children killed, partial receives removed); a second
  // one means "now", and the next run's lock() removes what is left.
  if (signals > 1) process.exit(128 + (name === 'SIGINT' ? 2 : name === 'SIGHUP' ? 1 : 15));
  controller.abort(new Error(`received ${name}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A closed terminal (SIGHUP) would otherwise kill node outright: a `mount -f` would leave a
// dead mount behind and a sync its partial receive until the next run.
process.on('SIGHUP', onSignal);

process.exitCode = await runCli(process.argv, controller.signal);
