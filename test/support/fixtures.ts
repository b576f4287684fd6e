import { sh } from './btrfs-pool.js';

/**
 * Makes `<mount>/data` (a subvolume) with everything a send stream must carry: contents of
 * several sizes, an empty and a sparse file, odd modes, other owners, a symlink, hard links,
 * xattrs, names with spaces, unicode and a newline. Returns the subvolume's path.
 */
export function makeRichSubvolume(mount: string): string {
  sh(
    `
    btrfs -q subvolume create data
    cd data
    head -c 3000000 /dev/urandom > big.bin
    head -c 1000 /dev/urandom > small.bin
    : > empty
    truncate -s 50M sparse && printf 'tail' >> sparse
    mkdir -p 'dir with space/deeper' ünïcødé
    echo hello > 'dir with space/deeper/file'
    echo grüße > ünïcødé/datei
    printf 'x' > "$(printf 'new\\nline')"
    chmod 0640 small.bin && chmod 4755 big.bin && chmod 0700 'dir with space'
    chown 1234:5678 small.bin && chown -h 4321:8765 ünïcødé
    ln -s big.bin link-to-big && ln -s /nonexistent/target dangling
    ln small.bin hardlink-to-small
    setfattr -n user.note -v 'first version' small.bin
    setfattr -n user.bin -v 0x00ff00 'dir with space'
    mkfifo fifo
    touch -d '2001-02-03 04:05:06' empty
    `,
    mount,
  );
  return `${mount}/data`;
}

/** Changes the rich subvolume: new data, a removed file, a rename, metadata changes. */
export function changeRichSubvolume(subvolume: string, round: number): void {
  sh(
    `
    head -c 500000 /dev/urandom > round-${round}.bin
    dd if=/dev/urandom of=big.bin bs=4096 count=16 seek=${round * 20} conv=notrunc status=none
    rm -f small.bin
    old=$(ls 'dir with space/deeper/' | head -n 1)
    mv "dir with space/deeper/$old" 'dir with space/deeper/file-${round}'
    chmod 0644 hardlink-to-small
    setfattr -n user.note -v 'version ${round}' hardlink-to-small
    setfattr -x user.bin 'dir with space' 2>/dev/null || true
    ln -sf round-${round}.bin link-to-big
    `,
    subvolume,
  );
}

/** Takes a read-only snapshot of `subvolume` at `target`. */
export function snapshot(subvolume: string, target: string): void {
  sh(`mkdir -p "$(dirname '${target}')" && btrfs -q subvolume snapshot -r '${subvolume}' '${target}'`);
}
