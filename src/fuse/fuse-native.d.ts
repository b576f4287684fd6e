/**
 * The part of fuse-native 2.2.6's API buttersink uses (the package ships no types).
 * Times are milliseconds; errors are negative errnos.
 */
declare module 'fuse-native' {
  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink: number;
    ino?: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    atime: Date | number;
    mtime: Date | number;
    ctime: Date | number;
  }
  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }
  type Done = (errno: number) => void;
  export interface FuseOperations {
    init?(cb: Done): void;
    statfs?(path: string, cb: (errno: number, statfs?: FuseStatfs) => void): void;
    getattr?(path: string, cb: (errno: number, stat?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (errno: number, stat?: FuseStat) => void): void;
    opendir?(path: string, flags: number, cb: (errno: number, fd?: number) => void): void;
    releasedir?(path: string, fd: number, cb: Done): void;
    readdir?(path: string, cb: (errno: number, names?: string[], stats?: FuseStat[]) => void): void;
    readlink?(path: string, cb: (errno: number, target?: string) => void): void;
    open?(path: string, flags: number, cb: (errno: number, fd?: number) => void): void;
    create?(path: string, mode: number, cb: (errno: number, fd?: number) => void): void;
    read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytesOrErrno: number) => void): void;
    write?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytesOrErrno: number) => void): void;
    release?(path: string, fd: number, cb: Done): void;
    flush?(path: string, fd: number, cb: Done): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Done): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    mknod?(path: string, mode: number, dev: number, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
    unlink?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
    link?(src: string, dest: string, cb: Done): void;
    symlink?(target: string, path: string, cb: Done): void;
    getxattr?(path: string, name: string, position: number, cb: (errno: number, value?: Buffer | null) => void): void;
    listxattr?(path: string, cb: (errno: number, names?: string[]) => void): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
    removexattr?(path: string, name: string, cb: Done): void;
  }
  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    fsname?: string;
    subtype?: string;
    attrTimeout?: number;
    entryTimeout?: number;
    debug?: boolean;
    /** Per-op JS-side timeouts in ms (false: none); `default` for the rest. */
    timeout?: number | false | Record<string, number | false>;
  }
  export default class Fuse {
    constructor(mountPoint: string, ops: FuseOperations, options?: FuseOptions);
    mount(cb: (error: Error | null) => void): void;
    unmount(cb: (error: Error | null) => void): void;
    static unmount(mountPoint: string, cb: (error: Error | null) => void): void;
    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EBADF: number;
    static readonly EACCES: number;
    static readonly EBUSY: number;
    static readonly EEXIST: number;
    static readonly EXDEV: number;
    static readonly ENOTDIR: number;
    static readonly EISDIR: number;
    static readonly EINVAL: number;
    static readonly ENOSPC: number;
    static readonly EROFS: number;
    static readonly ENOSYS: number;
    static readonly ENOTEMPTY: number;
    static readonly ENODATA: number;
    static readonly EINTR: number;
    static readonly EOPNOTSUPP: number;
  }
}
