import { readdirSync, readFileSync } from 'node:fs';

/**
 * A process as /proc shows it. PIDs are reused (pid_max is 32768 on many machines, and a busy
 * one wraps within minutes), so a PID noted in a file names "our" process only together with
 * its start time (clock ticks since boot: `/proc/PID/stat` field 22).
 */
export interface ProcessIdentity {
  readonly pid: number;
  /** Undefined for a note written without one (then the PID alone is trusted). */
  readonly startTime?: string;
}

/** This process's identity, as `pid startTime` (the text a PID file holds). */
export function ownIdentityText(): string {
  return `${process.pid} ${statFields(`/proc/${process.pid}/stat`)?.[19] ?? ''}`.trim();
}

/** Parses `pid [startTime]`; undefined when the text names no PID. */
export function parseIdentity(text: string): ProcessIdentity | undefined {
  const [pid, startTime] = text.trim().split(/\s+/);
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  return startTime === undefined ? { pid: n } : { pid: n, startTime };
}

/** Is that very process still running? A zombie (exited, not yet reaped) is not; nor is a later process that got its PID. */
export function isRunning(identity: ProcessIdentity): boolean {
  const fields = statFields(`/proc/${identity.pid}/stat`);
  if (fields === undefined || fields[0] === 'Z') return false;
  return identity.startTime === undefined || fields[19] === identity.startTime;
}

/**
 * Where a process that does not end is stuck, for an error message: its state and what its
 * threads wait in (`/proc/PID/task/TID/wchan`), e.g. `state S; threads in
 * request_wait_answer, ep_poll ×5`.
 */
export function whereStuck(pid: number): string {
  const state = statFields(`/proc/${pid}/stat`)?.[0] ?? '?';
  const waits = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 'it is gone';
  }
  for (const tid of tasks) {
    let wchan = '';
    try {
      wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'latin1').trim();
    } catch {
      continue;
    }
    const taskState = statFields(`/proc/${pid}/task/${tid}/stat`)?.[0] ?? '?';
    const key = `${wchan === '' || wchan === '0' ? 'running' : wchan}${taskState === 'D' ? ' (D)' : ''}`;
    waits.set(key, (waits.get(key) ?? 0) + 1);
  }
  const threads = [...waits].map(([wait, n]) => (n > 1 ? `${wait} ×${n}` : wait)).join(', ');
  return `state ${state}; threads in ${threads}`;
}

/** The fields of a `/proc/PID/stat` file after the command name: [0] is the state (field 3), [19] the start time (field 22). */
function statFields(file: string): string[] | undefined {
  try {
    const stat = readFileSync(file, 'latin1');
    // The command name is in parentheses and may itself hold blanks or ')': split after the last one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
