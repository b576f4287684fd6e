import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  fingerprint,
  hostKeyName,
  hostsFieldMatches,
  keyTypeOf,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from '../../../../src/stores/ssh/known-hosts.js';

/** A syntactically valid public key blob of a type (random key material). */
function blob(type: string): Buffer {
  const name = Buffer.from(type);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(name.length);
  const body = Buffer.alloc(36);
  body.writeUInt32BE(32);
  randomBytes(32).copy(body, 4);
  return Buffer.concat([head, name, body]);
}
const line = (hosts: string, key: Buffer, marker = ''): string =>
  `${marker ? `${marker} ` : ''}${hosts} ${keyTypeOf(key)} ${key.toString('base64')} comment`;
function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  const ed = blob('ssh-ed25519');
  const other = blob('ssh-ed25519');
  const rsa = blob('ssh-rsa');

  test('names a host as OpenSSH does: bare on port 22, [host]:port elsewhere', () => {
    assert.equal(hostKeyName('nas', 22), 'nas');
    assert.equal(hostKeyName('127.0.0.1', 2222), '[127.0.0.1]:2222');
  });

  test('a matching line with the same key is known; the port matters', () => {
    const entries = parseKnownHosts(line('[127.0.0.1]:2222', ed), 'kh');
    assert.deepEqual(verifyHostKey(entries, '127.0.0.1', 2222, ed), { status: 'known', source: 'kh:1' });
    assert.equal(verifyHostKey(entries, '127.0.0.1', 22, ed).status, 'unknown');
    assert.equal(verifyHostKey(entries, '127.0.0.1', 2223, ed).status, 'unknown');
  });

  test('hashed entries (|1|salt|hmac) match only their host name', () => {
    const entries = parseKnownHosts(`${line(hashed('[nas]:2222'), ed)}\n${line(hashed('other'), other)}`, 'kh');
    assert.equal(verifyHostKey(entries, 'nas', 2222, ed).status, 'known');
    assert.equal(verifyHostKey(entries, 'nas', 22, ed).status, 'unknown');
    assert.equal(verifyHostKey(entries, 'other', 22, ed).status, 'changed');
  });

  test('a different key of the same type is a changed key; of another type, unknown', () => {
    const entries = parseKnownHosts(line('nas,10.0.0.2', other), 'kh');
    assert.deepEqual(verifyHostKey(entries, 'nas', 22, ed), { status: 'changed', source: 'kh:1' });
    assert.deepEqual(verifyHostKey(entries, '10.0.0.2', 22, rsa), { status: 'unknown', otherTypes: ['ssh-ed25519'] });
  });

  test('any matching line with the key accepts, even after one with another key', () => {
    const entries = parseKnownHosts(`${line('nas', other)}\n${line('nas', ed)}`, 'kh');
    assert.equal(verifyHostKey(entries, 'nas', 22, ed).status, 'known');
  });

  test('patterns: wildcards, case, and negation', () => {
    assert.equal(hostsFieldMatches('*.example.org', 'nas.EXAMPLE.org'), true);
    assert.equal(hostsFieldMatches('nas?', 'nas1'), true);
    assert.equal(hostsFieldMatches('*.example.org,!evil.example.org', 'evil.example.org'), false);
    assert.equal(hostsFieldMatches('[nas]:*', '[nas]:2222'), true);
    assert.equal(hostsFieldMatches('nas', 'nas2'), false);
    assert.equal(hostsFieldMatches('n.s', 'nas'), false, 'a dot is literal');
  });

  test('@revoked refuses the key for every host; @cert-authority lines are not trusted as keys', () => {
    const entries = parseKnownHosts(`${line('nas', ed)}\n${line('*', ed, '@revoked')}\n${line('*', other, '@cert-authority')}`, 'kh');
    assert.deepEqual(verifyHostKey(entries, 'nas', 22, ed), { status: 'revoked', source: 'kh:2' });
    assert.equal(verifyHostKey(entries, 'nas', 22, other).status, 'changed');
  });

  test('comments, blank, short, corrupt and mistyped lines are skipped', () => {
    const text = ['# comment', '', 'nas', `nas ssh-rsa ${ed.toString('base64')}`, 'nas ssh-ed25519 !!!', line('nas', ed)].join('\n');
    const entries = parseKnownHosts(text, 'kh');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.source, 'kh:6');
  });

  test('prefers the host key algorithms known for the host (rsa keys in all their signatures)', () => {
    const entries = parseKnownHosts(`${line('nas', rsa)}\n${line('other', ed)}`, 'kh');
    assert.deepEqual(preferredHostKeyAlgorithms(entries, 'nas', 22), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    assert.deepEqual(preferredHostKeyAlgorithms(entries, 'nowhere', 22), []);
  });

  test('fingerprints look like ssh-keygen -l', () => {
    assert.match(fingerprint(ed), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
