import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ALL_PATHS, runCampaign } from '../../scripts/torture/campaign.js';
import { fuseSuite, sshSuite } from '../support/prerequisites.js';
import { s3Suite } from '../support/s3-server.js';

const suite = (() => {
  for (const s of [sshSuite(), fuseSuite(), s3Suite()]) if (s.skip) return s;
  return { skip: false as const };
})();

// The fault campaign (scripts/torture.ts, RELIABILITY.md) in small: two seeded kill -9 points
// per path and every other fault a few times, so a change that breaks "nothing is lost" fails
// CI. 35 rows: 29 for the five sync paths and the mount's kill -9, 6 more mount faults
// (read-only/browsing, two mkdir at once, mkdir with a CLI sync, SIGTERM, umount, disk full).
// Run in this process, which node's test runner gives this file alone: the campaign's fault
// proxy lives in its caller's process either way and everything else it runs is a child; it
// prints nothing on stdout (the runner's channel), logs through `log`, points
// BUTTERSINK_TEST_ROOT at its own directory only while it runs (no other test here loads the
// pool support first) and takes down what it made before it returns.
describe('fault campaign, small (scripts/torture.ts --kills 2)', suite, () => {
  test('every path survives kill -9, cuts, a full disk, S3 and mount faults; no partial is left', async () => {
    const log: string[] = [];
    // scripts/test names where progress may go as it happens (node's runner shows this file's
    // output only when it ends, ~18 minutes later). Appended: it may be CI's log file.
    const progress = process.env.BUTTERSINK_TEST_PROGRESS;
    const result = await runCampaign({
      seed: 7,
      kills: 2,
      log: (message) => {
        log.push(message);
        if (progress) {
          try {
            appendFileSync(progress, `fault campaign: ${message}\n`);
          } catch {
            // progress is a courtesy: a closed terminal must not fail the campaign
          }
        }
      },
    });
    const context = (): string =>
      log
        .filter((l) => !l.includes('survived'))
        .slice(-20)
        .join('\n');
    assert.equal(result.aborted, undefined, context());
    assert.deepEqual(new Set(result.rows.map((r) => r.path)), new Set(ALL_PATHS));
    assert.ok(result.rows.length >= 35, `only ${result.rows.length} rows: ${result.rows.map((r) => `${r.path} ${r.fault}`).join('; ')}`);
    const failing = result.rows
      .filter((r) => !(r.runs > 0 && r.survived === r.runs && r.verified === r.runs && r.partialsLeft === 0))
      .map(
        (r) =>
          `${r.path}, ${r.fault}: ${r.survived} of ${r.runs} survived, ${r.verified} verified, ${r.partialsLeft} partials left; ${r.notes.join('; ')}`,
      );
    assert.deepEqual(failing, [], context());
  });
});
