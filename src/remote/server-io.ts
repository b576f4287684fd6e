import { constants, fstatSync, openSync, read, write } from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** How long to wait before retrying a descriptor that said EAGAIN (one we could not make blocking). */
const RETRY_MS = 2;
/** How much of a send stream from the channel may wait in node's buffer. */
const REST_CHUNK_BYTES = 1 << 20;

/**
 * The server's side of the SSH channel as plain file descriptors. Not node streams: a stream
 * reads ahead (bytes meant for `btrfs receive` would land in node's buffer) and makes the
 * descriptor non-blocking (which a child handed the descriptor cannot cope with). Reads and
 * writes here are blocking calls in libuv's thread pool, for exactly the bytes asked.
 */
export interface ServerIo {
  readonly outputFd: number;
  /** Reads exactly `length` bytes; fewer only at the end of the input. */
  readExactly(length: number): Promise<Buffer>;
  /** Writes all of `data`; writes happen in call order. */
  write(data: Buffer): Promise<void>;
  /**
   * The rest of the input as a stream (a receive's send stream), read only as fast as it is
   * consumed. `before` runs once before the first read (the server answers `ready` there).
   */
  rest(before: () => Promise<void>): Readable;
}

/**
 * The channel as {@link ServerIo}. Under sshd the server's pipes were seen in non-blocking
 * mode (/proc/PID/fdinfo; O_NONBLOCK is a flag of the pipe's open file, shared by every
 * process holding it, so any of them may set it): a write of more than the pipe's 64 KiB then
 * fails with EAGAIN half done, and `btrfs send`/`receive` given the descriptor could fail the
 * same way. Node cannot clear the
 * flag (no fcntl), but a pipe reopened through /proc/self/fd is a new open file of the same
 * pipe, blocking. Sockets cannot be reopened so: for them EAGAIN is retried after a pause.
 */
export function fileDescriptorIo(inputFd = 0, outputFd = 1): ServerIo {
  const input = blockingPipe(inputFd, constants.O_RDONLY);
  const output = blockingPipe(outputFd, constants.O_WRONLY);
  let queue: Promise<void> = Promise.resolve();
  return {
    outputFd: output,
    async readExactly(length) {
      const buffer = Buffer.alloc(length);
      let filled = 0;
      while (filled < length) {
        const n = await retryingAgain(() => readAsync(input, buffer, filled, length - filled, null).then((r) => r.bytesRead));
        if (n === 0) break;
        filled += n;
      }
      return buffer.subarray(0, filled);
    },
    rest(before) {
      return Readable.from(
        (async function* () {
          await before();
          // libuv reads the descriptor as it becomes readable, into its own slabs: unlike a
          // thread-pool read per chunk (a pipe gives at most 64 KiB at a time), this costs
          // nothing per chunk. It reads ahead only up to the stream's buffer (backpressure).
          const channel = new net.Socket({ fd: input, readable: true, writable: false });
          try {
            for await (const chunk of channel) yield chunk as Buffer;
          } finally {
            channel.destroy();
          }
        })(),
        { objectMode: false, highWaterMark: REST_CHUNK_BYTES },
      );
    },
    write(data) {
      const next = queue.then(async () => {
        let offset = 0;
        while (offset < data.length) {
          offset += await retryingAgain(() => writeAsync(output, data, offset, data.length - offset).then((r) => r.bytesWritten));
        }
      });
      queue = next.catch(() => {});
      return next;
    },
  };
}

/** `fd` itself, or when it is a pipe, a blocking descriptor of the same pipe. */
function blockingPipe(fd: number, flags: number): number {
  try {
    if (!fstatSync(fd).isFIFO()) return fd;
    return openSync(`/proc/self/fd/${fd}`, flags);
  } catch {
    return fd; // no /proc: the retries below still make it work
  }
}

async function retryingAgain(call: () => Promise<number>): Promise<number> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}
