/**
 * Helpers of scripts/bench-s3-browse:
 *
 *   proxy UPSTREAM LOG   a plain HTTP proxy in front of the S3 server: forwards every request
 *                        unchanged and appends one line per answered request to LOG:
 *                        "METHOD STATUS RESPONSE-BODY-BYTES RANGE|- PATH" (bytes counted as
 *                        they pass to the client). Prints {"port": N} once listening.
 *   read FILE            reads FILE (64 KiB, then 1 MiB reads); prints {"ttfb": s, "seconds": s, "bytes": n,
 *                        "sha256": hex}: seconds from open() to the first read's answer, and
 *                        to the end of the file (node's startup is not included).
 */
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

function proxy(upstream: string, log: string): void {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const upstreamRequest = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        let bytes = 0;
        answer.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        answer.on('end', () => {
          appendFileSync(log, `${req.method} ${answer.statusCode} ${bytes} ${req.headers.range ?? '-'} ${req.url}\n`);
        });
        answer.pipe(res);
      },
    );
    upstreamRequest.on('error', () => res.socket?.destroy());
    req.on('error', () => upstreamRequest.destroy());
    req.pipe(upstreamRequest);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

async function read(file: string): Promise<void> {
  const buffer = Buffer.alloc(1 << 20);
  const hash = createHash('sha256');
  const t0 = performance.now();
  const handle = await open(file, 'r');
  let ttfb = 0;
  let bytes = 0;
  try {
    for (;;) {
      // The first read asks for 64 KiB only: the time to a first answer, not to a first MiB.
      const { bytesRead } = await handle.read(buffer, 0, bytes === 0 ? 65536 : buffer.length, null);
      if (bytes === 0) ttfb = performance.now() - t0;
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const seconds = performance.now() - t0;
  console.log(JSON.stringify({ ttfb: ttfb / 1000, seconds: seconds / 1000, bytes, sha256: hash.digest('hex') }));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'proxy' && a && b) proxy(a, b);
else if (mode === 'read' && a) await read(a);
else {
  console.error('usage: s3-browse-helper.js proxy UPSTREAM LOG | read FILE');
  process.exit(2);
}
