import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { isRunning, ownIdentityText, parseIdentity, whereStuck } from '../../../src/util/process-info.js';

test('a PID file names this process by PID and start time; a later process with that PID is not it', () => {
  const own = parseIdentity(ownIdentityText());
  assert.equal(own?.pid, process.pid);
  assert.match(own?.startTime ?? '', /^\d+$/);
  assert.ok(isRunning(own!));
  assert.ok(!isRunning({ pid: process.pid, startTime: `${Number(own!.startTime) + 1}` }), 'same PID, another start time');
  assert.ok(isRunning({ pid: process.pid }), 'a note without a start time trusts the PID');
});

test('parseIdentity refuses what names no PID', () => {
  for (const text of ['', '\n', 'abc', '0', '-5 12', '1.5']) assert.equal(parseIdentity(text), undefined, JSON.stringify(text));
  assert.deepEqual(parseIdentity('42\n'), { pid: 42 });
  assert.deepEqual(parseIdentity('42 9001\n'), { pid: 42, startTime: '9001' });
});

test('an exited process is not running, also while it is a zombie; whereStuck says where a live one waits', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  await once(child, 'spawn');
  const identity = { pid: child.pid! };
  assert.ok(isRunning(identity));
  // Just started, it may still be running (state R) on its way to sleep.
  let where = whereStuck(child.pid!);
  for (let i = 0; i < 200 && !where.startsWith('state S'); i++) {
    await new Promise((r) => setTimeout(r, 10));
    where = whereStuck(child.pid!);
  }
  assert.match(where, /^state S; threads in \S+/);
  process.kill(child.pid!, 'SIGKILL');
  // Not reaped until the event loop runs: a zombie for a moment.
  for (let i = 0; i < 100 && isRunning(identity); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(!isRunning(identity));
  await exited;
  assert.equal(whereStuck(child.pid!), 'it is gone');
});
