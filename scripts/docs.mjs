#!/usr/bin/env node
/**
 * Writes the man pages into dist/man/ (buttersink.1, buttersink.toml.5) from the CLI's own
 * definitions, compiled by tsc into dist/src (src/cli/man-page.ts says how). Run by
 * `npm run build` after tsc; `package.json` "man" ships them, and `npm install -g` links them
 * where `man` finds them. SOURCE_DATE_EPOCH, when set, dates the pages (reproducible builds).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const load = (module) => import(path.join(root, 'dist/src', module));
const [{ buildProgram }, { manPages }, { SYNC_HELP }, { MOUNT_HELP }, { RUN_HELP }, { Output }] = await Promise.all([
  load('cli/run-cli.js'),
  load('cli/man-page.js'),
  load('cli/sync-command.js'),
  load('cli/mount-command.js'),
  load('cli/run-command.js'),
  load('cli/output.js'),
]);
const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const epoch = Number(process.env.SOURCE_DATE_EPOCH);
const date = (Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date()).toISOString().slice(0, 10);
const program = buildProgram({ output: new Output({ quiet: 2, verbose: false }), verbose: false, signal: new AbortController().signal });
const pages = manPages(program, { sync: SYNC_HELP, mount: MOUNT_HELP, run: RUN_HELP }, version, date);
const out = path.join(root, 'dist/man');
mkdirSync(out, { recursive: true });
for (const [name, text] of Object.entries(pages)) writeFileSync(path.join(out, name), text);
