import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { createContractPool } from '../support/contract-pool.js';
import { sshSuite } from '../support/prerequisites.js';
import { startSshd } from '../support/sshd.js';
import { storeContract } from '../support/store-contract.js';

storeContract(
  'ssh',
  async () => {
    const sshd = await startSshd();
    const pool = await createContractPool();
    const caches = mkdtempSync(path.join(os.tmpdir(), 'buttersink-contract-ssh-'));
    // The client's key is found through HOME, as a user's would be.
    process.env.HOME = sshd.home;
    process.env.SSH_AUTH_SOCK = '';
    const at = (directory: string): SshStore =>
      new SshStore({
        url: `ssh://root@127.0.0.1:${sshd.port}${directory}/`,
        host: '127.0.0.1',
        user: 'root',
        port: sshd.port,
        directory,
        mode: 'w',
        cache: new MeasurementCache(mkdtempSync(path.join(caches, 'c-'))),
        version: '0.1.0',
        remoteCommand: sshd.remoteCommand,
        knownHostsFiles: [sshd.knownHosts],
        configFile: '/nonexistent',
      });
    return {
      source: pool.source,
      snapshots: pool.snapshots,
      baseFiles: pool.baseFiles,
      async open() {
        const { directory, dispose } = await pool.directory();
        return {
          store: at(directory),
          reopen: () => at(directory),
          contents: () => pool.contents(directory),
          clutter: async () => pool.clutter(directory),
          crashReceive: async () => pool.crashReceive(directory),
          dispose,
        };
      },
      missing: () => at(`${pool.pool.mountPoint}/does-not-exist`),
      async close() {
        await pool.source.close();
        await sshd.stop();
        pool.destroy();
        rmSync(caches, { recursive: true, force: true });
      },
    };
  },
  sshSuite(),
);
