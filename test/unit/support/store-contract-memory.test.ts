import { MemoryLocation, MemoryStore } from '../../support/memory-store.js';
import { storeContract, type ContractFixture } from '../../support/store-contract.js';

/** The memory store, as a store of snapshots and as a diff store, against the contract. */
function memoryFixture(storesDiffs: boolean): () => Promise<ContractFixture> {
  return async () => {
    const source = new MemoryStore('mem://source/');
    const base = source.add('base', undefined, { parentUuid: 'origin', generation: 10, creationGeneration: 10 });
    const next = source.add('next', undefined, { parentUuid: 'origin', generation: 12, creationGeneration: 12 });
    const other = source.add('other', undefined, { parentUuid: 'elsewhere', generation: 11, creationGeneration: 11 });
    let count = 0;
    const space = { totalBytes: 1 << 30, freeBytes: 1 << 29, availableBytes: 1 << 28 };
    return {
      source,
      snapshots: { base, next, other },
      unstorableName: 'a/../b',
      async open() {
        const location = new MemoryLocation();
        const url = `mem://store-${++count}/`;
        const store = (): MemoryStore =>
          new MemoryStore(url, { location, storesDiffs, canRename: !storesDiffs, space: storesDiffs ? undefined : space });
        return {
          store: store(),
          reopen: store,
          contents: async () =>
            [
              ...location.snapshots.map((s) => `snapshot ${s.name}`),
              ...[...location.partials].map((p) => `partial ${p}`),
              ...[...location.others].map((o) => `other ${o}`),
              ...location.diffs.map((d) => `diff ${d.to}<${d.from}`),
            ].sort(),
          clutter: async () => void location.others.add('notes.txt'),
          crashReceive: async () => void location.partials.add('crashed.partial-receive'),
          leaveStale: async () => void (location.stale += 1),
        };
      },
      missing() {
        const location = new MemoryLocation();
        location.exists = false;
        return new MemoryStore('mem://missing/', { location, storesDiffs });
      },
      async close() {},
    };
  };
}

storeContract('memory', memoryFixture(false));
storeContract('memory (diff store)', memoryFixture(true));
