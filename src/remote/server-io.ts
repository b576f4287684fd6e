import { read, write } from 'node:fs';
import { promisify } from 'node:util';

const readAsync = promisify(read);
const writeAsync = promisify(write);

/**
 * The server's side of the SSH channel as plain file descriptors. Not node streams: a stream
 * reads ahead (bytes meant for `btrfs receive` would land in node's buffer) and makes the
 * descriptor non-blocking (which a child handed the descriptor cannot cope with). Reads and
 * writes here are blocking calls in libuv's thread pool, for exactly the bytes asked.
 */
export interface ServerIo {
  readonly inputFd: number;
  readonly outputFd: number;
  /** Reads exactly `length` bytes; fewer only at the end of the input. */
  readExactly(length: number): Promise<Buffer>;
  /** Writes all of `data`; writes happen in call order. */
  write(data: Buffer): Promise<void>;
}

export function fileDescriptorIo(inputFd = 0, outputFd = 1): ServerIo {
  let queue: Promise<void> = Promise.resolve();
  return {
    inputFd,
    outputFd,
    async readExactly(length) {
      const buffer = Buffer.alloc(length);
      let filled = 0;
      while (filled < length) {
        const n = await readAsync(inputFd, buffer, filled, length - filled, null).then(
          (r) => r.bytesRead,
          async (error: NodeJS.ErrnoException) => {
            if (error.code !== 'EAGAIN') throw error;
            await new Promise((r) => setTimeout(r, 5)); // someone made it non-blocking: poll
            return -1;
          },
        );
        if (n === 0) break;
        if (n > 0) filled += n;
      }
      return buffer.subarray(0, filled);
    },
    write(data) {
      const next = queue.then(async () => {
        let offset = 0;
        while (offset < data.length) offset += (await writeAsync(outputFd, data, offset, data.length - offset)).bytesWritten;
      });
      queue = next.catch(() => {});
      return next;
    },
  };
}
