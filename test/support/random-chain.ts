import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { parseGetfattr } from '../../src/stores/btrfs/local-xattrs.js';

/** A small seeded generator (mulberry32): the same seed gives the same chain. */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[this.int(items.length)]!;
  }
  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let at = this.next() * total;
    for (const [w, value] of choices) if ((at -= w) < 0) return value;
    return choices[choices.length - 1]![1];
  }
}

export interface RandomChainOptions {
  /** How many read-only snapshots (default: 3 to 5, chosen by the seed). */
  snapshots?: number;
  /** Operations per step (default: 25 to 45, chosen by the seed). */
  operations?: number;
  /** New file data the whole chain may write, in bytes (default 24 MiB: a 256 MiB pool holds it). */
  maxBytes?: number;
  /** Receives one line per operation (for debugging a failing seed). */
  log?: (line: string) => void;
}

/** btrfs send cuts file data into write commands of this size. */
export const SEND_WRITE_SIZE = 48 * 1024;

type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

interface Entry {
  readonly rel: string;
  readonly kind: Kind;
  readonly size: number;
}

/**
 * Makes a chain of read-only snapshots with random, realistic changes between them: inside
 * `directory` (on btrfs) a read-write subvolume `chain-<seed>` is changed step by step and
 * snapshotted after each step as `chain-<seed>.<n>`. Each step mixes: files of 0 B to a few
 * MiB (many over the 48 KiB of one send write command), nested directories, renames of files
 * and directories (across directories, and over an existing file), deletes of files and
 * trees, hard links (then removing a name), reflink copies (within the subvolume and from a
 * file of an earlier snapshot, so incremental streams carry `clone`), sparse files (holes by
 * truncate, by writing past the end, by punching), overwrites and truncation, xattrs (text,
 * binary, empty; removed), symlinks (relative, absolute, dangling, long), a FIFO, device
 * nodes, a unix socket (when python3 is there), chmod with setuid/setgid/sticky, chown to
 * other ids, fixed atime/mtime, and names with spaces and non-ASCII UTF-8.
 *
 * Deterministic for a seed: the same operations, names, sizes, modes and bytes (file data is
 * AES-CTR keyed by the seed). Times of entries the generator does not set are the clock's.
 * Returns the snapshots' paths, oldest first. Runs as root (chown, mknod).
 */
export function makeRandomChain(directory: string, seed: number, options: RandomChainOptions = {}): string[] {
  const random = new Prng(seed);
  // Drawn even when given, so that a shorter run of a seed makes the same first snapshots.
  const drawn = random.between(3, 5);
  const snapshots = options.snapshots ?? drawn;
  const budget = { left: options.maxBytes ?? 24 << 20 };
  const subvolume = path.join(directory, `chain-${seed}`);
  run('btrfs', ['-q', 'subvolume', 'create', subvolume]);
  const generator = new Generator(subvolume, seed, random, budget, options.log ?? (() => {}));
  const taken: string[] = [];
  for (let step = 0; step < snapshots; step++) {
    const drawnCount = random.between(25, 45);
    const count = options.operations ?? drawnCount;
    generator.step(step, count, taken);
    run('btrfs', ['filesystem', 'sync', subvolume]);
    const snapshot = path.join(directory, `chain-${seed}.${step}`);
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', subvolume, snapshot]);
    taken.push(snapshot);
  }
  return taken;
}

function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let pythonFound: boolean | undefined;
/** Whether python3 is there to bind a unix socket (asked once, when a chain first wants one). */
function hasPython(): boolean {
  if (pythonFound === undefined) {
    try {
      run('python3', ['-c', 'import socket']);
      pythonFound = true;
    } catch {
      pythonFound = false;
    }
  }
  return pythonFound;
}

const NAME_STEMS = ['file', 'data', 'name with spaces', 'ünïcødé', '日本語', 'emoji 🦀', 'ÅÄÖ åäö', 'a.b.c', '-dash', 'x'];
const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o4755, 0o2755, 0o6711, 0o1777, 0o1755, 0o000, 0o777];
const FIXED_TIMES = [0, 1, 981173106.123456, 1234567890.5, 1700000000.999, 2000000000.25, 86400.000001];

class Generator {
  #names = 0;
  #blocks = 0;
  readonly #root: string;
  readonly #seed: number;
  readonly #random: Prng;
  readonly #budget: { left: number };
  readonly #log: (line: string) => void;

  constructor(root: string, seed: number, random: Prng, budget: { left: number }, log: (line: string) => void) {
    this.#root = root;
    this.#seed = seed;
    this.#random = random;
    this.#budget = budget;
    this.#log = log;
  }

  step(step: number, count: number, earlier: readonly string[]): void {
    const r = this.#random;
    // The first step builds a base to change; every later step changes what is there.
    if (step === 0) {
      for (let i = 0; i < 6; i++) this.#mkdir();
      for (let i = 0; i < 12; i++) this.#createFile();
      for (let i = 0; i < 5; i++) this.#xattr();
      for (let i = 0; i < 3; i++) this.#symlink();
      for (let i = 0; i < 2; i++) this.#special();
      this.#createFile(r.between(SEND_WRITE_SIZE + 1, 3 << 20));
    }
    for (let i = 0; i < count; i++) {
      const operation = r.weighted<() => void>([
        [10, () => this.#createFile()],
        [4, () => this.#mkdir()],
        [5, () => this.#renameFile()],
        [3, () => this.#renameDirectory()],
        [4, () => this.#deleteFile()],
        [1.5, () => this.#deleteTree()],
        [4, () => this.#hardLink()],
        [4, () => this.#reflink(earlier)],
        [3, () => this.#sparse()],
        [4, () => this.#overwrite()],
        [3, () => this.#truncate()],
        [6, () => this.#xattr()],
        [4, () => this.#symlink()],
        [1.5, () => this.#special()],
        [4, () => this.#chmod()],
        [3, () => this.#chown()],
        [4, () => this.#times()],
      ]);
      operation();
    }
    // Whatever the draws, every later step has a removed tree, a removed xattr, a hard link
    // whose first name goes, and (last, so nothing removes it) a clone from its parent.
    if (earlier.length > 0) {
      this.#deleteTree(true);
      this.#xattr(earlier.at(-1));
      this.#hardLink(true);
      this.#reflink(earlier.slice(-1), true);
    }
  }

  // --- what is there (read from the filesystem, in sorted order: deterministic) ---

  #entries(): Entry[] {
    const found: Entry[] = [];
    const walk = (rel: string): void => {
      for (const name of readdirSync(this.#at(rel)).sort()) {
        const child = rel === '' ? name : `${rel}/${name}`;
        const st = lstatSync(this.#at(child));
        const kind: Kind = st.isDirectory()
          ? 'dir'
          : st.isFile()
            ? 'file'
            : st.isSymbolicLink()
              ? 'symlink'
              : st.isFIFO()
                ? 'fifo'
                : st.isCharacterDevice()
                  ? 'char'
                  : st.isBlockDevice()
                    ? 'block'
                    : 'socket';
        found.push({ rel: child, kind, size: st.size });
        if (kind === 'dir') walk(child);
      }
    };
    walk('');
    return found;
  }
  #files(minimumSize = 0): Entry[] {
    return this.#entries().filter((e) => e.kind === 'file' && e.size >= minimumSize);
  }
  #directories(): string[] {
    return ['', ...this.#entries().flatMap((e) => (e.kind === 'dir' ? [e.rel] : []))];
  }
  #at(rel: string): string {
    return rel === '' ? this.#root : path.join(this.#root, rel);
  }
  #newName(): string {
    const stem = this.#random.pick(NAME_STEMS);
    return `${stem} ${++this.#names}`;
  }
  #newPath(): string {
    const dir = this.#random.pick(this.#directories());
    return dir === '' ? this.#newName() : `${dir}/${this.#newName()}`;
  }
  #did(line: string): void {
    this.#log(line);
  }

  // --- data ---

  /** `size` bytes of the seed's own stream: deterministic, incompressible. */
  #bytes(size: number): Buffer {
    const key = createHash('sha256').update(`buttersink random chain ${this.#seed}`).digest().subarray(0, 16);
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(++this.#blocks, 0);
    const cipher = createCipheriv('aes-128-ctr', key, iv);
    return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
  }
  #size(): number {
    const r = this.#random;
    const size = r.weighted<() => number>([
      [2, () => 0],
      [5, () => r.between(1, 64)],
      [3, () => r.between(65, 4096)],
      [3, () => r.between(4097, SEND_WRITE_SIZE)],
      [1, () => r.pick([SEND_WRITE_SIZE, SEND_WRITE_SIZE + 1, 2 * SEND_WRITE_SIZE - 1])],
      [4, () => r.between(SEND_WRITE_SIZE + 1, 512 << 10)],
      [1.5, () => r.between(512 << 10, 3 << 20)],
    ])();
    return this.#spend(size);
  }
  /** As much of `size` as the budget still allows. */
  #spend(size: number): number {
    const allowed = Math.max(0, Math.min(size, this.#budget.left));
    this.#budget.left -= allowed;
    return allowed;
  }

  // --- operations ---

  #createFile(size = this.#size()): void {
    const rel = this.#newPath();
    writeFileSync(this.#at(rel), this.#bytes(size));
    this.#did(`create ${rel} (${size} B)`);
  }

  #mkdir(): void {
    let rel = this.#newPath();
    mkdirSync(this.#at(rel));
    for (let depth = this.#random.int(3); depth > 0; depth--) {
      rel = `${rel}/${this.#newName()}`;
      mkdirSync(this.#at(rel));
    }
    this.#did(`mkdir -p ${rel}`);
  }

  #renameFile(): void {
    const r = this.#random;
    const movable = this.#entries().filter((e) => e.kind !== 'dir');
    if (movable.length === 0) return;
    const from = r.pick(movable).rel;
    // Over an existing file (rename replaces it), or to a new name, maybe in another directory.
    const files = this.#files().filter((e) => e.rel !== from);
    const to = r.chance(0.3) && files.length > 0 ? r.pick(files).rel : this.#newPath();
    renameSync(this.#at(from), this.#at(to));
    this.#did(`mv ${from} ${to}`);
  }

  #renameDirectory(): void {
    const r = this.#random;
    const directories = this.#directories().filter((d) => d !== '');
    if (directories.length === 0) return;
    const from = r.pick(directories);
    // Not into itself: a target directory outside the one moved.
    const into = r.pick(this.#directories().filter((d) => d !== from && !d.startsWith(`${from}/`)));
    const to = into === '' ? this.#newName() : `${into}/${this.#newName()}`;
    renameSync(this.#at(from), this.#at(to));
    this.#did(`mv ${from}/ ${to}/`);
  }

  #deleteFile(): void {
    const victims = this.#entries().filter((e) => e.kind !== 'dir');
    if (victims.length < 8) return;
    const rel = this.#random.pick(victims).rel;
    rmSync(this.#at(rel));
    this.#did(`rm ${rel}`);
  }

  #deleteTree(always = false): void {
    const directories = this.#directories().filter((d) => d !== '');
    if (directories.length < (always ? 1 : 4)) return;
    const rel = this.#random.pick(directories);
    rmSync(this.#at(rel), { recursive: true });
    this.#did(`rm -r ${rel}`);
  }

  #hardLink(thenUnlink = false): void {
    const r = this.#random;
    const files = this.#files();
    if (files.length === 0) return;
    const from = r.pick(files).rel;
    const to = this.#newPath();
    linkSync(this.#at(from), this.#at(to));
    this.#did(`ln ${from} ${to}`);
    if (r.chance(0.35) || thenUnlink) {
      rmSync(this.#at(from));
      this.#did(`rm ${from} (its other name stays)`);
    }
  }

  /** A reflink copy (`cp --reflink=always`): of a file here, or of one in an earlier snapshot. */
  #reflink(earlier: readonly string[], fromEarlier = false): void {
    const r = this.#random;
    const to = this.#newPath();
    // Small files live inline in the metadata and are copied, not cloned: take bigger ones.
    const snapshot = earlier.length > 0 && (fromEarlier || r.chance(0.4)) ? r.pick(earlier) : undefined;
    let source: string | undefined;
    if (snapshot !== undefined) {
      const candidates = listFiles(snapshot).filter((e) => e.size > 8192);
      if (candidates.length > 0) source = path.join(snapshot, r.pick(candidates).rel);
    } else {
      const candidates = this.#files(8193);
      if (candidates.length > 0) source = this.#at(r.pick(candidates).rel);
    }
    if (source === undefined) return;
    run('cp', ['--reflink=always', '--', source, this.#at(to)]);
    this.#did(`cp --reflink=always ${source} ${to}`);
    // A clone followed by a change of part of it: the stream has clone and write for one file.
    if (r.chance(0.4)) this.#overwriteAt(to);
  }

  #sparse(): void {
    const r = this.#random;
    const kind = r.int(3);
    if (kind === 0) {
      // A new file that is mostly hole: grown by truncate, data written at offsets.
      const rel = this.#newPath();
      const size = r.between(1, 64) * 4096 + r.int(4096);
      truncateSync(this.#create(rel), size);
      const fd = openSync(this.#at(rel), 'r+');
      try {
        for (let i = r.between(1, 3); i > 0; i--) {
          const length = this.#spend(r.between(1, 20000));
          writeSync(fd, this.#bytes(length), 0, length, r.int(size));
        }
        // A write past the end leaves a hole before it.
        const tail = this.#spend(r.between(1, 5000));
        writeSync(fd, this.#bytes(tail), 0, tail, size + r.between(4096, 300000));
      } finally {
        closeSync(fd);
      }
      this.#did(`sparse ${rel}`);
    } else if (kind === 1) {
      // A hole punched into data (fallocate -p), block-aligned or not.
      const files = this.#files(8192);
      if (files.length === 0) return;
      const file = r.pick(files);
      const offset = r.chance(0.5) ? r.int(Math.floor(file.size / 4096)) * 4096 : r.int(file.size);
      const length = r.chance(0.5) ? r.between(1, 8) * 4096 : r.between(1, 70000);
      run('fallocate', ['-p', '-o', String(offset), '-l', String(length), this.#at(file.rel)]);
      this.#did(`fallocate -p -o ${offset} -l ${length} ${file.rel}`);
    } else {
      // Grown far past the end by truncate: a trailing hole.
      const files = this.#files();
      if (files.length === 0) return;
      const file = r.pick(files);
      const size = file.size + r.between(1, 2 << 20);
      truncateSync(this.#at(file.rel), size);
      this.#did(`truncate -s ${size} ${file.rel}`);
    }
  }

  #create(rel: string): string {
    writeFileSync(this.#at(rel), '');
    return this.#at(rel);
  }

  #overwrite(): void {
    const files = this.#files(1);
    if (files.length === 0) return;
    this.#overwriteAt(this.#random.pick(files).rel);
  }

  /** Overwrites bytes in the middle of a file (maybe running past its end). */
  #overwriteAt(rel: string): void {
    const r = this.#random;
    const size = lstatSync(this.#at(rel)).size;
    const offset = r.int(Math.max(1, size));
    const length = this.#spend(r.chance(0.7) ? r.between(1, 4096) : r.between(4097, 200000));
    const fd = openSync(this.#at(rel), 'r+');
    try {
      writeSync(fd, this.#bytes(length), 0, length, offset);
    } finally {
      closeSync(fd);
    }
    this.#did(`overwrite ${rel} at ${offset} (${length} B)`);
  }

  #truncate(): void {
    const r = this.#random;
    const files = this.#files();
    if (files.length === 0) return;
    const file = r.pick(files);
    const size = r.chance(0.6) ? r.int(file.size + 1) : file.size + r.between(1, 100000);
    truncateSync(this.#at(file.rel), size);
    this.#did(`truncate -s ${size} ${file.rel} (was ${file.size})`);
  }

  /** Sets or removes an xattr; `removeSince`: removes one the entry had in that snapshot. */
  #xattr(removeSince?: string): void {
    const r = this.#random;
    // user.* xattrs are for files and directories (Linux refuses them on symlinks and specials).
    const targets = ['', ...this.#entries().flatMap((e) => (e.kind === 'file' || e.kind === 'dir' ? [e.rel] : []))];
    if (removeSince !== undefined) {
      // One the parent snapshot has on the same inode: the stream must carry remove_xattr.
      const now = userXattrs(this.#root);
      const then = userXattrs(removeSince);
      const choices = targets.flatMap((rel) => {
        const before = then.get(rel);
        if (before === undefined || lstatSync(this.#at(rel)).ino !== lstatSync(path.join(removeSince, rel)).ino) return [];
        return [...(now.get(rel) ?? [])].filter((name) => before.has(name)).map((name) => [rel, name] as const);
      });
      if (choices.length === 0) return;
      const [rel, name] = r.pick(choices);
      run('setfattr', ['-h', '-x', name, '--', this.#at(rel)]);
      this.#did(`setfattr -x ${name} ${rel}`);
      return;
    }
    const rel = r.pick(targets);
    const existing = [...(userXattrs(this.#at(rel), false).get('') ?? [])].sort();
    if (existing.length > 0 && r.chance(0.3)) {
      const name = r.pick(existing);
      run('setfattr', ['-h', '-x', name, '--', this.#at(rel)]);
      this.#did(`setfattr -x ${name} ${rel}`);
      return;
    }
    const name =
      r.chance(0.4) && existing.length > 0 ? r.pick(existing) : `user.${r.pick(['x', 'note', 'ünï', 'with space', 'k'])}${r.int(4)}`;
    const value = r.weighted<() => string[]>([
      [4, () => ['-v', `text value ${r.int(1000)}`]],
      [3, () => ['-v', `0x${this.#bytes(r.between(1, 300)).toString('hex')}`]],
      [1, () => ['-v', '0x00ff00']],
      [1, () => []], // no value: an empty one
      [1, () => ['-v', `0x${this.#bytes(r.between(2000, 3800)).toString('hex')}`]],
    ])();
    run('setfattr', ['-h', '-n', name, ...value, '--', this.#at(rel)]);
    this.#did(`setfattr -n ${name} ${value.length === 0 ? '(empty)' : `(${value[1]!.length} chars)`} ${rel}`);
  }

  #symlink(): void {
    const r = this.#random;
    const rel = this.#newPath();
    const depth = rel.split('/').length - 1;
    const files = this.#files();
    const target = r.weighted<() => string>([
      // Relative, to an existing file, through `..` from where the link is.
      [3, () => (files.length > 0 ? `${'../'.repeat(depth)}${r.pick(files).rel}` : 'nowhere')],
      [2, () => r.pick(['/etc/passwd', '/', '/absolute/nonexistent target', '/dev/null'])],
      [2, () => `dangling ${r.int(1000)}/../nothing ünï`],
      [1, () => `${'long component/'.repeat(r.between(40, 250))}end`],
      [1, () => '.'],
    ])();
    symlinkSync(target, this.#at(rel));
    this.#did(`ln -s (${target.length} chars) ${rel}`);
  }

  #special(): void {
    const r = this.#random;
    const rel = this.#newPath();
    const kind = r.pick(['fifo', 'char', 'block', 'socket'] as const);
    if (kind === 'fifo') run('mkfifo', ['--', this.#at(rel)]);
    else if (kind === 'char') run('mknod', ['--', this.#at(rel), 'c', '1', '3']);
    else if (kind === 'block') run('mknod', ['--', this.#at(rel), 'b', '7', String(r.between(100, 250))]);
    // Without python3 the socket is a FIFO: the same number of draws, so the shape stays put.
    // Bound by its name from its directory: a socket's path is limited to 108 bytes.
    else if (hasPython())
      execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.basename(rel)], {
        cwd: path.dirname(this.#at(rel)),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    else run('mkfifo', ['--', this.#at(rel)]);
    this.#did(`${kind} ${rel}`);
  }

  #chmod(): void {
    const r = this.#random;
    const targets = this.#entries().filter((e) => e.kind !== 'symlink');
    if (targets.length === 0) return;
    const rel = r.pick(targets).rel;
    const mode = r.pick(MODES);
    chmodSync(this.#at(rel), mode);
    this.#did(`chmod ${mode.toString(8)} ${rel}`);
  }

  #chown(): void {
    const r = this.#random;
    const entries = this.#entries();
    const rel = r.chance(0.1) || entries.length === 0 ? '' : r.pick(entries).rel;
    const uid = r.pick([0, 1, 1000, 1234, 65534, r.between(2, 100000)]);
    const gid = r.pick([0, 1, 100, 5678, 65534, r.between(2, 100000)]);
    // lchown: a link's own owner. (chown of a setuid file clears the bit, as it would for a user.)
    lchownSync(this.#at(rel), uid, gid);
    this.#did(`chown -h ${uid}:${gid} ${rel}`);
  }

  #times(): void {
    const r = this.#random;
    const entries = this.#entries();
    const rel = r.chance(0.1) || entries.length === 0 ? '' : r.pick(entries).rel;
    const atime = r.pick(FIXED_TIMES);
    const mtime = r.pick(FIXED_TIMES);
    lutimesSync(this.#at(rel), atime, mtime);
    this.#did(`touch -h -a ${atime} -m ${mtime} ${rel}`);
  }
}

/** The names of the user.* xattrs of each entry below `root` (or of `root` alone), by relative path. */
function userXattrs(root: string, recursive = true): Map<string, Set<string>> {
  const listed = run('getfattr', [...(recursive ? ['-R', '-P'] : []), '-h', '--absolute-names', '-m', '^user\\.', '--', root]);
  const found = new Map<string, Set<string>>();
  for (const [file, xattrs] of parseGetfattr(listed)) found.set(path.relative(root, file), new Set(xattrs.keys()));
  return found;
}

/** The regular files below `root`, sorted (for picking reflink sources in a snapshot). */
function listFiles(root: string): Entry[] {
  const found: Entry[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : path.join(root, rel)).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(root, child));
      if (st.isDirectory()) walk(child);
      else if (st.isFile()) found.push({ rel: child, kind: 'file', size: st.size });
    }
  };
  walk('');
  return found;
}
