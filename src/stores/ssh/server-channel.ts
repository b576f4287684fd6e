import { Readable } from 'node:stream';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { type ButtersinkError, messageOf, PermissionError, StoreError, TransferError } from '../../model/errors.js';
import { checkHello, encodeMessage, FrameDecoder, makeHello, RAW_ERROR_PREFIX, type Operation } from '../../remote/protocol.js';
import { fromWireError } from '../../remote/wire-errors.js';
import { lastLines } from '../../util/last-lines.js';
import { chunksOf } from '../../util/stream-chunks.js';

const STDERR_KEEP = 8192;

interface Waiting {
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** Called on the server's `ready` for a stream request; true when that answers it (a send). */
  ready?(): boolean;
}

/**
 * The client end of one `buttersink server` process on one SSH exec channel: the handshake,
 * requests matched to responses by id, and for a send or receive the raw stream after the
 * server's `ready` (see protocol.ts). Flow control is the channel's: while the consumer of
 * incoming data lags the channel is paused, which stops ssh2 from widening its window,
 * which stops the server.
 */
export class ServerChannel {
  readonly #channel: ClientChannel;
  readonly #where: string;
  readonly #version: string;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Waiting>();
  readonly #hello: Promise<void>;
  readonly #closed: Promise<void>;
  #settleHello: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #nextId = 1;
  #stderr = '';
  #exitCode: number | null = null;
  #failure: Error | undefined;
  /** Where raw stream bytes go once the server said `ready` to a send. */
  #raw: Readable | undefined;
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
  request(op: Operation, args: Record<string, unknown> = {}, ready?: () => boolean): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, ...(ready ? { ready } : {}) });
      this.#channel.write(encodeMessage({ id, op, ...args }));
    });
  }

  /**
   * A send on the server: its stream, and `done`, which settles with the server's exit status
   * (0: `btrfs send` succeeded) once the channel closed. Destroying the stream closes the
   * channel, which stops the send over there.
   */
  download(op: Operation, args: Record<string, unknown>): { stream: Readable; done: Promise<void> } {
    const stream = new Readable({
      highWaterMark: 1 << 20,
      read: () => this.#channel.resume(),
      destroy: (error, callback) => {
        if (!this.#channel.readableEnded) this.#abandon();
        callback(error);
      },
    });
    const started = this.request(op, args, () => {
      this.#raw = stream;
      const rest = this.#decoder.takeRest();
      if (rest.length > 0 && !stream.push(rest)) this.#channel.pause();
      return true; // no other answer comes: the exit status tells the rest
    });
    // A refusal comes as a response instead of `ready`; a send that started never answers.
    let refusal: Error | undefined;
    started.catch((error: Error) => {
      refusal = error;
      stream.destroy(error);
    });
    const done = this.#closed.then(() => {
      if (refusal) throw refusal;
      if (this.#raw && this.#exitCode === 0) return;
      throw this.#rawFailure();
    });
    done.catch(() => {});
    return { stream, done };
  }

  /**
   * A receive on the server: sends the request, streams `source` raw after `ready`, ends our
   * side, and resolves with the server's result. When `source` fails, our side ends early:
   * the server sees a stream without its END command, removes its partial and answers; the
   * source's error is thrown then. A refusal from the server stops reading `source`.
   */
  async upload(op: Operation, args: Record<string, unknown>, source: Readable): Promise<unknown> {
    let isReady = false;
    let onReady: () => void = () => {};
    const readyNow = new Promise<void>((resolve) => (onReady = resolve));
    const answer = this.request(op, args, () => {
      isReady = true;
      onReady();
      return false; // the answer comes after the stream
    });
    let serverFailedFirst = false;
    let upstream: Error | undefined;
    const answered = answer.then(
      (value) => {
        onReady(); // (an answer without `ready` would be a broken server: do not wait forever)
        return { value };
      },
      (error: Error) => {
        serverFailedFirst = upstream === undefined;
        source.destroy();
        onReady();
        return { error };
      },
    );
    await readyNow;
    if (isReady) {
      try {
        // Chunk by chunk (chunksOf): the stream's own iterator joins what is buffered into a
        // copy of most of the stream on the way to ssh2, which copies each packet again.
        for await (const chunk of chunksOf(source)) {
          if (this.#failure) throw this.#failure;
          if (!this.#channel.write(chunk)) await this.#drained();
        }
      } catch (error) {
        upstream = error as Error;
      }
      this.#channel.end(); // the end of the stream, or of a cut one
    }
    const result = await answered;
    if ('error' in result && (upstream === undefined || serverFailedFirst)) throw result.error;
    if (upstream !== undefined) throw upstream;
    return (result as { value: unknown }).value;
  }

  /** Resolves when the channel takes more data, or can take none any more. */
  #drained(): Promise<void> {
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

  /**
   * The consumer of a send gave up: closes the channel at once instead of ending our side.
   * The channel is paused then, its window full, so the server's last data, exit status and
   * close could never arrive after a mere end; closed, sshd drops the pipes, the server's
   * `btrfs send` fails writing and the server exits.
   */
  #abandon(): void {
    this.#isClosing = true;
    this.#channel.close();
  }

  /** Ends our side and waits for the server to exit (it releases what it held). */
  async close(): Promise<void> {
    this.#isClosing = true;
    this.#channel.end();
    await this.#closed;
  }

  #onData(chunk: Buffer): void {
    if (this.#raw) {
      // What was in flight when the consumer gave up is dropped.
      if (!this.#raw.destroyed && !this.#raw.push(chunk)) this.#channel.pause();
      return;
    }
    this.#decoder.push(chunk);
    try {
      for (let message = this.#decoder.next(); message !== undefined; message = this.#raw ? undefined : this.#decoder.next()) {
        this.#onMessage(message);
      }
    } catch (error) {
      this.#fail(
        new StoreError(`the remote command on ${this.#where} did not speak the buttersink protocol: ${messageOf(error)}`, {
          hint: 'make sure nothing (a shell profile, a banner) prints to stdout for non-interactive commands',
        }),
      );
      this.#channel.close();
    }
  }

  #onMessage(message: Record<string, unknown>): void {
    if (this.#settleHello) {
      const problem = checkHello(message, { version: this.#version });
      const settle = this.#settleHello;
      this.#settleHello = undefined;
      if (problem === null) settle.resolve();
      else
        settle.reject(
          this.#fail(new StoreError(`${this.#where}: ${problem}`, { hint: 'install the same buttersink version on both ends' })),
        );
      return;
    }
    if (typeof message.id !== 'number') {
      if (message.error !== undefined) this.#fail(fromWireError(message.error, this.#where));
      return;
    }
    const waiting = this.#pending.get(message.id);
    if (message.ready === true) {
      if (waiting?.ready?.() === true) {
        this.#pending.delete(message.id);
        waiting.resolve(null);
      }
      return;
    }
    this.#pending.delete(message.id);
    if (message.ok === true) waiting?.resolve(message.result);
    else waiting?.reject(fromWireError(message.error, this.#where));
  }

  /** Why a send failed after it started: the server's last word on stderr, else the cut. */
  #rawFailure(): Error {
    const line = this.#stderr
      .split('\n')
      .reverse()
      .find((l) => l.startsWith(RAW_ERROR_PREFIX));
    if (line !== undefined) {
      try {
        return fromWireError(JSON.parse(line.slice(RAW_ERROR_PREFIX.length)), this.#where);
      } catch {
        // fall through: a garbled line is no better than none
      }
    }
    return (
      this.#failure ??
      new TransferError(`the stream from ${this.#where} ended without the server's confirmation (exit ${this.#exitCode ?? 'none'})`)
    );
  }

  #onClose(): void {
    if (this.#settleHello) {
      this.#settleHello.reject(this.#fail(startFailure(this.#where, this.#exitCode, this.#stderr)));
      this.#settleHello = undefined;
      return;
    }
    const tail = lastLines(
      this.#stderr
        .split('\n')
        .filter((l) => !l.startsWith(RAW_ERROR_PREFIX))
        .join('\n'),
      3,
    ).replaceAll('\n', ' | ');
    this.#fail(
      this.#isClosing || (this.#raw && this.#exitCode !== null)
        ? new TransferError(`the channel to ${this.#where} was closed`)
        : new TransferError(`the connection to ${this.#where} was lost${tail ? `: ${tail}` : ''}`, { stderrTail: tail }),
    );
    // A raw stream ends only when the server confirmed it (the channel closes after all data
    // was read and after the exit status): a cut one fails, rather than merely stopping.
    if (this.#raw && !this.#raw.destroyed) {
      if (this.#exitCode === 0) this.#raw.push(null);
      else this.#raw.destroy(this.#rawFailure());
    }
  }

  /** Records the first failure and fails everything waiting; returns that failure. */
  #fail(error: Error): Error {
    this.#failure ??= error;
    for (const waiting of this.#pending.values()) waiting.reject(this.#failure);
    this.#pending.clear();
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
