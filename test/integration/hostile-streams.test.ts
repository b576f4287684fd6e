/**
 * Hostile send streams, written from the attacker's side, against every way buttersink
 * receives a stream from elsewhere: `BtrfsStore.receive` in process, `buttersink server`
 * (the SSH store's remote end) speaking its protocol on pipes, and the CLI restoring an S3
 * bucket in the original ButterSink layout.
 *
 * `btrfs receive` runs as root and follows `../` components and symbolic links in stream
 * paths (FACTS: "btrfs receive and untrusted streams"). Every case aims its escape at canaries
 * outside the pool (a file, a directory to create files in, an empty directory to remove) or
 * at files in the pool outside the receiving directory, and checks, before and after:
 * - the canaries, byte for byte with their metadata and times;
 * - a listing of the whole pool (every path, type, mode, owner, size, content hash, link
 *   target, xattrs) and its subvolumes (hidden partials included);
 * - that the receiver refused (TransferError / error kind `transfer` / exit 5) in one line.
 * A case lists every broken rule in its failure message; the run's verdicts go to the file
 * named by HOSTILE_REPORT (a markdown table), when set.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TransferError } from '../../src/model/errors.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { toWireSnapshot } from '../../src/remote/wire-snapshot.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cliInBackground } from '../support/run-cli.js';
import { s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import {
  ATTRIBUTE_NUMBERS,
  cmd,
  corruptCrc,
  decodeStream,
  encodeStream,
  fullStream,
  incrementalStream,
  newUuid,
  rawCommand,
  type StreamCommand,
  type StreamOptions,
} from '../support/send-stream-builder.js';
import { receiveThroughServer } from '../support/server-pipe.js';
import { describeSubvolume, describeTree, isAbout, lineDiff, listSubvolumes, sha256 } from '../support/world-state.js';

const suite = (() => {
  const btrfs = btrfsSuite();
  return btrfs.skip ? btrfs : s3Suite();
})();

/** The name every hostile stream's request asks for. */
const NAME = 'hostile';
const CTRANSID = 7;
const BUCKET = 'hostile';
const OWNED = 'OWNED BY A HOSTILE STREAM\n';
const S_IFCHR = 0o020000;
/** Bytes of the secret that lives in the pool outside the receiving directory. */
const SECRET_BYTES = 65536;

type ReceiverKind = 'local' | 'server' | 's3';
const RECEIVERS: readonly { kind: ReceiverKind; label: string }[] = [
  { kind: 'local', label: 'a local receive (BtrfsStore.receive)' },
  { kind: 'server', label: "'buttersink server --mode a' on pipes" },
  { kind: 's3', label: "an S3 restore ('buttersink sync s3://... DIR/')" },
];

// ---------------------------------------------------------------------------------------
// The world a case can aim at

/** Canaries outside the pool, recreated before every case. */
interface Canaries {
  readonly root: string;
  /** A file a stream tries to overwrite, truncate, chmod, unlink... (has xattr user.canary). */
  readonly file: string;
  /** A directory a stream tries to create entries in. */
  readonly dir: string;
  /** An empty directory a stream tries to remove. */
  readonly emptyDir: string;
}

/** Subvolumes in the pool outside every receiving directory, made once per pool. */
interface OutsideSubvolumes {
  /** A read-write subvolume holding `secret.bin`. */
  readonly rw: { readonly path: string; readonly uuid: string; readonly generation: number };
  /** A read-only snapshot of it. */
  readonly ro: { readonly path: string; readonly uuid: string; readonly ctransid: number };
  /** A read-only received subvolume holding the same secret (clone sources are looked up by received UUID). */
  readonly received: { readonly path: string; readonly receivedUuid: string; readonly ctransid: number };
  readonly secretHash: string;
}

/** A legitimate read-only snapshot `parent` in the receiving directory. */
interface LegitParent {
  readonly snapshot: Snapshot;
  readonly ctransid: number;
  /** Its full send stream (what an S3 bucket would hold for it). */
  readonly fullStream: Buffer;
}

interface CaseWorld {
  /** The receiving directory (DIR). */
  readonly dir: string;
  /** The path, as a stream names it (relative to the new subvolume's root), that reaches `target`. */
  readonly escape: (target: string) => string;
  readonly canary: Canaries;
  /** A 4 KiB file and a directory in the pool, outside DIR. */
  readonly victims: { readonly file: string; readonly dir: string };
  readonly outside: OutsideSubvolumes;
  /** Present when the case asked for one. */
  readonly parent: LegitParent | undefined;
  /** A fresh UUID for the stream. */
  readonly uuid: string;
}

interface Crafted {
  readonly stream: Buffer;
  /** The UUID the request names: the stream's own, unless the case lies. */
  readonly uuid: string;
  /** The request names the case's legitimate parent (an incremental), else it claims a full stream. */
  readonly claimsParent: boolean;
}

type Expectation =
  /** Refused, and nothing anywhere changed. */
  | 'refused'
  /** Accepted as `NAME` in DIR, and nothing outside that new subvolume changed. */
  | 'contained'
  /** Either of the above: buttersink may refuse it or make it harmless. */
  | 'refused-or-contained';

interface HostileCase {
  readonly name: string;
  readonly expect?: Expectation;
  /**
   * Makes a read-only `parent` snapshot in DIR first: `with-symlinks` holds `lnk` -> the
   * canary file and `dlnk` -> the canary directory; `received` is a received one (clone
   * commands find their sources by received UUID only).
   */
  readonly parent?: 'plain' | 'with-symlinks' | 'received';
  readonly craft: (w: CaseWorld) => Crafted;
  /** For an accepted stream: problems with what the new subvolume holds. */
  readonly checkReceived?: (subvolume: string) => string[];
  /** Extra rules for a refusal's message. */
  readonly checkMessage?: (message: string) => string[];
}

const full = (w: CaseWorld, commands: readonly StreamCommand[], options?: StreamOptions): Crafted => ({
  stream: fullStream(NAME, w.uuid, CTRANSID, commands, options),
  uuid: w.uuid,
  claimsParent: false,
});
/** The UUID a stream names the case's parent by: its received UUID when it has one. */
const parentUuid = (w: CaseWorld): string => w.parent!.snapshot.receivedUuid ?? w.parent!.snapshot.uuid;
const onParent = (w: CaseWorld, commands: readonly StreamCommand[]): Crafted => ({
  stream: incrementalStream(NAME, w.uuid, CTRANSID, parentUuid(w), w.parent!.ctransid, commands),
  uuid: w.uuid,
  claimsParent: true,
});
const streamOf = (w: CaseWorld, commands: readonly StreamCommand[], claimsParent = false): Crafted => ({
  stream: encodeStream(commands),
  uuid: w.uuid,
  claimsParent,
});
const epoch = { sec: 0, nsec: 0 };

// ---------------------------------------------------------------------------------------
// The cases

const escapes: HostileCase[] = [
  {
    name: 'mkfile climbing out with ../ is refused and creates nothing outside the pool',
    craft: (w) => full(w, [cmd.mkfile(w.escape(`${w.canary.dir}/owned-file`))]),
  },
  { name: 'mkdir climbing out with ../ is refused', craft: (w) => full(w, [cmd.mkdir(w.escape(`${w.canary.dir}/owned-dir`))]) },
  {
    name: 'mknod (a character device) climbing out with ../ is refused',
    craft: (w) => full(w, [cmd.mknod(w.escape(`${w.canary.dir}/owned-node`), S_IFCHR | 0o666, 0x103)]),
  },
  { name: 'mkfifo climbing out with ../ is refused', craft: (w) => full(w, [cmd.mkfifo(w.escape(`${w.canary.dir}/owned-fifo`))]) },
  { name: 'mksock climbing out with ../ is refused', craft: (w) => full(w, [cmd.mksock(w.escape(`${w.canary.dir}/owned-sock`))]) },
  {
    name: 'symlink whose own path climbs out with ../ is refused',
    craft: (w) => full(w, [cmd.symlink(w.escape(`${w.canary.dir}/owned-link`), '/etc/shadow')]),
  },
  {
    name: 'rename with ../ in its source and target is refused and the canary file stays where it is',
    craft: (w) => full(w, [cmd.rename(w.escape(w.canary.file), w.escape(`${w.canary.dir}/moved`))]),
  },
  { name: 'rename with ../ in its source only is refused', craft: (w) => full(w, [cmd.rename(w.escape(w.canary.file), 'stolen')]) },
  {
    name: 'rename with ../ in its target only is refused',
    craft: (w) => full(w, [cmd.mkfile('x'), cmd.rename('x', w.escape(`${w.canary.dir}/dropped`))]),
  },
  {
    name: 'link with ../ in its new name and its target is refused and makes no hard link outside',
    craft: (w) => full(w, [cmd.link(w.escape(`${w.canary.dir}/hardlink`), w.escape(w.canary.file))]),
  },
  { name: 'link with ../ in its target only is refused', craft: (w) => full(w, [cmd.link('stolen', w.escape(w.canary.file))]) },
  {
    name: 'link with ../ in its new name only is refused',
    craft: (w) => full(w, [cmd.mkfile('x'), cmd.link(w.escape(`${w.canary.dir}/hardlink`), 'x')]),
  },
  {
    name: 'unlink climbing out with ../ is refused and the canary file survives',
    craft: (w) => full(w, [cmd.unlink(w.escape(w.canary.file))]),
  },
  {
    name: 'rmdir climbing out with ../ is refused and the canary directory survives',
    craft: (w) => full(w, [cmd.rmdir(w.escape(w.canary.emptyDir))]),
  },
  {
    name: 'set_xattr climbing out with ../ is refused',
    craft: (w) => full(w, [cmd.setXattr(w.escape(w.canary.file), 'user.owned', 'yes')]),
  },
  {
    name: 'remove_xattr climbing out with ../ is refused',
    craft: (w) => full(w, [cmd.removeXattr(w.escape(w.canary.file), 'user.canary')]),
  },
  {
    name: 'write climbing out with ../ is refused and the canary file keeps its bytes',
    craft: (w) => full(w, [cmd.write(w.escape(w.canary.file), 0, OWNED)]),
  },
  {
    name: 'clone into a path climbing out with ../ is refused and the file in the pool outside DIR keeps its bytes',
    craft: (w) =>
      full(w, [
        cmd.mkfile('src'),
        cmd.write('src', 0, Buffer.alloc(4096, 'X')),
        cmd.clone(w.escape(w.victims.file), 0, 4096, w.uuid, CTRANSID, 'src', 0),
      ]),
  },
  { name: 'truncate climbing out with ../ is refused', craft: (w) => full(w, [cmd.truncate(w.escape(w.canary.file), 0)]) },
  {
    name: 'chmod climbing out with ../ is refused and the canary keeps its mode',
    craft: (w) => full(w, [cmd.chmod(w.escape(w.canary.file), 0o4777)]),
  },
  {
    name: 'chown climbing out with ../ is refused and the canary keeps its owner',
    craft: (w) => full(w, [cmd.chown(w.escape(w.canary.file), 4242, 4242)]),
  },
  {
    name: 'utimes climbing out with ../ is refused and the canary keeps its times',
    craft: (w) => full(w, [cmd.utimes(w.escape(w.canary.file), epoch, epoch, epoch)]),
  },
  {
    name: 'fallocate (v2) climbing out with ../ is refused',
    craft: (w) => full(w, [cmd.fallocate(w.escape(w.canary.file), 0, 0, 1 << 20)], { version: 2 }),
  },
  {
    name: 'encoded_write (v2, zlib) climbing out with ../ is refused',
    craft: (w) => {
      const plain = Buffer.from(OWNED);
      const extent = { unencodedFileLen: plain.length, unencodedLen: plain.length, unencodedOffset: 0, compression: 1 };
      return full(w, [cmd.encodedWrite(w.escape(w.canary.file), 0, extent, deflateSync(plain))], { version: 2 });
    },
  },
];

const malformedPaths: HostileCase[] = [
  { name: 'an absolute path in mkfile is refused', craft: (w) => full(w, [cmd.mkfile(`${w.canary.dir}/absolute`)]) },
  { name: 'an absolute path in write is refused', craft: (w) => full(w, [cmd.write(w.canary.file, 0, OWNED)]) },
  { name: 'a . component in a path is refused', craft: (w) => full(w, [cmd.mkdir('d'), cmd.mkfile('d/./x')]) },
  { name: 'an empty component in a path is refused', craft: (w) => full(w, [cmd.mkdir('d'), cmd.mkfile('d//x')]) },
  { name: 'a .. component that stays inside the subvolume is refused too', craft: (w) => full(w, [cmd.mkdir('d'), cmd.mkfile('d/../x')]) },
  {
    // btrfs receive stops at the NUL (C strings); what follows it still aims at a canary only.
    name: 'a NUL byte in a path is refused',
    craft: (w) => full(w, [cmd.mkfile(Buffer.concat([Buffer.from('x\0'), Buffer.from(w.escape(`${w.canary.dir}/after-nul`))]))]),
  },
  { name: 'a name longer than 255 bytes is refused', craft: (w) => full(w, [cmd.mkfile('n'.repeat(256))]) },
  { name: 'a path longer than 4095 bytes is refused', craft: (w) => full(w, [cmd.mkfile(`${'d/'.repeat(2048)}f`)]) },
  {
    name: 'a refusal stays one line without control characters when the path holds a newline and an escape sequence',
    craft: (w) => full(w, [cmd.write(`${w.escape(w.canary.file)}\n\u001b[31mred`, 0, OWNED)]),
    checkMessage: (message) =>
      /[\u0000-\u0008\u000a-\u001f\u007f]/.test(message) ? [`the message holds control characters: ${JSON.stringify(message)}`] : [],
  },
];

const symlinks: HostileCase[] = [
  {
    name: 'a write through a symlink the stream created is refused and the canary outside the pool is unchanged',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.file), cmd.write('lnk', 0, OWNED)]),
  },
  {
    name: 'a write to a symlink that points inside the subvolume is refused too',
    craft: (w) => full(w, [cmd.mkfile('file'), cmd.symlink('lnk', 'file'), cmd.write('lnk', 0, OWNED)]),
  },
  {
    name: 'a truncate through a symlink the stream created is refused',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.file), cmd.truncate('lnk', 0)]),
  },
  {
    name: 'a chmod through a symlink the stream created is refused',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.file), cmd.chmod('lnk', 0o4777)]),
  },
  {
    name: 'a fallocate (v2) through a symlink the stream created is refused',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.file), cmd.fallocate('lnk', 0, 0, 1 << 20)], { version: 2 }),
  },
  {
    name: 'a directory symlink the stream created is refused as a path prefix (mkfile lnk/x)',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.dir), cmd.mkfile('lnk/owned')]),
  },
  {
    name: 'a relative directory symlink climbing out is refused as a path prefix',
    craft: (w) => full(w, [cmd.symlink('lnk', w.escape(w.canary.dir)), cmd.mkfile('lnk/owned')]),
  },
  {
    name: 'a directory symlink is still refused as a prefix after it was renamed',
    craft: (w) => full(w, [cmd.symlink('a', w.canary.dir), cmd.rename('a', 'b'), cmd.mkfile('b/owned')]),
  },
  {
    name: 'a directory symlink is still refused as a prefix after its directory was renamed',
    craft: (w) => full(w, [cmd.mkdir('d'), cmd.symlink('d/lnk', w.canary.dir), cmd.rename('d', 'e'), cmd.mkfile('e/lnk/owned')]),
  },
  {
    name: 'a hard link of a directory symlink is refused as a path prefix',
    craft: (w) => full(w, [cmd.symlink('lnk', w.canary.dir), cmd.link('hl', 'lnk'), cmd.mkfile('hl/owned')]),
  },
  {
    name: 'a write through a symlink inherited from the parent snapshot is refused',
    parent: 'with-symlinks',
    craft: (w) => onParent(w, [cmd.write('lnk', 0, OWNED)]),
  },
  {
    name: 'a directory symlink inherited from the parent snapshot is refused as a path prefix',
    parent: 'with-symlinks',
    craft: (w) => onParent(w, [cmd.mkfile('dlnk/owned')]),
  },
  {
    name: 'an inherited directory symlink is still refused as a prefix after the stream renamed it',
    parent: 'with-symlinks',
    craft: (w) => onParent(w, [cmd.rename('dlnk', 'moved'), cmd.mkfile('moved/owned')]),
  },
];

const foreignSources: HostileCase[] = [
  {
    name: 'a snapshot of a read-only subvolume outside DIR (right ctransid) is refused and copies nothing in',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, w.outside.ro.uuid, w.outside.ro.ctransid), cmd.end()]),
  },
  {
    name: 'a snapshot of a read-only subvolume outside DIR (wrong ctransid) is refused',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, w.outside.ro.uuid, w.outside.ro.ctransid + 1000), cmd.end()]),
  },
  {
    name: 'a snapshot of a read-write subvolume outside DIR (its generation as ctransid) is refused',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, w.outside.rw.uuid, w.outside.rw.generation), cmd.end()]),
  },
  {
    name: 'a snapshot of a read-write subvolume outside DIR (wrong ctransid) is refused',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, w.outside.rw.uuid, 1), cmd.end()]),
  },
  {
    name: 'a snapshot of another parent than the one the request names is refused',
    parent: 'plain',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, w.outside.ro.uuid, w.outside.ro.ctransid), cmd.end()], true),
  },
  {
    name: 'a snapshot of a parent in DIR is refused when the request claims a full stream',
    parent: 'plain',
    craft: (w) => streamOf(w, [cmd.snapshot(NAME, w.uuid, CTRANSID, parentUuid(w), w.parent!.ctransid), cmd.end()]),
  },
  {
    name: 'a clone from a read-only received subvolume outside DIR is refused and copies nothing in',
    craft: (w) =>
      full(w, [
        cmd.mkfile('stolen'),
        cmd.clone('stolen', 0, SECRET_BYTES, w.outside.received.receivedUuid, w.outside.received.ctransid, 'secret.bin', 0),
      ]),
  },
  {
    name: 'a clone whose clone path climbs out with ../ is refused and copies nothing in',
    craft: (w) =>
      full(w, [
        cmd.mkfile('stolen'),
        cmd.clone('stolen', 0, SECRET_BYTES, w.uuid, CTRANSID, w.escape(`${w.outside.rw.path}/secret.bin`), 0),
      ]),
  },
  {
    // The source is legitimate (a received snapshot in DIR), its clone path is not. btrfs
    // receive opens it relative to the mount's root, so even `-C` would not contain it.
    name: 'a clone from a snapshot in DIR whose clone path climbs out with ../ is refused and copies nothing in',
    parent: 'received',
    craft: (w) =>
      full(w, [
        cmd.mkfile('stolen'),
        cmd.clone('stolen', 0, SECRET_BYTES, parentUuid(w), w.parent!.ctransid, w.escape(`${w.outside.rw.path}/secret.bin`), 0),
      ]),
  },
];

const structure: HostileCase[] = [
  {
    name: 'a second subvol command in the stream is refused and makes no second subvolume',
    craft: (w) =>
      streamOf(w, [
        cmd.subvol(NAME, w.uuid, CTRANSID),
        cmd.mkfile('a'),
        cmd.subvol('second', newUuid(), CTRANSID),
        cmd.mkfile('b'),
        cmd.end(),
      ]),
  },
  {
    name: 'a second stream after END is refused and makes no second subvolume',
    craft: (w) => ({
      ...full(w, [cmd.mkfile('a')]),
      stream: Buffer.concat([full(w, [cmd.mkfile('a')]).stream, fullStream('second', newUuid(), CTRANSID, [cmd.mkfile('b')])]),
    }),
  },
  {
    name: 'bytes after END are refused',
    craft: (w) => ({ ...full(w, []), stream: Buffer.concat([full(w, []).stream, Buffer.from('trailing garbage')]) }),
  },
  { name: 'a stream without END is refused', craft: (w) => full(w, [cmd.mkfile('a')], { withoutEnd: true }) },
  {
    name: 'a stream that does not start with subvol or snapshot is refused',
    craft: (w) => streamOf(w, [cmd.mkfile('x'), cmd.subvol(NAME, w.uuid, CTRANSID), cmd.end()]),
  },
  { name: 'an unknown command number is refused', craft: (w) => full(w, [rawCommand(99, { path: w.escape(`${w.canary.dir}/unknown`) })]) },
  { name: 'a bad CRC in a later command is refused', craft: (w) => full(w, [cmd.mkfile('f'), corruptCrc(cmd.write('f', 0, 'x'))]) },
  {
    name: 'a bad CRC in the first (subvol) command is refused, not recomputed by the rename',
    craft: (w) => streamOf(w, [corruptCrc(cmd.subvol(NAME, w.uuid, CTRANSID)), cmd.mkfile('f'), cmd.end()]),
  },
  {
    name: 'a stream whose UUID differs from the requested snapshot is refused',
    craft: (w) => ({ ...full(w, [cmd.mkfile('f')]), uuid: newUuid() }),
  },
];

const names: HostileCase[] = [
  {
    name: 'a newline and control characters in the subvol name never reach the pool',
    expect: 'refused-or-contained',
    craft: (w) => ({ stream: fullStream('evil\nname\u001b[2J\t', w.uuid, CTRANSID, [cmd.mkfile('f')]), uuid: w.uuid, claimsParent: false }),
  },
  {
    name: 'a subvol name climbing out with ../ never creates a subvolume outside DIR',
    expect: 'refused-or-contained',
    craft: (w) => ({
      stream: fullStream(w.escape(`${w.victims.dir}/escaped`), w.uuid, CTRANSID, [cmd.mkfile('f')]),
      uuid: w.uuid,
      claimsParent: false,
    }),
  },
  {
    // Real snapshots hold such names (test/support/fixtures.ts makes one): refusing them would
    // make those backups impossible, so they must arrive intact, inside the subvolume.
    name: 'a newline and control characters in file names are received intact inside the subvolume',
    expect: 'contained',
    craft: (w) =>
      full(w, [
        cmd.mkfile('new\nline'),
        cmd.write('new\nline', 0, 'x'),
        cmd.mkdir('tab\tdir\u001b'),
        cmd.mkfile('tab\tdir\u001b/bell\u0007'),
      ]),
    checkReceived: (subvolume) => {
      const problems: string[] = [];
      if (readFileSync(`${subvolume}/new\nline`, 'utf8') !== 'x') problems.push('new\\nline does not hold its byte');
      if (!existsSync(`${subvolume}/tab\tdir\u001b/bell\u0007`)) problems.push('tab\\tdir\\e/bell\\a is missing');
      return problems;
    },
  },
];

const CASES: readonly HostileCase[] = [...escapes, ...malformedPaths, ...symlinks, ...foreignSources, ...structure, ...names];

// ---------------------------------------------------------------------------------------
// One pool per receiver kind

interface Bench {
  readonly kind: ReceiverKind;
  readonly pool: BtrfsPool;
  readonly mount: string;
  readonly canaryRoot: string;
  readonly outside: OutsideSubvolumes;
  readonly cacheDir: string;
  nextCase: number;
}

function makeBench(kind: ReceiverKind): Bench {
  const pool = createPool(256);
  const mount = pool.mountPoint;
  const poolDir = path.dirname(mount);
  const cacheDir = path.join(poolDir, 'cache');
  mkdirSync(cacheDir);
  return { kind, pool, mount, canaryRoot: path.join(poolDir, 'outside'), outside: makeOutsideSubvolumes(mount), cacheDir, nextCase: 0 };
}

function makeOutsideSubvolumes(mount: string): OutsideSubvolumes {
  sh(
    `mkdir outside && btrfs -q subvolume create outside/rw && head -c ${SECRET_BYTES} /dev/urandom > outside/rw/secret.bin &&
     btrfs -q subvolume snapshot -r outside/rw outside/ro && sync`,
    mount,
  );
  const secret = readFileSync(`${mount}/outside/rw/secret.bin`);
  // A received subvolume: clone commands find their source by received UUID.
  const receivedUuid = newUuid();
  const half = SECRET_BYTES / 2;
  const stream = fullStream('received', receivedUuid, 5, [
    cmd.mkfile('secret.bin'),
    cmd.write('secret.bin', 0, secret.subarray(0, half)),
    cmd.write('secret.bin', half, secret.subarray(half)),
  ]);
  execFileSync('btrfs', ['receive', '-q', `${mount}/outside`], { input: stream, stdio: ['pipe', 'ignore', 'pipe'] });
  return {
    rw: {
      path: `${mount}/outside/rw`,
      uuid: subvolumeShow(`${mount}/outside/rw`).uuid,
      generation: subvolumeShow(`${mount}/outside/rw`).generation,
    },
    ro: { path: `${mount}/outside/ro`, uuid: subvolumeShow(`${mount}/outside/ro`).uuid, ctransid: sentCtransid(`${mount}/outside/ro`) },
    received: { path: `${mount}/outside/received`, receivedUuid, ctransid: 5 },
    secretHash: sha256(secret),
  };
}

function subvolumeShow(subvolume: string): { uuid: string; generation: number } {
  const out = execFileSync('btrfs', ['subvolume', 'show', subvolume], { encoding: 'utf8' });
  return { uuid: /^\s*UUID:\s+(\S+)/m.exec(out)![1]!, generation: Number(/^\s*Generation:\s+(\d+)/m.exec(out)![1]) };
}

/** The ctransid `btrfs send` puts in a read-only subvolume's stream (what an honest stream names). */
function sentCtransid(subvolume: string): number {
  const head = decodeStream(execFileSync('btrfs', ['send', '--no-data', '-q', subvolume], { maxBuffer: 64 << 20 })).commands[0]!;
  return Number(head.attributes.get(ATTRIBUTE_NUMBERS.ctransid)!.readBigUInt64LE());
}

/** Fresh canaries outside the pool, with fixed times so that any touch shows. */
function resetCanaries(root: string): Canaries {
  rmSync(root, { recursive: true, force: true });
  const canary: Canaries = { root, file: `${root}/victim.txt`, dir: `${root}/canary-dir`, emptyDir: `${root}/empty-dir` };
  mkdirSync(canary.dir, { recursive: true });
  mkdirSync(canary.emptyDir);
  writeFileSync(`${canary.dir}/keep.txt`, 'keep me\n');
  writeFileSync(canary.file, 'canary: must stay exactly like this\n');
  chmodSync(canary.file, 0o644);
  chownSync(canary.file, 0, 0);
  execFileSync('setfattr', ['-n', 'user.canary', '-v', 'keep', canary.file]);
  const past = new Date('2001-02-03T04:05:06Z');
  for (const p of [canary.file, `${canary.dir}/keep.txt`, canary.dir, canary.emptyDir, root]) utimesSync(p, past, past);
  return canary;
}

/** A case's own corner of the pool: DIR, and victims outside it. */
function prepareCase(bench: Bench, c: Pick<HostileCase, 'parent'>): CaseWorld {
  const caseRoot = path.join(bench.mount, `case-${++bench.nextCase}`);
  const dir = path.join(caseRoot, 'dir');
  const victims = { file: `${caseRoot}/victims/victim.bin`, dir: `${caseRoot}/victims` };
  mkdirSync(`${dir}/.buttersink`, { recursive: true });
  writeFileSync(`${dir}/.buttersink/lock`, ''); // the lock file every receiver takes, made ahead so listings agree
  mkdirSync(victims.dir);
  writeFileSync(victims.file, Buffer.alloc(4096, 'v'));
  const canary = resetCanaries(bench.canaryRoot);
  let parent: LegitParent | undefined;
  if (c.parent === 'received') {
    const receivedUuid = newUuid();
    const stream = fullStream('parent', receivedUuid, 9, [cmd.mkfile('file'), cmd.write('file', 0, 'parent\n')]);
    execFileSync('btrfs', ['receive', '-q', dir], { input: stream, stdio: ['pipe', 'ignore', 'pipe'] });
    const show = subvolumeShow(`${dir}/parent`);
    parent = {
      snapshot: {
        name: 'parent',
        uuid: show.uuid,
        parentUuid: null,
        receivedUuid,
        generation: show.generation,
        creationGeneration: show.generation,
        createdAt: null,
      },
      ctransid: 9,
      fullStream: execFileSync('btrfs', ['send', '-q', `${dir}/parent`], { maxBuffer: 64 << 20 }),
    };
  } else if (c.parent !== undefined) {
    const links = c.parent === 'with-symlinks' ? `&& ln -s '${canary.file}' parent-src/lnk && ln -s '${canary.dir}' parent-src/dlnk` : '';
    sh(
      `btrfs -q subvolume create parent-src && echo parent > parent-src/file ${links} && btrfs -q subvolume snapshot -r parent-src dir/parent`,
      caseRoot,
    );
    const show = subvolumeShow(`${dir}/parent`);
    parent = {
      snapshot: {
        name: 'parent',
        uuid: show.uuid,
        parentUuid: null,
        receivedUuid: null,
        generation: show.generation,
        creationGeneration: show.generation,
        createdAt: null,
      },
      ctransid: sentCtransid(`${dir}/parent`),
      fullStream: execFileSync('btrfs', ['send', '-q', `${dir}/parent`], { maxBuffer: 64 << 20 }),
    };
  }
  return {
    dir,
    escape: (target) => `../${path.relative(dir, target)}`,
    canary,
    victims,
    outside: bench.outside,
    parent,
    uuid: newUuid(),
  };
}

// ---------------------------------------------------------------------------------------
// Pictures and verdicts

interface Picture {
  readonly pool: string[];
  readonly subvolumes: string[];
  readonly canary: string[];
}

function picture(bench: Bench): Picture {
  return {
    pool: describeTree(bench.mount, { directoryTimes: false }),
    subvolumes: listSubvolumes(bench.mount).map(describeSubvolume),
    canary: describeTree(bench.canaryRoot, { directoryTimes: true }),
  };
}

interface Outcome {
  readonly accepted: boolean;
  /** The refusal's message, when refused the expected way. */
  readonly message?: string;
  /** A failure of the wrong kind (not a transfer refusal). */
  readonly wrongFailure?: string;
}

type Verdict = 'refused' | 'contained' | 'escaped' | 'accepted' | 'error';

interface Judgement {
  readonly verdict: Verdict;
  readonly detail: string;
  readonly problems: string[];
}

function judge(
  c: HostileCase,
  w: CaseWorld,
  mount: string,
  secretHash: string,
  before: Picture,
  after: Picture,
  outcome: Outcome,
): Judgement {
  const expect = c.expect ?? 'refused';
  const problems: string[] = [];
  const escapes: string[] = [];
  const show = (lines: string[]): string =>
    lines.slice(0, 12).join('\n    ') + (lines.length > 12 ? `\n    ... ${lines.length - 12} more` : '');

  const canary = lineDiff(before.canary, after.canary);
  if (canary.length > 0) {
    problems.push(`the canaries outside the pool changed:\n    ${show(canary)}`);
    escapes.push('canary changed');
  }

  // An accepted stream may add exactly one subvolume: DIR/NAME.
  const receivedPath = path.relative(mount, path.join(w.dir, NAME));
  const insideReceived = (line: string): boolean => isAbout(line, receivedPath);
  const subvolumes = lineDiff(before.subvolumes, after.subvolumes);
  const added = subvolumes.filter((l) => l.startsWith('+ '));
  const extraSubvolumes = outcome.accepted ? subvolumes.filter((l) => !(l.startsWith('+ ') && insideReceived(l))) : subvolumes;
  if (extraSubvolumes.length > 0) {
    problems.push(`subvolumes changed:\n    ${show(extraSubvolumes)}`);
    escapes.push('extra subvolume');
  }

  // Pool paths are relative to the mount, so those of the received subvolume start with its path.
  const pool = lineDiff(before.pool, after.pool);
  const outsideChanges = pool.filter((l) => !insideReceived(l));
  if (outsideChanges.length > 0) {
    problems.push(`the pool changed outside the new subvolume:\n    ${show(outsideChanges)}`);
    escapes.push('pool changed');
  }
  if (pool.some((l) => l.startsWith('+ ') && insideReceived(l) && l.includes(`sha256=${secretHash}`))) {
    problems.push('the new subvolume holds the secret from outside DIR');
    escapes.push('outside data copied in');
  }

  const mayAccept = expect !== 'refused';
  const mayRefuse = expect !== 'contained';
  if (outcome.wrongFailure !== undefined) problems.push(`failed, but not as a refused transfer: ${outcome.wrongFailure}`);
  if (outcome.accepted && !mayAccept) problems.push('the receive was accepted');
  if (!outcome.accepted && outcome.wrongFailure === undefined && !mayRefuse) problems.push(`the receive was refused: ${outcome.message}`);
  if (outcome.accepted && mayAccept) {
    if (added.length !== 1) problems.push(`expected exactly one new subvolume ${receivedPath}, got:\n    ${show(added)}`);
    else problems.push(...(c.checkReceived?.(path.join(w.dir, NAME)) ?? []));
  }
  if (outcome.message !== undefined) {
    if (/[\r\n]/.test(outcome.message)) problems.push(`the refusal is not one line: ${JSON.stringify(outcome.message)}`);
    problems.push(...(c.checkMessage?.(outcome.message) ?? []));
  }

  let verdict: Verdict;
  let detail: string;
  if (escapes.length > 0) {
    verdict = 'escaped';
    detail = `escaped: ${escapes.join(', ')}${outcome.accepted ? ' (accepted)' : ' (then failed)'}`;
  } else if (problems.length === 0) {
    verdict = outcome.accepted ? 'contained' : 'refused';
    detail = outcome.accepted ? verdict : `refused (${reasonOf(outcome.message ?? '')})`;
  } else if (outcome.accepted) {
    verdict = 'accepted';
    detail = 'accepted (nothing escaped)';
  } else {
    verdict = 'error';
    detail = `error: ${problems[0]!.split('\n')[0]}`;
  }
  return { verdict, detail, problems };
}

/** The gist of a refusal for the report: btrfs receive's errno text, or buttersink's own last clause. */
function reasonOf(message: string): string {
  const afterLastColon = (text: string): string => (text.includes(': ') ? text.slice(text.lastIndexOf(': ') + 2) : text);
  const error = /ERROR: (.*?)\s*(?: \| |$)/.exec(message)?.[1];
  let reason = afterLastColon(message);
  if (error !== undefined) {
    const last = afterLastColon(error);
    reason = last.includes('/') ? error.split(': ').slice(0, 2).join(': ') : last;
  }
  return reason.length > 70 ? `${reason.slice(0, 67)}...` : reason;
}

// ---------------------------------------------------------------------------------------
// Receivers

function requestedSnapshot(name: string, uuid: string): Snapshot {
  return { name, uuid, parentUuid: null, receivedUuid: uuid, generation: 1, creationGeneration: 1, createdAt: null };
}

interface Delivery {
  readonly name: string;
  readonly stream: Buffer;
  readonly uuid: string;
  readonly parent: Snapshot | null;
}

function oneLine(text: string): string {
  return text.replace(/\n$/, '');
}

async function receiveLocally(bench: Bench, dir: string, d: Delivery): Promise<Outcome> {
  const store = new BtrfsStore({ url: `${dir}/`, directory: dir, cache: new MeasurementCache(bench.cacheDir) });
  const release = await store.lock();
  try {
    await store.receive(Readable.from([d.stream]), {
      name: d.name,
      snapshot: requestedSnapshot(d.name, d.uuid),
      parent: d.parent,
      expectedBytes: d.stream.length,
    });
    return { accepted: true };
  } catch (error) {
    if (error instanceof TransferError) return { accepted: false, message: error.message };
    return { accepted: false, wrongFailure: `${(error as Error).name}: ${(error as Error).message}` };
  } finally {
    await release();
    await store.close();
  }
}

async function receiveOnServer(bench: Bench, dir: string, d: Delivery, mode: 'r' | 'a' | 'w' = 'a'): Promise<Outcome> {
  const result = await receiveThroughServer({
    mode,
    directory: dir,
    request: {
      name: d.name,
      snapshot: toWireSnapshot(requestedSnapshot(d.name, d.uuid)),
      parent: d.parent && toWireSnapshot(d.parent),
      expectedBytes: d.stream.length,
    },
    stream: d.stream,
    env: { BUTTERSINK_CACHE_DIR: bench.cacheDir },
  });
  const answer = result.answer;
  if (answer?.ok === true) return { accepted: true };
  const error = (answer?.error ?? {}) as { kind?: string; message?: string };
  if (answer?.ok === false && error.kind === 'transfer') return { accepted: false, message: String(error.message) };
  return {
    accepted: false,
    wrongFailure: `answer ${JSON.stringify(answer)}, exit ${result.exitCode}, stderr ${JSON.stringify(result.stderr.slice(-500))}`,
  };
}

/** Puts each stream as an object in the original layout under `prefix/`, then restores the prefix into DIR with the CLI. */
async function restoreFromS3(s3: S3Context, bench: Bench, dir: string, deliveries: readonly Delivery[]): Promise<Outcome> {
  const prefix = `${bench.kind}-case-${bench.nextCase}-${Date.now()}`;
  for (const d of deliveries) {
    const from = d.parent === null ? 'None' : (d.parent.receivedUuid ?? d.parent.uuid);
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${d.name}/${d.uuid}_${from}`, Body: d.stream }));
  }
  const { done } = cliInBackground(['sync', '-qq', `s3://${BUCKET}/${prefix}/`, `${dir}/`], s3.env);
  const result = await done;
  if (result.code === 0) return { accepted: true };
  if (result.code === 5) return { accepted: false, message: oneLine(result.stderr) };
  return { accepted: false, wrongFailure: `exit ${result.code}: ${result.stderr.slice(-500)}` };
}

interface S3Context {
  readonly server: S3Server;
  readonly client: S3Client;
  readonly env: NodeJS.ProcessEnv;
}

/** Delivers a crafted stream to the bench's receiver; an incremental on S3 also gets its parent's object, as a real bucket would hold it. */
async function deliver(s3: S3Context, bench: Bench, w: CaseWorld, crafted: Crafted): Promise<Outcome> {
  const parent = crafted.claimsParent ? w.parent!.snapshot : null;
  const d: Delivery = { name: NAME, stream: crafted.stream, uuid: crafted.uuid, parent };
  switch (bench.kind) {
    case 'local':
      return receiveLocally(bench, w.dir, d);
    case 'server':
      return receiveOnServer(bench, w.dir, d);
    case 's3': {
      const parentObject: Delivery[] = w.parent
        ? [{ name: 'parent', stream: w.parent.fullStream, uuid: w.parent.snapshot.receivedUuid ?? w.parent.snapshot.uuid, parent: null }]
        : [];
      return restoreFromS3(s3, bench, w.dir, [...parentObject, d]);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The honest stream: what every receiver must still accept

const PATTERN = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7 + 3) & 0xff));

function honestStreams(w: CaseWorld): { first: { uuid: string; stream: Buffer }; second: { uuid: string; stream: Buffer } } {
  const u1 = newUuid();
  const u2 = newUuid();
  const t = { sec: 1_700_000_000, nsec: 5 };
  const first = fullStream(
    'honest',
    u1,
    11,
    [
      cmd.chown('', 0, 0),
      cmd.chmod('', 0o755),
      cmd.mkdir('o257-11-0'),
      cmd.rename('o257-11-0', 'docs'),
      cmd.mkfile('o258-11-0'),
      cmd.rename('o258-11-0', 'docs/readme.txt'),
      cmd.write('docs/readme.txt', 0, 'hello honest world\n'),
      cmd.chown('docs/readme.txt', 1000, 1000),
      cmd.chmod('docs/readme.txt', 0o640),
      cmd.setXattr('docs/readme.txt', 'user.note', 'kept'),
      cmd.link('docs/hardlink.txt', 'docs/readme.txt'),
      // The kernel makes a symlink under a temporary name, renames it, then sends set_xattr,
      // chown and utimes for the link itself (never chmod): a receiver must take those.
      cmd.symlink('o259-11-0', 'readme.txt'),
      cmd.rename('o259-11-0', 'docs/link-to-readme'),
      cmd.setXattr('docs/link-to-readme', 'trusted.link', 'on the link'),
      cmd.chown('docs/link-to-readme', 1000, 1000),
      cmd.utimes('docs/link-to-readme', t, t, t),
      // An absolute symlink to the canary: a backup may hold one; it must never be followed.
      cmd.symlink('outside-pointer', w.canary.file),
      cmd.chown('outside-pointer', 0, 0),
      cmd.utimes('outside-pointer', t, t, t),
      cmd.mkfile('data.bin'),
      cmd.write('data.bin', 0, PATTERN),
      cmd.mkfile('copy.bin'),
      cmd.clone('copy.bin', 0, PATTERN.length, u1, 11, 'data.bin', 0),
      cmd.mkfifo('pipe'),
      cmd.utimes('docs/readme.txt', t, t, t),
      cmd.utimes('', t, t, t),
    ],
    { version: 1 },
  );
  const second = incrementalStream(
    'honest-2',
    u2,
    12,
    u1,
    11,
    [
      cmd.write('docs/readme.txt', 19, 'more\nEXTRA'),
      cmd.truncate('docs/readme.txt', 24),
      cmd.removeXattr('docs/readme.txt', 'user.note'),
      cmd.rename('data.bin', 'data-renamed.bin'),
      cmd.setXattr('data-renamed.bin', 'user.v2', 'yes'),
      cmd.unlink('copy.bin'),
      cmd.mkfile('o300-12-0'),
      cmd.rename('o300-12-0', 'cloned-from-parent.bin'),
      // The parent holds data.bin under its old name: a clone from the parent snapshot in DIR.
      cmd.clone('cloned-from-parent.bin', 0, PATTERN.length, u1, 11, 'data.bin', 0),
      cmd.mkdir('o301-12-0'),
      cmd.rmdir('o301-12-0'),
      cmd.fallocate('data-renamed.bin', 0, 8192, 4096),
      cmd.utimes('', t, t, t),
    ],
    { version: 2 },
  );
  return { first: { uuid: u1, stream: first }, second: { uuid: u2, stream: second } };
}

function xattr(file: string, name: string): string | null {
  try {
    return execFileSync('getfattr', ['-h', '--only-values', '-n', name, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

function checkHonest(dir: string, canaryFile: string): string[] {
  const problems: string[] = [];
  const expect = (what: string, actual: unknown, expected: unknown): void => {
    if (JSON.stringify(actual) !== JSON.stringify(expected))
      problems.push(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  };
  const first = `${dir}/honest`;
  const readme = lstatSync(`${first}/docs/readme.txt`);
  expect('honest: readme', readFileSync(`${first}/docs/readme.txt`, 'utf8'), 'hello honest world\n');
  expect('honest: readme mode, owner, links', [readme.mode & 0o7777, readme.uid, readme.gid, readme.nlink], [0o640, 1000, 1000, 2]);
  expect('honest: readme mtime', readme.mtimeMs, 1_700_000_000_000);
  expect('honest: readme xattr', xattr(`${first}/docs/readme.txt`, 'user.note'), 'kept');
  expect('honest: hard link', lstatSync(`${first}/docs/hardlink.txt`).ino, readme.ino);
  expect('honest: relative symlink', readlinkSync(`${first}/docs/link-to-readme`), 'readme.txt');
  const link = lstatSync(`${first}/docs/link-to-readme`);
  expect('honest: symlink owner and mtime', [link.uid, link.gid, link.mtimeMs], [1000, 1000, 1_700_000_000_000]);
  expect('honest: symlink xattr', xattr(`${first}/docs/link-to-readme`, 'trusted.link'), 'on the link');
  expect('honest: absolute symlink', readlinkSync(`${first}/outside-pointer`), canaryFile);
  expect('honest: data.bin', sha256(readFileSync(`${first}/data.bin`)), sha256(PATTERN));
  expect('honest: copy.bin (cloned)', sha256(readFileSync(`${first}/copy.bin`)), sha256(PATTERN));
  expect('honest: pipe is a fifo', lstatSync(`${first}/pipe`).isFIFO(), true);
  expect('honest: root mode', lstatSync(first).mode & 0o7777, 0o755);
  const second = `${dir}/honest-2`;
  expect('honest-2: readme', readFileSync(`${second}/docs/readme.txt`, 'utf8'), 'hello honest world\nmore\n');
  expect('honest-2: readme xattr removed', xattr(`${second}/docs/readme.txt`, 'user.note'), null);
  expect('honest-2: renamed file', sha256(readFileSync(`${second}/data-renamed.bin`).subarray(0, 8192)), sha256(PATTERN));
  expect('honest-2: fallocated size', lstatSync(`${second}/data-renamed.bin`).size, 12288);
  expect('honest-2: renamed xattr', xattr(`${second}/data-renamed.bin`, 'user.v2'), 'yes');
  expect(
    'honest-2: gone',
    [existsSync(`${second}/data.bin`), existsSync(`${second}/copy.bin`), existsSync(`${second}/o301-12-0`)],
    [false, false, false],
  );
  expect('honest-2: cloned from parent', sha256(readFileSync(`${second}/cloned-from-parent.bin`)), sha256(PATTERN));
  expect('honest-2: parent untouched', readFileSync(`${first}/docs/readme.txt`, 'utf8'), 'hello honest world\n');
  return problems;
}

// ---------------------------------------------------------------------------------------
// The suite

const verdicts = new Map<string, Map<ReceiverKind, string>>();
function record(caseName: string, kind: ReceiverKind, detail: string): void {
  if (!verdicts.has(caseName)) verdicts.set(caseName, new Map());
  verdicts.get(caseName)!.set(kind, detail);
}

function writeReport(): void {
  const file = process.env.HOSTILE_REPORT;
  if (!file) return;
  const kinds: ReceiverKind[] = ['local', 'server', 's3'];
  const cell = (text: string): string => text.replaceAll('|', '\\|');
  const rows = [...verdicts.entries()].map(
    ([name, byKind]) => `| ${cell(name)} | ${kinds.map((k) => cell(byKind.get(k) ?? '-')).join(' | ')} |`,
  );
  writeFileSync(file, [`| case | ${kinds.join(' | ')} |`, `|---|${kinds.map(() => '---').join('|')}|`, ...rows, ''].join('\n'));
}

describe('hostile send streams against every receiver', suite, () => {
  let s3: S3Context;

  before(async () => {
    const server = await startS3Server([BUCKET]);
    const root = mkdtempSync(path.join(server.directory, '..', 'hostile-cli-'));
    s3 = { server, client: server.client(), env: { ...server.env, BUTTERSINK_CACHE_DIR: path.join(root, 'cache') } };
  });
  after(async () => {
    s3?.client.destroy();
    await s3?.server.stop();
    writeReport();
  });

  for (const { kind, label } of RECEIVERS) {
    describe(`received by ${label}`, () => {
      let bench: Bench;
      before(() => {
        bench = makeBench(kind);
      });
      after(() => bench?.pool.destroy());

      test('an honest full stream and an incremental on it, with files, dirs, symlinks, xattrs and clones, are received intact', async () => {
        const w = prepareCase(bench, {});
        const { first, second } = honestStreams(w);
        const before = picture(bench);
        let outcome: Outcome;
        const honest: Delivery = { name: 'honest', stream: first.stream, uuid: first.uuid, parent: null };
        if (kind === 's3') {
          const parentOf = requestedSnapshot('honest', first.uuid);
          outcome = await restoreFromS3(s3, bench, w.dir, [
            honest,
            { name: 'honest-2', stream: second.stream, uuid: second.uuid, parent: parentOf },
          ]);
        } else {
          const receive = kind === 'local' ? receiveLocally : receiveOnServer;
          outcome = await receive(bench, w.dir, honest);
          if (outcome.accepted) {
            // The sender names its own snapshot as the parent: the received one's received UUID.
            outcome = await receive(bench, w.dir, {
              name: 'honest-2',
              stream: second.stream,
              uuid: second.uuid,
              parent: requestedSnapshot('honest', first.uuid),
            });
          }
        }
        const after = picture(bench);
        const problems: string[] = [];
        if (!outcome.accepted) problems.push(`refused: ${outcome.message ?? outcome.wrongFailure}`);
        problems.push(...lineDiff(before.canary, after.canary).map((l) => `canary: ${l}`));
        const ours = (l: string): boolean =>
          ['honest', 'honest-2'].some((name) => isAbout(l, path.relative(bench.mount, path.join(w.dir, name))));
        problems.push(
          ...lineDiff(before.pool, after.pool)
            .filter((l) => !ours(l))
            .map((l) => `pool: ${l}`),
        );
        const newSubvolumes = lineDiff(before.subvolumes, after.subvolumes);
        if (newSubvolumes.length !== 2 || !newSubvolumes.every((l) => l.startsWith('+ ') && ours(l)))
          problems.push(`subvolumes: ${newSubvolumes.join('; ')}`);
        if (outcome.accepted) problems.push(...checkHonest(w.dir, w.canary.file));
        record(
          'an honest full stream and an incremental on it are received intact',
          kind,
          problems.length === 0 ? 'accepted, intact' : `error: ${problems[0]}`,
        );
        assert.deepEqual(problems, []);
      });

      for (const c of CASES) {
        test(c.name, async () => {
          const w = prepareCase(bench, c);
          const crafted = c.craft(w);
          const before = picture(bench);
          const outcome = await deliver(s3, bench, w, crafted);
          const after = picture(bench);
          const judgement = judge(c, w, bench.mount, bench.outside.secretHash, before, after, outcome);
          record(c.name, kind, judgement.detail);
          assert.ok(judgement.problems.length === 0, `${judgement.detail}\n  ${judgement.problems.join('\n  ')}`);
        });
      }
    });
  }

  describe("'buttersink server' modes", () => {
    let bench: Bench;
    before(() => {
      bench = makeBench('server');
    });
    after(() => bench?.pool.destroy());

    test('mode r refuses to receive even an honest stream, with a permission error, and changes nothing', async () => {
      const w = prepareCase(bench, {});
      const { first } = honestStreams(w);
      const before = picture(bench);
      const result = await receiveThroughServer({
        mode: 'r',
        directory: w.dir,
        request: {
          name: 'honest',
          snapshot: toWireSnapshot(requestedSnapshot('honest', first.uuid)),
          parent: null,
          expectedBytes: first.stream.length,
        },
        stream: first.stream,
        env: { BUTTERSINK_CACHE_DIR: bench.cacheDir },
      });
      const after = picture(bench);
      assert.equal(result.wasReady, false, 'the server must refuse before taking the stream');
      assert.equal(result.answer?.ok, false);
      assert.equal((result.answer?.error as { kind?: string } | undefined)?.kind, 'permission');
      assert.deepEqual(after, before);
    });

    const inModeW = [
      CASES.find((c) => c.name.startsWith('a write through a symlink the stream created'))!,
      CASES.find((c) => c.name.startsWith('write climbing out'))!,
      CASES.find((c) => c.name.startsWith('a snapshot of a read-only subvolume outside DIR (right'))!,
    ];
    for (const c of inModeW) {
      test(`mode w: ${c.name}`, async () => {
        const w = prepareCase(bench, c);
        const crafted = c.craft(w);
        const before = picture(bench);
        const outcome = await receiveOnServer(
          bench,
          w.dir,
          { name: NAME, stream: crafted.stream, uuid: crafted.uuid, parent: crafted.claimsParent ? w.parent!.snapshot : null },
          'w',
        );
        const after = picture(bench);
        const judgement = judge(c, w, bench.mount, bench.outside.secretHash, before, after, outcome);
        assert.ok(judgement.problems.length === 0, `${judgement.detail}\n  ${judgement.problems.join('\n  ')}`);
      });
    }
  });
});
