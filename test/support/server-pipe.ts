import { spawn } from 'node:child_process';
import { packageVersion } from '../../src/model/package-version.js';
import { encodeMessage, FrameDecoder, makeHello } from '../../src/remote/protocol.js';
import type { WireSnapshot } from '../../src/remote/wire-snapshot.js';
import { CLI } from './run-cli.js';

/** A receive request as the SSH store sends it (src/stores/ssh/ssh-store.ts). */
export interface ServerReceiveRequest {
  readonly name: string;
  readonly snapshot: WireSnapshot;
  readonly parent: WireSnapshot | null;
  readonly expectedBytes: number;
}

export interface ServerReceiveResult {
  /** The server answered `{ready: true}` and was sent the stream. */
  readonly wasReady: boolean;
  /** The server's answer to the request (`{id, ok, result|error}`), or null when none came. */
  readonly answer: Record<string, unknown> | null;
  readonly exitCode: number | null;
  readonly stderr: string;
}

const STEP_TIMEOUT_MS = 60_000;

/**
 * Runs `buttersink server --mode MODE DIRECTORY` on pipes (no sshd) and plays the client's
 * side of one receive, as the SSH store does: greet, send the request, wait for `ready`,
 * write the raw stream, close stdin, read the answer. The server process is waited for.
 */
export async function receiveThroughServer(options: {
  readonly mode: 'r' | 'a' | 'w';
  readonly directory: string;
  readonly request: ServerReceiveRequest;
  readonly stream: Buffer;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<ServerReceiveResult> {
  const child = spawn(process.execPath, [CLI, 'server', '--mode', options.mode, options.directory], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  // The server may stop reading (a refused stream) before the client is done writing.
  child.stdin.on('error', () => {});

  const decoder = new FrameDecoder();
  const queue: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  child.stdout.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let m = decoder.next(); m !== undefined; m = decoder.next()) queue.push(m);
    wake?.();
  });
  child.stdout.on('end', () => {
    ended = true;
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown> | null> => {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (queue.length === 0 && !ended) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`buttersink server did not answer within ${STEP_TIMEOUT_MS} ms; stderr: ${stderr}`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    return queue.shift() ?? null;
  };

  let wasReady = false;
  let answer: Record<string, unknown> | null = null;
  try {
    const hello = await next();
    if (hello?.program !== 'buttersink') throw new Error(`the server did not greet: ${JSON.stringify(hello)}; stderr: ${stderr}`);
    child.stdin.write(encodeMessage(makeHello(packageVersion())));
    child.stdin.write(encodeMessage({ id: 1, op: 'receive', ...options.request }));
    const first = await next();
    if (first?.ready === true) {
      wasReady = true;
      child.stdin.end(options.stream);
      answer = await next();
    } else {
      answer = first;
      child.stdin.end();
    }
  } finally {
    if (!child.stdin.destroyed) child.stdin.end();
  }
  const exitCode = await exited;
  return { wasReady, answer, exitCode, stderr };
}
