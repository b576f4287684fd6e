import { UsageError } from '../model/errors.js';
import { isValidStoreName } from '../model/store-name.js';

/**
 * A sync job of the configuration file, run by `buttersink run [NAME...]`:
 *
 * ```toml
 * [jobs.nightly]
 * source = "local"                     # a store of [stores], or a URL
 * destinations = ["backup", "s3://bucket/host1/"]   # or destination = "backup"
 * keep = "5 24h 7d 4w 12m *y"          # retention (--keep), or delete = true (-d)
 * exclude = ['\.tmp$']                 # --exclude, one or several
 * ```
 *
 * Keys are the long options of `buttersink sync` without their dashes.
 */
export interface JobConfig {
  readonly name: string;
  /** URL (a store's name is resolved to its URL, as a directory). */
  readonly source: string;
  /** URLs, in the order given; each is synced from the source in turn. */
  readonly destinations: readonly string[];
  readonly options: JobOptions;
}

/** What a job sets of `buttersink sync`'s options; unset ones keep their defaults. */
export interface JobOptions {
  readonly delete?: boolean;
  readonly keep?: string;
  readonly rateLimit?: string;
  readonly exclude?: readonly string[];
  readonly estimate?: boolean;
  readonly partSize?: number;
  readonly s3Endpoint?: string;
  readonly s3Region?: string;
  readonly s3PathStyle?: boolean;
  readonly s3Checksum?: 'when-supported' | 'when-required';
  readonly s3Sse?: string;
  readonly s3StorageClass?: string;
  readonly s3Parallel?: number;
  readonly remoteCommand?: string;
  readonly knownHosts?: readonly string[];
}

type Kind = 'boolean' | 'string' | 'strings' | 'number';
/** The keys a job may have besides source and destination(s): option name -> its type. */
const OPTION_KEYS: Readonly<Record<string, [keyof JobOptions, Kind]>> = {
  delete: ['delete', 'boolean'],
  keep: ['keep', 'string'],
  'rate-limit': ['rateLimit', 'string'],
  exclude: ['exclude', 'strings'],
  estimate: ['estimate', 'boolean'],
  'part-size': ['partSize', 'number'],
  's3-endpoint': ['s3Endpoint', 'string'],
  's3-region': ['s3Region', 'string'],
  's3-path-style': ['s3PathStyle', 'boolean'],
  's3-checksum': ['s3Checksum', 'string'],
  's3-sse': ['s3Sse', 'string'],
  's3-storage-class': ['s3StorageClass', 'string'],
  's3-parallel': ['s3Parallel', 'number'],
  'remote-command': ['remoteCommand', 'string'],
  'known-hosts': ['knownHosts', 'strings'],
};
const PLACE_KEYS = ['source', 'destination', 'destinations'];
/** The option keys a job may set, for docs (the man page): `sync`'s long options without dashes. */
export const JOB_OPTION_KEYS: readonly string[] = Object.keys(OPTION_KEYS);

/**
 * The `[jobs]` table of a parsed configuration file. Values are checked for their type and
 * for what can be checked without running (store names, that a job has somewhere to go);
 * the options' values are checked when the job runs, by the same code as the flags'.
 * @throws UsageError naming the file, the job and the key.
 */
export function parseJobs(section: unknown, stores: ReadonlyMap<string, string>, file: string): Map<string, JobConfig> {
  const jobs = new Map<string, JobConfig>();
  if (section === undefined) return jobs;
  if (!isTable(section)) throw new UsageError(`${file}: [jobs] must hold tables: [jobs.NAME]`);
  for (const [name, body] of Object.entries(section)) {
    const where = `${file}: [jobs.${name}]`;
    if (!isValidStoreName(name))
      throw new UsageError(`${where}: bad job name`, { hint: 'letters, digits, - and _; not starting with a dot' });
    if (!isTable(body)) throw new UsageError(`${where} must be a table of settings`);
    for (const key of Object.keys(body)) {
      if (!PLACE_KEYS.includes(key) && OPTION_KEYS[key] === undefined) {
        throw new UsageError(`${where}: unknown key ${JSON.stringify(key)}`, {
          hint: `known: ${[...PLACE_KEYS, ...Object.keys(OPTION_KEYS)].join(', ')}`,
        });
      }
    }
    if (typeof body.source !== 'string' || body.source === '') {
      throw new UsageError(`${where}: source must be a store name or URL`);
    }
    if (body.destination !== undefined && body.destinations !== undefined) {
      throw new UsageError(`${where}: give destination or destinations, not both`);
    }
    const to = body.destinations ?? body.destination;
    const places =
      typeof to === 'string'
        ? [to]
        : Array.isArray(to) && to.every((d) => typeof d === 'string' && d !== '')
          ? (to as string[])
          : undefined;
    if (places === undefined || places.length === 0) {
      throw new UsageError(`${where}: destination must be a store name or URL (destinations: a list of them)`);
    }
    const options: Record<string, unknown> = {};
    for (const [key, [option, kind]] of Object.entries(OPTION_KEYS)) {
      if (body[key] !== undefined) options[option] = typed(body[key], kind, `${where}: ${key}`);
    }
    jobs.set(name, {
      name,
      source: resolvePlace(body.source, stores, where),
      destinations: places.map((p) => resolvePlace(p, stores, where)),
      options: options as JobOptions,
    });
  }
  return jobs;
}

/** A store's name as its URL (a directory: with a trailing slash); a URL or path as it is. */
function resolvePlace(value: string, stores: ReadonlyMap<string, string>, where: string): string {
  if (/[/:]/.test(value)) return value;
  const url = stores.get(value);
  if (url === undefined) {
    throw new UsageError(`${where}: no store named ${JSON.stringify(value)} in [stores]`, {
      hint: stores.size > 0 ? `known: ${[...stores.keys()].join(', ')}; or give a URL` : 'name it in [stores], or give a URL',
    });
  }
  return url.endsWith('/') ? url : `${url}/`;
}

function typed(value: unknown, kind: Kind, where: string): unknown {
  switch (kind) {
    case 'boolean':
      if (typeof value !== 'boolean') throw new UsageError(`${where} must be true or false`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new UsageError(`${where} must be a string`);
      return value;
    case 'number':
      if (typeof value !== 'number') throw new UsageError(`${where} must be a number`);
      return value;
    case 'strings':
      if (typeof value === 'string') return [value];
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        throw new UsageError(`${where} must be a string or a list of strings`);
      return value;
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
