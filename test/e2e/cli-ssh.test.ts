import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fingerprint } from '../../src/stores/ssh/known-hosts.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { sshSuite } from '../support/prerequisites.js';
import { cli, cliInBackground } from '../support/run-cli.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = sshSuite();

/** Every subvolume below `dir` (complete or not), relative to the pool's top level. */
function subvolumes(dir: string): string[] {
  const top = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', dir], { encoding: 'utf8' }).trim();
  const rel = path.relative(top, dir);
  return execFileSync('btrfs', ['subvolume', 'list', top], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .filter((p) => rel === '' || p.startsWith(`${rel}/`))
    .sort();
}

function assertSameTree(a: string, b: string): void {
  assert.deepEqual(treeDigest(b), treeDigest(a), `${b} differs from ${a}`);
}

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('buttersink sync over SSH (real sshd on loopback, remote runs this CLI)', suite, () => {
  let sshd: TestSshd;
  let src: BtrfsPool;
  let dst: BtrfsPool;
  let data: string;
  let cache: string;
  let env: NodeJS.ProcessEnv;
  /** The destination pool as the ssh config alias names it. */
  let remoteDst: string;

  before(async () => {
    sshd = await startSshd();
    src = createPool(512);
    dst = createPool(512);
    data = makeRichSubvolume(src.mountPoint);
    snapshot(data, `${src.mountPoint}/snaps/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${src.mountPoint}/snaps/s2`);
    cache = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    env = { ...sshd.env, BUTTERSINK_CACHE_DIR: cache };
    remoteDst = `ssh://buttersink-test${dst.mountPoint}`;
  });
  after(async () => {
    await sshd?.stop();
    src?.destroy();
    dst?.destroy();
    if (cache) rmSync(cache, { recursive: true, force: true });
  });

  test('push through a ~/.ssh/config Host alias: everything, then only the new diff, byte for byte', () => {
    mkdirSync(`${dst.mountPoint}/backup`);
    const first = cli(['-q', `${src.mountPoint}/snaps/`, `${remoteDst}/backup/`], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /done: sent 2 snapshots/);
    assertSameTree(`${src.mountPoint}/snaps/s1`, `${dst.mountPoint}/backup/s1`);
    assertSameTree(`${src.mountPoint}/snaps/s2`, `${dst.mountPoint}/backup/s2`);

    changeRichSubvolume(data, 2);
    snapshot(data, `${src.mountPoint}/snaps/s3`);
    const second = cli([`${src.mountPoint}/snaps/`, `${remoteDst}/backup/`], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /sent s3 \(from s2\)/);
    assert.match(second.stdout, /done: sent 1 snapshot /);
    assertSameTree(`${src.mountPoint}/snaps/s3`, `${dst.mountPoint}/backup/s3`);

    const listing = cli(['--json', `${remoteDst}/backup/`], { env });
    assert.equal(listing.code, 0, listing.stderr);
    assert.deepEqual(
      (JSON.parse(listing.stdout) as { name: string }[]).map((s) => s.name),
      ['s1', 's2', 's3'],
    );
    const third = cli([`${src.mountPoint}/snaps/`, `${remoteDst}/backup/`], { env });
    assert.match(third.stdout, /is up to date \(3 snapshots\)/);
  });

  test('--rate-limit over SSH: the stream goes no faster than asked (a Throttle in the stream), and arrives whole', () => {
    sh(
      `btrfs -q subvolume create rate-data && head -c 3145728 /dev/urandom > rate-data/blob && mkdir rate-src &&
       btrfs -q subvolume snapshot -r rate-data rate-src/r1`,
      src.mountPoint,
    );
    mkdirSync(`${dst.mountPoint}/rate-dst`);
    const started = performance.now();
    const res = cli(['-q', '--rate-limit', '1M', `${src.mountPoint}/rate-src/`, `${remoteDst}/rate-dst/`], { env });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(res.code, 0, res.stderr);
    assertSameTree(`${src.mountPoint}/rate-src/r1`, `${dst.mountPoint}/rate-dst/r1`);
    // A lower bound only (a slow machine takes longer anyway): 3 MiB at 1 MiB/s, of which at
    // most a second's worth may go at once, cannot take under 2 s.
    assert.ok(seconds >= 2, `3 MiB at --rate-limit 1M took ${seconds.toFixed(2)} s`);
  });

  test('pull with user@host:port and --known-hosts, then -d mirrors deletions onto the remote', () => {
    mkdirSync(`${src.mountPoint}/restored`);
    const url = `ssh://root@127.0.0.1:${sshd.port}${dst.mountPoint}/backup/`;
    // A HOME with the key only (no config, no known_hosts): --known-hosts is what makes it work.
    const home = mkdtempSync(path.join(cache, 'home-'));
    mkdirSync(`${home}/.ssh`);
    copyFileSync(`${sshd.home}/.ssh/id_ed25519`, `${home}/.ssh/id_ed25519`);
    const withoutFlag = cli([url], { env: { ...env, HOME: home } });
    assert.equal(withoutFlag.code, 4, withoutFlag.stderr);
    assert.match(withoutFlag.stderr, /is unknown/);
    const pulled = cli(['-q', '--known-hosts', sshd.knownHosts, url, `${src.mountPoint}/restored/`], { env: { ...env, HOME: home } });
    assert.equal(pulled.code, 0, pulled.stderr);
    for (const name of ['s1', 's2', 's3']) assertSameTree(`${src.mountPoint}/snaps/${name}`, `${src.mountPoint}/restored/${name}`);

    sh(`btrfs -q subvolume delete snaps/s1`, src.mountPoint);
    const mirrored = cli(['-q', '-d', `${src.mountPoint}/snaps/`, `${remoteDst}/backup/`], { env });
    assert.equal(mirrored.code, 0, mirrored.stderr);
    assert.match(mirrored.stdout, /deleted 1/);
    assert.deepEqual(
      subvolumes(`${dst.mountPoint}/backup`).map((p) => path.basename(p)),
      ['s2', 's3'],
    );
  });

  test('keys from ssh-agent (SSH_AUTH_SOCK) log in when HOME has none', () => {
    const home = mkdtempSync(path.join(cache, 'agent-home-'));
    const socket = path.join(home, 'agent.sock');
    const started = execFileSync('ssh-agent', ['-s', '-a', socket], { encoding: 'utf8' });
    const agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(started)?.[1]);
    assert.ok(agentPid > 0, started);
    try {
      execFileSync('ssh-add', ['-q', `${sshd.home}/.ssh/id_ed25519`], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      const url = `ssh://root@127.0.0.1:${sshd.port}${dst.mountPoint}/backup/`;
      const withAgent = cli(['--json', '--known-hosts', sshd.knownHosts, url], { env: { ...env, HOME: home, SSH_AUTH_SOCK: socket } });
      assert.equal(withAgent.code, 0, withAgent.stderr);
      assert.ok((JSON.parse(withAgent.stdout) as unknown[]).length > 0);
      const without = cli(['--known-hosts', sshd.knownHosts, url], { env: { ...env, HOME: home, SSH_AUTH_SOCK: '' } });
      assert.equal(without.code, 3, without.stderr);
      assert.match(without.stderr, /authentication as root@\[127\.0\.0\.1\]:\d+ failed/);
    } finally {
      process.kill(agentPid, 'SIGTERM');
    }
  });

  test('an unknown host key: exit 4, one line with the fingerprint and how to trust it', () => {
    const empty = path.join(cache, 'empty_known_hosts');
    writeFileSync(empty, '');
    const res = cli([`ssh://root@127.0.0.1:${sshd.port}${dst.mountPoint}/backup/`], { env: { ...env, BUTTERSINK_KNOWN_HOSTS: empty } });
    assert.equal(res.code, 4, res.stderr);
    const print = fingerprint(Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64'));
    assert.ok(res.stderr.includes(print), res.stderr);
    assert.match(
      res.stderr.trim(),
      /^buttersink: the host key of \[127\.0\.0\.1\]:\d+ is unknown.*: .*\(.*ssh-keyscan -p \d+ 127\.0\.0\.1 >> ~\/\.ssh\/known_hosts.*\)$/,
    );
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.equal(res.stdout, '');
  });

  test('a changed host key: exit 4, refused loudly, nothing sent', () => {
    const wrong = path.join(cache, 'wrong_known_hosts');
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ${sshd.otherPublicKey}\n`);
    const before = subvolumes(`${dst.mountPoint}/backup`);
    const res = cli(['--known-hosts', wrong, `${src.mountPoint}/snaps/`, `ssh://root@127.0.0.1:${sshd.port}${dst.mountPoint}/backup/`], {
      env,
    });
    assert.equal(res.code, 4, res.stderr);
    assert.match(res.stderr, /HOST KEY of \[127\.0\.0\.1\]:\d+ HAS CHANGED.*ssh-keygen -R/);
    assert.deepEqual(subvolumes(`${dst.mountPoint}/backup`), before);
  });

  test('the connection cut mid-push: exit 5, no complete-looking partial on the remote, the next run completes', async () => {
    const big = `${src.mountPoint}/big`;
    sh(
      `btrfs -q subvolume create ${big} && head -c 200000000 /dev/urandom > ${big}/blob && mkdir -p ${src.mountPoint}/bigsnaps && btrfs -q subvolume snapshot -r ${big} ${src.mountPoint}/bigsnaps/b1`,
    );
    const target = `${dst.mountPoint}/cut`;
    mkdirSync(target);
    const run = cliInBackground(['-q', `${src.mountPoint}/bigsnaps/`, `${remoteDst}/cut/`], env);
    await waitFor(() => readdirSync(target).some((n) => n.startsWith('.buttersink-partial.')));
    assert.ok(sshd.cutConnections() > 0, 'no connection to cut');
    const res = await run.done;
    assert.equal(res.code, 5, res.stderr);
    assert.match(res.stderr, /^buttersink: the connection to buttersink-test:.* was lost/);
    // The remote btrfs receive saw its input end before the stream's END command; the partial is gone.
    await waitFor(() => subvolumes(target).length === 0);
    assert.equal(existsSync(`${target}/b1`), false);

    const again = cli(['-q', `${src.mountPoint}/bigsnaps/`, `${remoteDst}/cut/`], { env });
    assert.equal(again.code, 0, again.stderr);
    assertSameTree(`${src.mountPoint}/bigsnaps/b1`, `${target}/b1`);
  });

  test('the connection cut mid-pull: exit 5, the local partial is removed, the next run completes', async () => {
    const target = `${src.mountPoint}/pulled-big`;
    mkdirSync(target);
    const run = cliInBackground(['-q', `${remoteDst}/cut/`, `${target}/`], env);
    await waitFor(() => readdirSync(target).some((n) => n.startsWith('.buttersink-partial.')));
    assert.ok(sshd.cutConnections() > 0, 'no connection to cut');
    const res = await run.done;
    assert.equal(res.code, 5, res.stderr);
    assert.match(res.stderr, /receiving b1: the connection to buttersink-test:.* was lost/);
    assert.deepEqual(subvolumes(target), []);

    const again = cli(['-q', `${remoteDst}/cut/`, `${target}/`], { env });
    assert.equal(again.code, 0, again.stderr);
    assertSameTree(`${src.mountPoint}/bigsnaps/b1`, `${target}/b1`);
  });

  test('remote server processes: one for control and one per transfer, none started after the last transfer', () => {
    sh(
      `btrfs -q subvolume create count-data && echo one > count-data/f && mkdir count-src &&
       btrfs -q subvolume snapshot -r count-data count-src/c1 && echo two >> count-data/f &&
       btrfs -q subvolume snapshot -r count-data count-src/c2`,
      src.mountPoint,
    );
    mkdirSync(`${dst.mountPoint}/count-dst`);
    // Every server the client starts appends a line (it runs as the remote command's prefix),
    // and every btrfs command the remote end runs is logged by a shim first in its PATH.
    const log = path.join(cache, 'servers.log');
    const btrfsLog = path.join(cache, 'remote-btrfs.log');
    const shim = mkdtempSync(path.join(cache, 'remote-bin-'));
    const real = execFileSync('sh', ['-c', 'command -v btrfs'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(shim, 'btrfs'), `#!/bin/sh\nprintf '%s\\n' "$*" >>${btrfsLog}\nexec ${real} "$@"\n`, { mode: 0o755 });
    const counting = {
      ...env,
      BUTTERSINK_REMOTE_COMMAND: `env PATH=${shim}:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'echo started >> ${log}; exec "$0" "$@"' ${env.BUTTERSINK_REMOTE_COMMAND}`,
    };
    const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    const push = (): { servers: number; listings: number } => {
      rmSync(log, { force: true });
      rmSync(btrfsLog, { force: true });
      const res = cli(['-q', `${src.mountPoint}/count-src/`, `${remoteDst}/count-dst/`], { env: counting });
      assert.equal(res.code, 0, res.stderr);
      return { servers: lines(log).length, listings: lines(btrfsLog).filter((l) => l.startsWith('subvolume list ')).length };
    };
    assert.equal(push().servers, 3, 'two snapshots: the control server and one per transfer');
    sh('echo three >> count-data/f && btrfs -q subvolume snapshot -r count-data count-src/c3', src.mountPoint);
    const nightly = push();
    assert.equal(nightly.servers, 2, "one snapshot: the control server and the transfer's, no spare for a transfer that never comes");
    // The control server: partials under the lock (1), the listing (3); the receive: the
    // snapshots a stream may use (3 + 1). The received snapshot's parent is one of the
    // directory's snapshots, so its answer needs no token and no listing after the receive.
    assert.ok(nightly.listings <= 8, `${nightly.listings} remote listings:\n${lines(btrfsLog).join('\n')}`);
    for (const name of ['c1', 'c2', 'c3']) assertSameTree(`${src.mountPoint}/count-src/${name}`, `${dst.mountPoint}/count-dst/${name}`);
  });

  test('a run that fails before it needs the remote does not wait for a connection that hangs', async () => {
    // A port that accepts and never answers: ssh2 would wait 20 s (readyTimeout) for its banner.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      mkdirSync(`${src.mountPoint}/empty-src`);
      const t0 = performance.now();
      const res = await cliInBackground([`${src.mountPoint}/empty-src/`, `ssh://root@127.0.0.1:${port}/backup/`], env).done;
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(res.code, 4, res.stderr);
      assert.match(res.stderr, /no read-only snapshots in/);
      // The warm-up's connection is dropped, not waited for: well under ssh2's 20 s timeout.
      assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s: it waited for the connection`);
    } finally {
      silent.close();
    }
  });

  test('a remote without buttersink: exit 4 with what to do', () => {
    const res = cli([`${remoteDst}/backup/`], { env: { ...env, BUTTERSINK_REMOTE_COMMAND: '/nonexistent/buttersink' } });
    assert.equal(res.code, 4, res.stderr);
    assert.match(res.stderr, /buttersink is not installed on buttersink-test:.*--remote-command/);
  });
});
