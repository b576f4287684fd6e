import type { WireSnapshot } from '../../src/remote/wire-snapshot.js';
import { ServerProcess } from './server-process.js';

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
  const server = await ServerProcess.greeted(options.mode, options.directory, options.env);
  // The next message, or null once the server closed its output; a hung server is killed.
  const next = async (): Promise<Record<string, unknown> | null> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        server.child.kill('SIGKILL');
        reject(new Error(`buttersink server did not answer within ${STEP_TIMEOUT_MS} ms; stderr: ${server.stderr}`));
      }, STEP_TIMEOUT_MS);
    });
    try {
      return await Promise.race([server.next().catch(() => null), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  server.send({ id: 1, op: 'receive', ...options.request });
  const first = await next();
  const wasReady = first?.ready === true;
  let answer = first;
  if (wasReady) {
    server.child.stdin.end(options.stream);
    answer = await next();
  }
  const { code } = await server.close();
  return { wasReady, answer, exitCode: code, stderr: server.stderr };
}
