import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkStores, deviceOfMount } from '../../../src/fuse/mount-session.js';
import { StoreError } from '../../../src/model/errors.js';
import { MemoryStore } from '../../support/memory-store.js';

// Lines as /proc/self/mountinfo has them (kernel 6.x), blanks in paths escaped as \040.
const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '301 22 0:92 / /tmp/mr/mnt rw,nosuid,nodev,relatime shared:160 - fuse.buttersink buttersink rw,user_id=0,group_id=0',
  '305 22 0:95 / /tmp/with\\040blank rw,nosuid,nodev,relatime shared:161 - fuse.buttersink buttersink rw,user_id=0,group_id=0',
  '310 22 0:96 / /tmp/twice rw shared:162 - tmpfs tmpfs rw',
  '311 310 0:97 / /tmp/twice rw shared:163 - fuse.buttersink buttersink rw,user_id=0,group_id=0',
  '',
].join('\n');

describe('deviceOfMount: the backing device whose read-ahead the mount raises', () => {
  test('the MAJOR:MINOR of the filesystem mounted at the path', () => {
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/mr/mnt'), '0:92');
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/mr/mnt/'), '0:92', 'a trailing slash is the same path');
  });

  test('a mount point with a blank, as mountinfo escapes it', () => {
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/with blank'), '0:95');
  });

  test('of two mounts on one path, the one on top (listed last)', () => {
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/twice'), '0:97');
  });

  test('nothing mounted there, or only below it: undefined', () => {
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/mr'), undefined);
    assert.equal(deviceOfMount(MOUNTINFO, '/tmp/mr/mnt/A'), undefined);
  });
});

describe('checkStores: the pre-flight listing of every store before mounting', () => {
  const named = (name: string, store: MemoryStore) => ({ name, store });

  test('stores that list pass, an empty one too', async () => {
    const a = new MemoryStore('mem://a/');
    a.add('s1');
    await checkStores([named('A', a), named('B', new MemoryStore('mem://b/'))], 1000);
  });

  test('a failing store: its own error (class, so exit code, and hint) naming the store; every failing store named', async () => {
    const down = new MemoryStore('mem://down/');
    down.isDown = true;
    const gone = new MemoryStore('mem://gone/');
    gone.location.exists = false;
    await assert.rejects(
      checkStores([named('A', new MemoryStore('mem://a/')), named('D', down), named('G', gone)], 1000),
      (e: unknown) =>
        e instanceof StoreError &&
        e.exitCode === 4 &&
        e.message ===
          'cannot mount: store D (mem://down/): mem://down/ cannot be reached; store G (mem://gone/): mem://gone/ does not exist',
    );
  });

  test('a store that never answers fails after the timeout, naming it', async () => {
    const silent = new MemoryStore('mem://silent/');
    silent.isSilent = true;
    await assert.rejects(
      checkStores([named('S', silent)], 50),
      (e: unknown) => e instanceof StoreError && e.message === 'cannot mount: store S (mem://silent/): no answer within 0.05 s',
    );
  });
});
