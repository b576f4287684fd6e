import Fuse, { type FuseOperations } from 'fuse-native';
import { FsError, toFsError } from './fs-error.js';
import type { CopyWindow } from './copy-window.js';
import type { MountFilesystem } from './mount-filesystem.js';

/**
 * fuse-native's per-op JS timeouts (it answers ETIMEDOUT by itself after 15 s by default):
 * off for the ops that wait on a transfer, a delete or a rename, which may take hours —
 * including everything that goes into a copy window whose transfer still runs.
 */
const WAITS = false;
export const OP_TIMEOUTS = {
  default: 60_000,
  mkdir: WAITS,
  rmdir: WAITS,
  rename: WAITS,
  unlink: WAITS,
  create: WAITS,
  symlink: WAITS,
  mknod: WAITS,
  link: WAITS,
  open: WAITS,
  opendir: WAITS,
  readdir: WAITS,
  readlink: WAITS,
  chmod: WAITS,
  chown: WAITS,
  utimens: WAITS,
  truncate: WAITS,
  setxattr: WAITS,
  removexattr: WAITS,
} as const;

/**
 * The FUSE operations: each one calls {@link MountFilesystem} and translates its answer.
 * Everything is asynchronous — a synchronous call inside the mount's own process deadlocks
 * as soon as it touches the mount (FACTS) — and every failure becomes an errno in
 * {@link errnoOf}, the one place that does that.
 */
export function mountOps(fs: MountFilesystem, trace: (line: string) => void = () => {}): FuseOperations {
  const run = <T>(what: string, work: () => Promise<T>, reply: (errno: number, value?: T) => void): void => {
    work().then(
      (value) => reply(0, value),
      (error: unknown) => {
        const fsError = toFsError(error);
        // The reason for a refusal the user caused goes to the status file; plain lookups
        // of missing names are everyday traffic, for -v only.
        if (fsError.isExplained) fs.status.error(`${what}: ${fsError.message}`);
        else trace(`${what}: ${fsError.errno}`);
        reply(errnoOf(fsError));
      },
    );
  };
  return {
    init: (cb) => cb(0),
    statfs: (path, cb) =>
      run(
        `statfs ${path}`,
        () => fs.statfs(path),
        (e, reply) => cb(e, reply),
      ),
    getattr: (path, cb) => run(`getattr ${path}`, () => fs.getattr(path), cb),
    fgetattr: (path, _fd, cb) => run(`fgetattr ${path}`, () => fs.getattr(path), cb),
    opendir: (path, _flags, cb) =>
      run(
        `opendir ${path}`,
        () => fs.opendir(path),
        (e, fd) => cb(e, fd),
      ),
    releasedir: (path, fd, cb) => run(`releasedir ${path}`, () => fs.releasedir(fd), cb),
    // libfuse's high-level API adds no `.` and `..`: tools (ls -a, find) expect them.
    readdir: (path, cb) =>
      run(
        `readdir ${path}`,
        () => fs.readdir(path),
        (e, names) => cb(e, e === 0 ? ['.', '..', ...(names ?? [])] : []),
      ),
    readlink: (path, cb) =>
      run(
        `readlink ${path}`,
        () => fs.readlink(path),
        (e, target) => cb(e, target),
      ),
    open: (path, flags, cb) =>
      run(
        `open ${path}`,
        () => fs.open(path, flags),
        (e, fd) => cb(e, fd),
      ),
    create: (path, mode, cb) =>
      run(
        `create ${path}`,
        () => fs.create(path, mode),
        (e, fd) => cb(e, fd),
      ),
    read: (path, fd, buffer, length, position, cb) =>
      run(
        `read ${path}`,
        () => fs.read(fd, buffer, length, position),
        (e, n) => cb(e < 0 ? e : (n ?? 0)),
      ),
    write: (path, fd, buffer, length, position, cb) =>
      run(
        `write ${path}`,
        () => fs.write(fd, buffer, length, position),
        (e, n) => cb(e < 0 ? e : (n ?? 0)),
      ),
    release: (path, fd, cb) => run(`release ${path}`, () => fs.release(fd), cb),
    flush: (_path, _fd, cb) => cb(0),
    fsync: (_path, _datasync, _fd, cb) => cb(0),
    truncate: (path, size, cb) => run(`truncate ${path}`, () => fs.change(path, (w, r) => w.truncate(r, size)), cb),
    ftruncate: (path, fd, size, cb) => run(`ftruncate ${path}`, () => fs.truncateHandle(fd, size), cb),
    chmod: (path, mode, cb) => run(`chmod ${path}`, () => fs.change(path, (w, r) => w.chmod(r, mode)), cb),
    chown: (path, uid, gid, cb) => run(`chown ${path}`, () => fs.change(path, (w, r) => w.chown(r, uid, gid)), cb),
    utimens: (path, atime, mtime, cb) => run(`utimens ${path}`, () => fs.change(path, (w, r) => w.utimens(r, atime, mtime)), cb),
    setxattr: (path, name, value, _position, _flags, cb) =>
      run(`setxattr ${path}`, () => fs.change(path, (w, r) => w.setxattr(r, name, value)), cb),
    removexattr: (path, name, cb) => run(`removexattr ${path}`, () => fs.change(path, (w, r) => removeXattr(w, r, name)), cb),
    getxattr: (path, name, _position, cb) =>
      run(
        `getxattr ${path}`,
        () => fs.getxattr(path, name),
        (e, v) => cb(e, v),
      ),
    listxattr: (path, cb) =>
      run(
        `listxattr ${path}`,
        () => fs.listxattr(path),
        (e, names) => cb(e, names ?? []),
      ),
    mkdir: (path, mode, cb) => run(`mkdir ${path}`, () => fs.mkdir(path, mode), cb),
    rmdir: (path, cb) => run(`rmdir ${path}`, () => fs.rmdir(path), cb),
    unlink: (path, cb) => run(`unlink ${path}`, () => fs.unlink(path), cb),
    rename: (from, to, cb) => run(`mv ${from} ${to}`, () => fs.rename(from, to), cb),
    symlink: (target, path, cb) => run(`symlink ${path}`, () => fs.symlink(target, path), cb),
    mknod: (path, mode, _dev, cb) => run(`mknod ${path}`, () => fs.mknod(path, mode), cb),
    link: (from, to, cb) => run(`link ${to}`, () => fs.link(from, to), cb),
  };
}

/** The negative errno FUSE answers for an error. */
export function errnoOf(error: unknown): number {
  const errno = toFsError(error).errno;
  const value = (Fuse as unknown as Record<string, number | undefined>)[errno];
  if (value !== undefined) return value;
  return errno === 'ENOTSUP' ? -95 : Fuse.EIO;
}

function removeXattr(window: CopyWindow, relative: string, name: string): void {
  if (!window.removexattr(relative, name)) throw new FsError('ENODATA');
}
