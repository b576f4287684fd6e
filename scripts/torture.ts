/**
 * The fault campaign: drives real transfers through faults and checks, after each, that
 * nothing was lost and nothing incomplete ever looked complete.
 *
 *   sudo node dist/scripts/torture.js [--seed N] [--kills N] [--paths LIST] [--record]
 *
 * Paths: local-local, local-s3, s3-local, local-ssh, ssh-local (a real sshd on loopback whose
 * remote command is this checkout's CLI), and mount (`mkdir` of each snapshot in a
 * `buttersink mount` of the two pools; the mount process is what gets killed).
 * Faults per path:
 *   kill-9      buttersink killed with SIGKILL at a seeded random moment of the transfer,
 *               then rerun: after the kill every visible snapshot must be complete and equal
 *               to its source; the rerun must succeed, and then everything must be equal
 *               and no partial left
 *   dry-run     -n: the full state of both stores (listing, sizes, object keys) is identical
 *   concurrent  two syncs into one destination at once: one refuses (exit 6) or both
 *               succeed one after the other; the result is complete and equal
 * The mount path has its own analogues of these (see "the mount path" below): a --read-only
 * mount refusing mkdir/rmdir with EROFS and browsing through a rw mount (both pools' state
 * identical), two mkdir of one snapshot at once, a mount mkdir racing a CLI sync, SIGTERM
 * and umount mid-mkdir, and a full destination pool under a mkdir.
 * Per store kind:
 *   disk-full   destination pool full during the receive: a clear error, no partial, source untouched
 *   s3 faults   5xx bursts, throttling, resets mid-part and mid-download, truncated bodies,
 *               an object corrupted in the bucket (detected before the snapshot is visible)
 *
 * Prints a table (path x fault: runs, survived, data verified, partials left); --record
 * writes it into RELIABILITY.md. Exits non-zero when any run did not survive.
 * Everything lives in loop-device pools and a loopback S3 server under one temporary
 * directory, removed at the end, also on failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
// Inside the test root when run by scripts/test (which sweeps it even after a crash).
const WORK = mkdtempSync(path.join(process.env.BUTTERSINK_TEST_ROOT ?? '/tmp', 'buttersink-torture.'));
process.env.BUTTERSINK_TEST_ROOT = WORK;
// Imported after BUTTERSINK_TEST_ROOT is set: the pools go under WORK.
const { createPool, sh } = await import('../test/support/btrfs-pool.js');
const { makeRichSubvolume, changeRichSubvolume, snapshot } = await import('../test/support/fixtures.js');
const { treeDigest } = await import('../test/support/tree-digest.js');
const { startS3Server, FaultProxy } = await import('../test/support/s3-server.js');
const { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } = await import('@aws-sdk/client-s3');
const { StreamEndCheck } = await import('../src/sendstream/stream-end-check.js');
const { startSshd } = await import('../test/support/sshd.js');
const { startMount } = await import('../test/support/fuse-mount.js');

// ---- arguments --------------------------------------------------------------------------
const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const SEED = Number(flag('--seed', '1'));
const KILLS = Number(flag('--kills', '20'));
const RECORD = args.includes('--record');
const ALL_PATHS = ['local-local', 'local-s3', 's3-local', 'local-ssh', 'ssh-local', 'mount'] as const;
type PathName = (typeof ALL_PATHS)[number];
const PATHS = flag('--paths', ALL_PATHS.join(',')).split(',') as PathName[];

/** mulberry32: a small seeded PRNG, so a campaign is reproducible from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);

// ---- running the CLI (always asynchronously: the fault proxy lives in this process) -------
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}
/** What a fault does to a running transfer, `at` ms after it started. */
interface Interrupt {
  readonly at: number;
  readonly action: (child: ChildProcess) => void;
}
const killNineAt = (at: number): Interrupt => ({ at, action: (child) => child.kill('SIGKILL') });
function run(argv: readonly string[], env: NodeJS.ProcessEnv, interrupt?: Interrupt): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = interrupt === undefined ? undefined : setTimeout(() => interrupt.action(child), interrupt.at);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -9 : null), stdout, stderr, seconds: (performance.now() - started) / 1000 });
    }),
  );
}

// ---- results -------------------------------------------------------------------------------
interface Tally {
  runs: number;
  survived: number;
  verified: number;
  partialsLeft: number;
  notes: Set<string>;
}
const results = new Map<string, Tally>();
function tally(pathName: string, fault: string): Tally {
  const key = `${pathName}\t${fault}`;
  if (!results.has(key)) results.set(key, { runs: 0, survived: 0, verified: 0, partialsLeft: 0, notes: new Set() });
  return results.get(key)!;
}
function log(message: string): void {
  process.stderr.write(`[torture ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---- the stores ------------------------------------------------------------------------------
const src = createPool(1024);
const dst = createPool(1024);
// Deleted subvolumes are cleaned at the next commit (30 s by default): commit every second, so
// that removing a run's destination (subvolume sync) does not wait half a minute each time.
sh(`mount -o remount,commit=1 ${dst.mountPoint}`);
const server = await startS3Server(['torture']);
const s3 = server.client();
const proxy = await new FaultProxy(server.endpoint).start();
const sshd = PATHS.some((p) => p.includes('ssh')) ? await startSshd() : undefined;
const baseEnv: NodeJS.ProcessEnv = { ...sshd?.env, ...server.env, BUTTERSINK_CACHE_DIR: path.join(WORK, 'cache') };
const viaProxy: NodeJS.ProcessEnv = { ...baseEnv, AWS_ENDPOINT_URL_S3: proxy.endpoint };
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  // Every step on its own: one that fails must not leave the rest (pools, sshd) behind.
  const steps: (() => unknown)[] = [
    () => s3.destroy(),
    () => proxy.stop(),
    () => server.stop(),
    () => sshd?.stop(),
    () => src.destroy(),
    () => dst.destroy(),
    () => rmSync(WORK, { recursive: true, force: true }),
  ];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`);
    }
  }
}
process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)));
process.on('SIGTERM', () => void cleanup().finally(() => process.exit(143)));

// A chain of four snapshots, ~60 MiB first, then a few MiB of changes each: long enough for a
// kill to land anywhere in a transfer, short enough for dozens of runs.
const data = makeRichSubvolume(src.mountPoint);
// An xattr on the snapshots' root too: the mount shows a snapshot's root from its store's directory.
sh(`setfattr -n user.root -v 'snapshot root' '${data}'`);
sh('head -c 60000000 /dev/urandom > data/bulk.bin', src.mountPoint);
const SNAPS = `${src.mountPoint}/snaps`;
const NAMES = ['t1', 't2', 't3', 't4'];
snapshot(data, `${SNAPS}/t1`);
for (let i = 2; i <= NAMES.length; i++) {
  changeRichSubvolume(data, i);
  sh(`dd if=/dev/urandom of=data/bulk.bin bs=1M count=4 seek=${i * 7} conv=notrunc status=none`, src.mountPoint);
  snapshot(data, `${SNAPS}/t${i}`);
}
const sourceDigest = new Map(NAMES.map((n) => [n, treeDigest(`${SNAPS}/${n}`).join('\n')]));
const sourceState = (): string => sh(`btrfs subvolume list -u ${src.mountPoint}`);
/**
 * A snapshot's digest as a FUSE mount can show it: times in whole milliseconds (fuse-native
 * passes milliseconds) and no hard-link identity (the mount numbers inodes per path).
 */
const viewDigest = (root: string): string =>
  treeDigest(root)
    .map((l) => l.replace(/ (\d+)\d{6}( [0-9a-f]{64})?( hardlink-of .*)?$/, (_m, ms: string, hash = '') => ` ${ms}${hash}`))
    .join('\n');
const sourceView = new Map(NAMES.map((n) => [n, viewDigest(`${SNAPS}/${n}`)]));
/** What the mount shows of `name` at `mountPath` equals the source snapshot (null) or not. */
function viewVerify(mountPath: string, name: string): string | null {
  const seen = viewDigest(mountPath).split('\n');
  const want = sourceView.get(name)!.split('\n');
  const diff = seen.filter((l) => !want.includes(l)).concat(want.filter((l) => !seen.includes(l)).map((l) => `missing: ${l}`));
  return diff.length === 0 ? null : `${mountPath} through the mount differs from ${name}: ${diff.slice(0, 3).join(' / ')}`;
}

// ---- checks ----------------------------------------------------------------------------------
/** Subvolumes in a destination directory: complete-looking ones by name, and partials. */
function btrfsState(dir: string): { complete: string[]; partials: string[] } {
  const rel = path.relative(dst.mountPoint, dir);
  const lines = sh(`btrfs subvolume list ${dst.mountPoint}`).split('\n').filter(Boolean);
  const paths = lines.map((l) => l.replace(/^.* path /, '')).filter((p) => p.startsWith(`${rel}/`)).map((p) => p.slice(rel.length + 1));
  return {
    complete: paths.filter((p) => !p.includes('.buttersink-partial.')),
    partials: paths.filter((p) => p.includes('.buttersink-partial.')),
  };
}
/** Every complete-looking snapshot in `dir` equals its source (names must be source names). */
function btrfsVerify(dir: string, expectAll: boolean): string | null {
  const { complete } = btrfsState(dir);
  for (const name of complete) {
    const ro = sh(`btrfs property get -ts '${dir}/${name}' ro`).trim();
    if (ro !== 'ro=true') return `${name} is visible but not read-only`;
    if (treeDigest(`${dir}/${name}`).join('\n') !== sourceDigest.get(name)) return `${name} differs from its source`;
  }
  if (expectAll && complete.sort().join() !== NAMES.join()) return `has ${complete.join(',')} instead of ${NAMES.join(',')}`;
  return null;
}

async function s3Keys(prefix: string): Promise<{ key: string; size: number; etag: string }[]> {
  const out: { key: string; size: number; etag: string }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'torture', Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '' });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}
/**
 * Every object under `prefix` is a whole send stream matching the SHA-256 it carries. Right
 * after a kill an object may still wait for its hash (the next run attaches it); at the end
 * (`expectAll`) every object must have it.
 */
async function s3Verify(prefix: string, expectAll: boolean): Promise<string | null> {
  const keys = await s3Keys(prefix);
  for (const { key } of keys) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'torture', Key: key }));
    const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'torture', Key: key }))).Body!.transformToByteArray());
    const sha = createHash('sha256').update(body).digest('hex');
    const recorded = head.Metadata?.['buttersink-sha256'];
    if (recorded !== undefined ? recorded !== sha : expectAll) return `${key}: SHA-256 ${recorded ?? 'missing'}, content ${sha}`;
    const whole = await new Promise<boolean>((resolve) => {
      const check = new StreamEndCheck();
      check.on('error', () => resolve(false));
      check.on('finish', () => resolve(true));
      check.resume();
      check.end(body);
    });
    if (!whole) return `${key} is not a whole send stream`;
  }
  if (expectAll && keys.length !== NAMES.length) return `${keys.length} objects instead of ${NAMES.length}`;
  return null;
}
/** Unfinished uploads journaled for keys under `prefix`. */
function journalEntries(prefix: string): number {
  const dir = path.join(WORK, 'cache', 's3-uploads');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .filter((f) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { key: string }).key.startsWith(prefix)).length;
}
/** Restores an S3 prefix into a fresh directory and compares every snapshot with its source. */
async function s3RestoreVerify(prefix: string): Promise<string | null> {
  const dir = `${dst.mountPoint}/verify-${prefix.replaceAll('/', '-')}`;
  mkdirSync(dir, { recursive: true });
  const res = await run([`s3://torture/${prefix}`, `${dir}/`], baseEnv);
  const problem = res.code !== 0 ? `restore failed: ${res.stderr.trim().split('\n').at(-1)}` : btrfsVerify(dir, true);
  for (const name of btrfsState(dir).complete.concat(btrfsState(dir).partials)) sh(`btrfs -q subvolume delete '${dir}/${name}'`);
  sh(`btrfs subvolume sync ${dst.mountPoint} && rm -rf '${dir}'`);
  return problem;
}

// ---- the paths ---------------------------------------------------------------------------------
interface Endpoint {
  url: string;
  verify(expectAll: boolean): Promise<string | null>;
  partials(): number;
  state(): Promise<string>;
  deepVerify(): Promise<string | null>;
  dispose(): Promise<void>;
  /**
   * Waits for work the store's server finishes on its own after a client died: s3rver writes
   * objects in place, so while it still completes an upload whose client was killed, a listing
   * can show a half-written file (S3 itself completes atomically).
   */
  settle(): Promise<void>;
}
let counter = 0;
function localDestination(): Endpoint {
  const dir = `${dst.mountPoint}/d${++counter}`;
  mkdirSync(dir, { recursive: true });
  return {
    url: `${dir}/`,
    verify: async (all) => btrfsVerify(dir, all),
    partials: () => btrfsState(dir).partials.length,
    state: async () => sh(`btrfs subvolume list -u ${dst.mountPoint}`),
    deepVerify: async () => btrfsVerify(dir, true),
    settle: async () => {},
    // The pool holds a few chains at most: every destination is removed after its checks.
    dispose: async () => {
      const { complete, partials } = btrfsState(dir);
      for (const name of [...complete, ...partials].sort().reverse()) sh(`btrfs -q subvolume delete '${dir}/${name}'`);
      sh(`btrfs subvolume sync ${dst.mountPoint} && rm -rf '${dir}'`);
    },
  };
}
function s3Destination(): Endpoint {
  const prefix = `p${++counter}/`;
  return {
    url: `s3://torture/${prefix}`,
    verify: (all) => s3Verify(prefix, all),
    partials: () => journalEntries(prefix),
    dispose: async () => {},
    settle: () => new Promise((resolve) => setTimeout(resolve, 1000)),
    state: async () => JSON.stringify(await s3Keys('')),
    deepVerify: () => s3RestoreVerify(prefix),
  };
}
let uploaded = false;
async function s3Source(): Promise<string> {
  if (!uploaded) {
    const res = await run([`${SNAPS}/`, 's3://torture/source/'], baseEnv);
    if (res.code !== 0) throw new Error(`seeding s3://torture/source/ failed: ${res.stderr}`);
    uploaded = true;
  }
  return 's3://torture/source/';
}
async function pathEnds(name: PathName): Promise<{ from: string; to: Endpoint }> {
  switch (name) {
    case 'local-local':
      return { from: `${SNAPS}/`, to: localDestination() };
    case 'local-s3':
      return { from: `${SNAPS}/`, to: s3Destination() };
    case 's3-local':
      return { from: await s3Source(), to: localDestination() };
    case 'local-ssh': {
      const to = localDestination();
      return { from: `${SNAPS}/`, to: { ...to, url: `ssh://buttersink-test${to.url}` } };
    }
    case 'ssh-local':
      return { from: `ssh://buttersink-test${SNAPS}/`, to: localDestination() };
    case 'mount':
      return { from: `${SNAPS}/`, to: localDestination() };
  }
}

// ---- the mount path ----------------------------------------------------------------------------
type RunningMount = Awaited<ReturnType<typeof startMount>>;
/** What a fault does to a running mount, `at` ms after the mkdir started. */
interface MountInterrupt {
  readonly at: number;
  readonly action: (mount: RunningMount) => void;
  /** How the fault's own tool fared, for the log (`buttersink umount`, `fusermount -u`). */
  readonly outcome?: () => Promise<string>;
}
const mountSignalAt = (signal: NodeJS.Signals) => (at: number): MountInterrupt => ({ at, action: (m) => m.child.kill(signal) });

/** Runs a command (not the CLI) asynchronously: the mount lives in another process, but stay safe. */
function command(file: string, argv: readonly string[], delayMs = 0): Promise<Run> {
  return new Promise((resolve) =>
    setTimeout(() => {
      const started = performance.now();
      const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code, signal) =>
        resolve({ code: code ?? (signal ? -9 : null), stdout, stderr, seconds: (performance.now() - started) / 1000 }),
      );
    }, delayMs),
  );
}

/**
 * A copy through the mount, the way a script waits for one: `mkdir -p` starts each transfer
 * and returns; `ls` of each new snapshot waits for its transfer and fails with its error.
 */
function mountMkdir(paths: readonly string[]): Promise<Run> {
  return command('sh', ['-c', 'mkdir -p -- "$@" && for d do ls -- "$d" >/dev/null || exit 1; done', 'sh', ...paths]);
}

/** A `buttersink mount` of the source snapshots (`src`) and `dir` (`dst`), always taken down after `body`. */
async function withMount<T>(dir: string, extra: readonly string[], body: (mount: RunningMount) => Promise<T>): Promise<T> {
  const mount = await startMount([...extra, '--store', `src=${SNAPS}/`, '--store', `dst=${dir}/`], baseEnv);
  try {
    return await body(mount);
  } finally {
    await mount.stop();
  }
}

/**
 * Copies the chain through a FUSE mount of both pools: `mkdir -p MNT/dst/<name>...`, each mkdir
 * a transfer. The interrupt acts on the mount; the mount is always taken down after.
 */
async function mountCopy(dir: string, interrupt?: MountInterrupt): Promise<Run> {
  return withMount(dir, [], async (mount) => {
    // `seconds` is the mkdir's alone (not the mount's start): faults spread over the transfers.
    const timer = interrupt === undefined ? undefined : setTimeout(() => interrupt.action(mount), interrupt.at);
    const res = await mountMkdir(NAMES.map((n) => `${mount.mountPoint}/dst/${n}`));
    clearTimeout(timer);
    return res;
  });
}

/** How long a clean mount copy of the chain takes (and a check that one works at all). */
let mountReference: number | undefined;
async function mountReferenceSeconds(): Promise<number> {
  if (mountReference !== undefined) return mountReference;
  const clean = localDestination();
  const reference = await mountCopy(clean.url.replace(/\/$/, ''));
  const problem = reference.code === 0 ? await clean.verify(true) : `a clean mount copy failed: ${reference.stderr}`;
  await clean.dispose();
  if (problem !== null) throw new Error(problem);
  mountReference = reference.seconds;
  return mountReference;
}

/**
 * Interrupts a mount copy at a seeded random moment, checks nothing incomplete is visible,
 * copies again through a second mount, and checks everything arrived whole with no partial.
 */
async function mountInterrupted(fault: string, count: number, interrupt: (at: number) => MountInterrupt): Promise<void> {
  const t = tally('mount', fault);
  const seconds = await mountReferenceSeconds();
  for (let i = 0; i < count; i++) {
    const at = Math.round(random() * seconds * 1000);
    await attempt(t, 'mount', async (_from, to) => {
      const dir = to.url.replace(/\/$/, '');
      const fault = interrupt(at);
      const hit = await mountCopy(dir, fault);
      const afterKill = await to.verify(false);
      if (afterKill !== null) return { problem: `after the fault at ${at} ms: ${afterKill}` };
      const between = btrfsState(dir);
      const tool = (await fault.outcome?.()) ?? '';
      const detail = `fault at ${at} ms${tool}: mkdir exit ${hit.code} ${hit.stderr.trim().split('\n').at(-1) ?? ''}; ${between.complete.length} whole, ${between.partials.length} partial after it`;
      const again = await mountCopy(dir);
      if (again.code !== 0) return { problem: `mkdir after the fault at ${at} ms failed: ${again.stderr.trim()}` };
      const rest = await to.verify(true);
      return { problem: rest === null ? null : `after the second mount (fault at ${at} ms): ${rest}`, detail };
    });
  }
}

async function mountKills(): Promise<void> {
  await mountInterrupted('kill -9 of the mount mid-mkdir, then again', KILLS, mountSignalAt('SIGKILL'));
}

async function mountTerminations(): Promise<void> {
  const count = Math.max(3, Math.round(KILLS / 4));
  await mountInterrupted('SIGTERM of the mount mid-mkdir, then again', count, mountSignalAt('SIGTERM'));
  // `buttersink umount` (SIGTERM through the PID file, waits for the process) and a bare
  // `fusermount -u` (the session notices the mount went away), taking turns.
  let turn = 0;
  await mountInterrupted('umount mid-mkdir (buttersink umount, fusermount -u), then again', count, (at) => {
    const how = turn++ % 2 === 0 ? [process.execPath, CLI, 'umount'] : ['fusermount', '-u'];
    const label = how[0] === 'fusermount' ? 'fusermount -u' : 'buttersink umount';
    let done: Promise<Run> | undefined;
    return {
      at,
      action: (m) => void (done = command(how[0]!, [...how.slice(1), m.mountPoint])),
      outcome: async () => {
        if (done === undefined) return ` (${label}: not reached)`;
        const r = await done;
        return ` (${label}: exit ${r.code}${r.code === 0 ? '' : ` ${r.stderr.trim()}`})`;
      },
    };
  });
}

/**
 * The mount's `-n`: with the destination half filled, a --read-only mount refuses mkdir of a
 * missing snapshot and rmdir of a present one with EROFS; browsing a snapshot (ls -lR, reading
 * files, xattrs) through a normal mount changes nothing. Both pools' full state is compared.
 */
async function mountReadOnly(): Promise<void> {
  const t = tally('mount', 'read-only mount and browsing change nothing');
  const state = (): string => `${sourceState()}\n${sh(`btrfs subvolume list -u ${dst.mountPoint}`)}`;
  const cases: { name: string; extra: string[]; act: (mnt: string) => Promise<string | null> }[] = [
    {
      name: 'mkdir in a --read-only mount',
      extra: ['--read-only'],
      act: async (mnt) => refusedReadOnly(await command('mkdir', [`${mnt}/dst/${NAMES[2]}`]), 'mkdir'),
    },
    {
      name: 'rmdir in a --read-only mount',
      extra: ['--read-only'],
      act: async (mnt) => refusedReadOnly(await command('rmdir', [`${mnt}/dst/${NAMES[0]}`]), 'rmdir'),
    },
    {
      name: 'browsing in a rw mount',
      extra: [],
      act: async (mnt) => {
        const name = NAMES[Math.floor(random() * 2)]!;
        for (const [file, argv] of [
          ['ls', ['-laR', `${mnt}/src/${name}`, `${mnt}/dst/${name}`, `${mnt}/src`, `${mnt}/dst`]],
          ['getfattr', ['-R', '-h', '-d', '-m', '-', `${mnt}/dst/${name}`]],
          ['cat', [`${mnt}/.buttersink/status`, `${mnt}/.buttersink/log`]],
        ] as const) {
          const res = await command(file, argv);
          if (res.code !== 0) return `${file} exited ${res.code}: ${res.stderr.trim().split('\n').at(-1)}`;
        }
        // Every file read through the mount, byte for byte (tree-digest), on both sides.
        return viewVerify(`${mnt}/dst/${name}`, name) ?? viewVerify(`${mnt}/src/${NAMES[3]}`, NAMES[3]!);
      },
    },
  ];
  for (const c of cases) {
    await attempt(t, 'mount', async (from, to) => {
      // Half the chain there already, so there is something to refuse both ways.
      const seeded = await run([`${from}${NAMES[0]}`, to.url], baseEnv);
      const seeded2 = await run([`${from}${NAMES[1]}`, to.url], baseEnv);
      if (seeded.code !== 0 || seeded2.code !== 0) return { problem: `filling the destination failed: ${lastLine(seeded)} ${lastLine(seeded2)}` };
      const before = state();
      const problem = await withMount(to.url.replace(/\/$/, ''), c.extra, (m) => c.act(m.mountPoint));
      if (problem !== null) return { problem: `${c.name}: ${problem}` };
      if (state() !== before) return { problem: `${c.name} changed a pool` };
      const half = await to.verify(false);
      if (half !== null) return { problem: `${c.name}: ${half}` };
      const { complete } = btrfsState(to.url.replace(/\/$/, ''));
      return { problem: complete.sort().join() === NAMES.slice(0, 2).join() ? null : `${c.name}: the destination now has ${complete.join(',')}` };
    });
  }
}
function refusedReadOnly(res: Run, what: string): string | null {
  if (res.code === 0) return `${what} succeeded`;
  return /Read-only file system/.test(res.stderr) ? null : `${what} failed otherwise: ${res.stderr.trim()}`;
}

/**
 * Two at once through the mount: (a) two `mkdir` of one snapshot in one mount, started
 * together; (b) a mount's `mkdir -p` of the chain and a CLI sync into the same directory,
 * the sync starting at a seeded random moment. Nothing corrupt or duplicated, and a rerun of
 * the sync completes everything.
 */
async function mountConcurrent(): Promise<void> {
  const count = Math.max(3, Math.round(KILLS / 4));
  const same = tally('mount', 'two mkdir of one snapshot at once');
  for (let i = 0; i < count; i++) {
    const name = NAMES[1 + Math.floor(random() * (NAMES.length - 1))]!;
    await attempt(same, 'mount', async (from, to) => {
      const dir = to.url.replace(/\/$/, '');
      // The first snapshot there already (the mkdir sends a diff from it), and shown by `ls -l`
      // before: what the mount read of the store's directory must not hide the newcomer's xattrs.
      const seeded = await run([`${from}${NAMES[0]}`, to.url], baseEnv);
      if (seeded.code !== 0) return { problem: `filling the destination failed: ${lastLine(seeded)}` };
      const [a, b, view] = await withMount(dir, ['--copy-idle', '0.5'], async (m) => {
        await command('ls', ['-l', `${m.mountPoint}/dst`]);
        const both = await Promise.all([mountMkdir([`${m.mountPoint}/dst/${name}`]), mountMkdir([`${m.mountPoint}/dst/${name}`])]);
        // What the mount shows of the new snapshot once its copy window (where a `cp -r` would
        // write) closed: everything, byte for byte, the xattrs of its root too.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return [...both, viewVerify(`${m.mountPoint}/dst/${name}`, name)] as const;
      });
      if (view !== null) return { problem: view };
      const ok = (r: Run): boolean => r.code === 0 || /File exists/.test(r.stderr);
      if (!(a.code === 0 || b.code === 0) || !ok(a) || !ok(b)) return { problem: `mkdir ${name} twice: exit ${a.code} (${a.stderr.trim()}), exit ${b.code} (${b.stderr.trim()})` };
      const problem = await to.verify(false);
      if (problem !== null) return { problem };
      const { complete } = btrfsState(dir);
      const detail = `mkdir ${name} twice: exit ${a.code}, exit ${b.code} ${[a, b].map((r) => r.stderr.trim()).join(' ')}`;
      const want = [NAMES[0], name].join();
      return { problem: complete.sort().join() === want ? null : `after mkdir ${name} twice the destination has ${complete.join(',')}`, detail };
    });
  }
  const mixed = tally('mount', 'mount mkdir and CLI sync at once');
  // The sync's start is offset from the mkdir's by a seeded amount from "the whole sync
  // before" to "the whole mkdir before", so the two meet at every stage of each other.
  const mkdirMs = (await mountReferenceSeconds()) * 1000;
  const probe = await pathEnds('mount');
  const syncMs = (await run([probe.from, probe.to.url], baseEnv)).seconds * 1000;
  await probe.to.dispose();
  for (let i = 0; i < count; i++) {
    const delay = Math.round(random() * (syncMs + mkdirMs) - syncMs);
    await attempt(mixed, 'mount', async (from, to) => {
      const dir = to.url.replace(/\/$/, '');
      const later = <T>(ms: number, work: () => Promise<T>): Promise<T> => new Promise((resolve) => setTimeout(() => void work().then(resolve), Math.max(0, ms)));
      const [mk, cli] = await withMount(dir, [], (m) =>
        Promise.all([
          later(-delay, () => mountMkdir(NAMES.map((n) => `${m.mountPoint}/dst/${n}`))),
          later(delay, () => run([from, to.url], baseEnv)),
        ]),
      );
      if (cli.code !== 0 && cli.code !== 6) return { problem: `the sync (started at ${delay} ms) exited ${cli.code}: ${lastLine(cli)}` };
      if (mk.code !== 0 && !/busy|exists/i.test(mk.stderr)) return { problem: `mkdir -p failed unfittingly (sync at ${delay} ms): ${mk.stderr.trim()}` };
      const between = await to.verify(false);
      if (between !== null) return { problem: `after both (sync at ${delay} ms): ${between}` };
      const rerun = await run([from, to.url], baseEnv);
      if (rerun.code !== 0) return { problem: `rerun (sync at ${delay} ms) failed: ${lastLine(rerun)}` };
      const detail = `sync at ${delay} ms: sync exit ${cli.code}, mkdir -p exit ${mk.code} ${mk.stderr.trim().split('\n').at(-1) ?? ''}`;
      return { problem: await to.verify(true), detail };
    });
  }
}

/**
 * `mkdir` in a mount whose destination is a nearly full pool: the mkdir fails with ENOSPC,
 * the status file names the reason, no partial remains and the source is untouched.
 */
async function mountDiskFull(): Promise<void> {
  const t = tally('mount', 'destination disk full');
  await fullPoolRun(t, async (backup) => {
    const { res, status } = await withMount(backup, [], async (m) => ({
      res: await mountMkdir([`${m.mountPoint}/dst/${NAMES[0]}`]),
      status: (await command('cat', [`${m.mountPoint}/.buttersink/status`])).stdout,
    }));
    log(`  mount: disk full: mkdir exit ${res.code} ${res.stderr.trim()}; status: ${status.split('\n').filter((l) => l.includes('error') || l.includes('failed')).join(' / ')}`);
    if (res.code === 0) return 'mkdir succeeded on a full pool';
    if (!/No space left on device/.test(res.stderr)) return `mkdir failed with another errno than ENOSPC: ${res.stderr.trim()}`;
    if (!/No space left|ENOSPC/i.test(status)) return `the status file does not name the reason: ${status.trim().replaceAll('\n', ' / ')}`;
    return null;
  });
}

/**
 * One run into a small pool left with ~30 MiB free (the 60 MiB first snapshot cannot fit):
 * `act` transfers into the pool's `backup` directory and says what was wrong with how that
 * failed (null: a clear failure); then no partial may be left and the source must be untouched.
 */
async function fullPoolRun(t: Tally, act: (backup: string) => Promise<string | null>): Promise<void> {
  const small = createPool(160);
  try {
    sh('avail=$(df --output=avail -BM . | tail -n 1 | tr -dc 0-9); dd if=/dev/urandom of=filler bs=1M count=$((avail - 30)) status=none; sync', small.mountPoint);
    mkdirSync(`${small.mountPoint}/backup`);
    const before = sourceState();
    t.runs += 1;
    const problem = await act(`${small.mountPoint}/backup`);
    const partials = sh(`btrfs subvolume list ${small.mountPoint}`).split('\n').filter((l) => l.includes('backup/')).length;
    if (problem !== null) t.notes.add(problem);
    else if (partials !== 0) t.notes.add(`${partials} subvolumes left in the full pool`);
    else if (sourceState() !== before) t.notes.add('the source changed');
    else {
      t.survived += 1;
      t.verified += 1;
    }
  } finally {
    small.destroy();
  }
}

// ---- faults -------------------------------------------------------------------------------------
/**
 * One run of a fault on a fresh destination, removed afterwards. `body` returns null when
 * the run survived with its data verified, or what went wrong.
 */
async function attempt(
  t: Tally,
  name: PathName,
  body: (from: string, to: Endpoint) => Promise<{ problem: string | null; verified?: boolean; detail?: string }>,
): Promise<void> {
  const { from, to } = await pathEnds(name);
  t.runs += 1;
  const started = performance.now();
  try {
    const { problem, verified = true, detail } = await body(from, to);
    const how = detail === undefined ? '' : `; ${detail}`;
    log(`  ${name}: run ${t.runs} ${problem === null ? 'survived' : `FAILED: ${problem}`} (${((performance.now() - started) / 1000).toFixed(1)} s${how})`);
    if (problem !== null) {
      t.notes.add(problem);
      return;
    }
    t.survived += 1;
    if (verified) t.verified += 1;
    t.partialsLeft += to.partials();
  } finally {
    await to.dispose();
  }
}

const lastLine = (r: Run): string => r.stderr.trim().split('\n').at(-1) ?? '';

async function killNine(name: PathName): Promise<void> {
  await interrupted(name, 'kill -9, then rerun', KILLS, killNineAt);
}

/** The remote `buttersink server` processes (started by our sshd for our runs). */
function killRemoteServers(): void {
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-f', `${CLI} server`], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    // none running at this moment
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Runs a transfer, interrupts it at a seeded random moment, checks nothing incomplete is
 * visible, reruns it, and checks everything arrived whole and no partial is left.
 */
async function interrupted(name: PathName, fault: string, count: number, interrupt: (at: number) => Interrupt): Promise<void> {
  const t = tally(name, fault);
  // How long a clean run takes, so kills spread over the whole transfer.
  const clean = await pathEnds(name);
  const reference = await run([clean.from, clean.to.url], baseEnv);
  await clean.to.dispose();
  if (reference.code !== 0) throw new Error(`${name}: a clean run failed: ${reference.stderr}`);
  for (let i = 0; i < count; i++) {
    const at = Math.round(random() * reference.seconds * 1000);
    await attempt(t, name, async (from, to) => {
      const killed = await run([from, to.url], baseEnv, interrupt(at));
      await to.settle();
      const afterKill = await to.verify(false);
      if (afterKill !== null) return { problem: `after a kill at ${at} ms: ${afterKill}` };
      const rerun = await run([from, to.url], baseEnv);
      if (rerun.code !== 0) return { problem: `rerun after a kill at ${at} ms (exit ${killed.code}) failed: ${lastLine(rerun)}` };
      const problem = await to.verify(true);
      if (problem !== null) return { problem: `after the rerun (kill at ${at} ms): ${problem}` };
      // Byte-for-byte restores of S3 prefixes are costly: the first and last run of a path.
      const deep = i === 0 || i === count - 1 ? await to.deepVerify() : null;
      return { problem: deep === null ? null : `deep check: ${deep}` };
    });
  }
}

async function dryRun(name: PathName): Promise<void> {
  const t = tally(name, '-n changes nothing');
  for (const args of [['-n'], ['-n', '-d'], ['-n', '-e']]) {
    await attempt(t, name, async (from, to) => {
      // One snapshot there already, so the plan has sends and incremental parents.
      await run([`${from}t1`, to.url], baseEnv);
      const [before, srcBefore] = [await to.state(), sourceState()];
      const res = await run([...args, from, to.url], baseEnv);
      const [after, srcAfter] = [await to.state(), sourceState()];
      if (res.code !== 0) return { problem: `${args.join(' ')} exited ${res.code}: ${lastLine(res)}` };
      return { problem: before !== after || srcBefore !== srcAfter ? `${args.join(' ')} changed a store` : null };
    });
  }
}

async function concurrent(name: PathName): Promise<void> {
  const t = tally(name, 'two syncs at once');
  for (let i = 0; i < 3; i++) {
    await attempt(t, name, async (from, to) => {
      const [a, b] = await Promise.all([run([from, to.url], baseEnv), run([from, to.url], baseEnv)]);
      const codes = [a.code, b.code].sort().join(',');
      if (codes !== '0,6' && codes !== '0,0') return { problem: `exit codes ${codes}: ${lastLine(a)} / ${lastLine(b)}` };
      return { problem: await to.verify(true) };
    });
  }
}

async function diskFull(name: PathName, urlOf: (dir: string) => string): Promise<void> {
  const t = tally(name, 'destination disk full');
  await fullPoolRun(t, async (backup) => {
    const res = await run([`${SNAPS}/t1`, urlOf(backup)], baseEnv);
    const lines = res.stderr.trim().split('\n').filter((l) => l.startsWith('buttersink: '));
    if (res.code !== 5) return `exit ${res.code} instead of 5: ${res.stderr.trim()}`;
    if (lines.length !== 1 || !/No space left|ENOSPC|space/i.test(lines[0]!)) return `unclear error: ${res.stderr.trim()}`;
    return null;
  });
}

type Rule = InstanceType<typeof FaultProxy>['rule'];
async function s3Fault(name: 'local-s3' | 's3-local', fault: string, rule: () => Rule): Promise<void> {
  const t = tally(name, fault);
  for (let i = 0; i < 3; i++) {
    await attempt(t, name, async (from, to) => {
      proxy.rule = rule();
      const res = await run(['--part-size', '5', from, to.url], viaProxy);
      proxy.rule = () => undefined;
      if (res.code !== 0) return { problem: `exit ${res.code}: ${lastLine(res)}` };
      const problem = await to.verify(true);
      if (problem !== null || i > 0) return { problem };
      const deep = await to.deepVerify();
      return { problem: deep === null ? null : `deep check: ${deep}` };
    });
  }
}
const nth = (predicate: (method: string, url: string) => boolean, times: number, fault: NonNullable<ReturnType<Rule>>): (() => Rule) => () => {
  let seen = 0;
  return (method, url) => (predicate(method, url) && seen++ < times ? fault : undefined);
};
const isPart = (method: string, url: string): boolean => method === 'PUT' && url.includes('partNumber=');
const isGet = (method: string, url: string): boolean => method === 'GET' && !url.includes('list-type') && /\/torture\/[^?]+/.test(url);

async function corruptObject(): Promise<void> {
  const t = tally('s3-local', 'object corrupted in the bucket');
  const prefix = 'corrupt/';
  await run([`${SNAPS}/`, `s3://torture/${prefix}`], baseEnv);
  const victim = (await s3Keys(prefix)).find((k) => k.key.includes('/t3/'))!;
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'torture', Key: victim.key }));
  const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'torture', Key: victim.key }))).Body!.transformToByteArray());
  body[Math.floor(body.length / 2)] = body[Math.floor(body.length / 2)]! ^ 1;
  await s3.send(new PutObjectCommand({ Bucket: 'torture', Key: victim.key, Body: body, Metadata: head.Metadata }));
  const to = localDestination();
  t.runs += 1;
  try {
    const res = await run([`s3://torture/${prefix}`, to.url], baseEnv);
    const state = btrfsState(to.url.replace(/\/$/, ''));
    if (res.code !== 5) t.notes.add(`exit ${res.code} instead of 5`);
    // Named either by the download's hash check or by the stream validator's refusal (a bad CRC), whichever sees it first.
    else if (!res.stderr.includes(`${victim.key} is corrupt`) && !res.stderr.includes(`from s3://torture/${victim.key}: the stream was refused`)) {
      t.notes.add(`the error does not name the object: ${res.stderr.trim()}`);
    }
    else if (state.complete.includes('t3') || state.complete.includes('t4') || state.partials.length > 0) t.notes.add(`visible after the failure: ${[...state.complete, ...state.partials].join(', ')}`);
    else if (btrfsVerify(to.url.replace(/\/$/, ''), false) !== null) t.notes.add('what arrived differs from its source');
    else {
      t.survived += 1;
      t.verified += 1;
    }
  } finally {
    await to.dispose();
  }
}

// ---- the campaign ----------------------------------------------------------------------------
let failed = false;
try {
  log(`seed ${SEED}, ${KILLS} kills per path, paths ${PATHS.join(', ')}`);
  if (PATHS.includes('mount')) {
    log('mount: kill -9 of the mount process');
    await mountKills();
    log('mount: read-only and browsing');
    await mountReadOnly();
    log('mount: two at once');
    await mountConcurrent();
    log('mount: SIGTERM and umount mid-mkdir');
    await mountTerminations();
    log('mount: disk full');
    await mountDiskFull();
  }
  for (const name of PATHS.filter((p) => p !== 'mount')) {
    log(`${name}: kill -9`);
    await killNine(name);
    log(`${name}: -n`);
    await dryRun(name);
    log(`${name}: two at once`);
    await concurrent(name);
  }
  if (PATHS.includes('local-local')) {
    log('local-local: disk full');
    await diskFull('local-local', (dir) => `${dir}/`);
  }
  for (const name of PATHS.filter((p): p is 'local-ssh' | 'ssh-local' => p.includes('ssh'))) {
    log(`${name}: connection cut, remote buttersink killed`);
    await interrupted(name, 'connection cut mid-stream', Math.max(3, Math.round(KILLS / 4)), (at) => ({ at, action: () => sshd!.cutConnections() }));
    await interrupted(name, 'remote buttersink killed', Math.max(3, Math.round(KILLS / 4)), (at) => ({ at, action: killRemoteServers }));
  }
  if (PATHS.includes('local-ssh')) {
    log('local-ssh: remote disk full');
    await diskFull('local-ssh', (dir) => `ssh://buttersink-test${dir}/`);
  }
  if (PATHS.includes('local-s3')) {
    log('local-s3: S3 faults');
    await s3Fault('local-s3', '5xx burst on parts', nth(isPart, 4, { kind: 'status', status: 500 }));
    await s3Fault('local-s3', 'throttling (503 SlowDown)', nth(isPart, 4, { kind: 'status', status: 503, code: 'SlowDown' }));
    await s3Fault('local-s3', 'connection reset mid-part', nth(isPart, 2, { kind: 'reset-request' }));
  }
  if (PATHS.includes('s3-local')) {
    log('s3-local: S3 faults');
    await s3Fault('s3-local', 'connection reset mid-download', nth(isGet, 2, { kind: 'cut-response', afterBytes: 3_000_000 }));
    await s3Fault('s3-local', 'truncated body', nth(isGet, 1, { kind: 'cut-response', afterBytes: 1000 }));
    await s3Fault('s3-local', '5xx burst on downloads', nth(isGet, 3, { kind: 'status', status: 503 }));
    await corruptObject();
  }
} catch (error) {
  failed = true;
  log(`campaign aborted: ${(error as Error).stack ?? String(error)}`);
} finally {
  await cleanup();
}

// ---- report -------------------------------------------------------------------------------------
const rows = [...results.entries()].map(([key, t]) => {
  const [p, fault] = key.split('\t');
  return { p: p!, fault: fault!, ...t };
});
const table = [
  '| path | fault | runs | survived | data verified | partials left | notes |',
  '| --- | --- | ---: | ---: | ---: | ---: | --- |',
  ...rows.map((r) => `| ${r.p} | ${r.fault} | ${r.runs} | ${r.survived} | ${r.verified} | ${r.partialsLeft} | ${[...r.notes].slice(0, 3).join('; ').replaceAll('|', '/') || ''} |`),
].join('\n');
process.stdout.write(`${table}\n`);
const lost = rows.some((r) => r.survived !== r.runs || r.partialsLeft > 0);
if (RECORD) {
  const file = path.join(REPO, 'RELIABILITY.md');
  const head = existsSync(file) ? readFileSync(file, 'utf8').split('\n## Campaign results')[0]!.trimEnd() : '# Reliability';
  const revision = sh(`git -C '${REPO}' rev-parse --short HEAD`).trim();
  writeFileSync(
    file,
    `${head}\n\n## Campaign results\n\n\`sudo node dist/scripts/torture.js --seed ${SEED} --kills ${KILLS} --paths ${PATHS.join(',')}\` at ${revision}, ${new Date().toISOString().slice(0, 10)}.\n\n${table}\n`,
  );
}
process.exitCode = failed || lost ? 1 : 0;
