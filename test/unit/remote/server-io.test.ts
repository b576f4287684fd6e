import assert from 'node:assert/strict';
import { type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { describe, test } from 'node:test';

const SERVER_IO = new URL('../../../src/remote/server-io.js', import.meta.url).href;

/**
 * A child that reads frames as the server does (3 bytes, then a large frame, then the rest as
 * a stream) and writes the SHA-256 of each back; or, with `idle`, waits in a read and exits
 * 143 on SIGTERM, as `buttersink server` does.
 */
const CHILD = `
const { fileDescriptorIo } = await import(${JSON.stringify(SERVER_IO)});
const { createHash } = await import('node:crypto');
const io = fileDescriptorIo(0, 1);
const hex = (b) => createHash('sha256').update(b).digest('hex');
if (process.argv.includes('idle')) {
  process.on('SIGTERM', () => process.exit(143));
  await io.write(Buffer.from('waiting\\n'));
  await io.readExactly(4);
} else {
  const small = await io.readExactly(3);
  const large = await io.readExactly(Number(process.argv.at(-1)));
  const hash = createHash('sha256');
  for await (const chunk of io.rest(async () => {})) hash.update(chunk);
  await io.write(Buffer.from(JSON.stringify([hex(small), hex(large), hash.digest('hex')]) + '\\n'));
}
`;

interface Child {
  readonly process: ChildProcessByStdio<Writable | null, Readable, null>;
  readonly stdin: Writable;
}

/**
 * The child with its stdin a socket (node's default for `pipe`) or a real pipe (a FIFO, as
 * sshd gives the server pipes); `sh` execs node, so signals reach node itself.
 */
function child(kind: 'socket' | 'pipe', ...args: string[]): Child {
  const node = [process.execPath, '--input-type=module', '-e', CHILD, '--', ...args];
  if (kind === 'socket') {
    const c = spawn(node[0]!, node.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    return { process: c, stdin: c.stdin };
  }
  const fifo = path.join(mkdtempSync(path.join(os.tmpdir(), 'buttersink-server-io-')), 'channel');
  execFileSync('mkfifo', [fifo]);
  const c = spawn('sh', ['-c', 'exec "$@" < "$FIFO"', 'sh', ...node], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FIFO: fifo },
  });
  return { process: c, stdin: createWriteStream(fifo) };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function output(c: Child): Promise<string> {
  let text = '';
  c.process.stdout.on('data', (d: Buffer) => (text += d.toString()));
  await once(c.process, 'exit');
  return text;
}

describe('the server channel (fileDescriptorIo)', () => {
  for (const kind of ['socket', 'pipe'] as const) {
    test(`${kind}: exact frames, one larger than any buffer, then the rest as a stream, all byte for byte`, async () => {
      const largeBytes = 3 << 20;
      const data = randomBytes(3 + largeBytes + (5 << 20));
      const c = child(kind, String(largeBytes));
      const done = output(c);
      // Odd chunk sizes, so frames never line up with writes.
      for (let offset = 0; offset < data.length; offset += 77_777) {
        if (!c.stdin.write(data.subarray(offset, offset + 77_777))) await once(c.stdin, 'drain');
      }
      c.stdin.end();
      const [small, large, rest] = JSON.parse(await done) as string[];
      assert.equal(small, sha(data.subarray(0, 3)));
      assert.equal(large, sha(data.subarray(3, 3 + largeBytes)));
      assert.equal(rest, sha(data.subarray(3 + largeBytes)));
    });

    test(`${kind}: a read waiting for a client that sends nothing does not keep SIGTERM's exit from happening`, async () => {
      const c = child(kind, 'idle');
      c.stdin.write('x'); // opens the FIFO's writing end, so that node's open of it returns
      await once(c.process.stdout, 'data'); // waiting in the read now
      await new Promise((resolve) => setTimeout(resolve, 100));
      const exited = once(c.process, 'exit');
      c.process.kill('SIGTERM');
      const outcome = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('hung'), 5000))]);
      if (outcome === 'hung') c.process.kill('SIGKILL');
      c.stdin.destroy();
      assert.deepEqual(outcome, [143, null]);
    });
  }
});
