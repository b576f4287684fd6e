/**
 * Faults of every sync path (local-local, local-s3, s3-local, local-ssh, ssh-local):
 *   kill-9      buttersink killed with SIGKILL at a seeded random moment of the transfer, then
 *               rerun: after the kill every visible snapshot must be complete and equal to its
 *               source; the rerun must succeed, and then everything must be equal and no partial left
 *   dry-run     -n: the full state of both stores (listing, sizes, object keys) is identical
 *   concurrent  two syncs into one destination at once: one refuses (exit 6) or both succeed
 *               one after the other; the result is complete and equal
 *   disk-full   destination pool full during the receive: a clear error, no partial, source untouched
 * `interrupted` and `diskFull` also serve the SSH family (ssh.ts).
 */
import type { Campaign, PathName } from './context.js';
import { attempt, fullPoolRun, pathEnds } from './endpoints.js';
import { killNineAt, lastLine, runCli, type Interrupt } from './processes.js';

/** kill -9, -n and two at once on `name`, in that order. */
export async function syncFaults(c: Campaign, name: PathName): Promise<void> {
  c.log(`${name}: kill -9`);
  await interrupted(c, name, 'kill -9, then rerun', c.kills, killNineAt);
  c.log(`${name}: -n`);
  await dryRun(c, name);
  c.log(`${name}: two at once`);
  await concurrent(c, name);
}

/**
 * Runs a transfer, interrupts it at a seeded random moment, checks nothing incomplete is
 * visible, reruns it, and checks everything arrived whole and no partial is left.
 */
export async function interrupted(
  c: Campaign,
  name: PathName,
  fault: string,
  count: number,
  interrupt: (at: number) => Interrupt,
): Promise<void> {
  const t = c.tallies.of(name, fault);
  // How long a clean run takes, so kills spread over the whole transfer.
  const clean = await pathEnds(c, name);
  const reference = await runCli([clean.from, clean.to.url], c.baseEnv);
  await clean.to.dispose();
  if (reference.code !== 0) throw new Error(`${name}: a clean run failed: ${reference.stderr}`);
  for (let i = 0; i < count; i++) {
    const at = Math.round(c.random() * reference.seconds * 1000);
    await attempt(c, t, name, async (from, to) => {
      const killed = await runCli([from, to.url], c.baseEnv, interrupt(at));
      await to.settle();
      const afterKill = await to.verify(false);
      if (afterKill !== null) return { problem: `after a kill at ${at} ms: ${afterKill}` };
      const rerun = await runCli([from, to.url], c.baseEnv);
      if (rerun.code !== 0) return { problem: `rerun after a kill at ${at} ms (exit ${killed.code}) failed: ${lastLine(rerun)}` };
      const problem = await to.verify(true);
      if (problem !== null) return { problem: `after the rerun (kill at ${at} ms): ${problem}` };
      // Byte-for-byte restores of S3 prefixes are costly: the first and last run of a path.
      const deep = i === 0 || i === count - 1 ? await to.deepVerify() : null;
      return { problem: deep === null ? null : `deep check: ${deep}` };
    });
  }
}

async function dryRun(c: Campaign, name: PathName): Promise<void> {
  const t = c.tallies.of(name, '-n changes nothing');
  for (const args of [['-n'], ['-n', '-d'], ['-n', '-e']]) {
    await attempt(c, t, name, async (from, to) => {
      // One snapshot there already, so the plan has sends and incremental parents.
      await runCli([`${from}t1`, to.url], c.baseEnv);
      const [before, srcBefore] = [await to.state(), c.sourceState()];
      const res = await runCli([...args, from, to.url], c.baseEnv);
      const [after, srcAfter] = [await to.state(), c.sourceState()];
      if (res.code !== 0) return { problem: `${args.join(' ')} exited ${res.code}: ${lastLine(res)}` };
      return { problem: before !== after || srcBefore !== srcAfter ? `${args.join(' ')} changed a store` : null };
    });
  }
}

async function concurrent(c: Campaign, name: PathName): Promise<void> {
  const t = c.tallies.of(name, 'two syncs at once');
  for (let i = 0; i < 3; i++) {
    await attempt(c, t, name, async (from, to) => {
      const [a, b] = await Promise.all([runCli([from, to.url], c.baseEnv), runCli([from, to.url], c.baseEnv)]);
      const codes = [a.code, b.code].sort().join(',');
      if (codes !== '0,6' && codes !== '0,0') return { problem: `exit codes ${codes}: ${lastLine(a)} / ${lastLine(b)}` };
      return { problem: await to.verify(true) };
    });
  }
}

/** The first snapshot into a nearly full pool (`urlOf` its directory): exit 5 with one clear error line. */
export async function diskFull(c: Campaign, name: PathName, urlOf: (dir: string) => string): Promise<void> {
  const t = c.tallies.of(name, 'destination disk full');
  await fullPoolRun(c, t, async (backup) => {
    const res = await runCli([`${c.snaps}/t1`, urlOf(backup)], c.baseEnv);
    const lines = res.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('buttersink: '));
    if (res.code !== 5) return `exit ${res.code} instead of 5: ${res.stderr.trim()}`;
    if (lines.length !== 1 || !/No space left|ENOSPC|space/i.test(lines[0]!)) return `unclear error: ${res.stderr.trim()}`;
    return null;
  });
}
