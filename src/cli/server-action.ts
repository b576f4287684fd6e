import path from 'node:path';
import pLimit from 'p-limit';
import type { ServerMode } from '../remote/protocol.js';
import { loadTokenKey } from '../remote/parent-uuid-tokens.js';
import { MAX_CHILD_PROCESSES, serve } from '../remote/server.js';
import type { ServerIo } from '../remote/server-io.js';
import { confineToDirectory } from '../remote/wire-errors.js';
import { BtrfsStore } from '../stores/btrfs/btrfs-store.js';
import { defaultCacheDirectory, MeasurementCache } from '../stores/cache/measurement-cache.js';

/**
 * `buttersink server`'s action, loaded when it runs. Resolves never: it exits the process
 * with the session's status once the client is done. `greeted`: the channel, with the hello
 * already on its way (see server-command.ts).
 */
export async function runServerCommand(
  dir: string,
  mode: ServerMode,
  version: string,
  signal: AbortSignal,
  greeted: { readonly io: ServerIo; readonly helloSent: Promise<void> },
): Promise<void> {
  const directory = path.resolve(dir);
  const cacheDirectory = defaultCacheDirectory();
  // One limit for every child the session starts, the store's included.
  const childLimit = pLimit(MAX_CHILD_PROCESSES);
  const store = new BtrfsStore({
    url: dir,
    directory,
    cache: new MeasurementCache(cacheDirectory),
    childLimit,
    // The client shows the server's stderr when something fails.
    onWarning: (message) => process.stderr.write(`buttersink server: warning: ${confineToDirectory(message, directory)}\n`),
  });
  let key: Promise<Buffer> | undefined;
  const session = serve({
    mode,
    store,
    directory,
    io: greeted.io,
    helloSent: greeted.helloSent,
    version,
    childLimit,
    tokenKey: () => (key ??= loadTokenKey(path.join(cacheDirectory, 'parent-token.key'))),
    signal,
  });
  const code = await session;
  // Exit now: nothing may linger reading the channel once the client is done.
  process.exit(code);
}
