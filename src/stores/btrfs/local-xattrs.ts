import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { runCaptured } from '../../util/run-captured.js';

type Xattrs = Map<string, Buffer>;

/** How many paths one `getfattr` gets (argument list limits). */
const PATHS_PER_RUN = 400;

/**
 * Extended attributes of files in local snapshots, for the mount. Node has no xattr API, so this runs
 * `getfattr` (package `attr`) — asynchronously, on the real snapshot directory, never on the
 * mount (a child touching the mount from inside its own process deadlocks). One run reads a
 * whole directory's entries, because `ls -l` asks for every entry's ACL xattrs: a spawn per
 * file would make listings crawl. Results are cached briefly (snapshots are read-only).
 */
export class XattrReader {
  readonly #byDirectory = new LRUCache<string, Promise<DirectoryXattrs>>({ max: 256, ttl: 60_000 });

  /** Every xattr of `file` (not following a symlink); an empty map when it has none or on error. */
  async read(file: string): Promise<Xattrs> {
    const directory = path.dirname(file);
    const name = path.basename(file);
    let read = await this.#read(directory, false);
    // A directory of snapshots is not read-only: a snapshot that arrived after the directory
    // was read (a mkdir through the mount, a sync outside it) must not show as having none.
    if (!read.names.has(name)) read = await this.#read(directory, true);
    return read.xattrs.get(name) ?? new Map();
  }

  #read(directory: string, fresh: boolean): Promise<DirectoryXattrs> {
    let pending = fresh ? undefined : this.#byDirectory.get(directory);
    if (pending === undefined) {
      pending = readDirectoryXattrs(directory).catch(() => ({ names: new Set<string>(), xattrs: new Map<string, Xattrs>() }));
      this.#byDirectory.set(directory, pending);
    }
    return pending;
  }
}

/** A directory's entries when it was read, and the xattrs of those that have any. */
interface DirectoryXattrs {
  readonly names: ReadonlySet<string>;
  readonly xattrs: ReadonlyMap<string, Xattrs>;
}

async function readDirectoryXattrs(directory: string): Promise<DirectoryXattrs> {
  const names = await readdir(directory);
  const result = new Map<string, Xattrs>();
  for (let i = 0; i < names.length; i += PATHS_PER_RUN) {
    const paths = names.slice(i, i + PATHS_PER_RUN).map((n) => path.join(directory, n));
    const run = await runCaptured('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...paths]);
    for (const [file, xattrs] of parseGetfattr(run.stdout)) result.set(path.basename(file), xattrs);
  }
  return { names: new Set(names), xattrs: result };
}

/** Every xattr of one `file` (not following a symlink); an empty map when it has none. */
export async function xattrsOfFile(file: string): Promise<Xattrs> {
  // getfattr -h reads the entry itself, never a link's target.
  const run = await runCaptured('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', file]);
  return [...parseGetfattr(run.stdout).values()][0] ?? new Map();
}

/**
 * Parses `getfattr -d -e hex` output: `# file: PATH` then `name=0xHEX` lines (a value-less
 * attribute has no `=`). getfattr escapes odd bytes in paths as `\ooo`.
 */
export function parseGetfattr(text: string): Map<string, Xattrs> {
  const files = new Map<string, Xattrs>();
  let current: Xattrs | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      files.set(unescapeGetfattr(line.slice('# file: '.length)), current);
    } else if (current !== undefined && line !== '') {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? '' : line.slice(eq + 1);
      current.set(name, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.from(value.replace(/^"|"$/g, '')));
    }
  }
  return files;
}

function unescapeGetfattr(text: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
