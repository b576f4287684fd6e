import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when the environment says we are in CI: a missing prerequisite then fails instead of skipping. */
export const isCI = process.env.CI === 'true' || process.env.CI === '1';

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * What the real-store tests need: root, the btrfs tools, loop devices. Returns why not, or null.
 */
export function missingForBtrfs(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!hasCommand('mkfs.btrfs') || !hasCommand('btrfs')) return 'btrfs-progs is not installed';
  if (!existsSync('/dev/loop-control')) return 'no loop device support (/dev/loop-control)';
  return null;
}

/**
 * Options for a suite that needs real btrfs: skipped when a prerequisite is missing, except
 * in CI, where this throws instead — a skipped test is not a pass.
 */
export function btrfsSuite(): { skip: string | false } {
  const missing = missingForBtrfs();
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}

/**
 * Options for a suite that only runs the btrfs tools on byte streams (`btrfs receive --dump`
 * needs no filesystem and no root): skipped without btrfs-progs, failing in CI.
 */
export function btrfsToolsSuite(): { skip: string | false } {
  const missing = hasCommand('btrfs') ? null : 'btrfs-progs is not installed';
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}

/** What the FUSE mount tests need besides real btrfs: /dev/fuse and fusermount. */
export function missingForFuse(): string | null {
  const btrfs = missingForBtrfs();
  if (btrfs !== null) return btrfs;
  if (!existsSync('/dev/fuse')) return 'no FUSE device (/dev/fuse)';
  if (!hasCommand('fusermount')) return 'fusermount is not installed (package fuse)';
  return null;
}

/** Like {@link btrfsSuite}, for suites that mount buttersink with FUSE. */
export function fuseSuite(): { skip: string | false } {
  const missing = missingForFuse();
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}

/**
 * Like {@link btrfsSuite}, for suites that also start a real sshd on loopback: OpenSSH's
 * server must be installed (scripts/install-deps does it).
 */
export function sshSuite(): { skip: string | false } {
  let missing = missingForBtrfs();
  if (missing === null && !hasCommand('/usr/sbin/sshd')) missing = 'openssh-server is not installed (/usr/sbin/sshd)';
  if (missing === null && !hasCommand('ssh-keygen')) missing = 'openssh-client is not installed (ssh-keygen)';
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}
