import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TransferStatus } from '../../../src/fuse/transfer-status.js';
import { parseGetfattr } from '../../../src/stores/btrfs/local-xattrs.js';

describe('TransferStatus: the text of /.buttersink/status and /log', () => {
  test('shows transfers in progress with bytes, rate and ETA, then the last errors', () => {
    const clock = { t: Date.parse('2026-11-29T00:00:00Z') };
    const lines: string[] = [];
    const status = new TransferStatus(
      () => clock.t,
      (l) => lines.push(l),
    );
    assert.match(status.renderStatus(), /no transfers in progress\n\nno errors\n$/);
    const record = status.start('daily/s1', 'A', 'B', 100 * 1024 * 1024, 'daily/s0');
    clock.t += 10_000;
    record.bytes = 50 * 1024 * 1024;
    const text = status.renderStatus();
    assert.match(text, /transfers in progress \(1\):/);
    assert.match(text, /daily\/s1 {2}A -> B {2}from daily\/s0 {2}50 MiB \/ 100 MiB \(50%\) {2}5 MiB\/s {2}ETA 10 s/);
    status.finish(record, { ok: false, reason: 'btrfs receive failed' });
    const after = status.renderStatus();
    assert.match(after, /no transfers in progress/);
    assert.match(
      after,
      /last errors \(1, newest last\):\n {2}2026-11-29T00:00:10.000Z transfer of daily\/s1 to B failed: btrfs receive failed/,
    );
    assert.equal(status.activeTransfers, 0);
    assert.match(status.renderLog(), /transfer daily\/s1: A -> B \(from daily\/s0, ~100 MiB\)\n.*error: transfer of daily\/s1/);
    assert.equal(lines.length, 2);
  });

  test('keeps only the most recent errors', () => {
    const status = new TransferStatus(() => 0);
    for (let i = 0; i < 30; i++) status.error(`e${i}`);
    const text = status.renderStatus();
    assert.doesNotMatch(text, /e9\n/);
    assert.match(text, /e29\n$/);
    assert.match(text, /last errors \(20,/);
  });
});

describe('parseGetfattr', () => {
  test('reads hex values per file, unescaping odd bytes in paths', () => {
    const out = '# file: /s/small\nuser.note=0x6869\nsecurity.capability=0x0100\n\n# file: /s/new\\012line\nuser.x\n\n';
    const parsed = parseGetfattr(out);
    assert.deepEqual([...parsed.keys()], ['/s/small', '/s/new\nline']);
    assert.equal(parsed.get('/s/small')!.get('user.note')!.toString(), 'hi');
    assert.equal(parsed.get('/s/new\nline')!.get('user.x')!.length, 0);
  });
});
