import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * Everything a user relies on in a snapshot's tree, as comparable text lines: type, mode,
 * owner, size, mtime, content hash, symlink target, xattrs, and which paths are hard links
 * of each other. Two trees are equal for a backup when their digests are equal.
 */
export function treeDigest(root: string, options: { throughMount?: boolean } = {}): string[] {
  const lines: string[] = [];
  const inodes = new Map<string, string>();
  const walk = (rel: string): void => {
    const full = path.join(root, rel);
    const st = lstatSync(full, { bigint: true });
    const mode = (Number(st.mode) & 0o7777).toString(8);
    const owner = `${st.uid}:${st.gid}`;
    // Through the FUSE mount times have millisecond precision, and inode numbers are the
    // mount's own (hard links are then told by their link count only).
    const mtime = options.throughMount ? (st.mtimeNs / 1_000_000n).toString() : st.mtimeNs.toString();
    const name = rel === '' ? '.' : rel;
    if (st.isSymbolicLink()) {
      lines.push(`${name} link -> ${readlinkSync(full)} ${owner}`);
    } else if (st.isDirectory()) {
      lines.push(`${name} dir ${mode} ${owner} ${mtime}`);
      for (const entry of readdirSync(full).sort()) walk(path.join(rel, entry));
    } else if (st.isFile()) {
      const hash = createHash('sha256').update(readFileSync(full)).digest('hex');
      let link = '';
      if (st.nlink > 1n && options.throughMount) link = ` links ${st.nlink}`;
      else if (st.nlink > 1n) {
        const key = st.ino.toString();
        link = ` hardlink-of ${inodes.get(key) ?? name}`;
        if (!inodes.has(key)) inodes.set(key, name);
      }
      lines.push(`${name} file ${mode} ${owner} ${st.size} ${mtime} ${hash}${link}`);
    } else {
      lines.push(`${name} special ${mode} ${owner} ${st.rdev}`);
    }
  };
  walk('');
  // One getfattr for the whole tree: every xattr (all namespaces), hex-encoded. Its order
  // follows readdir, which differs between trees, so the lines are sorted.
  const out = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const xattrs: string[] = [];
  let file = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (line.trim() !== '') xattrs.push(`xattr ${file} ${line}`);
  }
  return [...lines, ...xattrs.sort()];
}
