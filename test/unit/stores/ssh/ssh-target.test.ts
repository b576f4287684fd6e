import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandPath, resolveSshTarget } from '../../../../src/stores/ssh/ssh-target.js';

const env = { home: '/home/me', localUser: 'me' };
const CONFIG = `
Host nas
  HostName 192.168.1.5
  Port 2222
  User backup
  IdentityFile ~/.ssh/nas_key
  IdentityFile %d/.ssh/%r@%h
  UserKnownHostsFile ~/.ssh/kh_nas /etc/extra_hosts
  IdentitiesOnly yes

Host *
  User fallback
  port 2200
`;

describe('resolveSshTarget', () => {
  test('a Host alias takes HostName, Port, User, identity and known_hosts files from the config, ~ and % expanded', () => {
    const t = resolveSshTarget({ host: 'nas', user: null, port: null }, { ...env, config: CONFIG });
    assert.equal(t.alias, 'nas');
    assert.equal(t.hostname, '192.168.1.5');
    assert.equal(t.port, 2222);
    assert.equal(t.user, 'backup');
    assert.deepEqual(t.identityFiles, ['/home/me/.ssh/nas_key', '/home/me/.ssh/backup@192.168.1.5']);
    assert.equal(t.identitiesOnly, true);
    assert.deepEqual(t.knownHostsFiles, [
      '/home/me/.ssh/kh_nas',
      '/etc/extra_hosts',
      '/etc/ssh/ssh_known_hosts',
      '/etc/ssh/ssh_known_hosts2',
    ]);
  });

  test('the URL wins over the config; the first obtained value wins inside it', () => {
    const t = resolveSshTarget({ host: 'nas', user: 'root', port: 22 }, { ...env, config: CONFIG });
    assert.equal(t.user, 'root');
    assert.equal(t.port, 22);
    const other = resolveSshTarget({ host: 'elsewhere', user: null, port: null }, { ...env, config: CONFIG });
    assert.equal(other.hostname, 'elsewhere');
    assert.equal(other.user, 'fallback');
    assert.equal(other.port, 2200);
  });

  test('without a config: the local user, port 22, the default identities and known_hosts files', () => {
    const t = resolveSshTarget({ host: 'h', user: null, port: null }, { ...env, config: null });
    assert.equal(t.user, 'me');
    assert.equal(t.port, 22);
    assert.deepEqual(t.identityFiles, ['/home/me/.ssh/id_rsa', '/home/me/.ssh/id_ecdsa', '/home/me/.ssh/id_ed25519']);
    assert.deepEqual(t.knownHostsFiles, [
      '/home/me/.ssh/known_hosts',
      '/home/me/.ssh/known_hosts2',
      '/etc/ssh/ssh_known_hosts',
      '/etc/ssh/ssh_known_hosts2',
    ]);
    assert.equal(t.identitiesOnly, false);
  });

  test('given known_hosts files replace both the user and the system ones', () => {
    const t = resolveSshTarget({ host: 'nas', user: null, port: null }, { ...env, config: CONFIG, knownHostsFiles: ['/tmp/kh'] });
    assert.deepEqual(t.knownHostsFiles, ['/tmp/kh']);
  });

  test('expandPath leaves other text alone', () => {
    const v = { ...env, hostname: 'h', user: 'u', port: 22 };
    assert.equal(expandPath('/a/~b/100%%', v), '/a/~b/100%');
    assert.equal(expandPath('~', v), '/home/me');
  });
});
