/**
 * Which argument of which syscall names a file (a path, a dirfd and a path, or an fd), per
 * architecture: how a caller blocked in a FUSE request is matched to a path of the mount.
 * Pure data and lookups.
 */

/**
 * Where a syscall names the file it works on: a path argument (relative ones resolved
 * against a dirfd argument, or the cwd when there is none), or a file descriptor argument.
 */
export type Operand = { readonly path: number; readonly dirfd?: number } | { readonly fd: number };

/**
 * A dirfd argument: the kernel reads only the low 32 bits as an int. glibc passes AT_FDCWD
 * (-100) in a 32-bit register, so /proc shows 0xffffff9c (a sign-extended
 * 0xffffffffffffff9c means the same).
 */
export function dirfdOf(arg: bigint): number | 'cwd' {
  const fd = Number(BigInt.asIntN(32, arg));
  return fd === -100 ? 'cwd' : fd;
}

const P0: Operand[] = [{ path: 0 }];
const P1: Operand[] = [{ path: 1 }];
const P01: Operand[] = [{ path: 0 }, { path: 1 }];
const F0: Operand[] = [{ fd: 0 }];
const AT: Operand[] = [{ dirfd: 0, path: 1 }];
const AT2: Operand[] = [
  { dirfd: 0, path: 1 },
  { dirfd: 2, path: 3 },
];
/** symlinkat(target, newdirfd, linkpath): the target is contents, not a file we hold. */
const SYMLINKAT: Operand[] = [{ dirfd: 1, path: 2 }];

/**
 * Syscalls that reach a FUSE filesystem with a path or an fd, by number. Since Linux 5.1
 * (424) new syscalls have one number on every architecture: fchmodat2 452, the *xattrat
 * family 463-466 (all (dirfd, path, ...)). close(2) is missing on purpose: its FUSE flush runs
 * after the fd left the table, so nothing names the file any more. A 32-bit (ia32 compat)
 * caller on x86_64 has other numbers and is not recognised.
 */
const COMMON_NEW: Array<[number, Operand[]]> = [
  [437, AT], // openat2
  [439, AT], // faccessat2
  [452, AT], // fchmodat2
  [463, AT],
  [464, AT],
  [465, AT],
  [466, AT], // setxattrat, getxattrat, listxattrat, removexattrat
];

const X86_64 = new Map<number, Operand[]>([
  [0, F0],
  [1, F0],
  [5, F0],
  [8, F0],
  [17, F0],
  [18, F0],
  [19, F0],
  [20, F0], // read write fstat lseek pread64 pwrite64 readv writev
  [2, P0],
  [4, P0],
  [6, P0],
  [21, P0], // open stat lstat access
  [40, [{ fd: 0 }, { fd: 1 }]], // sendfile(out, in)
  [59, P0], // execve
  [72, F0],
  [73, F0],
  [74, F0],
  [75, F0], // fcntl (F_SETLKW) flock fsync fdatasync
  [76, P0],
  [77, F0],
  [78, F0],
  [80, P0],
  [81, F0], // truncate ftruncate getdents chdir fchdir
  [82, P01],
  [83, P0],
  [84, P0],
  [85, P0],
  [86, P01],
  [87, P0], // rename mkdir rmdir creat link unlink
  [88, P1], // symlink(target, linkpath)
  [89, P0],
  [90, P0],
  [91, F0],
  [92, P0],
  [93, F0],
  [94, P0], // readlink chmod fchmod chown fchown lchown
  [132, P0],
  [133, P0],
  [137, P0],
  [138, F0], // utime mknod statfs fstatfs
  [188, P0],
  [189, P0],
  [190, F0],
  [191, P0],
  [192, P0],
  [193, F0], // setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
  [194, P0],
  [195, P0],
  [196, F0],
  [197, P0],
  [198, P0],
  [199, F0], // listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
  [217, F0],
  [235, P0], // getdents64 utimes
  [257, AT],
  [258, AT],
  [259, AT],
  [260, AT],
  [261, AT],
  [262, AT],
  [263, AT], // openat mkdirat mknodat fchownat futimesat newfstatat unlinkat
  [264, AT2],
  [265, AT2],
  [266, SYMLINKAT],
  [267, AT],
  [268, AT],
  [269, AT], // renameat linkat symlinkat readlinkat fchmodat faccessat
  [280, AT],
  [285, F0],
  [295, F0],
  [296, F0],
  [303, AT],
  [306, F0], // utimensat fallocate preadv pwritev name_to_handle_at syncfs
  [316, AT2],
  [322, AT],
  [326, [{ fd: 0 }, { fd: 2 }]],
  [327, F0],
  [328, F0],
  [332, AT], // renameat2 execveat copy_file_range preadv2 pwritev2 statx
  ...COMMON_NEW,
]);

/** arm64 (and riscv64, loongarch64): asm-generic/unistd.h; no old non-at path syscalls. */
const GENERIC = new Map<number, Operand[]>([
  [5, P0],
  [6, P0],
  [7, F0],
  [8, P0],
  [9, P0],
  [10, F0], // setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
  [11, P0],
  [12, P0],
  [13, F0],
  [14, P0],
  [15, P0],
  [16, F0], // listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
  [25, F0],
  [32, F0],
  [33, AT],
  [34, AT],
  [35, AT],
  [36, SYMLINKAT],
  [37, AT2],
  [38, AT2], // fcntl flock mknodat mkdirat unlinkat symlinkat linkat renameat
  [43, P0],
  [44, F0],
  [45, P0],
  [46, F0],
  [47, F0],
  [48, AT],
  [49, P0],
  [50, F0], // statfs fstatfs truncate ftruncate fallocate faccessat chdir fchdir
  [52, F0],
  [53, AT],
  [54, AT],
  [55, F0],
  [56, AT],
  [61, F0],
  [62, F0], // fchmod fchmodat fchownat fchown openat getdents64 lseek
  [63, F0],
  [64, F0],
  [65, F0],
  [66, F0],
  [67, F0],
  [68, F0],
  [69, F0],
  [70, F0], // read write readv writev pread64 pwrite64 preadv pwritev
  [71, [{ fd: 0 }, { fd: 1 }]],
  [78, AT],
  [79, AT],
  [80, F0],
  [82, F0],
  [83, F0],
  [88, AT], // sendfile readlinkat newfstatat fstat fsync fdatasync utimensat
  [221, P0],
  [264, AT],
  [267, F0],
  [276, AT2],
  [281, AT],
  [285, [{ fd: 0 }, { fd: 2 }]], // execve name_to_handle_at syncfs renameat2 execveat copy_file_range
  [286, F0],
  [287, F0],
  [291, AT], // preadv2 pwritev2 statx
  ...COMMON_NEW,
]);

/** The operands of syscall `nr` for callers of architecture `arch` (Node's names); undefined: none known. */
export function syscallOperands(arch: string, nr: number): readonly Operand[] | undefined {
  const table = arch === 'x64' ? X86_64 : arch === 'arm64' || arch === 'riscv64' || arch === 'loong64' ? GENERIC : undefined;
  return table?.get(nr);
}
