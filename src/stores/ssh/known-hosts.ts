import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * OpenSSH's known_hosts format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), parsed and matched
 * without I/O. ssh2 checks no host key by itself, so this is what stands between the user
 * and a man in the middle: anything not positively known is refused.
 */

/** One line of a known_hosts file. */
export interface KnownHost {
  /** `@revoked` keys are refused for every host; `@cert-authority` lines are not used. */
  readonly marker: 'revoked' | 'cert-authority' | null;
  /** The host field: comma-separated patterns, or one hashed `|1|salt|hmac` entry. */
  readonly hosts: string;
  readonly keyType: string;
  readonly key: Buffer;
  /** `file:line`, for messages. */
  readonly source: string;
}

/** Parses a known_hosts file; lines it cannot read are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string, file: string): KnownHost[] {
  const entries: KnownHost[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHost['marker'] = null;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hosts, keyType, base64] = fields;
    if (hosts === undefined || keyType === undefined || base64 === undefined || !/^[A-Za-z0-9+/]+=*$/.test(base64)) continue;
    const key = Buffer.from(base64, 'base64');
    // The blob starts with its own type name: a line whose two disagree is corrupt.
    if (keyTypeOf(key) !== keyType) continue;
    entries.push({ marker, hosts, keyType, key, source: `${file}:${index + 1}` });
  }
  return entries;
}

/** How known_hosts names a host: `host` on port 22, `[host]:port` elsewhere. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Does a line's host field name `name` (as {@link hostKeyName} makes it)? */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) return hashedMatches(hosts, name);
  let matched = false;
  for (const pattern of hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false; // a negated match wins
    } else if (globMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` (HashKnownHosts). */
function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|');
  if (salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** OpenSSH patterns: `*` any run, `?` one character, case-insensitive. */
function globMatches(pattern: string, name: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${regex}$`, 'i').test(name);
}

/** The result of checking a server's host key. */
export type HostKeyVerdict =
  | { readonly status: 'known'; readonly source: string }
  | { readonly status: 'revoked'; readonly source: string }
  /** A key of the same type is recorded for this host, and it is another one. */
  | { readonly status: 'changed'; readonly source: string }
  /** Nothing recorded for this key type; `otherTypes` lists the types that are. */
  | { readonly status: 'unknown'; readonly otherTypes: readonly string[] };

/**
 * Checks the key a server presented against known_hosts entries, as OpenSSH does: a revoked
 * key is refused whatever the host; a matching line with the same key accepts; a matching
 * line with the same key type but another key means the key changed.
 */
export function verifyHostKey(entries: readonly KnownHost[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', source: revoked.source };
  const name = hostKeyName(host, port);
  const forHost = entries.filter((e) => e.marker === null && hostsFieldMatches(e.hosts, name));
  const same = forHost.find((e) => e.key.equals(key));
  if (same) return { status: 'known', source: same.source };
  const type = keyTypeOf(key);
  const changed = forHost.find((e) => e.keyType === type);
  if (changed) return { status: 'changed', source: changed.source };
  return { status: 'unknown', otherTypes: [...new Set(forHost.map((e) => e.keyType))] };
}

/**
 * The host key algorithms to offer first: those whose keys are known for the host, so that a
 * server holding several key types shows the one we can check (OpenSSH does the same).
 */
export function preferredHostKeyAlgorithms(entries: readonly KnownHost[], host: string, port: number): string[] {
  const name = hostKeyName(host, port);
  const types = new Set(entries.filter((e) => e.marker === null && hostsFieldMatches(e.hosts, name)).map((e) => e.keyType));
  return [...types].flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}

/** The type name an SSH public key blob starts with (`ssh-ed25519`, ...), or '' if none. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return '';
  const length = blob.readUInt32BE(0);
  if (length > 64 || blob.length < 4 + length) return '';
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** `SHA256:...` as `ssh-keygen -l` and ssh print it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
