import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { CLI, cli, cliAt, cliInBackground } from '../support/run-cli.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = btrfsSuite();

interface PlanJson {
  totalBytes: number;
  steps: { kind: string; snapshot: string; parent: string | null; bytes: number }[];
  alreadyPresent: string[];
}

/**
 * Every subvolume below `dir` (read-only or not, partial or not: what a user would see), as
 * paths relative to the pool's top level. `dir` must be inside a pool mounted at its top level.
 */
function subvolumes(dir: string): string[] {
  const top = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', dir], { encoding: 'utf8' }).trim();
  const rel = path.relative(top, dir);
  const out = execFileSync('btrfs', ['subvolume', 'list', top], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .filter((p) => rel === '' || p.startsWith(`${rel}/`))
    .sort();
}

/**
 * The snapshots a listing shows, in name order: the listing itself is in creation order, to
 * the second, so snapshots made in the same second as others (or not) would change it.
 */
function snapshotNames(dir: string): string[] {
  const res = cli(['--json', dir.endsWith('/') ? dir : `${dir}/`]);
  assert.equal(res.code, 0, res.stderr);
  return (JSON.parse(res.stdout) as { name: string }[]).map((s) => s.name).sort();
}

function assertSameTree(a: string, b: string): void {
  assert.deepEqual(treeDigest(b), treeDigest(a), `${b} differs from ${a}`);
}

describe('buttersink sync between local btrfs pools', suite, () => {
  let src: BtrfsPool;
  let dst: BtrfsPool;
  let data: string;
  let cache: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    src = createPool(512);
    dst = createPool(512);
    data = makeRichSubvolume(src.mountPoint);
    cache = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    env = { BUTTERSINK_CACHE_DIR: cache };
    snapshot(data, `${src.mountPoint}/snaps/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${src.mountPoint}/snaps/s2`);
    // Plain files, directories and read-write subvolumes in the source are not snapshots.
    sh(`touch snaps/not-a-snapshot && mkdir snaps/empty-dir && btrfs -q subvolume snapshot data snaps/writable`, src.mountPoint);
  });

  after(() => {
    src?.destroy();
    dst?.destroy();
    if (cache) rmSync(cache, { recursive: true, force: true });
  });

  test('lists only the read-only snapshots of a directory', () => {
    assert.deepEqual(snapshotNames(`${src.mountPoint}/snaps/`), ['s1', 's2']);
    const text = cli([`${src.mountPoint}/snaps/`], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^s1 +\d/m);
    assert.match(text.stdout, /^s2 +\d/m);
    assert.match(text.stdout, /^NAME +SIZE +CREATED +UUID +ORIGIN\ns1 /, 'a header, then oldest first');
    // Measured by the listing above: -e shows the cached sizes as exact, not as estimates.
    const estimated = cli(['-e', `${src.mountPoint}/snaps/`], { env });
    assert.equal(estimated.code, 0, estimated.stderr);
    assert.doesNotMatch(estimated.stdout, /~/, estimated.stdout);
    assert.equal(estimated.stdout, text.stdout);
    for (const word of ['list', 'ls']) {
      const listed = cli([word, `${src.mountPoint}/snaps/`], { env });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^s1 +\d/m, `buttersink ${word} DIR/ lists it as buttersink DIR/ does`);
      assert.match(listed.stdout, /^s2 +\d/m);
    }
  });

  test('a first sync sends everything, byte for byte, then an incremental run sends only the new diff', () => {
    const target = `${dst.mountPoint}/backup`;
    mkdirSync(target);
    const first = cli(['-q', `${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /done: sent 2 snapshots/);
    assert.deepEqual(snapshotNames(target), ['s1', 's2']);
    assertSameTree(`${src.mountPoint}/snaps/s1`, `${target}/s1`);
    assertSameTree(`${src.mountPoint}/snaps/s2`, `${target}/s2`);
    // Received snapshots are complete: read-only with a received UUID.
    const show = execFileSync('btrfs', ['subvolume', 'show', `${target}/s2`], { encoding: 'utf8' });
    assert.match(show, /Flags:\s+readonly/);
    assert.doesNotMatch(show, /Received UUID:\s+-/);

    changeRichSubvolume(data, 2);
    snapshot(data, `${src.mountPoint}/snaps/s3`);
    const plan = cli(['-n', '--json', `${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout) as PlanJson;
    assert.deepEqual(
      parsed.steps.map((s) => [s.snapshot, s.parent]),
      [['s3', 's2']],
    );
    assert.deepEqual(parsed.alreadyPresent.sort(), ['s1', 's2']);
    // The diff carries ~0.5 MB new file + 64 KiB overwritten, not the 3 MB file again.
    assert.ok(parsed.totalBytes < 1_500_000, `incremental plan is ${parsed.totalBytes} bytes`);

    const second = cli([`${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /sent s3 \(from s2\)/);
    assert.match(second.stdout, /done: sent 1 snapshot /);
    assertSameTree(`${src.mountPoint}/snaps/s3`, `${target}/s3`);

    const third = cli([`${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /is up to date \(3 snapshots\)/);
  });

  test('what a run says it sent is the size the plan measured, to the byte', () => {
    const from = `${src.mountPoint}/tiny-snaps`;
    const to = `${dst.mountPoint}/tiny`;
    mkdirSync(from);
    mkdirSync(to);
    execFileSync('btrfs', ['-q', 'subvolume', 'create', `${src.mountPoint}/tiny-data`]);
    writeFileSync(`${src.mountPoint}/tiny-data/f`, 'hi\n');
    snapshot(`${src.mountPoint}/tiny-data`, `${from}/t1`);
    const plan = cli(['-n', '--json', `${from}/`, `${to}/`], { env });
    assert.equal(plan.code, 0, plan.stderr);
    const total = (JSON.parse(plan.stdout) as PlanJson).totalBytes;
    const real = execFileSync('btrfs', ['send', '-q', `${from}/t1`]).length;
    assert.equal(total, real, 'the plan measures the stream exactly');
    assert.ok(total < 1024, 'small enough to be printed in bytes');
    const run = cli([`${from}/`, `${to}/`], { env });
    assert.equal(run.code, 0, run.stderr);
    // Not the stream as received under its temporary name (longer by that name).
    assert.match(run.stderr, new RegExp(`^sent t1 \\(full\\): ${total} B in`, 'm'));
    assert.match(run.stdout, new RegExp(`^done: sent 1 snapshot \\(${total} B\\)`, 'm'));
  });

  test('measured diff sizes match the real send streams within 1%', () => {
    const target = `${dst.mountPoint}/measure`;
    mkdirSync(target);
    const plan = cli(['-n', '--json', `${src.mountPoint}/snaps/`, `${target}/`], {
      env: { BUTTERSINK_CACHE_DIR: mkdtempSync(path.join(cache, 'm-')) },
    });
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout) as PlanJson;
    assert.equal(parsed.steps.length, 3);
    for (const step of parsed.steps) {
      const parentArgs = step.parent ? `-p ${src.mountPoint}/snaps/${step.parent}` : '';
      const real = Number(sh(`btrfs send -q ${parentArgs} ${src.mountPoint}/snaps/${step.snapshot} | wc -c`).trim());
      const error = Math.abs(step.bytes - real) / real;
      assert.ok(error < 0.01, `${step.snapshot}: measured ${step.bytes}, real ${real}`);
    }
  });

  test('-e measures fewer diffs and lands on a plan as good', () => {
    const target = `${dst.mountPoint}/estimate`;
    mkdirSync(target);
    const run = (flags: string[]) => {
      const res = cli(['-n', '--json', '-v', ...flags, `${src.mountPoint}/snaps/`, `${target}/`], {
        env: { BUTTERSINK_CACHE_DIR: mkdtempSync(path.join(cache, 'e-')) },
      });
      assert.equal(res.code, 0, res.stderr);
      const plan = JSON.parse(res.stdout) as PlanJson;
      return { plan, measured: res.stderr.split('\n').filter((l) => l.startsWith('measuring ')).length };
    };
    const exact = run([]);
    const estimated = run(['-e']);
    assert.equal(estimated.plan.steps.length, exact.plan.steps.length);
    assert.ok(estimated.plan.totalBytes <= exact.plan.totalBytes * 1.01, `${estimated.plan.totalBytes} vs ${exact.plan.totalBytes}`);
    assert.ok(estimated.measured < exact.measured, `-e measured ${estimated.measured}, without ${exact.measured}`);
  });

  test('-n prints the plan and changes nothing', () => {
    const target = `${dst.mountPoint}/dry`;
    mkdirSync(target);
    const before = readdirSync(target);
    const res = cli(['-n', `${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /would send s1 .*full/);
    assert.match(res.stdout, /would send s2 .*incremental from s1/);
    assert.match(res.stdout, /3 to send/);
    assert.deepEqual(readdirSync(target), before);
    assert.deepEqual(subvolumes(target), []);
  });

  test('a single snapshot (no trailing slash) is sent alone, using a parent the destination has', () => {
    const target = `${dst.mountPoint}/single`;
    mkdirSync(target);
    let res = cli(['-q', `${src.mountPoint}/snaps/s1`, `${target}/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(snapshotNames(target), ['s1']);
    res = cli(['-n', '--json', `${src.mountPoint}/snaps/s3`, `${target}/`], { env });
    const parsed = JSON.parse(res.stdout) as PlanJson;
    assert.deepEqual(
      parsed.steps.map((s) => [s.snapshot, s.parent]),
      [['s3', 's1']],
    );
  });

  test('-d deletes what the source lacks after sending, and --exclude protects', () => {
    const target = `${dst.mountPoint}/mirror`;
    mkdirSync(target);
    assert.equal(cli(['-q', `${src.mountPoint}/snaps/`, `${target}/`], { env }).code, 0);
    // Snapshots the source does not have: one made at the destination, one excluded by name.
    sh(
      `btrfs -q subvolume create tmp && btrfs -q subvolume snapshot -r tmp old-1 && btrfs -q subvolume snapshot -r tmp keep-me && btrfs -q subvolume delete tmp`,
      target,
    );
    const res = cli(['-q', '-d', '--exclude', '^keep-', `${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /deleted 1/);
    assert.deepEqual(snapshotNames(target), ['keep-me', 's1', 's2', 's3']);
  });

  test('a destination snapshot that shares a received UUID with another does not confuse it', () => {
    const target = `${dst.mountPoint}/shared`;
    mkdirSync(target);
    assert.equal(cli(['-q', `${src.mountPoint}/snaps/s1`, `${target}/`], { env }).code, 0);
    // A snapshot of a received snapshot inherits its received UUID.
    sh(`btrfs -q subvolume snapshot -r s1 s1-copy`, target);
    const res = cli(['-q', '-d', `${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(snapshotNames(target), ['s1', 's1-copy', 's2', 's3']);
    assertSameTree(`${src.mountPoint}/snaps/s3`, `${target}/s3`);
  });

  test('a destination snapshot with the same name but other data is refused before anything changes', () => {
    const target = `${dst.mountPoint}/conflict`;
    mkdirSync(target);
    sh(`btrfs -q subvolume create tmp && btrfs -q subvolume snapshot -r tmp s2 && btrfs -q subvolume delete tmp`, target);
    const res = cli([`${src.mountPoint}/snaps/`, `${target}/`], { env });
    assert.equal(res.code, 4);
    assert.match(res.stderr, /already has a different snapshot named "s2"/);
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.deepEqual(subvolumes(target), ['conflict/s2']);
  });

  test('output levels: steps on stderr, -q keeps only the summary, -qq only errors, --progress forces the bar', () => {
    const run = (flags: string[], name: string) => {
      const target = `${dst.mountPoint}/${name}`;
      mkdirSync(target);
      const res = cli([...flags, `${src.mountPoint}/snaps/s1`, `${target}/`], { env });
      assert.equal(res.code, 0, res.stderr);
      return res;
    };
    const plain = run([], 'level-plain');
    assert.match(plain.stderr, /^sent s1 \(full\): /m);
    assert.match(plain.stdout, /^done: sent 1 snapshot /m);
    assert.doesNotMatch(plain.stderr, /\[#+-*\]/, 'no bar when stderr is not a terminal');
    const quiet = run(['-q'], 'level-q');
    assert.equal(quiet.stderr, '');
    assert.match(quiet.stdout, /^done: /m);
    const silent = run(['-qq'], 'level-qq');
    assert.equal(silent.stdout + silent.stderr, '');
    const forced = run(['--progress'], 'level-progress');
    assert.match(forced.stderr, /\[[#-]{24}\] .* MiB .*ETA .*1\/1 s1/);
    assert.match(forced.stderr, /sent s1 \(full\)/);
  });

  test('--json listing carries what scripts need', () => {
    const res = cli(['--json', `${src.mountPoint}/snaps/`], { env });
    assert.equal(res.code, 0, res.stderr);
    const listed = JSON.parse(res.stdout) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(listed[0]!).sort(), [
      'bytes',
      'createdAt',
      'creationGeneration',
      'exact',
      'generation',
      'name',
      'parentUuid',
      'receivedUuid',
      'uuid',
    ]);
    assert.ok(listed.every((s) => s.exact === true && typeof s.bytes === 'number' && (s.bytes as number) > 0));
    const single = cli(['--json', `${src.mountPoint}/snaps/s2`], { env });
    assert.deepEqual(
      (JSON.parse(single.stdout) as { name: string }[]).map((s) => s.name),
      ['s2'],
    );
  });

  test('a log file (-l) records what was done', () => {
    const target = `${dst.mountPoint}/logged`;
    mkdirSync(target);
    const log = path.join(cache, 'run.log');
    const res = cli(['-q', '-l', log, `${src.mountPoint}/snaps/s1`, `${target}/`], { env });
    assert.equal(res.code, 0, res.stderr);
    const text = readFileSync(log, 'utf8');
    assert.match(text, /^\d{4}-\d\d-\d\dT.* info sent s1 \(full\)/m);
    assert.match(text, /debug \$ btrfs send/);
  });

  test('another sync holding the destination makes a second one exit 6 without changes', async () => {
    const target = `${dst.mountPoint}/busy`;
    mkdirSync(`${target}/.buttersink`, { recursive: true });
    // -o: the lock fd stays with flock itself, so killing flock frees the lock and the pool.
    const holder = spawn('flock', ['-o', `${target}/.buttersink/lock`, 'sleep', '30'], { stdio: 'ignore', detached: true });
    try {
      await waitFor(() => sh(`flock -n ${target}/.buttersink/lock true || echo held`).includes('held'));
      const res = cli([`${src.mountPoint}/snaps/`, `${target}/`], { env });
      assert.equal(res.code, 6, res.stderr);
      assert.match(res.stderr, /another buttersink is writing to/);
      assert.deepEqual(subvolumes(target), []);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
    }
  });

  test('SIGINT during a transfer exits 130 and leaves no partial snapshot; the next run completes', async () => {
    const big = `${src.mountPoint}/big`;
    sh(
      `btrfs -q subvolume create ${big} && head -c 150000000 /dev/urandom > ${big}/blob && mkdir -p ${src.mountPoint}/bigsnaps && btrfs -q subvolume snapshot -r ${big} ${src.mountPoint}/bigsnaps/b1`,
    );
    const target = `${dst.mountPoint}/interrupted`;
    mkdirSync(target);
    const run = cliInBackground(['-q', `${src.mountPoint}/bigsnaps/`, `${target}/`], env);
    await waitFor(() => readdirSync(target).some((n) => n.startsWith('.buttersink-partial.')));
    run.child.kill('SIGINT');
    const res = await run.done;
    assert.equal(res.code, 130, res.stderr);
    assert.match(res.stderr, /interrupted/);
    assert.deepEqual(subvolumes(target), []);
    assert.deepEqual(
      readdirSync(target).filter((n) => n !== '.buttersink'),
      [],
    );

    const again = cli(['-q', `${src.mountPoint}/bigsnaps/`, `${target}/`], { env });
    assert.equal(again.code, 0, again.stderr);
    assertSameTree(`${src.mountPoint}/bigsnaps/b1`, `${target}/b1`);
  });

  test('after kill -9 mid-receive, the partial never shows as a snapshot and the next run removes it', async () => {
    const target = `${dst.mountPoint}/killed`;
    mkdirSync(target);
    const run = cliInBackground(['-q', `${src.mountPoint}/bigsnaps/`, `${target}/`], env);
    await waitFor(() => readdirSync(target).some((n) => n.startsWith('.buttersink-partial.')));
    run.child.kill('SIGKILL');
    await run.done;
    // Whatever was left is hidden, not under the final name, and not listed.
    assert.equal(existsSync(`${target}/b1`), false);
    assert.deepEqual(snapshotNames(target), []);

    const again = cli(['-q', `${src.mountPoint}/bigsnaps/`, `${target}/`], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readdirSync(target).sort(), ['.buttersink', 'b1']);
    assertSameTree(`${src.mountPoint}/bigsnaps/b1`, `${target}/b1`);
  });

  test('--keep: only what the policy keeps is sent, what it drops is deleted after the next transfer, -n says why for each', () => {
    // Dated names (local time) far in the past, so the yearly buckets decide whatever today is.
    const kept = `${src.mountPoint}/keep-src`;
    mkdirSync(kept);
    const names = ['s.2019-06-01', 's.2019-07-01', 's.2020-01-05', 's.2020-02-01', 's.2020-03-01'];
    for (const [i, name] of names.entries()) {
      changeRichSubvolume(data, 10 + i);
      snapshot(data, `${kept}/${name}`);
    }
    const target = `${dst.mountPoint}/keep-dst`;
    mkdirSync(target);
    const policy = ['--keep', '1 *y'];

    const dry = cli(['-n', ...policy, `${kept}/`, `${target}/`], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would send s\.2019-06-01 .*full/m);
    assert.match(dry.stdout, /^would send s\.2020-01-05 /m);
    assert.match(dry.stdout, /^would send s\.2020-03-01 .*incremental from s\.2020-01-05/m);
    assert.match(dry.stdout, /^would skip s\.2019-07-01 +\(--keep 1 \*y does not keep it: not sent\)$/m);
    assert.match(dry.stdout, /^would skip s\.2020-02-01 /m);
    assert.match(dry.stdout, /^3 to send \(.*\), 0 to delete, 0 already there$/m);
    assert.deepEqual(snapshotNames(target), [], 'a dry run changes nothing');

    const first = cli(['-q', ...policy, `${kept}/`, `${target}/`], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(snapshotNames(target), ['s.2019-06-01', 's.2020-01-05', 's.2020-03-01']);
    assertSameTree(`${kept}/s.2020-03-01`, `${target}/s.2020-03-01`);

    // A new snapshot: it is the latest now; s.2020-03-01 is no first of anything any more.
    changeRichSubvolume(data, 20);
    snapshot(data, `${kept}/s.2020-04-01`);
    const again = cli(['-n', ...policy, `${kept}/`, `${target}/`], { env });
    assert.match(again.stdout, /^would send s\.2020-04-01 .*incremental from s\.2020-03-01/m);
    assert.match(again.stdout, /^would delete s\.2020-03-01 +\(--keep 1 \*y does not keep it\)$/m);
    assert.match(again.stdout, /^keep s\.2019-06-01 +\(first of year 2019\)$/m);
    assert.match(again.stdout, /^keep s\.2020-01-05 +\(first of year 2020\)$/m);
    const second = cli(['-q', ...policy, `${kept}/`, `${target}/`], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /done: sent 1 snapshot .*deleted 1/);
    assert.deepEqual(snapshotNames(target), ['s.2019-06-01', 's.2020-01-05', 's.2020-04-01']);
    assertSameTree(`${kept}/s.2020-04-01`, `${target}/s.2020-04-01`);
    assert.deepEqual(
      subvolumes(target).map((p) => path.basename(p)),
      ['s.2019-06-01', 's.2020-01-05', 's.2020-04-01'],
      'no partial left',
    );

    for (const [args, message] of [
      [['-d', ...policy], /-d\/--delete and --keep contradict each other/],
      [['--keep', '7days'], /--keep: "7days" is not N/],
      [['--keep', '0'], /would keep nothing/],
    ] as const) {
      const refused = cli([...args, `${kept}/`, `${target}/`], { env });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, message);
    }
    assert.deepEqual(snapshotNames(target), ['s.2019-06-01', 's.2020-01-05', 's.2020-04-01'], 'refused runs change nothing');
  });

  test("buttersink run: the jobs of the configuration file, each destination in turn; a failure does not stop the others; a table and the first failure's exit code", () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'buttersink-jobs-'));
    const [a, b] = [`${dst.mountPoint}/run-a`, `${dst.mountPoint}/run-b`];
    mkdirSync(a);
    mkdirSync(b);
    const config = path.join(work, 'config.toml');
    writeFileSync(
      config,
      [
        '[stores]',
        `src = "${src.mountPoint}/snaps"`,
        '[jobs.good]',
        'source = "src"',
        `destination = "${a}/"`,
        '[jobs.partly]',
        'source = "src"',
        `destinations = ["${dst.mountPoint}/run-missing/", "${b}/"]`,
        "exclude = '^s2$'",
        '',
      ].join('\n'),
    );
    try {
      const all = snapshotNames(`${src.mountPoint}/snaps/`);
      const dry = cli(['run', '-n', '-c', config, 'good'], { env });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`^good +${a}/ +would send ${all.length} \\(`, 'm'));
      assert.deepEqual(snapshotNames(a), [], 'a dry run changes nothing');

      const run = cli(['run', '-q', '-c', config], { env });
      assert.equal(run.code, 4, `the first failure's exit code: ${run.stderr}`);
      assert.match(run.stderr, /^buttersink: job partly -> .*run-missing\/: .*run-missing does not exist/m);
      assert.match(run.stdout, /^job +destination +result$/m);
      assert.match(run.stdout, new RegExp(`^good +${a}/ +done: sent ${all.length} snapshots`, 'm'));
      assert.match(run.stdout, /^partly +.*run-missing\/ +failed \(exit 4\): .*does not exist/m);
      assert.match(run.stdout, new RegExp(`^partly +${b}/ +done: sent ${all.length - 1} snapshot`, 'm'));
      assert.match(run.stdout, /^1 of 3 failed$/m);
      assert.deepEqual(snapshotNames(a), all);
      assert.deepEqual(
        snapshotNames(b),
        all.filter((n) => n !== 's2'),
        "the job's exclude applies",
      );
      assertSameTree(`${src.mountPoint}/snaps/s1`, `${b}/s1`);

      const again = cli(['run', '-q', '-c', config, 'good'], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /is up to date/);
      assert.match(again.stdout, /^1 of 1 succeeded$/m);

      const unknown = cli(['run', '-c', config, 'nightly'], { env });
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /^buttersink: no job named "nightly" in .*config\.toml \(known: good, partly\)$/m);
      writeFileSync(config, `[jobs.bad]\nsource = "/x/"\ndestination = "/y/"\nkeep = "7days"\n`);
      const bad = cli(['run', '-c', config], { env });
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^buttersink: .*config\.toml: \[jobs\.bad\] keep: --keep: "7days" is not N/m);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('--rate-limit: the stream goes no faster than asked (pv -L between local stores), and arrives whole', () => {
    const from = `${src.mountPoint}/rate-src`;
    const to = `${dst.mountPoint}/rate-dst`;
    mkdirSync(from);
    mkdirSync(to);
    sh(
      `btrfs -q subvolume create rate-data && head -c 3145728 /dev/urandom > rate-data/blob && btrfs -q subvolume snapshot -r rate-data rate-src/r1`,
      src.mountPoint,
    );
    const started = performance.now();
    const res = cli(['-q', '--rate-limit', '1M', `${from}/`, `${to}/`], { env });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(res.code, 0, res.stderr);
    assertSameTree(`${from}/r1`, `${to}/r1`);
    // A lower bound only (a slow machine takes longer anyway): 3 MiB at 1 MiB/s cannot take under 2 s.
    assert.ok(seconds >= 2, `3 MiB at --rate-limit 1M took ${seconds.toFixed(2)} s`);
    const bad = cli(['--rate-limit', 'fast', `${from}/`, `${to}/`], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^buttersink: --rate-limit: "fast" is no rate of at least 1k/m);
  });
});

describe('buttersink refuses bad input with one line and a documented exit code', suite, () => {
  let pool: BtrfsPool;
  let plainDir: string;

  before(() => {
    pool = createPool(256);
    sh(`mkdir empty && btrfs -q subvolume create data && mkdir snaps && btrfs -q subvolume snapshot -r data snaps/one`, pool.mountPoint);
    plainDir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-plain-'));
    writeFileSync(path.join(plainDir, 'file'), 'x');
  });
  after(() => {
    pool?.destroy();
    if (plainDir) rmSync(plainDir, { recursive: true, force: true });
  });

  const cases: [string, () => string[], number, RegExp][] = [
    ['unknown scheme', () => ['ftp://host/x/'], 2, /unknown store URL scheme "ftp:\/\/"/],
    ['scp-style URL', () => ['backup:/snaps/'], 2, /bad store URL "backup:\/snaps\/"/],
    ['relative btrfs:// URL', () => ['btrfs://snaps/'], 2, /need an absolute path/],
    ['unknown flag', () => ['--frobnicate', '/x/'], 2, /unknown option '--frobnicate'/],
    ['bad --exclude regex', () => ['--exclude', '(', '/x/'], 2, /not a valid regular expression/],
    ['bad --part-size', () => ['--part-size', '1', '/x/'], 2, /from 5 to 5120/],
    ['missing directory', () => [`${pool.mountPoint}/nope/`], 4, /does not exist/],
    ['not btrfs', () => [`${plainDir}/`], 4, /is not on a btrfs filesystem/],
    ['no snapshots to send', () => [`${pool.mountPoint}/empty/`, `${pool.mountPoint}/snaps/`], 4, /no read-only snapshots in/],
    ['missing trailing slash', () => [`${pool.mountPoint}/snaps`], 4, /no read-only snapshot named "snaps".*end the URL with a slash/],
    [
      'destination without trailing slash',
      () => [`${pool.mountPoint}/snaps/`, `${pool.mountPoint}/empty`],
      2,
      /destination must be a directory.*end it with a slash/,
    ],
    [
      '-d with a single snapshot',
      () => ['-d', `${pool.mountPoint}/snaps/one`, `${pool.mountPoint}/empty/`],
      2,
      /needs a directory of snapshots as source/,
    ],
    ['same source and destination', () => [`${pool.mountPoint}/snaps/`, `btrfs://${pool.mountPoint}/snaps/`], 2, /same directory/],
    ['--json without -n', () => ['--json', `${pool.mountPoint}/snaps/`, `${pool.mountPoint}/empty/`], 2, /use it with -n/],
    [
      'ssh store that cannot be reached',
      () => [`${pool.mountPoint}/snaps/`, 'ssh://127.0.0.1:1/x/'],
      4,
      /cannot connect to 127\.0\.0\.1:1: connection refused/,
    ],
  ];
  for (const [name, args, code, message] of cases) {
    test(name, () => {
      const before = subvolumes(pool.mountPoint);
      const res = cli(args());
      assert.equal(res.code, code, `exit ${res.code}: ${res.stderr}`);
      assert.match(res.stderr, message);
      assert.equal(res.stderr.trim().split('\n').length, 1, `not one line: ${res.stderr}`);
      assert.match(res.stderr, /^buttersink: /);
      assert.equal(res.stdout, '');
      assert.deepEqual(subvolumes(pool.mountPoint), before);
      assert.equal(existsSync(`${pool.mountPoint}/empty/.buttersink`), false);
    });
  }

  test('not root: exit 3 with a clear message', () => {
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    let copy: string | undefined;
    // The checkout may live where nobody cannot read it (e.g. under /root): run a copy then.
    if (spawnSync(asNobody[0]!, [...asNobody.slice(1), 'test', '-r', CLI]).status !== 0) {
      copy = mkdtempSync(path.join(os.tmpdir(), 'buttersink-copy-'));
      const project = path.resolve(path.dirname(CLI), '../../..');
      sh(`cp -r '${project}/package.json' '${project}/dist' '${project}/node_modules' '${copy}/' && chmod -R a+rX '${copy}'`);
    }
    const res = copy
      ? cliAt(`${copy}/dist/src/cli/main.js`, [`${pool.mountPoint}/snaps/`], asNobody)
      : cli([`${pool.mountPoint}/snaps/`], { prefix: asNobody });
    if (copy) rmSync(copy, { recursive: true, force: true });
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stderr, /^buttersink: needs root to read and write btrfs snapshots in .*\(run it with sudo, or as root\)$/m);
  });

  test('--help teaches the URL forms, examples and exit codes; --version prints it', () => {
    const help = cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /trailing slash|no trailing slash/);
    assert.match(help.stdout, /Exit codes: 0 ok/);
    for (const flag of ['-n, --dry-run', '-d, --delete', '-e, --estimate', '-q, --quiet', '-l, --logfile <file>', '--exclude <regex>']) {
      assert.ok(help.stdout.includes(`  ${flag}`), `the top-level help shows ${flag}`);
    }
    const syncHelp = cli(['sync', '--help']);
    assert.match(syncHelp.stdout, /-n, --dry-run/);
    for (const text of [help.stdout, syncHelp.stdout, cli(['mount', '--help']).stdout]) {
      assert.doesNotMatch(text, /\(default: \[\]\)/, 'no empty-list defaults');
    }
    const version = cli(['-V']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('help piped to a reader that stops early (| head -1): exit 0, no stack trace', () => {
    // The reader closes the pipe at once; node's EPIPE used to escape as an unhandled error.
    const piped = spawnSync('bash', ['-c', `set -o pipefail; node ${CLI} sync --help | head -c 1 >/dev/null`], { encoding: 'utf8' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stderr, '');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
