import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AuthMethod, Client as SshClient, ConnectConfig } from 'ssh2';
import { PermissionError, StoreError } from '../../model/errors.js';
import {
  fingerprint,
  hostKeyName,
  keyTypeOf,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  verifyHostKey,
  type HostKeyVerdict,
  type KnownHost,
} from './known-hosts.js';
import { resolveSshTarget, type SshTarget, type TargetInput } from './ssh-target.js';

const { Client, utils } = ssh2;

export interface ConnectOptions {
  /** known_hosts files to use instead of the user's and the system's. */
  readonly knownHostsFiles?: readonly string[];
  /** The ssh config file (default `~/.ssh/config`). */
  readonly configFile?: string;
  readonly signal?: AbortSignal;
  /** Called once the connection is under way (files read, keys parsed, the socket connecting). */
  readonly onConnecting?: () => void;
}

export interface SshConnection {
  readonly client: SshClient;
  readonly target: SshTarget;
}

/** Host key algorithms ssh2 1.17 can verify; only these may be offered first. */
const SUPPORTED_HOST_KEYS = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
]);

/**
 * Opens one SSH connection as OpenSSH would for `ssh [user@]host [-p port]`: `~/.ssh/config`,
 * the agent (`SSH_AUTH_SOCK`) and the identity files, and the host key checked against
 * known_hosts — an unknown, changed or revoked key is refused, never trusted silently.
 * @throws StoreError when the host cannot be reached or its key is not known to be right.
 * @throws PermissionError when no key is accepted.
 */
export async function connectSsh(input: TargetInput, options: ConnectOptions = {}): Promise<SshConnection> {
  const home = os.homedir();
  const configFile = options.configFile ?? path.join(home, '.ssh', 'config');
  const target = resolveSshTarget(input, {
    config: await readFile(configFile, 'utf8').catch(() => null),
    home,
    localUser: os.userInfo().username,
    ...(options.knownHostsFiles ? { knownHostsFiles: options.knownHostsFiles } : {}),
  });
  const knownHosts = await readKnownHosts(target.knownHostsFiles);
  const { methods, tried, skipped } = await authMethods(target);
  const where = `${target.user}@${hostKeyName(target.hostname, target.port)}`;

  let verdict: HostKeyVerdict | undefined;
  let presented: Buffer | undefined;
  const preferred = preferredHostKeyAlgorithms(knownHosts, target.hostname, target.port).filter((a) => SUPPORTED_HOST_KEYS.has(a));
  const config: ConnectConfig = {
    host: target.hostname,
    port: target.port,
    username: target.user,
    authHandler: methods,
    hostVerifier: (key: Buffer) => {
      presented = key;
      verdict = verifyHostKey(knownHosts, target.hostname, target.port, key);
      return verdict.status === 'known';
    },
    ...(preferred.length > 0 ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as never } } : {}),
    readyTimeout: 20_000,
    // A dead peer is noticed within a minute instead of hanging a transfer forever.
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
  };

  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      // ssh2 still reports the cut ("Connection lost before handshake"): nobody waits for it.
      client.on('error', () => {});
      // Not end(): a half-closed socket waits for a peer that may never answer (readyTimeout).
      client.destroy();
      reject(new StoreError(`connecting to ${where} was interrupted`));
    };
    // Aborted while the files above were read: the listener below would never fire.
    if (options.signal?.aborted) {
      reject(new StoreError(`connecting to ${where} was interrupted`));
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    client.once('error', (error: Error & { level?: string; code?: string }) => {
      options.signal?.removeEventListener('abort', onAbort);
      client.end();
      if (verdict !== undefined && verdict.status !== 'known' && presented !== undefined) {
        reject(hostKeyError(verdict, presented, target, knownHosts.length));
      } else if (error.level === 'client-authentication') {
        reject(
          new PermissionError(`authentication as ${where} failed (tried: ${tried.join(', ') || 'nothing'})`, {
            hint:
              (skipped.length > 0 ? `skipped ${skipped.join(', ')}; ` : '') +
              `add this machine's public key to ~${target.user}/.ssh/authorized_keys on ${target.hostname}, or load a key into ssh-agent`,
          }),
        );
      } else {
        reject(connectError(error, target));
      }
    });
    client.connect(config);
    options.onConnecting?.();
  });
  return { client, target };
}

async function readKnownHosts(files: readonly string[]): Promise<KnownHost[]> {
  const texts = await Promise.all(
    files.map((f) =>
      readFile(f, 'utf8').then(
        (t) => parseKnownHosts(t, f),
        () => [],
      ),
    ),
  );
  return texts.flat();
}

/** The agent first (unless IdentitiesOnly), then each identity file without a passphrase. */
async function authMethods(target: SshTarget): Promise<{ methods: AuthMethod[]; tried: string[]; skipped: string[] }> {
  const methods: AuthMethod[] = [];
  const tried: string[] = [];
  const skipped: string[] = [];
  const agent = process.env.SSH_AUTH_SOCK;
  if (agent && !target.identitiesOnly) {
    methods.push({ type: 'agent', username: target.user, agent } as AuthMethod);
    tried.push('ssh-agent');
  }
  const shown = (f: string): string => f.replace(os.homedir(), '~');
  for (const file of target.identityFiles) {
    const key = await readFile(file).catch(() => undefined);
    if (key === undefined) continue;
    const parsed = utils.parseKey(key);
    if (parsed instanceof Error) {
      // No prompt here: a key with a passphrase must come through the agent.
      skipped.push(`${shown(file)} (${/passphrase|encrypted/i.test(parsed.message) ? 'has a passphrase: use ssh-agent' : 'unreadable'})`);
      continue;
    }
    methods.push({ type: 'publickey', username: target.user, key } as AuthMethod);
    tried.push(shown(file));
  }
  return { methods: methods.length > 0 ? methods : [{ type: 'none', username: target.user } as AuthMethod], tried, skipped };
}

function hostKeyError(verdict: HostKeyVerdict, key: Buffer, target: SshTarget, knownCount: number): StoreError {
  const name = hostKeyName(target.hostname, target.port);
  const print = `${keyTypeOf(key)} ${fingerprint(key)}`;
  const scan = `ssh-keyscan ${target.port === 22 ? '' : `-p ${target.port} `}${target.hostname} >> ~/.ssh/known_hosts`;
  switch (verdict.status) {
    case 'revoked':
      return new StoreError(`the host key of ${name} (${print}) is REVOKED in ${verdict.source}: refusing to connect`);
    case 'changed':
      return new StoreError(
        `the HOST KEY of ${name} HAS CHANGED: it presented ${print}, ${verdict.source} records another; someone may be intercepting the connection, refusing to connect`,
        {
          hint: `if the server's key really changed, check the new fingerprint with its admin, then remove the old one: ssh-keygen -R '${name}'`,
        },
      );
    default: {
      const why =
        verdict.status === 'unknown' && verdict.otherTypes.length > 0
          ? ` (known_hosts has only ${verdict.otherTypes.join(', ')} keys for it)`
          : knownCount === 0
            ? ' (no known_hosts file has any entry)'
            : '';
      return new StoreError(`the host key of ${name} is unknown${why}: ${print}; refusing to trust it silently`, {
        hint: `check the fingerprint with the server's admin, then trust it: ${scan}`,
      });
    }
  }
}

function connectError(error: Error & { level?: string; code?: string }, target: SshTarget): StoreError {
  const where = `${target.hostname}:${target.port}`;
  const reason =
    error.code === 'ECONNREFUSED'
      ? 'connection refused'
      : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
        ? 'host not found'
        : error.level === 'client-timeout' || error.code === 'ETIMEDOUT'
          ? 'timed out'
          : error.message;
  return new StoreError(`cannot connect to ${where}${target.alias !== target.hostname ? ` (${target.alias})` : ''}: ${reason}`, {
    cause: error,
    hint: 'check the host name and port, and that sshd runs there',
  });
}
