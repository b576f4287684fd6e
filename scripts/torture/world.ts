/**
 * The campaign's world: two loop-device pools, a loopback S3 server behind a fault proxy, an
 * sshd when an SSH path runs, and a chain of four snapshots in the source; and the checks of
 * what a destination holds. Imports the test support, which reads BUTTERSINK_TEST_ROOT when
 * first loaded: campaign.ts imports this module only after pointing that at its work directory.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import path from 'node:path';
import { createPool, sh, type BtrfsPool } from '../../test/support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../../test/support/fixtures.js';
import { FaultProxy, startS3Server, type S3Server } from '../../test/support/s3-server.js';
import { startSshd, type TestSshd } from '../../test/support/sshd.js';
import { treeDigest } from '../../test/support/tree-digest.js';
import type { Teardown } from './teardown.js';

export interface World {
  readonly work: string;
  readonly src: BtrfsPool;
  readonly dst: BtrfsPool;
  readonly server: S3Server;
  /** A client of the server (not through the proxy), bucket `torture`. */
  readonly s3: S3Client;
  readonly proxy: FaultProxy;
  readonly sshd: TestSshd | undefined;
  /** For the CLI: the S3 server, the sshd's client side, a cache in the work directory. */
  readonly baseEnv: NodeJS.ProcessEnv;
  /** baseEnv with S3 through the fault proxy. */
  readonly viaProxy: NodeJS.ProcessEnv;
  /** The source's directory of snapshots, and their names, oldest first. */
  readonly snaps: string;
  readonly names: readonly string[];
  /** The source pool's subvolume list (a change there means the source was touched). */
  sourceState(): string;
  /** Subvolumes in a destination directory: complete-looking ones by name, and partials. */
  btrfsState(dir: string): { complete: string[]; partials: string[] };
  /** Every complete-looking snapshot in `dir` equals its source (names must be source names). */
  btrfsVerify(dir: string, expectAll: boolean): string | null;
  /** What the mount shows of `name` at `mountPath` equals the source snapshot (null) or not. */
  viewVerify(mountPath: string, name: string): string | null;
}

export async function setUpWorld(work: string, withSshd: boolean, teardown: Teardown): Promise<World> {
  const src = (teardown.src = createPool(1024));
  const dst = (teardown.dst = createPool(1024));
  // Deleted subvolumes are cleaned at the next commit (30 s by default): commit every second, so
  // that removing a run's destination (subvolume sync) does not wait half a minute each time.
  sh(`mount -o remount,commit=1 ${dst.mountPoint}`);
  const server = (teardown.server = await startS3Server(['torture']));
  const s3 = (teardown.s3 = server.client());
  const proxy = (teardown.proxy = await new FaultProxy(server.endpoint).start());
  const sshd = (teardown.sshd = withSshd ? await startSshd() : undefined);
  const baseEnv: NodeJS.ProcessEnv = { ...sshd?.env, ...server.env, BUTTERSINK_CACHE_DIR: path.join(work, 'cache') };
  const viaProxy: NodeJS.ProcessEnv = { ...baseEnv, AWS_ENDPOINT_URL_S3: proxy.endpoint };

  // A chain of four snapshots, ~60 MiB first, then a few MiB of changes each: long enough for a
  // kill to land anywhere in a transfer, short enough for dozens of runs.
  const data = makeRichSubvolume(src.mountPoint);
  // An xattr on the snapshots' root too: the mount shows a snapshot's root from its store's directory.
  sh(`setfattr -n user.root -v 'snapshot root' '${data}'`);
  sh('head -c 60000000 /dev/urandom > data/bulk.bin', src.mountPoint);
  const snaps = `${src.mountPoint}/snaps`;
  const names = ['t1', 't2', 't3', 't4'];
  snapshot(data, `${snaps}/t1`);
  for (let i = 2; i <= names.length; i++) {
    changeRichSubvolume(data, i);
    sh(`dd if=/dev/urandom of=data/bulk.bin bs=1M count=4 seek=${i * 7} conv=notrunc status=none`, src.mountPoint);
    snapshot(data, `${snaps}/t${i}`);
  }
  const sourceDigest = new Map(names.map((n) => [n, treeDigest(`${snaps}/${n}`).join('\n')]));
  /**
   * A snapshot's digest as a FUSE mount can show it: times in whole milliseconds (fuse-native
   * passes milliseconds) and no hard-link identity (the mount numbers inodes per path).
   */
  const viewDigest = (root: string): string =>
    treeDigest(root)
      .map((l) => l.replace(/ (\d+)\d{6}( [0-9a-f]{64})?( hardlink-of .*)?$/, (_m, ms: string, hash = '') => ` ${ms}${hash}`))
      .join('\n');
  const sourceView = new Map(names.map((n) => [n, viewDigest(`${snaps}/${n}`)]));

  const btrfsState = (dir: string): { complete: string[]; partials: string[] } => {
    const rel = path.relative(dst.mountPoint, dir);
    const lines = sh(`btrfs subvolume list ${dst.mountPoint}`).split('\n').filter(Boolean);
    const paths = lines
      .map((l) => l.replace(/^.* path /, ''))
      .filter((p) => p.startsWith(`${rel}/`))
      .map((p) => p.slice(rel.length + 1));
    return {
      complete: paths.filter((p) => !p.includes('.buttersink-partial.')),
      partials: paths.filter((p) => p.includes('.buttersink-partial.')),
    };
  };

  return {
    work,
    src,
    dst,
    server,
    s3,
    proxy,
    sshd,
    baseEnv,
    viaProxy,
    snaps,
    names,
    sourceState: () => sh(`btrfs subvolume list -u ${src.mountPoint}`),
    btrfsState,
    btrfsVerify(dir, expectAll) {
      const { complete } = btrfsState(dir);
      for (const name of complete) {
        const ro = sh(`btrfs property get -ts '${dir}/${name}' ro`).trim();
        if (ro !== 'ro=true') return `${name} is visible but not read-only`;
        if (treeDigest(`${dir}/${name}`).join('\n') !== sourceDigest.get(name)) return `${name} differs from its source`;
      }
      if (expectAll && complete.sort().join() !== names.join()) return `has ${complete.join(',')} instead of ${names.join(',')}`;
      return null;
    },
    viewVerify(mountPath, name) {
      const seen = viewDigest(mountPath).split('\n');
      const want = sourceView.get(name)!.split('\n');
      const diff = seen.filter((l) => !want.includes(l)).concat(want.filter((l) => !seen.includes(l)).map((l) => `missing: ${l}`));
      return diff.length === 0 ? null : `${mountPath} through the mount differs from ${name}: ${diff.slice(0, 3).join(' / ')}`;
    },
  };
}
