import { COMMAND_HEADER_BYTES, STREAM_HEADER_BYTES } from '../../sendstream/stream-format.js';
import { spawnBtrfs } from './run-btrfs.js';

/**
 * The first bytes of the stream `btrfs send ARGS` will produce: the stream header and its
 * first command (`subvol` or `snapshot`, which names the subvolume). They are read from a
 * `--no-data` send of the same subvolumes, whose first command is the same, and the send
 * is stopped right after them. Resolves null when the stream could not be read.
 */
export async function readStreamHead(sendArgs: readonly string[], signal?: AbortSignal): Promise<Buffer | null> {
  const child = spawnBtrfs(['send', '--no-data', ...sendArgs], { stdin: 'ignore', stdout: 'pipe', signal });
  let head = Buffer.alloc(0);
  let wanted = STREAM_HEADER_BYTES + COMMAND_HEADER_BYTES;
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      head = Buffer.concat([head, chunk]);
      if (head.length >= STREAM_HEADER_BYTES + COMMAND_HEADER_BYTES) {
        wanted = STREAM_HEADER_BYTES + COMMAND_HEADER_BYTES + head.readUInt32LE(STREAM_HEADER_BYTES);
      }
      if (head.length >= wanted) break;
    }
  } finally {
    child.kill();
    await child.result;
  }
  return head.length >= wanted ? head.subarray(0, wanted) : null;
}
