import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deviceOfMount } from '../../../src/fuse/mount-session.js';

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
