#!/usr/bin/env node
// The installed `buttersink` command. The CLI is compiled into dist/ (npm run build; the
// prepare script on npm ci, npm pack and installs from git), where the tests and scripts
// run it as `node dist/src/cli/main.js`.
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
await import('../dist/src/cli/main.js');
