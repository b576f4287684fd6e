import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { messageOf, UsageError } from '../model/errors.js';
import { checkStoreName } from './store-option.js';

export { parseStoreOption } from './store-option.js';

/**
 * buttersink's configuration file (TOML). Today it names stores for `buttersink mount`:
 *
 * ```toml
 * [stores]
 * local = "/mnt/pool/snaps/"
 * backup = "btrfs:///mnt/backup/snaps/"
 * ```
 */
export interface Config {
  /** Store name -> URL, in file order. */
  readonly stores: ReadonlyMap<string, string>;
  /** The file it came from, or null when none was found. */
  readonly file: string | null;
}

/**
 * Where the configuration is looked for when no `--config` is given, first found wins:
 * `$XDG_CONFIG_HOME/buttersink/config.toml` (else `~/.config/...`), then `/etc/buttersink/config.toml`.
 */
export function defaultConfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return [path.join(base, 'buttersink', 'config.toml'), '/etc/buttersink/config.toml'];
}

/**
 * Reads the configuration: `explicit` must exist; otherwise the first default file that
 * exists is read, and none at all is an empty configuration.
 * @throws UsageError for a missing explicit file, bad TOML, or bad store names or URLs.
 */
export async function loadConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const candidates = explicit === undefined ? defaultConfigFiles(env) : [explicit];
  for (const file of candidates) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (explicit === undefined && (code === 'ENOENT' || code === 'ENOTDIR')) continue;
      throw new UsageError(`cannot read the configuration file ${file}: ${code ?? messageOf(error)}`);
    }
    return { stores: parseConfig(text, file), file };
  }
  return { stores: new Map(), file: null };
}

/** Parses the TOML text of a configuration file (named in messages). */
export function parseConfig(text: string, file: string): Map<string, string> {
  let data: Record<string, unknown>;
  try {
    data = parse(text) as Record<string, unknown>;
  } catch (error) {
    const where = error instanceof TomlError ? ` at line ${error.line}` : '';
    throw new UsageError(`${file}${where}: not valid TOML: ${messageOf(error).split('\n')[0]}`);
  }
  const stores = new Map<string, string>();
  for (const key of Object.keys(data)) {
    if (key !== 'stores') throw new UsageError(`${file}: unknown section or key ${JSON.stringify(key)}`, { hint: 'known: [stores]' });
  }
  const section = data.stores;
  if (section === undefined) return stores;
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new UsageError(`${file}: [stores] must be a table of name = "url"`);
  }
  for (const [name, url] of Object.entries(section)) {
    if (typeof url !== 'string') throw new UsageError(`${file}: store ${JSON.stringify(name)} must be a URL string`);
    checkStoreName(name, file);
    stores.set(name, url);
  }
  return stores;
}

/** `--store NAME=URL`. */
