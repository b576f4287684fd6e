import { InterruptedError, TransferError } from '../../model/errors.js';
import { lastLines } from '../../util/last-lines.js';
import { formatCommand, traceCommand } from './run-btrfs.js';
import { runCaptured } from '../../util/run-captured.js';

/**
 * `btrfs send | btrfs receive` between two local filesystems with the stream flowing from
 * process to process through kernel pipes, never through node: the stream's first command is
 * swapped for `renamedHead` (so that receive creates the subvolume under a temporary name),
 * and `pv` (zero-copy splice; `dd` where pv is missing) passes the rest on and reports progress.
 *
 * `originalHead` is what send will emit first (see readStreamHead); the pipeline checks it
 * byte for byte before replacing it, and fails rather than receive a stream it did not
 * expect. Every stage gets SIGKILL when its parent dies (`setpriv --pdeathsig`), so killing
 * buttersink, even with SIGKILL, stops the whole pipeline: no orphan keeps writing.
 */
const SCRIPT = String.raw`
set -u
length=$1 expected=$2 renamed=$3 directory=$4 rate=$5
shift 5
setpriv --pdeathsig KILL btrfs send "$@" 2>&3 | {
  actual=$(dd bs="$length" count=1 iflag=fullblock status=none | od -An -v -tx1 | tr -d ' \n')
  if [ "$actual" != "$expected" ]; then echo "the send stream did not start as expected" >&4; exit 90; fi
  printf "$renamed"
  # pv moves pipe to pipe with splice(2), without copying through user space; dd does copy.
  # pv -L limits the rate (--rate-limit); dd cannot.
  if command -v pv >/dev/null; then
    if [ "$rate" != 0 ]; then exec pv -f -n -b -i 0.5 -L "$rate" 2>&4; fi
    exec pv -f -n -b -i 0.5 2>&4
  fi
  if [ "$rate" != 0 ]; then echo "--rate-limit between local stores needs pv (apt install pv)" >&4; exit 91; fi
  exec dd bs=1M status=progress 2>&4
} | setpriv --pdeathsig KILL btrfs -q receive "$directory" 2>&5
echo "${'$'}{PIPESTATUS[*]}"
`;

/** The send stream did not start with the expected head (e.g. a stale cached one); nothing was received. */
export class StreamHeadMismatchError extends TransferError {}

export interface PipeOptions {
  readonly sendArgs: readonly string[];
  readonly originalHead: Buffer;
  readonly renamedHead: Buffer;
  readonly receiveDirectory: string;
  readonly onBytes: (total: number) => void;
  readonly signal?: AbortSignal;
  /** Names for messages. */
  readonly what: string;
  /** At most this many bytes per second (pv -L); unlimited when undefined. */
  readonly rateLimit?: number;
}

/**
 * Resolves with the bytes of the send stream: what the plan measured and what other paths
 * count. (Receive read a little more: the head renamed to the temporary name.)
 */
export async function pipeSendToReceive(options: PipeOptions): Promise<number> {
  traceCommand(
    `${formatCommand(['send', ...options.sendArgs])} | (rename) | ${formatCommand(['-q', 'receive', options.receiveDirectory])}`,
  );
  const escaped = [...options.renamedHead].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  let copied = 0;
  let progress = '';
  // pv prints byte counts one per line; dd prints `N bytes ... copied` lines ending in \r
  // (progress) or \n (summary). The largest count seen is the total so far.
  const onProgress = (data: Buffer): void => {
    progress = (progress + data.toString('latin1')).slice(-4096);
    for (const line of progress.split(/[\r\n]/)) {
      const m = /^(\d+)(?: bytes|$)/.exec(line.trim());
      if (m && Number(m[1]) > copied) {
        copied = Number(m[1]);
        options.onBytes(copied);
      }
    }
  };
  // One bash child, its stages' stderr on fds 3 (send), 4 (pv or dd) and 5 (receive).
  const result = await runCaptured(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      'bash',
      '-c',
      SCRIPT,
      'buttersink-pipe',
      String(options.originalHead.length),
      options.originalHead.toString('hex'),
      escaped,
      options.receiveDirectory,
      String(options.rateLimit ?? 0),
      ...options.sendArgs,
    ],
    {
      extraPipes: 3,
      onData: { fd: 4, listener: onProgress },
      ...(options.signal ? { signal: options.signal, forceKillAfterMs: 2000 } : {}),
    },
  );
  if (options.signal?.aborted) throw new InterruptedError(`interrupted while ${options.what}`);
  const codes = result.stdout.trim().split(/\s+/).map(Number);
  const [sendCode, copyCode, receiveCode] = codes;
  // The stream's head, then everything pv or dd copied after it.
  if (result.exitCode === 0 && codes.length === 3 && codes.every((c) => c === 0)) return options.originalHead.length + copied;

  const [sendErr, , receiveErr] = result.extra.map((text) => lastLines(text, 3));
  const copyErr = lastLines(progress.replace(/\r/g, '\n'), 1);
  // The first stage that failed on its own, not one that only saw its neighbour die.
  const reason =
    copyCode === 90 || copyCode === 91
      ? copyErr
      : receiveCode !== undefined && receiveCode !== 0 && receiveErr
        ? `btrfs receive: ${receiveErr}`
        : sendCode !== undefined && sendCode !== 0 && sendCode !== 141
          ? `btrfs send: ${sendErr || `exit ${sendCode}`}`
          : receiveErr || sendErr || result.stderr || `exit codes ${codes.join(' ') || (result.spawnErrorCode ?? result.exitCode)}`;
  const ErrorClass = copyCode === 90 ? StreamHeadMismatchError : TransferError;
  throw new ErrorClass(`${options.what} failed: ${reason.replaceAll('\n', ' | ')}`, {
    stderrTail: [sendErr, receiveErr].filter(Boolean).join('\n'),
  });
}
