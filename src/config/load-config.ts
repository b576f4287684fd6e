import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { messageOf, UsageError } from '../model/errors.js';
import { type JobConfig, parseJobs } from './jobs.js';
import { checkStoreName } from './store-option.js';

export type { JobConfig } from './jobs.js';

export { parseStoreOption } from './store-option.js';

/**
 * buttersink's configuration file (TOML): the stores `buttersink mount` shows, and the sync
 * jobs `buttersink run` runs (see {@link JobConfig}), which may name those stores:
 *
 * ```toml
 * [stores]
 * local = "/mnt/pool/snaps/"
 * backup = "btrfs:///mnt/backup/snaps/"
 *
 * [jobs.nightly]
 * source = "local"
 * destination = "backup"
 * keep = "7d 4w 12m"
 * ```
 */
export interface Config {
  /** Store name -> URL, in file order. */
  readonly stores: ReadonlyMap<string, string>;
  /** Job name -> job, in file order. */
  readonly jobs: ReadonlyMap<string, JobConfig>;
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
    return { ...parseConfigFile(text, file), file };
  }
  return { stores: new Map(), jobs: new Map(), file: null };
}

/** The stores of a configuration file's TOML text (named in messages). */
export function parseConfig(text: string, file: string): Map<string, string> {
  return parseConfigFile(text, file).stores;
}

/** Parses the TOML text of a configuration file (named in messages): its stores and jobs. */
export function parseConfigFile(text: string, file: string): { stores: Map<string, string>; jobs: Map<string, JobConfig> } {
  let data: Record<string, unknown>;
  try {
    data = parse(text) as Record<string, unknown>;
  } catch (error) {
    const where = error instanceof TomlError ? ` at line ${error.line}` : '';
    throw new UsageError(`${file}${where}: not valid TOML: ${messageOf(error).split('\n')[0]}`);
  }
  const stores = new Map<string, string>();
  for (const key of Object.keys(data)) {
    if (key !== 'stores' && key !== 'jobs') {
      throw new UsageError(`${file}: unknown section or key ${JSON.stringify(key)}`, { hint: 'known: [stores], [jobs.NAME]' });
    }
  }
  const section = data.stores;
  if (section === undefined) return { stores, jobs: parseJobs(data.jobs, stores, file) };
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new UsageError(`${file}: [stores] must be a table of name = "url"`);
  }
  for (const [name, url] of Object.entries(section)) {
    if (typeof url !== 'string') throw new UsageError(`${file}: store ${JSON.stringify(name)} must be a URL string`);
    checkStoreName(name, file);
    stores.set(name, url);
  }
  return { stores, jobs: parseJobs(data.jobs, stores, file) };
}

/** `--store NAME=URL`. */
