import { Readable } from 'node:stream';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { ButtersinkError, PermissionError, StoreError, TransferError } from '../../model/errors.js';
import { checkHello, dataHeader, encodeEnd, encodeMessage, FrameDecoder, makeHello, type Operation } from '../../remote/protocol.js';
import { fromWireError } from '../../remote/wire-errors.js';
import { lastLines } from '../btrfs/last-lines.js';

const STDERR_KEEP = 8192;

/** Where the bytes of a stream the server sends go. */
interface StreamSink {
  /** Returns false when the consumer wants no more for now; it calls `resume()` later. */
  data(chunk: Buffer): boolean;
  end(): void;
  fail(error: Error): void;
}

/**
 * The client end of one `buttersink server` process on one SSH exec channel: the handshake,
 * requests matched to responses by id, and at most one stream each way. Flow control is the
 * channel's: while the consumer of incoming data lags the channel is paused, which stops
 * ssh2 from widening its window, which stops the server.
 */
export class ServerChannel {
  readonly #channel: ClientChannel;
  readonly #where: string;
  readonly #version: string;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #hello: Promise<void>;
  readonly #closed: Promise<void>;
  #settleHello: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #nextId = 1;
  #stderr = '';
  #exitCode: number | null = null;
  #failure: Error | undefined;
  #sink: StreamSink | undefined;
  #isClosing = false;

  private constructor(channel: ClientChannel, where: string, version: string) {
    this.#channel = channel;
    this.#where = where;
    this.#version = version;
    this.#hello = new Promise((resolve, reject) => (this.#settleHello = { resolve, reject }));
    this.#hello.catch(() => {});
    this.#closed = new Promise((resolve) => channel.once('close', resolve));
    channel.on('data', (chunk: Buffer) => this.#onData(chunk));
    channel.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    channel.on('exit', (code: number | null) => (this.#exitCode = code));
    channel.on('error', (error: Error) => this.#fail(new TransferError(`the channel to ${where} failed: ${error.message}`)));
    channel.once('close', () => this.#onClose());
  }

  /**
   * Starts `command` (a `buttersink server ...` line) on the connection and shakes hands.
   * @throws StoreError/PermissionError for a remote end that is not a compatible buttersink
   * server, saying which (missing, too old, sudo wants a password, ...).
   */
  static async open(client: SshClient, command: string, where: string, version: string): Promise<ServerChannel> {
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec(command, (error, ch) =>
        error ? reject(new StoreError(`cannot start the remote buttersink on ${where}: ${error.message}`, { cause: error })) : resolve(ch),
      ),
    );
    const server = new ServerChannel(channel, where, version);
    channel.write(encodeMessage(makeHello(version)));
    await server.#hello;
    return server;
  }

  /** Sends a request; resolves with the server's result, rejects with its typed error. */
  request(op: Operation, args: Record<string, unknown> = {}): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#channel.write(encodeMessage({ id, op, ...args }));
    });
  }

  /**
   * Sends a request whose answer starts with a stream (a send): the stream ends when the
   * server marks its end; `done` settles with the server's final word on it.
   */
  requestStream(op: Operation, args: Record<string, unknown>): { stream: Readable; done: Promise<void> } {
    let isEnded = false;
    const stream = new Readable({
      highWaterMark: 1 << 20,
      read: () => this.#channel.resume(),
      destroy: (error, callback) => {
        // The consumer gave up (or the transfer failed): closing tells the server to stop.
        if (!isEnded) void this.close();
        callback(error);
      },
    });
    this.#sink = {
      data: (chunk) => stream.push(chunk),
      end: () => {
        isEnded = true;
        stream.push(null);
      },
      fail: (error) => stream.destroy(error),
    };
    const done = this.request(op, args).then(
      () => {
        if (!isEnded) throw new TransferError(`the stream from ${this.#where} ended without its end mark`);
      },
      (error: Error) => {
        stream.destroy(error);
        throw error;
      },
    );
    done.catch(() => {});
    return { stream, done };
  }

  /** Writes stream data; false when the channel's window is full (wait for {@link drained}). */
  writeData(chunk: Buffer): boolean {
    if (this.#failure) throw this.#failure;
    this.#channel.cork();
    this.#channel.write(dataHeader(chunk.length));
    const ok = this.#channel.write(chunk);
    this.#channel.uncork();
    return ok;
  }

  writeEnd(): void {
    this.#channel.write(encodeEnd());
  }

  /** Resolves when the channel takes more data, or can take none any more. */
  drained(): Promise<void> {
    if (this.#failure) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#channel.off('drain', done);
        this.#channel.off('close', done);
        resolve();
      };
      this.#channel.on('drain', done);
      this.#channel.on('close', done);
    });
  }

  /** Ends our side without an end mark: the server takes a running stream as cut. */
  endInput(): void {
    this.#channel.end();
  }

  /** Ends our side and waits for the server to exit (it releases what it held). */
  async close(): Promise<void> {
    this.#isClosing = true;
    this.#channel.end();
    await this.#closed;
  }

  #onData(chunk: Buffer): void {
    let events;
    try {
      events = this.#decoder.push(chunk);
    } catch (error) {
      this.#fail(new StoreError(`the remote command on ${this.#where} did not speak the buttersink protocol: ${(error as Error).message}`, {
        hint: 'make sure nothing (a shell profile, a banner) prints to stdout for non-interactive commands',
      }));
      this.#channel.close();
      return;
    }
    for (const event of events) {
      if (event.kind === 'data') {
        if (this.#sink && !this.#sink.data(event.chunk)) this.#channel.pause();
      } else if (event.kind === 'end') {
        this.#sink?.end();
      } else if (this.#settleHello) {
        const problem = checkHello(event.value, { version: this.#version });
        const settle = this.#settleHello;
        this.#settleHello = undefined;
        if (problem === null) settle.resolve();
        else settle.reject(this.#fail(new StoreError(`${this.#where}: ${problem}`, { hint: 'install the same buttersink version on both ends' })));
      } else if (typeof event.value.id === 'number') {
        const waiting = this.#pending.get(event.value.id);
        this.#pending.delete(event.value.id);
        if (event.value.ok === true) waiting?.resolve(event.value.result);
        else waiting?.reject(fromWireError(event.value.error, this.#where));
      } else if (event.value.error !== undefined) {
        this.#fail(fromWireError(event.value.error, this.#where));
      }
    }
  }

  #onClose(): void {
    if (this.#settleHello) {
      this.#settleHello.reject(this.#fail(startFailure(this.#where, this.#exitCode, this.#stderr)));
      this.#settleHello = undefined;
      return;
    }
    const tail = lastLines(this.#stderr, 3).replaceAll('\n', ' | ');
    this.#fail(
      this.#isClosing
        ? new TransferError(`the channel to ${this.#where} was closed`)
        : new TransferError(`the connection to ${this.#where} was lost${tail ? `: ${tail}` : ''}`, { stderrTail: tail }),
    );
  }

  /** Records the first failure and fails everything waiting; returns that failure. */
  #fail(error: Error): Error {
    this.#failure ??= error;
    for (const waiting of this.#pending.values()) waiting.reject(this.#failure);
    this.#pending.clear();
    this.#sink?.fail(this.#failure);
    this.#sink = undefined;
    return this.#failure;
  }
}

/**
 * Why the remote command ended before greeting, from its exit code and stderr, as something
 * the user can act on.
 */
export function startFailure(where: string, exitCode: number | null, stderr: string): ButtersinkError {
  const tail = lastLines(stderr, 3).replaceAll('\n', ' | ');
  const said = tail ? `: ${tail}` : '';
  if (/sudo: (a password is required|a terminal is required)/.test(stderr)) {
    return new PermissionError(`sudo on ${where} needs a password for buttersink server`, {
      hint: 'allow the exact command without a password in sudoers there (see README "SSH stores")',
    });
  }
  if (/sudo: .*(not allowed to execute|is not in the sudoers|may not run sudo)|Sorry, user .* is not allowed/.test(stderr)) {
    return new PermissionError(`sudo on ${where} does not allow this buttersink server command${said}`, {
      hint: 'the sudoers line must match the mode and directory exactly (see README "SSH stores")',
    });
  }
  if (exitCode === 127 || /command not found|No such file or directory/.test(stderr)) {
    return new StoreError(`buttersink is not installed on ${where} (or not on the PATH of non-interactive shells)${said}`, {
      hint: 'install the same buttersink version there, or name its path with --remote-command',
    });
  }
  if (/unknown command|unknown option|too many arguments/.test(stderr)) {
    return new StoreError(`the buttersink on ${where} is too old: it has no server command${said}`, {
      hint: 'install the same buttersink version on both ends',
    });
  }
  return new StoreError(`the remote buttersink on ${where} ended before answering (exit ${exitCode ?? 'unknown'})${said}`);
}
