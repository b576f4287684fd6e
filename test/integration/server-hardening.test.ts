import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Snapshot } from '../../src/model/snapshot.js';
import { MAX_BROWSE_READ_BYTES } from '../../src/remote/browse.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../src/remote/protocol.js';
import { MAX_CHILD_PROCESSES } from '../../src/remote/server.js';
import { MAX_REQUEST_BYTES } from '../../src/remote/server-request.js';
import { toWireSnapshot, type WireSnapshot } from '../../src/remote/wire-snapshot.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { sleep, uuidOf } from '../support/helpers.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { ServerProcess } from '../support/server-process.js';

/**
 * `buttersink server` from the attacker's side: a client holding a key that sudoers lets run
 * `buttersink server --mode M DIR`, and nothing else, sends whatever bytes it likes on the
 * server's stdin. Goals tried: leave DIR, read or write what is outside it, learn what is
 * outside it, poison what root keeps, exhaust memory or processes. The server runs on pipes
 * here, as sshd starts it; the SSH store's tests cover the well-behaved client.
 */
const suite = btrfsSuite();

const MiB = 1 << 20;
/** btrfs-progs' UUID columns are `%-36s`. */
const pad = (text: string): string => text.padEnd(36);
const FAKE_UUID = '11111111-2222-4333-8444-555555555555';
/** An entry line of `btrfs subvolume list -R -u -q -c -g -r` claiming `path`. */
const forgedFull = (id: number, path: string): string =>
  `ID ${id} gen 7 cgen 7 top level 5 parent_uuid ${pad('-')} received_uuid ${pad('-')} uuid ${FAKE_UUID} path ${path}`;
/** The same claim in the `-r` format without columns. */
const forgedBrief = (id: number, path: string): string => `ID ${id} gen 7 top level 5 path ${path}`;

/** A snapshot as a client names it: real name, any UUID. */
function wire(name: string, uuid: string): WireSnapshot {
  const snapshot: Snapshot = { name, uuid, parentUuid: null, receivedUuid: null, generation: 1, creationGeneration: 1, createdAt: null };
  return toWireSnapshot(snapshot);
}

/** The kinds and messages of every refusal seen, checked for leaks at the end. */
const errorsSeen: { kind: string; message: string; hint?: string }[] = [];

function refusal(answer: Record<string, unknown>, pattern: RegExp, kind = 'permission'): void {
  assert.equal(answer.ok, false, JSON.stringify(answer));
  const error = answer.error as { kind: string; message: string; hint?: string };
  errorsSeen.push(error);
  assert.equal(error.kind, kind, error.message);
  assert.match(error.message, pattern);
  assert.doesNotMatch(error.message, /[\x00-\x1f\x7f]/, 'one printable line');
}

/** Direct children of `pid` running `command` now (from /proc). */
function childrenRunning(pid: number, command: string): number {
  let count = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so cut at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid && comm === command) count += 1;
    } catch {
      // the process ended meanwhile
    }
  }
  return count;
}

/** `promise`'s value, or a note that it took longer than `ms` (a test then fails instead of hanging). */
function within<T>(ms: number, promise: Promise<T>): Promise<T | string> {
  return Promise.race([promise, sleep(ms).then(() => `still waiting after ${ms} ms`)]);
}

function fileBytes(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const n = readSync(fd, buffer, 0, length, offset);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

describe('buttersink server against a hostile client', suite, () => {
  let pool: BtrfsPool;
  let evilPool: BtrfsPool;
  let dir: string;
  let evilDir: string;
  let scratch: string;
  const servers: ServerProcess[] = [];
  const uuids: Record<string, string> = {};

  /** A server on a fresh measurement cache (so nothing measured before is reused). */
  const start = async (mode: string, directory = dir, cache = mkdtempSync(path.join(scratch, 'cache-'))): Promise<ServerProcess> => {
    const server = await ServerProcess.greeted(mode, directory, { BUTTERSINK_CACHE_DIR: cache });
    servers.push(server);
    return server;
  };

  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'buttersink-hardening-'));
    pool = createPool(512);
    dir = `${pool.mountPoint}/snaps`;
    sh(
      `btrfs -q subvolume create live && head -c ${64 * MiB} /dev/urandom > live/big &&
       mkdir live/many && (cd live/many && seq 1 20000 | xargs touch) &&
       mkdir snaps && btrfs -q subvolume snapshot -r live snaps/one &&
       echo more > live/more && btrfs -q subvolume snapshot -r live snaps/two &&
       btrfs -q subvolume snapshot -r snaps/one snaps/three &&
       btrfs -q subvolume snapshot -r live snaps/disposable &&
       btrfs -q subvolume create snaps/work && echo w > snaps/work/f && btrfs -q subvolume snapshot -r snaps/work snaps/work-1 &&
       btrfs -q subvolume create outside && echo secret > outside/secret`,
      pool.mountPoint,
    );
    for (const name of ['live', 'outside', 'snaps/one', 'snaps/two', 'snaps/three', 'snaps/disposable', 'snaps/work', 'snaps/work-1']) {
      uuids[name] = uuidOf(`${pool.mountPoint}/${name}`);
    }

    // Names that forge `btrfs subvolume list` entries. A component cannot hold '/', so a
    // forged path with one ends in a directory whose name carries the line, the rest below.
    evilPool = createPool(256);
    evilDir = `${evilPool.mountPoint}/snaps`;
    const m = evilPool.mountPoint;
    sh(
      // A FIFO, as a crafted stream can make (mknod): a browse must not open it (that blocks).
      `btrfs -q subvolume create live && echo x > live/f && mkfifo live/pipe && mkdir snaps && btrfs -q subvolume snapshot -r live snaps/one && btrfs -q subvolume create snaps/rw`,
      m,
    );
    const make = (parentDirectory: string, leaf: string): void => {
      execFileSync('mkdir', ['-p', path.join(m, parentDirectory)]);
      execFileSync('btrfs', ['-q', 'subvolume', 'snapshot', '-r', path.join(m, 'live'), path.join(m, parentDirectory, leaf)]);
    };
    // A read-write subvolume claimed as a read-only snapshot with a made-up UUID.
    make(`snaps/x\n${forgedFull(999, 'snaps')}`, 'rw');
    // A real snapshot's name claimed with a made-up UUID.
    make(`snaps/y\n${forgedFull(998, 'snaps')}`, 'one');
    // One forged line per listing format, over two components.
    make(`snaps/z\n${forgedFull(997, 'snaps')}/q\n${forgedBrief(997, 'snaps')}`, 'q');
    // A plain name with a newline, no forgery: a local listing shows it, the server does not serve it.
    make('snaps', 'new\nline');
  });

  after(async () => {
    for (const server of servers) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await server.exited;
    }
    pool?.destroy();
    evilPool?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe('names with control characters', () => {
    test('`buttersink DIR/` lists names that embed forged entry lines without a crash and without the forged entries', () => {
      const listed = cli([`${evilDir}/`], { env: { BUTTERSINK_CACHE_DIR: mkdtempSync(path.join(scratch, 'cache-')) } });
      assert.equal(listed.code, 0, listed.stderr);
      assert.doesNotMatch(listed.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(listed.stderr.match(/names with newlines/g)?.length, 1, listed.stderr);
      assert.doesNotMatch(listed.stdout, new RegExp(FAKE_UUID));
      const [header, ...rows] = listed.stdout.split('\n').filter(Boolean);
      assert.match(header ?? '', /^NAME +SIZE +CREATED +UUID +ORIGIN$/);
      const names = rows.map((line) => line.split('  ')[0]);
      assert.deepEqual(names, ['"new\\nline"', 'one'], 'one row each, no forged rows');
      assert.match(listed.stdout, new RegExp(`^one .* ${uuidOf(`${evilDir}/one`)}$`, 'm'), 'the real one, not the forged one');
    });

    test('the server lists only plain names, the real snapshots with their real UUIDs', async () => {
      const server = await start('r', evilDir);
      const answer = await server.request(1, 'list');
      assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.deepEqual(
        (answer.result as WireSnapshot[]).map((s) => [s.name, s.uuid]),
        [['one', uuidOf(`${evilDir}/one`)]],
      );
      await server.close();
      assert.match(server.stderr, /not serving 1 snapshot\(s\) whose names hold control characters/);
    });

    test('every request naming a snapshot with a control character is refused in one line, in every mode that allows it', async () => {
      const evil = `x\n${forgedFull(999, 'snaps/rw')}`;
      const server = await start('w');
      refusal(await server.request(1, 'measure', { snapshot: wire(evil, FAKE_UUID), parent: null }), /control character/);
      refusal(
        await server.request(2, 'measure', { snapshot: wire('one', uuids['snaps/one']!), parent: wire('tab\there', FAKE_UUID) }),
        /control character/,
      );
      refusal(await server.request(3, 'delete', { snapshot: wire(evil, FAKE_UUID) }), /control character/);
      refusal(await server.request(4, 'browse', { snapshot: evil, path: '', action: 'lstat' }), /control character/);
      refusal(await server.request(5, 'browse', { snapshot: 'esc\x1b[31m', path: '', action: 'readdir' }), /control character/);
      // A send or a receive has a server of its own; the refusal comes before any stream.
      const sender = await start('w');
      refusal(await sender.request(1, 'send', { snapshot: wire(evil, FAKE_UUID), parent: null, cloneSources: [] }), /control character/);
      const receiver = await start('w');
      refusal(await receiver.request(1, 'receive', { name: evil, snapshot: wire('one', FAKE_UUID), parent: null }), /control character/);
      assert.equal(existsSync(`${dir}/x`), false);
    });
  });

  describe('bounded work per session', () => {
    test('hundreds of 1 MiB reads sent without reading the answers keep the server under 200 MiB; all answers are right once read', async () => {
      // Bound: node itself (~60-70 MiB) plus 16 requests in flight, each at most a 1 MiB
      // read and its 1 MiB frame, plus pipe buffers: ~110 MiB at worst. Without a bound the
      // server buffered every answer (676 MiB after a few hundred).
      const server = new ServerProcess('r', dir, { BUTTERSINK_CACHE_DIR: mkdtempSync(path.join(scratch, 'cache-')) });
      servers.push(server);
      server.send({ program: 'buttersink', protocol: PROTOCOL_VERSION, version: '0.1.0' });
      const count = 300;
      const offsets = Array.from({ length: count }, (_, i) => ((i * 7) % 64) * MiB + (i % 3) * 4096);
      for (const [i, offset] of offsets.entries()) {
        server.send({ id: i + 1, op: 'browse', snapshot: 'one', path: 'big', action: 'read', offset, length: MAX_BROWSE_READ_BYTES });
      }
      let peak = 0;
      for (let waited = 0; waited < 5000; waited += 100) {
        await sleep(100);
        peak = Math.max(peak, server.rssMiB());
      }
      assert.ok(peak < 200, `peak RSS ${peak.toFixed(0)} MiB`);
      server.startReading();
      await server.next(); // the server's hello
      for (const [i, offset] of offsets.entries()) {
        const answer = await server.answer(i + 1);
        assert.equal(answer.ok, true, JSON.stringify(answer).slice(0, 300));
        const data = (answer.result as { data: Buffer }).data;
        assert.ok(data.equals(fileBytes(`${dir}/one/big`, offset, MAX_BROWSE_READ_BYTES)), `read ${i + 1} at ${offset}`);
      }
      assert.deepEqual(await server.close(), { code: 0, signal: null });
    });

    test(`dozens of concurrent measure and list requests never run more than ${MAX_CHILD_PROCESSES} btrfs children at once`, async () => {
      const server = await start('r');
      const one = wire('one', uuids['snaps/one']!);
      const two = wire('two', uuids['snaps/two']!);
      const three = wire('three', uuids['snaps/three']!);
      const pairs: [WireSnapshot, WireSnapshot | null][] = [
        [one, null],
        [two, null],
        [two, one],
        [three, one],
        [one, two],
        [three, null],
      ];
      let done = false;
      let peak = 0;
      const sampling = (async () => {
        while (!done) {
          peak = Math.max(peak, childrenRunning(server.pid, 'btrfs'));
          await sleep(1);
        }
      })();
      const answers: Promise<Record<string, unknown>>[] = [];
      for (let i = 0; i < 48; i++) {
        const [snapshot, parent] = pairs[i % pairs.length]!;
        answers.push(i % 8 === 7 ? server.request(i + 1, 'list') : server.request(i + 1, 'measure', { snapshot, parent }));
      }
      const settled = await Promise.all(answers);
      done = true;
      await sampling;
      for (const answer of settled) assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.ok(peak >= 2, `children were seen running (peak ${peak})`);
      assert.ok(peak <= MAX_CHILD_PROCESSES, `peak ${peak} btrfs children`);
      // Same pair, same size, however many ran at once.
      const sizes = new Map<string, unknown>();
      settled.forEach((answer, i) => {
        if (i % 8 === 7) return;
        const key = String(i % pairs.length);
        const bytes = (answer.result as { bytes: number }).bytes;
        if (sizes.has(key)) assert.equal(bytes, sizes.get(key));
        else sizes.set(key, bytes);
      });
    });

    test(`measurements stopped at their bound still count against the ${MAX_CHILD_PROCESSES} children until their btrfs exits`, async () => {
      // A stopped send is answered at once, but the killed process runs on until its walk
      // returns: a client asking for many small bounds must not get more walks than the limit.
      const server = await start('r');
      const fulls = ['one', 'two', 'three'].map((name) => wire(name, uuids[`snaps/${name}`]!));
      let done = false;
      let peak = 0;
      const sampling = (async () => {
        while (!done) {
          peak = Math.max(peak, childrenRunning(server.pid, 'btrfs'));
          await sleep(1);
        }
      })();
      // Every bound different and above the last: none is answered by a bound kept before.
      const answers = Array.from({ length: 48 }, (_, i) =>
        server.request(i + 1, 'measure', { snapshot: fulls[i % fulls.length], parent: null, stopAbove: 100 + i }),
      );
      const settled = await Promise.all(answers);
      await sleep(200); // the stopped ones exit after their answers
      done = true;
      await sampling;
      for (const answer of settled) assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.ok(
        settled.some((answer) => (answer.result as { atLeast?: boolean }).atLeast === true),
        'measurements stopped at their bound',
      );
      assert.ok(peak >= 2, `children were seen running (peak ${peak})`);
      assert.ok(peak <= MAX_CHILD_PROCESSES, `peak ${peak} btrfs children`);
    });

    test('more pipelined requests than the bound are all answered to a client that reads', async () => {
      const server = await start('r');
      const answers = Array.from({ length: 100 }, (_, i) =>
        server.request(i + 1, 'browse', { snapshot: 'two', path: i % 2 === 0 ? 'big' : '', action: i % 2 === 0 ? 'lstat' : 'readdir' }),
      );
      for (const answer of await Promise.all(answers)) assert.equal(answer.ok, true);
    });

    test('a request frame larger than any request is protocol garbage: the server stops reading and exits 2', async () => {
      const server = await start('r');
      const header = Buffer.alloc(5);
      header.writeUInt32BE(MAX_REQUEST_BYTES + 1, 0);
      header.writeUInt8(1, 4);
      server.sendRaw(header);
      assert.deepEqual(await within(10_000, server.exited), { code: 2, signal: null });
      assert.match(server.stderr, /unexpected bytes instead of a buttersink protocol frame/);
    });

    test('fields a request does not use are dropped; a request just under the frame limit is answered', async () => {
      const server = await start('r');
      // `[{}],` five bytes each: tens of bytes each once parsed.
      const junk = Array.from({ length: Math.floor((MAX_REQUEST_BYTES - 300) / 5) }, () => [{}]);
      server.sendRaw(encodeMessage({ id: 1, op: 'browse', snapshot: 'one', path: '', action: 'lstat', junk }));
      assert.equal((await server.answer(1)).ok, true);
    });
  });

  describe('what a client names is resolved against the server own listing', () => {
    test('mode w deletes only a read-only snapshot it lists, by name and UUID', async () => {
      const server = await start('w');
      // A read-write subvolume in DIR, the parent of a listed snapshot, with its real UUID.
      refusal(
        await server.request(1, 'delete', { snapshot: wire('work', uuids['snaps/work']!) }),
        /not a read-only snapshot of this directory/,
      );
      // A listed name with another UUID (the live subvolume's, say).
      refusal(await server.request(2, 'delete', { snapshot: wire('one', uuids.live!) }), /not the snapshot with UUID/);
      refusal(await server.request(3, 'delete', { snapshot: wire('../outside', uuids.outside!) }), /refused snapshot name/);
      // Nothing at that name: already gone, which is no error (delete is idempotent) and deletes nothing.
      assert.equal((await server.request(4, 'delete', { snapshot: wire('nothing-here', FAKE_UUID) })).ok, true);
      assert.ok(existsSync(`${dir}/work/f`) && existsSync(`${dir}/one/big`) && existsSync(`${pool.mountPoint}/outside/secret`));
      const deleted = await server.request(5, 'delete', { snapshot: wire('disposable', uuids['snaps/disposable']!) });
      assert.equal(deleted.ok, true, JSON.stringify(deleted));
      assert.equal(existsSync(`${dir}/disposable`), false);
      const listed = (await server.request(6, 'list')).result as WireSnapshot[];
      assert.deepEqual(
        listed.map((s) => s.name),
        ['one', 'three', 'two', 'work-1'],
      );
    });

    test('measure caches only under UUIDs the server resolved: a client cannot poison root measurement cache', async () => {
      const cache = mkdtempSync(path.join(scratch, 'cache-'));
      const server = await start('r', dir, cache);
      // Another snapshot's UUID under a listed name, and a listed snapshot with a made-up one.
      refusal(
        await server.request(1, 'measure', { snapshot: wire('two', uuids['snaps/one']!), parent: null }),
        /not the snapshot with UUID/,
      );
      refusal(
        await server.request(2, 'measure', { snapshot: wire('two', uuids['snaps/two']!), parent: wire('one', FAKE_UUID) }),
        /not the snapshot with UUID/,
      );
      // Right names and UUIDs, everything else made up: measured from what the server lists.
      const lying = { ...wire('two', uuids['snaps/two']!), generation: 123456, parentUuid: FAKE_UUID };
      const measured = await server.request(3, 'measure', { snapshot: lying, parent: wire('one', uuids['snaps/one']!) });
      assert.equal(measured.ok, true, JSON.stringify(measured));
      await server.close();
      const cached = JSON.parse(readFileSync(path.join(cache, 'measurements.json'), 'utf8')) as { sizes: Record<string, number> };
      assert.deepEqual(Object.keys(cached.sizes), [`${uuids['snaps/two']}<${uuids['snaps/one']}`]);
    });

    test('measure with a stopAbove that is not a non-negative integer measures in full; a lower bound is never cached', async () => {
      const cache = mkdtempSync(path.join(scratch, 'cache-'));
      const server = await start('r', dir, cache);
      const one = wire('one', uuids['snaps/one']!);
      const stopped = await server.request(1, 'measure', { snapshot: one, parent: null, stopAbove: 100 });
      assert.equal(stopped.ok, true, JSON.stringify(stopped));
      const bound = stopped.result as { bytes: number; exact: boolean; atLeast?: boolean };
      assert.equal(bound.atLeast, true);
      assert.equal(bound.exact, false);
      let id = 2;
      let full: number | undefined;
      for (const stopAbove of ['100', -1, 1.5, 1e300, Number.MAX_SAFE_INTEGER + 2, null, { valueOf: 1 }, [100]]) {
        const answer = await server.request(id++, 'measure', { snapshot: one, parent: null, stopAbove });
        assert.equal(answer.ok, true, JSON.stringify(answer));
        const size = answer.result as { bytes: number; exact: boolean; atLeast?: boolean };
        assert.deepEqual(
          { exact: size.exact, atLeast: size.atLeast },
          { exact: true, atLeast: undefined },
          `stopAbove ${JSON.stringify(stopAbove)}`,
        );
        full ??= size.bytes;
        assert.equal(size.bytes, full);
      }
      assert.ok(bound.bytes > 100 && bound.bytes < full!, `bound ${bound.bytes}, full ${full}`);
      await server.close();
      const cached = JSON.parse(readFileSync(path.join(cache, 'measurements.json'), 'utf8')) as { sizes: Record<string, number> };
      assert.deepEqual(cached.sizes, { [`${uuids['snaps/one']}<full`]: full });
    });

    test('send refuses a snapshot, parent or clone source that is not a listed read-only snapshot', async () => {
      const attempts: Record<string, unknown>[] = [
        { snapshot: wire('work', uuids['snaps/work']!), parent: null, cloneSources: [] },
        { snapshot: wire('two', uuids['snaps/two']!), parent: wire('two', uuids.live!), cloneSources: [] },
        { snapshot: wire('two', uuids['snaps/two']!), parent: null, cloneSources: [wire('work', uuids['snaps/work']!)] },
        {
          snapshot: wire('two', uuids['snaps/two']!),
          parent: null,
          cloneSources: Array.from({ length: 17 }, () => wire('one', uuids['snaps/one']!)),
        },
      ];
      for (const args of attempts) {
        const server = await start('r');
        refusal(await server.request(1, 'send', args), /not a read-only snapshot|not the snapshot with UUID|clone sources/);
        assert.deepEqual(await server.close(), { code: 0, signal: null });
      }
    });

    test('list shows parents outside the directory as stable tokens that name no subvolume; listed parents as they are', async () => {
      // Root's cache directory holds the tokens' key (made by the first server, 0600).
      const cache = mkdtempSync(path.join(scratch, 'cache-'));
      const first = await start('a', dir, cache);
      const second = await start('a', dir, cache);
      const listed = (await first.request(1, 'list')).result as WireSnapshot[];
      const again = (await second.request(1, 'list')).result as WireSnapshot[];
      assert.deepEqual(again, listed, 'the same tokens in every session');
      assert.equal(statSync(path.join(cache, 'parent-token.key')).mode & 0o777, 0o600);
      const byName = new Map(listed.map((s) => [s.name, s]));
      const token = byName.get('one')!.parentUuid!;
      assert.notEqual(token, uuids.live);
      assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(byName.get('two')!.parentUuid, token, 'snapshots of one source share a token');
      assert.equal(byName.get('three')!.parentUuid, uuids['snaps/one'], 'a listed parent is no secret');
      const workToken = byName.get('work-1')!.parentUuid!;
      assert.notEqual(workToken, uuids['snaps/work']);
      assert.notEqual(workToken, token);
      const everyUuid = execFileSync('btrfs', ['subvolume', 'list', '-a', '-u', '-q', '-R', pool.mountPoint], { encoding: 'utf8' });
      for (const t of [token, workToken]) assert.doesNotMatch(everyUuid, new RegExp(t));
      assert.doesNotMatch(JSON.stringify(listed), new RegExp(`${uuids.live}|${uuids['snaps/work']}|${uuids.outside}`));
    });

    test('a lock that asks for the listing: only in a mode that may add, the very listing `list` shows (tokens too); anything but `true` is a plain lock', async () => {
      const cache = mkdtempSync(path.join(scratch, 'cache-'));
      const reader = await start('r', dir, cache);
      refusal(await reader.request(1, 'lock', { list: true }), /needs mode/);
      const server = await start('a', dir, cache);
      const listed = (await server.request(1, 'list')).result as WireSnapshot[];
      const locked = await server.request(2, 'lock', { list: true });
      assert.equal(locked.ok, true, JSON.stringify(locked));
      assert.deepEqual((locked.result as { snapshots: WireSnapshot[] }).snapshots, listed);
      assert.equal((await server.request(3, 'unlock')).ok, true);
      for (const [i, list] of ['true', 1, {}, null].entries()) {
        const plain = await server.request(10 + 2 * i, 'lock', { list });
        assert.equal(plain.ok, true, JSON.stringify(plain));
        assert.equal(plain.result, null, `list: ${JSON.stringify(list)} is a plain lock`);
        assert.equal((await server.request(11 + 2 * i, 'unlock')).ok, true);
      }
    });
  });

  describe('reads and signals', () => {
    test('a browse read of a FIFO in a snapshot answers EINVAL at once instead of blocking the server on open', async () => {
      const server = await start('r', evilDir);
      const read = await within(
        5000,
        server.request(1, 'browse', { snapshot: 'one', path: 'pipe', action: 'read', offset: 0, length: 10 }),
      );
      assert.notEqual(typeof read, 'string', String(read));
      assert.deepEqual((read as Record<string, unknown>).result, { errno: 'EINVAL' });
      const attributes = (await server.request(2, 'browse', { snapshot: 'one', path: 'pipe', action: 'lstat' })).result as { mode: number };
      assert.equal(attributes.mode & 0o170000, 0o010000, 'it is listed as what it is');
      const file = await server.request(3, 'browse', { snapshot: 'one', path: 'f', action: 'read', offset: 0, length: 10 });
      assert.equal((file.result as { data: Buffer }).data.toString(), 'x\n', 'the server goes on answering');
    });

    test('browse reads refuse offsets and lengths that are not safe non-negative integers (2^53 once read from 0)', async () => {
      const server = await start('r');
      const read = (id: number, offset: unknown, length: unknown): Promise<Record<string, unknown>> =>
        server.request(id, 'browse', { snapshot: 'one', path: 'big', action: 'read', offset, length });
      const bad: [unknown, unknown][] = [
        [2 ** 53, 10],
        [2 ** 64, 10],
        [-1, 10],
        [1.5, 10],
        ['0', 10],
        [null, 10],
        [Number.MAX_SAFE_INTEGER, 1],
        [0, -5],
        [0, 2 ** 31],
        [0, MAX_BROWSE_READ_BYTES + 1],
        [0, 0.5],
        [0, null],
      ];
      for (const [i, [offset, length]] of bad.entries()) refusal(await read(i + 1, offset, length), /refused read range/);
      const past = await read(100, 2 ** 40, 10);
      assert.equal(past.ok, true);
      assert.equal((past.result as { data: Buffer }).data.length, 0, 'past the end: no bytes');
      const good = await read(101, MiB + 3, 100);
      assert.ok((good.result as { data: Buffer }).data.equals(fileBytes(`${dir}/one/big`, MiB + 3, 100)));
    });

    test('SIGTERM ends an idle server at once with status 143, and the lock it held is free again', async () => {
      const holder = await start('a');
      assert.equal((await holder.request(1, 'lock')).ok, true);
      const other = await start('a');
      refusal(await other.request(1, 'lock'), /another buttersink/, 'busy');
      const started = Date.now();
      holder.child.kill('SIGTERM');
      assert.deepEqual(await within(5000, holder.exited), { code: 143, signal: null });
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      assert.equal((await other.request(2, 'lock')).ok, true, 'the lock went with the server');
    });

    test('SIGTERM ends a server whose client stopped reading, without waiting for it', async () => {
      const server = await start('r');
      for (let i = 0; i < 64; i++)
        server.send({
          id: i + 1,
          op: 'browse',
          snapshot: 'one',
          path: 'big',
          action: 'read',
          offset: i * MiB,
          length: MAX_BROWSE_READ_BYTES,
        });
      server.child.stdout.pause();
      await sleep(500);
      const started = Date.now();
      server.child.kill('SIGTERM');
      assert.deepEqual(await within(8000, server.exited), { code: 143, signal: null });
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    });
  });

  describe('what errors say', () => {
    test("errors name paths relative to the directory, never the server's other absolute paths", async () => {
      const receiver = await start('a');
      // The store's own message names the full path of an existing snapshot.
      refusal(
        await receiver.request(1, 'receive', { name: 'one', snapshot: wire('one', FAKE_UUID), parent: null }),
        /^one already exists$/,
        'store',
      );
      const server = await start('r');
      // A browse read of a directory: the error from the filesystem is an answer, not a path.
      const answer = await server.request(1, 'browse', { snapshot: 'one', path: 'many', action: 'read', offset: 0, length: 1 });
      assert.deepEqual(answer.result, { errno: 'EISDIR' });
      for (const { message, hint } of errorsSeen) {
        for (const text of [message, hint ?? '']) {
          // The directory itself the client named; nothing below or beside it.
          assert.ok(!text.includes(`${dir}/`) && !text.replaceAll(dir, '').includes(pool.mountPoint), text);
          assert.ok(!text.includes(`${evilDir}/`) && !text.replaceAll(evilDir, '').includes(evilPool.mountPoint), text);
        }
      }
      assert.ok(errorsSeen.length > 20);
    });
  });
});
