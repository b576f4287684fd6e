import SSHConfig from 'ssh-config';
import path from 'node:path';

/** Where and as whom to connect, after `~/.ssh/config` had its say. */
export interface SshTarget {
  /** The host as the URL names it (maybe a Host alias), for messages. */
  readonly alias: string;
  /** The host to connect to (config HostName, else the alias). */
  readonly hostname: string;
  readonly port: number;
  readonly user: string;
  /** Private key files to try, in order (config IdentityFile, else OpenSSH's defaults). */
  readonly identityFiles: readonly string[];
  /** Whether to use only the identity files, not every key the agent holds. */
  readonly identitiesOnly: boolean;
  /** known_hosts files: the user's (UserKnownHostsFile) then the system's (GlobalKnownHostsFile). */
  readonly knownHostsFiles: readonly string[];
}

export interface TargetInput {
  readonly host: string;
  readonly user: string | null;
  readonly port: number | null;
}

export interface TargetEnvironment {
  /** Text of the user's ssh config, or null when there is none. */
  readonly config: string | null;
  readonly home: string;
  readonly localUser: string;
  /** Replaces both the user's and the system's known_hosts files when given. */
  readonly knownHostsFiles?: readonly string[];
}

const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ed25519'];

/**
 * Resolves a URL's host, user and port as OpenSSH would: the URL wins, then the first
 * obtained value in `~/.ssh/config` (ssh-config computes Host/Match blocks), then defaults.
 * ssh-config expands nothing: `~` and the common `%` tokens are expanded here. Pure.
 * `Match exec` is not evaluated: reading a config must not run commands.
 */
export function resolveSshTarget(input: TargetInput, env: TargetEnvironment): SshTarget {
  const computed =
    env.config === null
      ? {}
      : SSHConfig.parse(env.config).compute(
          { Host: input.host, ...(input.user ? { User: input.user } : {}) },
          { ignoreCase: true, matchExec: false },
        );
  const get = (key: string): string | string[] | undefined => computed[key.toLowerCase()];
  const first = (key: string): string | undefined => {
    const value = get(key);
    return Array.isArray(value) ? value[0] : value;
  };
  const list = (key: string): string[] => {
    const value = get(key);
    if (value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/\s+/)).filter((v) => v !== '' && v.toLowerCase() !== 'none');
  };
  const hostname = first('HostName') ?? input.host;
  const user = input.user ?? first('User') ?? env.localUser;
  const configPort = first('Port');
  const port = input.port ?? (configPort !== undefined && /^\d+$/.test(configPort) ? Number(configPort) : 22);
  const expand = (p: string): string => expandPath(p, { home: env.home, localUser: env.localUser, hostname, user, port });
  const identityFiles = list('IdentityFile').map(expand);
  const userKnown = list('UserKnownHostsFile').map(expand);
  const globalKnown = list('GlobalKnownHostsFile').map(expand);
  return {
    alias: input.host,
    hostname: hostname.includes('%') ? expand(hostname) : hostname,
    port,
    user,
    identityFiles: identityFiles.length > 0 ? identityFiles : DEFAULT_IDENTITIES.map((f) => path.join(env.home, '.ssh', f)),
    identitiesOnly: first('IdentitiesOnly')?.toLowerCase() === 'yes',
    knownHostsFiles: env.knownHostsFiles ?? [
      ...(userKnown.length > 0 ? userKnown : [path.join(env.home, '.ssh/known_hosts'), path.join(env.home, '.ssh/known_hosts2')]),
      ...(globalKnown.length > 0 ? globalKnown : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
    ],
  };
}

/** `~`, `%d` (home), `%u` (local user), `%h` (host), `%r` (remote user), `%p` (port), `%%`. */
export function expandPath(
  p: string,
  v: { readonly home: string; readonly localUser: string; readonly hostname: string; readonly user: string; readonly port: number },
): string {
  const tilde = p === '~' ? v.home : p.startsWith('~/') ? path.join(v.home, p.slice(2)) : p;
  const tokens: Record<string, string> = { d: v.home, u: v.localUser, h: v.hostname, r: v.user, p: String(v.port), '%': '%' };
  return tilde.replace(/%([duhrp%])/g, (_m, t: string) => tokens[t]!);
}
