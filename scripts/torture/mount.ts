/**
 * The mount path: `mkdir` of each snapshot in a `buttersink mount` of the two pools; the mount
 * process is what gets killed. Its analogues of the sync paths' faults: kill -9, SIGTERM and
 * umount mid-mkdir, a --read-only mount refusing mkdir/rmdir with EROFS and browsing through a
 * rw mount (both pools' state identical), two mkdir of one snapshot at once, a mount mkdir
 * racing a CLI sync, and a full destination pool under a mkdir.
 */
import { sh } from '../../test/support/btrfs-pool.js';
import { startMount } from '../../test/support/fuse-mount.js';
import type { Campaign } from './context.js';
import { attempt, fullPoolRun, localDestination, pathEnds } from './endpoints.js';
import { CLI, command, lastLine, runCli, type Run } from './processes.js';

/** Every mount fault, in this order. */
export async function mountFaults(c: Campaign): Promise<void> {
  c.log('mount: kill -9 of the mount process');
  await mountKills(c);
  c.log('mount: read-only and browsing');
  await mountReadOnly(c);
  c.log('mount: two at once');
  await mountConcurrent(c);
  c.log('mount: SIGTERM and umount mid-mkdir');
  await mountTerminations(c);
  c.log('mount: disk full');
  await mountDiskFull(c);
}

type RunningMount = Awaited<ReturnType<typeof startMount>>;
/** What a fault does to a running mount, `at` ms after the mkdir started. */
interface MountInterrupt {
  readonly at: number;
  readonly action: (mount: RunningMount) => void;
  /** How the fault's own tool fared, for the log (`buttersink umount`, `fusermount -u`). */
  readonly outcome?: () => Promise<string>;
}
const mountSignalAt =
  (signal: NodeJS.Signals) =>
  (at: number): MountInterrupt => ({ at, action: (m) => m.child.kill(signal) });

/**
 * A copy through the mount, the way a script waits for one: `mkdir -p` starts each transfer
 * and returns; `ls` of each new snapshot waits for its transfer and fails with its error.
 */
function mountMkdir(paths: readonly string[]): Promise<Run> {
  return command('sh', ['-c', 'mkdir -p -- "$@" && for d do ls -- "$d" >/dev/null || exit 1; done', 'sh', ...paths]);
}

/** A `buttersink mount` of the source snapshots (`src`) and `dir` (`dst`), always taken down after `body`. */
async function withMount<T>(c: Campaign, dir: string, extra: readonly string[], body: (mount: RunningMount) => Promise<T>): Promise<T> {
  const mount = await startMount([...extra, '--store', `src=${c.snaps}/`, '--store', `dst=${dir}/`], c.baseEnv);
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
async function mountCopy(c: Campaign, dir: string, interrupt?: MountInterrupt): Promise<Run> {
  return withMount(c, dir, [], async (mount) => {
    // `seconds` is the mkdir's alone (not the mount's start): faults spread over the transfers.
    const timer = interrupt === undefined ? undefined : setTimeout(() => interrupt.action(mount), interrupt.at);
    const res = await mountMkdir(c.names.map((n) => `${mount.mountPoint}/dst/${n}`));
    clearTimeout(timer);
    return res;
  });
}

/** How long a clean mount copy of the chain takes (and a check that one works at all). */
async function mountReferenceSeconds(c: Campaign): Promise<number> {
  if (c.state.mountReferenceSeconds !== undefined) return c.state.mountReferenceSeconds;
  const clean = localDestination(c);
  const reference = await mountCopy(c, clean.url.replace(/\/$/, ''));
  const problem = reference.code === 0 ? await clean.verify(true) : `a clean mount copy failed: ${reference.stderr}`;
  await clean.dispose();
  if (problem !== null) throw new Error(problem);
  c.state.mountReferenceSeconds = reference.seconds;
  return reference.seconds;
}

/**
 * Interrupts a mount copy at a seeded random moment, checks nothing incomplete is visible,
 * copies again through a second mount, and checks everything arrived whole with no partial.
 */
async function mountInterrupted(c: Campaign, fault: string, count: number, interrupt: (at: number) => MountInterrupt): Promise<void> {
  const t = c.tallies.of('mount', fault);
  const seconds = await mountReferenceSeconds(c);
  for (let i = 0; i < count; i++) {
    const at = Math.round(c.random() * seconds * 1000);
    await attempt(c, t, 'mount', async (_from, to) => {
      const dir = to.url.replace(/\/$/, '');
      const fault = interrupt(at);
      const hit = await mountCopy(c, dir, fault);
      const afterKill = await to.verify(false);
      if (afterKill !== null) return { problem: `after the fault at ${at} ms: ${afterKill}` };
      const between = c.btrfsState(dir);
      const tool = (await fault.outcome?.()) ?? '';
      const detail = `fault at ${at} ms${tool}: mkdir exit ${hit.code} ${hit.stderr.trim().split('\n').at(-1) ?? ''}; ${between.complete.length} whole, ${between.partials.length} partial after it`;
      const again = await mountCopy(c, dir);
      if (again.code !== 0) return { problem: `mkdir after the fault at ${at} ms failed: ${again.stderr.trim()}` };
      const rest = await to.verify(true);
      return { problem: rest === null ? null : `after the second mount (fault at ${at} ms): ${rest}`, detail };
    });
  }
}

async function mountKills(c: Campaign): Promise<void> {
  await mountInterrupted(c, 'kill -9 of the mount mid-mkdir, then again', c.kills, mountSignalAt('SIGKILL'));
}

async function mountTerminations(c: Campaign): Promise<void> {
  const count = Math.max(3, Math.round(c.kills / 4));
  await mountInterrupted(c, 'SIGTERM of the mount mid-mkdir, then again', count, mountSignalAt('SIGTERM'));
  // `buttersink umount` (SIGTERM through the PID file, waits for the process) and a bare
  // `fusermount -u` (the session notices the mount went away), taking turns.
  let turn = 0;
  await mountInterrupted(c, 'umount mid-mkdir (buttersink umount, fusermount -u), then again', count, (at) => {
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
async function mountReadOnly(c: Campaign): Promise<void> {
  const t = c.tallies.of('mount', 'read-only mount and browsing change nothing');
  const state = (): string => `${c.sourceState()}\n${sh(`btrfs subvolume list -u ${c.dst.mountPoint}`)}`;
  const cases: { name: string; extra: string[]; act: (mnt: string) => Promise<string | null> }[] = [
    {
      name: 'mkdir in a --read-only mount',
      extra: ['--read-only'],
      act: async (mnt) => refusedReadOnly(await command('mkdir', [`${mnt}/dst/${c.names[2]}`]), 'mkdir'),
    },
    {
      name: 'rmdir in a --read-only mount',
      extra: ['--read-only'],
      act: async (mnt) => refusedReadOnly(await command('rmdir', [`${mnt}/dst/${c.names[0]}`]), 'rmdir'),
    },
    {
      name: 'browsing in a rw mount',
      extra: [],
      act: async (mnt) => {
        const name = c.names[Math.floor(c.random() * 2)]!;
        for (const [file, argv] of [
          ['ls', ['-laR', `${mnt}/src/${name}`, `${mnt}/dst/${name}`, `${mnt}/src`, `${mnt}/dst`]],
          ['getfattr', ['-R', '-h', '-d', '-m', '-', `${mnt}/dst/${name}`]],
          ['cat', [`${mnt}/.buttersink/status`, `${mnt}/.buttersink/log`]],
        ] as const) {
          const res = await command(file, argv);
          if (res.code !== 0) return `${file} exited ${res.code}: ${res.stderr.trim().split('\n').at(-1)}`;
        }
        // Every file read through the mount, byte for byte (tree-digest), on both sides.
        return c.viewVerify(`${mnt}/dst/${name}`, name) ?? c.viewVerify(`${mnt}/src/${c.names[3]}`, c.names[3]!);
      },
    },
  ];
  for (const step of cases) {
    await attempt(c, t, 'mount', async (from, to) => {
      // Half the chain there already, so there is something to refuse both ways.
      const seeded = await runCli([`${from}${c.names[0]}`, to.url], c.baseEnv);
      const seeded2 = await runCli([`${from}${c.names[1]}`, to.url], c.baseEnv);
      if (seeded.code !== 0 || seeded2.code !== 0)
        return { problem: `filling the destination failed: ${lastLine(seeded)} ${lastLine(seeded2)}` };
      const before = state();
      const problem = await withMount(c, to.url.replace(/\/$/, ''), step.extra, (m) => step.act(m.mountPoint));
      if (problem !== null) return { problem: `${step.name}: ${problem}` };
      if (state() !== before) return { problem: `${step.name} changed a pool` };
      const half = await to.verify(false);
      if (half !== null) return { problem: `${step.name}: ${half}` };
      const { complete } = c.btrfsState(to.url.replace(/\/$/, ''));
      return {
        problem:
          complete.sort().join() === c.names.slice(0, 2).join() ? null : `${step.name}: the destination now has ${complete.join(',')}`,
      };
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
async function mountConcurrent(c: Campaign): Promise<void> {
  const count = Math.max(3, Math.round(c.kills / 4));
  const same = c.tallies.of('mount', 'two mkdir of one snapshot at once');
  for (let i = 0; i < count; i++) {
    const name = c.names[1 + Math.floor(c.random() * (c.names.length - 1))]!;
    await attempt(c, same, 'mount', async (from, to) => {
      const dir = to.url.replace(/\/$/, '');
      // The first snapshot there already (the mkdir sends a diff from it), and shown by `ls -l`
      // before: what the mount read of the store's directory must not hide the newcomer's xattrs.
      const seeded = await runCli([`${from}${c.names[0]}`, to.url], c.baseEnv);
      if (seeded.code !== 0) return { problem: `filling the destination failed: ${lastLine(seeded)}` };
      const [a, b, view] = await withMount(c, dir, ['--copy-idle', '0.5'], async (m) => {
        await command('ls', ['-l', `${m.mountPoint}/dst`]);
        const both = await Promise.all([mountMkdir([`${m.mountPoint}/dst/${name}`]), mountMkdir([`${m.mountPoint}/dst/${name}`])]);
        // What the mount shows of the new snapshot once its copy window (where a `cp -r` would
        // write) closed: everything, byte for byte, the xattrs of its root too.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return [...both, c.viewVerify(`${m.mountPoint}/dst/${name}`, name)] as const;
      });
      if (view !== null) return { problem: view };
      const ok = (r: Run): boolean => r.code === 0 || /File exists/.test(r.stderr);
      if (!(a.code === 0 || b.code === 0) || !ok(a) || !ok(b))
        return { problem: `mkdir ${name} twice: exit ${a.code} (${a.stderr.trim()}), exit ${b.code} (${b.stderr.trim()})` };
      const problem = await to.verify(false);
      if (problem !== null) return { problem };
      const { complete } = c.btrfsState(dir);
      const detail = `mkdir ${name} twice: exit ${a.code}, exit ${b.code} ${[a, b].map((r) => r.stderr.trim()).join(' ')}`;
      const want = [c.names[0], name].join();
      return {
        problem: complete.sort().join() === want ? null : `after mkdir ${name} twice the destination has ${complete.join(',')}`,
        detail,
      };
    });
  }
  const mixed = c.tallies.of('mount', 'mount mkdir and CLI sync at once');
  // The sync's start is offset from the mkdir's by a seeded amount from "the whole sync
  // before" to "the whole mkdir before", so the two meet at every stage of each other.
  const mkdirMs = (await mountReferenceSeconds(c)) * 1000;
  const probe = await pathEnds(c, 'mount');
  const syncMs = (await runCli([probe.from, probe.to.url], c.baseEnv)).seconds * 1000;
  await probe.to.dispose();
  for (let i = 0; i < count; i++) {
    const delay = Math.round(c.random() * (syncMs + mkdirMs) - syncMs);
    await attempt(c, mixed, 'mount', async (from, to) => {
      const dir = to.url.replace(/\/$/, '');
      const later = <T>(ms: number, work: () => Promise<T>): Promise<T> =>
        new Promise((resolve) => setTimeout(() => void work().then(resolve), Math.max(0, ms)));
      const [mk, cli] = await withMount(c, dir, [], (m) =>
        Promise.all([
          later(-delay, () => mountMkdir(c.names.map((n) => `${m.mountPoint}/dst/${n}`))),
          later(delay, () => runCli([from, to.url], c.baseEnv)),
        ]),
      );
      if (cli.code !== 0 && cli.code !== 6) return { problem: `the sync (started at ${delay} ms) exited ${cli.code}: ${lastLine(cli)}` };
      if (mk.code !== 0 && !/busy|exists/i.test(mk.stderr))
        return { problem: `mkdir -p failed unfittingly (sync at ${delay} ms): ${mk.stderr.trim()}` };
      const between = await to.verify(false);
      if (between !== null) return { problem: `after both (sync at ${delay} ms): ${between}` };
      const rerun = await runCli([from, to.url], c.baseEnv);
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
async function mountDiskFull(c: Campaign): Promise<void> {
  const t = c.tallies.of('mount', 'destination disk full');
  await fullPoolRun(c, t, async (backup) => {
    const { res, status } = await withMount(c, backup, [], async (m) => ({
      res: await mountMkdir([`${m.mountPoint}/dst/${c.names[0]}`]),
      status: (await command('cat', [`${m.mountPoint}/.buttersink/status`])).stdout,
    }));
    c.log(
      `  mount: disk full: mkdir exit ${res.code} ${res.stderr.trim()}; status: ${status
        .split('\n')
        .filter((l) => l.includes('error') || l.includes('failed'))
        .join(' / ')}`,
    );
    if (res.code === 0) return 'mkdir succeeded on a full pool';
    if (!/No space left on device/.test(res.stderr)) return `mkdir failed with another errno than ENOSPC: ${res.stderr.trim()}`;
    if (!/No space left|ENOSPC/i.test(status)) return `the status file does not name the reason: ${status.trim().replaceAll('\n', ' / ')}`;
    return null;
  });
}
