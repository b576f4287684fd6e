import path from 'node:path';
import { UsageError } from '../model/errors.js';

/**
 * Where a store is and which of its snapshots the user means.
 * The trailing `/` is significant, as in the original ButterSink: with it the URL names a
 * directory of snapshots (`selection` null), without it one snapshot (`selection` = its name).
 */
export type StoreLocation =
  | { readonly kind: 'btrfs'; readonly url: string; readonly directory: string; readonly selection: string | null }
  | {
      readonly kind: 'ssh';
      readonly url: string;
      readonly user: string | null;
      readonly host: string;
      readonly port: number | null;
      readonly directory: string;
      readonly selection: string | null;
    }
  | { readonly kind: 's3'; readonly url: string; readonly bucket: string; readonly prefix: string; readonly selection: string | null };

const FORMS = 'use /path/dir/, btrfs:///path/dir/, file:///path/dir/, ssh://[user@]host[:port]/path/dir/ or s3://bucket/prefix/';

export function parseStoreUrl(text: string, cwd: string = process.cwd()): StoreLocation {
  if (text.trim() === '') throw new UsageError('empty store URL', { hint: FORMS });
  if (text.includes('\0')) throw new UsageError(`bad store URL ${JSON.stringify(text)}: contains a NUL byte`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    // `host:/path` is scp syntax: refuse it rather than treat it as a local directory.
    if (/^[^/]*:/.test(text)) {
      throw new UsageError(`bad store URL ${JSON.stringify(text)}: unknown form`, { hint: FORMS });
    }
    return localLocation(text, path.resolve(cwd, text), text.endsWith('/'));
  }
  const rest = text.slice(scheme.length + 3);
  switch (scheme) {
    case 'btrfs':
    case 'file': {
      if (!rest.startsWith('/')) {
        throw new UsageError(`bad store URL ${JSON.stringify(text)}: ${scheme}:// URLs need an absolute path (${scheme}:///path/dir/)`);
      }
      return localLocation(text, decodePath(text, rest), rest.endsWith('/'));
    }
    case 'ssh': {
      // User and host may not be empty, contain '@', or start with '-' (ssh option injection).
      const m = /^(?:([^@/\s-][^@/\s]*)@)?(\[[^\]@]+\]|[^:/@\s-][^:/@\s]*)(?::(\d+))?(\/.*)$/.exec(rest);
      if (!m) throw new UsageError(`bad store URL ${JSON.stringify(text)}: expected ssh://[user@]host[:port]/path/dir/`);
      const port = m[3] === undefined ? null : Number(m[3]);
      if (port !== null && (port < 1 || port > 65535))
        throw new UsageError(`bad store URL ${JSON.stringify(text)}: port ${m[3]} is out of range`);
      const { directory, selection } = split(decodePath(text, m[4]!), m[4]!.endsWith('/'));
      return { kind: 'ssh', url: text, user: m[1] ?? null, host: m[2]!.replace(/^\[|\]$/g, ''), port, directory, selection };
    }
    case 's3': {
      const m = /^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(rest);
      // AWS naming rules beyond the character set: no '..', not an IPv4 address.
      if (!m || m[1]!.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(m[1]!)) {
        throw new UsageError(`bad store URL ${JSON.stringify(text)}: expected s3://bucket/prefix/ with a valid bucket name`);
      }
      const key = (m[2] ?? '/').slice(1);
      const isDirectory = key === '' || key.endsWith('/');
      const trimmed = key.replace(/\/+$/, '');
      const cut = trimmed.lastIndexOf('/');
      return isDirectory
        ? { kind: 's3', url: text, bucket: m[1]!, prefix: trimmed, selection: null }
        : { kind: 's3', url: text, bucket: m[1]!, prefix: cut < 0 ? '' : trimmed.slice(0, cut), selection: trimmed.slice(cut + 1) };
    }
    default:
      throw new UsageError(`unknown store URL scheme ${JSON.stringify(`${scheme}://`)}`, { hint: FORMS });
  }
}

function decodePath(url: string, p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new UsageError(`bad store URL ${JSON.stringify(url)}: invalid %-escape`);
  }
}

function localLocation(url: string, absolute: string, isDirectory: boolean): StoreLocation {
  return { kind: 'btrfs', url, ...split(path.resolve(absolute), isDirectory) };
}

function split(absolute: string, isDirectory: boolean): { directory: string; selection: string | null } {
  const normal = path.posix.normalize(absolute);
  if (isDirectory || normal === '/') return { directory: normal.replace(/(.)\/+$/, '$1'), selection: null };
  return { directory: path.posix.dirname(normal), selection: path.posix.basename(normal) };
}
