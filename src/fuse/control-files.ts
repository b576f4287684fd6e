import type { ControlFile } from './path-tree.js';
import type { TransferStatus } from './transfer-status.js';

/** How long one rendering of a control file serves getattr and open (progress numbers move). */
const RENDER_MS = 250;

/**
 * The texts of `.buttersink/status` and `.buttersink/log`. `getattr` and `open` share one
 * rendering for a moment, so that `cat` reads exactly the size it was told (the mount runs
 * with attr_timeout 0, so the kernel asks for the size each time); any change to the status
 * renders it anew.
 */
export class ControlFiles {
  readonly #status: TransferStatus;
  readonly #now: () => number;
  readonly #rendered = new Map<ControlFile, { text: string; at: number; version: number }>();

  constructor(status: TransferStatus, now: () => number) {
    this.#status = status;
    this.#now = now;
  }

  text(file: ControlFile): string {
    const cached = this.#rendered.get(file);
    const version = this.#status.version;
    if (cached !== undefined && cached.version === version && this.#now() - cached.at < RENDER_MS) return cached.text;
    const text = file === 'status' ? this.#status.renderStatus() : this.#status.renderLog();
    this.#rendered.set(file, { text, at: this.#now(), version });
    return text;
  }
}
