#!/usr/bin/env node
/**
 * Runs node's test runner over the compiled tests: every `*.test.js` below each directory
 * given (default dist/test/unit), one file at a time, each directory's files in sorted order
 * and the directories in the order given. Node 20's `node --test` expands no globs (that came
 * in Node 21) and a shell glob does not recurse without globstar, so the files are found here.
 * Arguments starting with `-` go to `node --test` as they are (`--test-name-pattern=REGEX`).
 *
 *   node scripts/run-tests.mjs [--quick] [node --test options] [DIR|FILE...]
 *
 * --quick leaves out the slow files ({@link SLOW}: the fault campaign, ~18 minutes), and says so.
 *
 * Plain JavaScript, so that it runs before anything is compiled; the tests themselves come
 * from `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** What --quick leaves out: long campaigns that CI runs in full. */
const SLOW = [/(^|\/)fault-campaign\.test\.js$/];

const options = [];
const places = [];
let quick = false;
for (const arg of process.argv.slice(2)) {
  if (arg === '--quick') quick = true;
  else (arg.startsWith('-') ? options : places).push(arg);
}
if (places.length === 0) places.push('dist/test/unit');

/** The test files below `dir`, depth first. */
function testFilesBelow(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFilesBelow(file);
    return entry.isFile() && entry.name.endsWith('.test.js') ? [file] : [];
  });
}

const files = [];
for (const place of places) {
  const stat = statSync(place, { throwIfNoEntry: false });
  if (stat === undefined) {
    process.stderr.write(`run-tests: ${place} does not exist (npm run build compiles the tests into dist/)\n`);
    process.exit(2);
  }
  files.push(...(stat.isDirectory() ? testFilesBelow(place).sort() : [place]));
}
if (quick) {
  const slow = files.filter((f) => SLOW.some((re) => re.test(f)));
  for (const f of slow) files.splice(files.indexOf(f), 1);
  if (slow.length > 0) process.stderr.write(`run-tests: --quick leaves out ${slow.join(', ')} (CI and a run without --quick include it)\n`);
}
if (files.length === 0) {
  // `node --test` without files would search the whole tree by its own rules: never that.
  process.stderr.write(`run-tests: no *.test.js below ${places.join(', ')}\n`);
  process.exit(2);
}

const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...options, ...files], { stdio: 'inherit' });
if (run.error) throw run.error;
process.exitCode = run.status ?? 1;
