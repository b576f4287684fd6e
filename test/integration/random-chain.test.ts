import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SnapshotFiles } from '../../src/model/store.js';
import { localSnapshotFiles } from '../../src/stores/btrfs/local-snapshot-files.js';
import { XattrReader } from '../../src/stores/btrfs/local-xattrs.js';
import { createPool, type BtrfsPool } from '../support/btrfs-pool.js';
import { compareWithDirectory, treeXattrReader } from '../support/compare-trees.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { makeRandomChain, SEND_WRITE_SIZE } from '../support/random-chain.js';
import { ATTRIBUTE_NUMBERS, COMMAND_NUMBERS, type CommandName, type DecodedCommand, decodeStream } from '../support/send-stream-builder.js';

const DATA_ATTRIBUTE = ATTRIBUTE_NUMBERS.data;
const OFFSET_ATTRIBUTE = ATTRIBUTE_NUMBERS.fileOffset;

const suite = btrfsSuite();

const SEEDS = [20250101, 7];

/** A snapshot's files as the local store gives them to the mount (xattrs by one getfattr per directory). */
function storeFilesOf(snapshot: string): SnapshotFiles {
  const reader = new XattrReader();
  return localSnapshotFiles(snapshot, (file) => reader.read(file));
}

/** The same, with the tree's xattrs read at once (a spawn per directory costs seconds a snapshot). */
async function filesOf(snapshot: string): Promise<SnapshotFiles> {
  return localSnapshotFiles(snapshot, await treeXattrReader(snapshot));
}

/** What a seed decides, as text: names, types, modes, owners, sizes, bytes, targets, xattrs (no times). */
function shapeOf(root: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    const full = rel === '' ? root : path.join(root, rel);
    const st = lstatSync(full);
    let detail = '';
    if (st.isFile()) detail = createHash('sha256').update(readFileSync(full)).digest('hex');
    else if (st.isSymbolicLink()) detail = readlinkSync(full);
    else if (!st.isDirectory()) detail = String(st.rdev);
    lines.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : `${st.size} ${st.nlink}`} ${detail}`);
    if (st.isDirectory()) for (const name of readdirSync(full).sort()) walk(rel === '' ? name : `${rel}/${name}`);
  };
  walk('');
  const xattrs = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: root, encoding: 'utf8' });
  return [...lines, ...xattrs.split('\n').filter(Boolean)];
}

const NAMES = new Map<number, CommandName>(Object.entries(COMMAND_NUMBERS).map(([name, number]) => [number, name as CommandName]));

/** How many commands of each kind a stream has. */
function commandCounts(commands: readonly DecodedCommand[]): Map<CommandName, number> {
  const counts = new Map<CommandName, number>();
  for (const { command } of commands) {
    const name = NAMES.get(command) ?? (`unknown ${command}` as CommandName);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

describe('random snapshot chains: a generator and a strict comparator for browsing snapshots', suite, () => {
  let pool: BtrfsPool;
  let destination: BtrfsPool;
  /** Each seed's snapshots, and the stream of each (full, then incremental from the one before). */
  const chains = new Map<number, { snapshots: string[]; streams: Buffer[] }>();

  before(() => {
    pool = createPool(256);
    destination = createPool(256);
    for (const seed of SEEDS) {
      const directory = path.join(pool.mountPoint, `seed-${seed}`);
      mkdirSync(directory);
      const snapshots = makeRandomChain(directory, seed);
      const streams = snapshots.map((snapshot, i) =>
        execFileSync('btrfs', ['send', '-q', ...(i > 0 ? ['-p', snapshots[i - 1]!] : []), snapshot], { maxBuffer: 256 << 20 }),
      );
      chains.set(seed, { snapshots, streams });
    }
  });
  after(() => {
    destination?.destroy();
    pool?.destroy();
  });

  test('a seed makes the same chain again, and another seed another one', () => {
    const seed = SEEDS[0]!;
    const again = path.join(pool.mountPoint, 'again');
    mkdirSync(again);
    const first = chains.get(seed)!.snapshots;
    // The first snapshots again (a shorter run of a seed draws the same).
    const second = makeRandomChain(again, seed, { snapshots: 2 });
    assert.ok(first.length >= 3 && first.length <= 5, `${first.length} snapshots`);
    assert.equal(second.length, 2);
    for (const [i, snapshot] of second.entries()) assert.deepEqual(shapeOf(snapshot), shapeOf(first[i]!), `snapshot ${i}`);
    assert.notDeepEqual(shapeOf(chains.get(SEEDS[1]!)!.snapshots.at(-1)!), shapeOf(first.at(-1)!));
    execFileSync('btrfs', ['-q', 'subvolume', 'delete', ...second]);
  });

  test('the chain exercises what an index must handle: clone, rename, link, unlink, xattrs, truncate, specials', () => {
    for (const [seed, { streams }] of chains) {
      const decoded = streams.map((stream) => decodeStream(stream).commands);
      const steps = decoded.map(commandCounts);
      const incremental = steps.slice(1);
      const anywhere = (name: CommandName): number => incremental.reduce((sum, counts) => sum + (counts.get(name) ?? 0), 0);
      assert.ok(
        incremental.some((counts) => (counts.get('clone') ?? 0) > 0),
        `seed ${seed}: no clone in ${JSON.stringify(steps.map((c) => Object.fromEntries(c)))}`,
      );
      const wanted: CommandName[] = ['rename', 'link', 'unlink', 'rmdir', 'setXattr', 'removeXattr', 'truncate', 'write', 'mkfile'];
      wanted.push('mkdir', 'symlink', 'chmod', 'chown', 'utimes');
      for (const name of wanted) assert.ok(anywhere(name) > 0, `seed ${seed}: no ${name} in an incremental stream`);
      // Special files appear somewhere in the chain (full or incremental).
      const all = (name: CommandName): number => steps.reduce((sum, counts) => sum + (counts.get(name) ?? 0), 0);
      assert.ok(all('mknod') + all('mkfifo') + all('mksock') > 0, `seed ${seed}: no special file`);
      // Files big enough to be split into several 48 KiB writes, and writes at offsets inside files.
      const writes = decoded.flatMap((commands) => commands.filter((c) => c.command === COMMAND_NUMBERS.write));
      const lengths = writes.map((c) => c.attributes.get(DATA_ATTRIBUTE)?.length ?? 0);
      assert.ok(lengths.filter((n) => n === SEND_WRITE_SIZE).length >= 4, `seed ${seed}: few full 48 KiB writes`);
      assert.ok(
        writes.some((c) => (c.attributes.get(OFFSET_ATTRIBUTE)?.readBigUInt64LE() ?? 0n) % BigInt(SEND_WRITE_SIZE) !== 0n),
        `seed ${seed}: no write at an odd offset (an overwrite in the middle)`,
      );
      const total = streams.reduce((sum, s) => sum + s.length, 0);
      assert.ok(total > 1 << 20 && total < 60 << 20, `seed ${seed}: streams of ${total} bytes`);
    }
  });

  test('a local snapshot read through localSnapshotFiles equals its directory', async () => {
    for (const { snapshots } of chains.values()) {
      for (const snapshot of snapshots)
        assert.deepEqual(await compareWithDirectory(await filesOf(snapshot), snapshot, { chunks: 3 }), [], snapshot);
    }
    // Once as the store itself reads xattrs.
    const first = chains.get(SEEDS[0]!)!.snapshots[0]!;
    assert.deepEqual(await compareWithDirectory(storeFilesOf(first), first, { chunks: 1 }), []);
  });

  test('each snapshot received from its stream equals the original (ctime aside)', async () => {
    for (const [seed, { snapshots, streams }] of chains) {
      const into = path.join(destination.mountPoint, `seed-${seed}`);
      mkdirSync(into);
      for (const [i, snapshot] of snapshots.entries()) {
        execFileSync('btrfs', ['receive', '-e', into], { input: streams[i], stdio: ['pipe', 'ignore', 'pipe'], maxBuffer: 16 << 20 });
        const received = path.join(into, path.basename(snapshot));
        // What send/receive preserves is what the comparator calls equal, atime included (both
        // trees read-only). Not ctime (the receive's time, so not compared), nor the root's
        // mtime when the stream parked orphans there (CompareOptions.rootMtime): allowed here,
        // and nothing else.
        const differences = await compareWithDirectory(await filesOf(received), snapshot, { atime: true, chunks: 2 });
        assert.deepEqual(
          differences.filter((d) => !d.startsWith('(root): mtime ')),
          [],
          `${snapshot} received`,
        );
      }
    }
  });

  test('the comparator reports every planted difference, and only those', async () => {
    // The oldest (smallest) snapshot that has everything to plant on.
    let snapshot = '';
    let plants: Plants | string = '';
    for (const candidate of [...chains.values()].flatMap((c) => c.snapshots)) {
      plants = await plantable(candidate);
      snapshot = candidate;
      if (typeof plants !== 'string') break;
    }
    if (typeof plants === 'string') assert.fail(plants);
    const files = await filesOf(snapshot);
    const cases: [string, string, (wrong: Wrong) => void][] = [
      ['one byte of a big file', plants.bigFile, (w) => (w.flipByteAt = [plants.bigFile, 100_000])],
      ['one byte only in reads at an offset', plants.bigFile, (w) => ((w.flipByteAt = [plants.bigFile, 70_000]), (w.onlyAtOffset = true))],
      ['one byte only through open()', plants.bigFile, (w) => ((w.flipByteAt = [plants.bigFile, 60_000]), (w.onlyOpen = true))],
      ['a name dropped from its directory', plants.dropped, (w) => (w.dropName = plants.dropped)],
      ['a mode', plants.smallFile, (w) => (w.modeOf = [plants.smallFile, 0o4000])],
      ['an mtime', plants.smallFile, (w) => (w.mtimeOf = plants.smallFile)],
      ['an nlink', plants.smallFile, (w) => (w.nlinkOf = plants.smallFile)],
      ['an xattr value', plants.xattr, (w) => (w.xattrOf = plants.xattr)],
      ['a link target', plants.link, (w) => (w.linkOf = plants.link)],
      ['a size', plants.smallFile, (w) => (w.sizeOf = plants.smallFile)],
      ['an owner', plants.link, (w) => (w.uidOf = plants.link)],
      ['an extra name', `${path.dirname(plants.dropped)}/x`, (w) => (w.extraIn = path.dirname(plants.dropped))],
      ['a missing xattr', plants.xattr, (w) => (w.noXattrs = plants.xattr)],
    ];
    const all: Wrong = {};
    for (const [what, rel, plant] of cases) {
      const wrong: Wrong = {};
      plant(wrong);
      if (!what.includes('only')) plant(all);
      const differences = await compareWithDirectory(wrongFiles(files, wrong), snapshot, { chunks: 2 });
      assert.ok(differences.length > 0, `${what} went unnoticed`);
      const where = what === 'a name dropped from its directory' || what === 'an extra name' ? path.dirname(rel) : rel;
      assert.ok(
        differences.every((d) => d.startsWith(`${where === '.' ? '(root)' : where}: `)),
        `${what}: ${differences.join('\n')}`,
      );
    }
    // All at once: each is reported.
    const differences = await compareWithDirectory(wrongFiles(files, all), snapshot, { chunks: 2 });
    for (const rel of [plants.bigFile, plants.smallFile, plants.xattr, plants.link, path.dirname(plants.dropped)]) {
      assert.ok(
        differences.some((d) => d.startsWith(`${rel === '.' ? '(root)' : rel}: `)),
        `${rel} not in ${differences.join('\n')}`,
      );
    }
    // And the cap holds.
    assert.ok((await compareWithDirectory(wrongFiles(files, all), snapshot, { limit: 2 })).length === 2);
  });
});

/** What to get wrong in {@link wrongFiles}. */
interface Wrong {
  flipByteAt?: [string, number];
  onlyAtOffset?: boolean;
  onlyOpen?: boolean;
  dropName?: string;
  modeOf?: [string, number];
  mtimeOf?: string;
  nlinkOf?: string;
  sizeOf?: string;
  xattrOf?: string;
  linkOf?: string;
  uidOf?: string;
  extraIn?: string;
  noXattrs?: string;
}

/** `files`, with the planted mistakes: what a buggy index could answer. */
function wrongFiles(files: SnapshotFiles, wrong: Wrong): SnapshotFiles {
  const flip = (rel: string, offset: number, data: Buffer): Buffer => {
    if (wrong.flipByteAt === undefined || rel !== wrong.flipByteAt[0]) return data;
    // A mistake in mapping offsets: whole reads are right, any read from elsewhere is not.
    if (wrong.onlyAtOffset === true && offset === 0) return data;
    const at = wrong.onlyAtOffset === true ? 0 : wrong.flipByteAt[1] - offset;
    if (at < 0 || at >= data.length) return data;
    const changed = Buffer.from(data);
    changed[at] = changed[at]! ^ 0x01;
    return changed;
  };
  return {
    lstat: async (rel) => {
      const attributes = await files.lstat(rel);
      return {
        ...attributes,
        mode: wrong.modeOf?.[0] === rel ? attributes.mode ^ wrong.modeOf[1] : attributes.mode,
        mtime: wrong.mtimeOf === rel ? attributes.mtime + 1000 : attributes.mtime,
        nlink: wrong.nlinkOf === rel ? attributes.nlink + 1 : attributes.nlink,
        size: wrong.sizeOf === rel ? attributes.size + 1 : attributes.size,
        uid: wrong.uidOf === rel ? attributes.uid + 1 : attributes.uid,
      };
    },
    readdir: async (rel) => [
      ...(await files.readdir(rel)).filter((name) => (rel === '' ? name : `${rel}/${name}`) !== wrong.dropName),
      ...(wrong.extraIn === rel ? ['not really there'] : []),
    ],
    readlink: async (rel) => `${await files.readlink(rel)}${wrong.linkOf === rel ? 'x' : ''}`,
    read: async (rel, offset, length) => {
      const data = await files.read(rel, offset, length);
      return wrong.onlyOpen === true ? data : flip(rel, offset, data);
    },
    xattrs: async (rel) => {
      const xattrs = new Map(await files.xattrs!(rel));
      if (wrong.noXattrs === rel) return new Map();
      if (wrong.xattrOf === rel) {
        const [name, value] = [...xattrs].sort()[0]!;
        xattrs.set(name, Buffer.concat([value, Buffer.from([0])]));
      }
      return xattrs;
    },
    open: async (rel) => {
      const open = await files.open!(rel);
      return {
        read: async (buffer, length, position) => {
          const count = await open.read(buffer, length, position);
          flip(rel, position, buffer.subarray(0, count)).copy(buffer);
          return count;
        },
        close: () => open.close(),
      };
    },
  };
}

interface Plants {
  bigFile: string;
  smallFile: string;
  dropped: string;
  xattr: string;
  link: string;
}

/** Entries of a snapshot to plant mistakes on, or what it lacks. */
async function plantable(root: string): Promise<Plants | string> {
  const entries: { rel: string; size: number; kind: string }[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : path.join(root, rel)).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(root, child));
      entries.push({
        rel: child,
        size: st.size,
        kind: st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'other',
      });
      if (st.isDirectory()) walk(child);
    }
  };
  walk('');
  const files = entries.filter((e) => e.kind === 'file');
  const withXattrs = await treeXattrReader(root);
  let xattr: string | undefined;
  for (const entry of entries.filter((e) => e.kind === 'file' || e.kind === 'dir')) {
    if ((await withXattrs(path.join(root, entry.rel))).size > 0) {
      xattr = entry.rel;
      break;
    }
  }
  const bigFile = files.find((e) => e.size > 200_000)?.rel;
  const smallFile = files.find((e) => e.rel !== bigFile && e.size > 0)?.rel;
  const link = entries.find((e) => e.kind === 'link')?.rel;
  const planted = [bigFile, smallFile, link, xattr];
  // A nested entry that holds none of the others (dropping a directory would hide what is below it).
  const dropped = entries.find((e) => e.kind !== 'dir' && e.rel.includes('/') && !planted.includes(e.rel))?.rel;
  if (bigFile === undefined || smallFile === undefined || link === undefined || xattr === undefined || dropped === undefined) {
    return `${root} lacks one of: ${JSON.stringify({ bigFile, smallFile, link, xattr, dropped })}`;
  }
  return { bigFile, smallFile, dropped, xattr, link };
}
