import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * Pictures of what a hostile stream could change, as sorted text lines, so that a before and
 * an after can be compared line by line and the difference printed.
 */

export interface TreeOptions {
  /**
   * Record directories' times too. Off for a pool, where a receive legitimately changes its
   * directory's times (a hidden partial comes and goes); on for canaries nothing may touch.
   */
  readonly directoryTimes: boolean;
}

/**
 * Every path below `root`, never following a symbolic link: type, mode, owner, link count,
 * size, content hash, link target, device number, times (ctime too: chmod, chown and xattr
 * changes move it), and every extended attribute. Paths are relative to `root`.
 */
export function describeTree(root: string, options: TreeOptions): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    const full = rel === '' ? root : path.join(root, rel);
    const st = lstatSync(full, { bigint: true });
    const name = JSON.stringify(rel === '' ? '.' : rel);
    const mode = (Number(st.mode) & 0o7777).toString(8);
    const common = `${mode} ${st.uid}:${st.gid} nlink=${st.nlink}`;
    const times = `mtime=${st.mtimeNs} ctime=${st.ctimeNs}`;
    if (st.isDirectory()) {
      lines.push(`${name} dir ${mode} ${st.uid}:${st.gid}${options.directoryTimes ? ` ${times}` : ''}`);
      for (const entry of readdirSync(full).sort()) walk(rel === '' ? entry : path.join(rel, entry));
    } else if (st.isSymbolicLink()) {
      lines.push(`${name} symlink -> ${JSON.stringify(readlinkSync(full))} ${st.uid}:${st.gid} ${times}`);
    } else if (st.isFile()) {
      lines.push(`${name} file ${common} size=${st.size} sha256=${sha256(readFileSync(full))} ${times}`);
    } else {
      const kind = st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chardev' : 'blockdev';
      lines.push(`${name} ${kind} ${common} rdev=${st.rdev} ${times}`);
    }
  };
  walk('');
  return [...lines, ...extendedAttributes(root)].sort();
}

/** Every xattr below `root` (all namespaces, links not followed), hex-encoded. */
function extendedAttributes(root: string): string[] {
  const out = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 << 20,
  });
  const lines: string[] = [];
  let file = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (line.trim() !== '') lines.push(`xattr ${file} ${line}`);
  }
  return lines;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One subvolume of a pool as `btrfs subvolume list` shows it. */
export interface SubvolumeEntry {
  /** Path relative to the filesystem's top level. */
  readonly path: string;
  readonly uuid: string;
  readonly receivedUuid: string | null;
  readonly parentUuid: string | null;
  readonly isReadOnly: boolean;
}

/** Every subvolume of the filesystem mounted at `mount`, deleted ones not included. */
export function listSubvolumes(mount: string): SubvolumeEntry[] {
  const list = (extra: string[]): string =>
    execFileSync('btrfs', ['subvolume', 'list', '-a', '-u', '-q', '-R', ...extra, mount], { encoding: 'utf8' });
  const parse = (out: string): Omit<SubvolumeEntry, 'isReadOnly'>[] =>
    out
      .split('\n')
      .filter((line) => line.startsWith('ID '))
      .map((line) => {
        const m = /parent_uuid\s+(\S+)\s+received_uuid\s+(\S+)\s+uuid\s+(\S+)\s+path (.*)$/.exec(line);
        if (!m) throw new Error(`unexpected btrfs subvolume list line: ${line}`);
        const orNull = (v: string): string | null => (v === '-' ? null : v);
        return { parentUuid: orNull(m[1]!), receivedUuid: orNull(m[2]!), uuid: m[3]!, path: m[4]!.replace(/^<FS_TREE>\//, '') };
      });
  const readOnly = new Set(parse(list(['-r'])).map((e) => e.uuid));
  return parse(list([]))
    .map((e) => ({ ...e, isReadOnly: readOnly.has(e.uuid) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function describeSubvolume(e: SubvolumeEntry): string {
  return `${JSON.stringify(e.path)} uuid=${e.uuid} received=${e.receivedUuid ?? '-'} parent=${e.parentUuid ?? '-'} ${e.isReadOnly ? 'ro' : 'rw'}`;
}

/** Lines only in `before` (prefixed `-`) and only in `after` (prefixed `+`). */
export function lineDiff(before: readonly string[], after: readonly string[]): string[] {
  const inBefore = new Set(before);
  const inAfter = new Set(after);
  return [...before.filter((l) => !inAfter.has(l)).map((l) => `- ${l}`), ...after.filter((l) => !inBefore.has(l)).map((l) => `+ ${l}`)];
}

/**
 * Whether a line of {@link describeTree}, {@link describeSubvolume} or {@link lineDiff}
 * output is about `rel` (a path relative to the described root) or something below it.
 */
export function isAbout(line: string, rel: string): boolean {
  const body = line.replace(/^[-+] /, '');
  const quoted = JSON.stringify(rel).slice(0, -1);
  return (
    body.startsWith(`${quoted}"`) || body.startsWith(`${quoted}/`) || body.startsWith(`xattr ${rel} `) || body.startsWith(`xattr ${rel}/`)
  );
}
