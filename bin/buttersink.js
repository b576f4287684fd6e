#!/usr/bin/env node
// The installed `buttersink` command. The CLI is compiled into dist/ (npm run build; the
// prepare script on npm ci, npm pack and installs from git), where the tests and scripts
// run it as `node dist/src/cli/main.js`.
import '../dist/src/cli/main.js';
