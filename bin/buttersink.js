#!/usr/bin/env node
// The installed `buttersink` command. It runs the bundle (dist/bundle/, made by
// scripts/bundle.mjs in `npm run build`: the prepare script on npm ci, npm pack and installs
// from git): a few files instead of ~200 small modules to read and compile at every start
// (issue 15). The tests and scripts run tsc's output, `node dist/src/cli/main.js`, which
// behaves the same.
import module from 'node:module';

// Node 22.1+ keeps V8's compiled code of the modules on disk (in os.tmpdir(), or
// NODE_COMPILE_CACHE), so later starts skip compiling them; Node 20 has no such thing and
// starts as before. Imported after it, dynamically: a static import would be loaded first.
if (typeof module.enableCompileCache === 'function') {
  try {
    module.enableCompileCache();
  } catch {
    // A cache that cannot be used only costs time.
  }
}
// A stack trace (printed with -v/--verbose) names the lines of src/*.ts through the bundle's
// source maps. Only then: reading the maps costs start-up time (measured on Node 20: 25-40 ms
// of CPU, +0.15-0.2x bare node's, for --help and --version), and a map is only read for
// modules loaded after this call.
if (process.argv.includes('-v') || process.argv.includes('--verbose')) process.setSourceMapsEnabled(true);
await import('../dist/bundle/main.js');
