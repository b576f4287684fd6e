/**
 * The fault campaign's command line: drives real transfers through faults and checks, after
 * each, that nothing was lost and nothing incomplete ever looked complete.
 *
 *   sudo node dist/scripts/torture.js [--seed N] [--kills N] [--paths LIST] [--record]
 *
 * Paths: local-local, local-s3, s3-local, local-ssh, ssh-local (a real sshd on loopback whose
 * remote command is this checkout's CLI), and mount (`mkdir` of each snapshot in a
 * `buttersink mount` of the two pools; the mount process is what gets killed).
 * Faults, one module of scripts/torture/ per family:
 *   sync.ts   every sync path: kill -9 at a seeded random moment then a rerun, -n changing
 *             nothing, two syncs at once; a full destination disk (local-local)
 *   ssh.ts    the connection cut mid-stream, the remote buttersink killed, the remote disk full
 *   s3.ts     5xx bursts, throttling, resets mid-part and mid-download, truncated bodies, an
 *             object corrupted in the bucket (detected before the snapshot is visible)
 *   mount.ts  kill -9, SIGTERM and umount mid-mkdir, a --read-only mount and browsing, two
 *             mkdir of one snapshot at once, a mount mkdir racing a CLI sync, a full disk
 * campaign.ts runs them (runCampaign, which returns the tallies as data; the fault-campaign
 * test calls it), report.ts writes the markdown.
 *
 * Prints a table (path x fault: runs, survived, data verified, partials left); --record
 * writes it into RELIABILITY.md. Exits non-zero when any run did not survive. Everything lives
 * in loop-device pools and a loopback S3 server under one temporary directory, removed at the
 * end, also on failure or Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_PATHS, runCampaign, survivedAll, type CampaignResult, type PathName } from './torture/campaign.js';
import { REPO } from './torture/processes.js';
import { markdownTable, reliabilityText } from './torture/report.js';

const USAGE = `usage: sudo node dist/scripts/torture.js [--seed N] [--kills N] [--paths LIST] [--record]
  --seed N      seeds every random choice (default 1)
  --kills N     seeded kill -9 points per path (default 20; other interruptions a quarter, at least 3)
  --paths LIST  comma-separated, of ${ALL_PATHS.join(',')} (default all)
  --record      write the table into RELIABILITY.md
  -h, --help    this text`;

function usageError(message: string): never {
  process.stderr.write(`torture: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseCommandLine(): { seed: number; kills: number; paths: PathName[]; record: boolean } {
  const values = (() => {
    try {
      return parseArgs({
        options: {
          seed: { type: 'string', default: '1' },
          kills: { type: 'string', default: '20' },
          paths: { type: 'string', default: ALL_PATHS.join(',') },
          record: { type: 'boolean', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
      }).values;
    } catch (error) {
      return usageError((error as Error).message);
    }
  })();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const seed = Number(values.seed);
  const kills = Number(values.kills);
  if (!Number.isSafeInteger(seed)) usageError(`--seed takes a whole number, not ${values.seed}`);
  if (!Number.isSafeInteger(kills) || kills < 0) usageError(`--kills takes a whole number >= 0, not ${values.kills}`);
  const paths = values.paths.split(',');
  const unknown = paths.filter((p) => !(ALL_PATHS as readonly string[]).includes(p));
  if (unknown.length > 0) usageError(`unknown path ${unknown.join(', ')}`);
  return { seed, kills, paths: paths as PathName[], record: values.record };
}

const { seed, kills, paths, record } = parseCommandLine();

// The first SIGINT or SIGTERM takes everything down, then exits; a second one exits at once.
const controller = new AbortController();
for (const [name, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(name, () => {
    if (controller.signal.aborted) process.exit(code);
    controller.abort(code);
  });
}
let result: CampaignResult;
try {
  result = await runCampaign({ seed, kills, paths, signal: controller.signal });
} catch (error) {
  if (controller.signal.aborted) process.exit(controller.signal.reason as number);
  throw error;
}

const table = markdownTable(result.rows);
process.stdout.write(`${table}\n`);
if (record) {
  const file = path.join(REPO, 'RELIABILITY.md');
  const revision = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  writeFileSync(file, reliabilityText(previous, { seed, kills, paths, revision, date: new Date().toISOString().slice(0, 10), table }));
}
process.exitCode = survivedAll(result) ? 0 : 1;
