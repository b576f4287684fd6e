import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { packageVersion } from '../../src/model/package-version.js';
import { encodeMessage, FrameDecoder, makeHello } from '../../src/remote/protocol.js';
import { CLI } from './run-cli.js';

/**
 * `buttersink server --mode M DIR` on pipes, as sshd would start it, for talking to it from
 * the client's side without SSH: frames go in raw, answers are decoded as they come. Tests
 * may write anything (hostile frames included) and choose when to read.
 */
export class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #decoder = new FrameDecoder();
  readonly #messages: Record<string, unknown>[] = [];
  #waiters: (() => void)[] = [];
  #stderr = '';
  #isReading = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(mode: string, directory: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, 'server', '--mode', mode, directory], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString('utf8')));
    this.child.stdin.on('error', () => {}); // a server that exited: the test sees its answers
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    this.child.stdout.pause();
  }

  /** Starts a server and greets it (the server greets first; its hello is taken). */
  static async greeted(mode: string, directory: string, env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
    const server = new ServerProcess(mode, directory, env);
    server.startReading();
    server.send(makeHello(packageVersion()));
    const hello = await server.next();
    if (hello.program !== 'buttersink') throw new Error(`unexpected hello ${JSON.stringify(hello)}`);
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Writes one message frame. */
  send(value: unknown): void {
    this.child.stdin.write(encodeMessage(value));
  }

  /** Writes raw bytes (a hostile frame). */
  sendRaw(bytes: Buffer): void {
    this.child.stdin.write(bytes);
  }

  /** A request; resolves with its answer (answers to other requests stay queued). */
  async request(id: number, op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.send({ id, op, ...args });
    return this.answer(id);
  }

  /** The answer to request `id`. */
  async answer(id: number): Promise<Record<string, unknown>> {
    for (;;) {
      const at = this.#messages.findIndex((m) => m.id === id);
      if (at >= 0) return this.#messages.splice(at, 1)[0]!;
      await this.#arrival();
    }
  }

  /** The next message, whatever it answers. */
  async next(): Promise<Record<string, unknown>> {
    while (this.#messages.length === 0) await this.#arrival();
    return this.#messages.shift()!;
  }

  /** Reads and decodes stdout from now on (a test that wants backpressure starts it late). */
  startReading(): void {
    if (this.#isReading) return;
    this.#isReading = true;
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk);
      for (let m = this.#decoder.next(); m !== undefined; m = this.#decoder.next()) this.#messages.push(m);
      this.#wake();
    });
    this.child.stdout.on('end', () => this.#wake());
    this.child.stdout.resume();
  }

  /** Ends stdin (the client closed its side) and waits for the exit. */
  async close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin.end();
    return this.exited;
  }

  /** Resident memory of the server process, in MiB (VmRSS in /proc/PID/status). */
  rssMiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
  }

  #arrival(): Promise<void> {
    if (this.child.stdout.readableEnded) return Promise.reject(new Error(`the server closed its output; stderr: ${this.#stderr}`));
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
