import type { S3Client } from '@aws-sdk/client-s3';
import { rmSync } from 'node:fs';
import type { BtrfsPool } from '../../test/support/btrfs-pool.js';
import type { FaultProxy, S3Server } from '../../test/support/s3-server.js';
import type { TestSshd } from '../../test/support/sshd.js';

/**
 * What a campaign made, taken down by `run()` in a fixed order, each step on its own: one that
 * fails must not leave the rest (pools, sshd) behind. Filled in as the world is set up, so that
 * a setup failing halfway is taken down as far as it got. Runs once; later calls return at once.
 */
export class Teardown {
  s3?: S3Client;
  proxy?: FaultProxy;
  server?: S3Server;
  sshd?: TestSshd;
  src?: BtrfsPool;
  dst?: BtrfsPool;
  #ran = false;

  constructor(
    /** The campaign's temporary directory, removed last. */
    readonly work: string,
    readonly log: (message: string) => void,
  ) {}

  async run(): Promise<void> {
    if (this.#ran) return;
    this.#ran = true;
    const steps: (() => unknown)[] = [
      () => this.s3?.destroy(),
      () => this.proxy?.stop(),
      () => this.server?.stop(),
      () => this.sshd?.stop(),
      () => this.src?.destroy(),
      () => this.dst?.destroy(),
      () => rmSync(this.work, { recursive: true, force: true }),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        this.log(`cleanup: ${(error as Error).message}`);
      }
    }
  }
}
