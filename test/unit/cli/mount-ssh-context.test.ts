import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mountSshContext } from '../../../src/cli/mount-action.js';

describe('how the mount opens ssh:// stores', () => {
  test('mode w (mkdir, cp -r and rmdir may all reach any store); r with --read-only', () => {
    assert.deepEqual(mountSshContext(false, {}), { mode: 'w' });
    assert.deepEqual(mountSshContext(true, {}), { mode: 'r' });
  });

  test('the remote command and known_hosts files come from the environment, as for sync', () => {
    assert.deepEqual(mountSshContext(false, { BUTTERSINK_REMOTE_COMMAND: 'sudo -n /opt/bs/buttersink', BUTTERSINK_KNOWN_HOSTS: '/a:/b' }), {
      mode: 'w',
      remoteCommand: 'sudo -n /opt/bs/buttersink',
      knownHostsFiles: ['/a', '/b'],
    });
    assert.deepEqual(mountSshContext(true, { BUTTERSINK_REMOTE_COMMAND: '', BUTTERSINK_KNOWN_HOSTS: '' }), { mode: 'r' });
  });
});
