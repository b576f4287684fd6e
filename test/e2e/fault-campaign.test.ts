import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fuseSuite, sshSuite } from '../support/prerequisites.js';
import { s3Suite } from '../support/s3-server.js';

const TORTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/torture.js');
const suite = (() => {
  for (const s of [sshSuite(), fuseSuite(), s3Suite()]) if (s.skip) return s;
  return { skip: false as const };
})();

// The fault campaign (scripts/torture.ts, RELIABILITY.md) in small: two seeded kill -9 points
// per path and every other fault a few times, so a change that breaks "nothing is lost" fails
// CI. 35 rows: 29 for the five sync paths and the mount's kill -9, 6 more mount faults
// (read-only/browsing, two mkdir at once, mkdir with a CLI sync, SIGTERM, umount, disk full).
describe('fault campaign, small (scripts/torture.ts --kills 2)', suite, () => {
  test('every path survives kill -9, cuts, a full disk, S3 and mount faults; no partial is left', async () => {
    const child = spawn(process.execPath, [TORTURE, '--seed', '7', '--kills', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `${stdout}\n${stderr.split('\n').filter((l) => !l.includes('survived')).slice(-20).join('\n')}`);
    const rows = stdout.split('\n').filter((l) => /^\| (local|s3|ssh|mount)/.test(l));
    assert.ok(rows.length >= 35, `only ${rows.length} rows:\n${stdout}`);
    for (const row of rows) {
      const [runs, survived, , partials] = row.split('|').slice(3, 7).map((c) => Number(c.trim()));
      assert.ok(runs! > 0 && survived === runs && partials === 0, row);
    }
  });
});
