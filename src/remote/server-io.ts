import { constants, fstatSync, openSync, read, write } from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { chunksOf } from '../util/stream-chunks.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** How long to wait before retrying a descriptor that said EAGAIN (one we could not make blocking). */
const RETRY_MS = 2;
/** How much of a send stream from the channel may wait in node's buffer. */
const REST_CHUNK_BYTES = 1 << 20;

/**
 * The server's side of the SSH channel as file descriptors. The output is written with plain
 * blocking writes, in order, because `btrfs send` is handed the same descriptor (a node stream
 * would make it non-blocking, which the child cannot cope with). The input is read only by
 * node, through one stream polled by libuv: a blocking read waiting in libuv's thread pool for
 * a client that sends nothing would keep the process from exiting on a signal (process.exit
 * joins the pool's threads), and whether the descriptor happened to be non-blocking then
 * depended on which modules had been loaded.
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
 * fails with EAGAIN half done, and `btrfs send` given the descriptor could fail the same way.
 * Node cannot clear the flag (no fcntl), but a pipe reopened through /proc/self/fd is a new
 * open file of the same pipe, blocking. Sockets cannot be reopened so: for them EAGAIN is
 * retried after a pause.
 */
export function fileDescriptorIo(inputFd = 0, outputFd = 1): ServerIo {
  const input = channelReader(inputFd);
  const output = blockingPipe(outputFd, constants.O_WRONLY);
  let queue: Promise<void> = Promise.resolve();
  return {
    outputFd: output,
    readExactly: (length) => input.readExactly(length),
    rest(before) {
      return Readable.from(
        (async function* () {
          await before();
          yield* input.rest();
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

interface ChannelReader {
  readExactly(length: number): Promise<Buffer>;
  rest(): AsyncGenerator<Buffer>;
}

/**
 * The input as one stream (a pipe or a socket), created on the first read. It reads ahead by
 * at most the stream's high-water mark (a few pipelined requests, or the start of a receive's
 * stream, which `rest` then yields first). Anything else (a file, a terminal) is read with
 * thread-pool reads, as a last resort.
 */
function channelReader(fd: number): ChannelReader {
  let kind: 'stream' | 'file';
  try {
    const stat = fstatSync(fd);
    kind = stat.isFIFO() || stat.isSocket() ? 'stream' : 'file';
  } catch {
    kind = 'file';
  }
  if (kind === 'file') return fileReader(fd);
  let channel: net.Socket | undefined;
  const open = (): net.Socket => {
    if (channel) return channel;
    // fd 0 is process.stdin's: a second handle on it would fail (EEXIST from epoll) as soon as
    // anything touches process.stdin (execa, say, when it is loaded).
    const socket = fd === 0 ? (process.stdin as net.Socket) : new net.Socket({ fd, readable: true, writable: false });
    socket.on('error', () => {}); // kept in socket.errored, thrown by the read that waits
    channel = socket;
    return socket;
  };
  return {
    async readExactly(length) {
      const socket = open();
      const parts: Buffer[] = [];
      let have = 0;
      while (have < length) {
        if (socket.errored) throw socket.errored;
        // Everything buffered, taken whole: read(n) short of n bytes, with a 'readable'
        // listener added while bytes wait, would spin on 'readable' in process.nextTick and
        // starve the very I/O that brings the rest.
        const chunk = socket.read() as Buffer | null;
        if (chunk !== null) {
          parts.push(chunk);
          have += chunk.length;
          continue;
        }
        if (socket.readableEnded || socket.destroyed) break;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('readable', done);
            socket.off('end', done);
            socket.off('close', done);
            socket.off('error', done);
            resolve();
          };
          socket.on('readable', done);
          socket.on('end', done);
          socket.on('close', done);
          socket.on('error', done);
        });
      }
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
      // What came beyond the frame goes back, first in line for the next read (or `rest`).
      if (have > length) socket.unshift(all.subarray(length));
      return all.subarray(0, Math.min(have, length));
    },
    async *rest() {
      const socket = open();
      try {
        // Chunk by chunk (chunksOf): the socket's own iterator joins what is buffered into copies.
        yield* chunksOf(socket);
      } finally {
        socket.destroy();
      }
    },
  };
}

function fileReader(fd: number): ChannelReader {
  const readExactly = async (length: number): Promise<Buffer> => {
    const buffer = Buffer.alloc(length);
    let filled = 0;
    while (filled < length) {
      const n = await retryingAgain(() => readAsync(fd, buffer, filled, length - filled, null).then((r) => r.bytesRead));
      if (n === 0) break;
      filled += n;
    }
    return buffer.subarray(0, filled);
  };
  return {
    readExactly,
    async *rest() {
      for (;;) {
        const chunk = await readExactly(REST_CHUNK_BYTES);
        if (chunk.length === 0) return;
        yield chunk;
      }
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
