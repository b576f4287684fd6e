// A loopback S3 server for the tests, run as its own process (test/support/s3-server.ts
// starts it with --openssl-legacy-provider, which s3rver's pagination needs on Node 20).
// Prints {"port": N} once listening; SIGTERM stops it.
import S3rver from 's3rver';

const [directory = 's3-data', ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
process.on('SIGTERM', () => {
  void server.close().finally(() => process.exit(0));
});
