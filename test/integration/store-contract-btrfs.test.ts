import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createContractPool } from '../support/contract-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { storeContract } from '../support/store-contract.js';

storeContract(
  'btrfs',
  async () => {
    const pool = await createContractPool();
    const at = (directory: string): BtrfsStore => new BtrfsStore({ url: `${directory}/`, directory, cache: pool.cache() });
    return {
      source: pool.source,
      snapshots: pool.snapshots,
      baseFiles: pool.baseFiles,
      async open() {
        const { directory, dispose } = await pool.directory();
        return {
          dispose,
          store: at(directory),
          reopen: () => at(directory),
          contents: () => pool.contents(directory),
          clutter: async () => pool.clutter(directory),
          crashReceive: async () => pool.crashReceive(directory),
        };
      },
      missing: () => at(`${pool.pool.mountPoint}/does-not-exist`),
      async close() {
        await pool.source.close();
        pool.destroy();
      },
    };
  },
  btrfsSuite(),
);
