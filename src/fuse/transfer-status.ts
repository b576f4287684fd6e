import { formatBytes } from '../util/format-bytes.js';

/** One transfer the mount runs (a `mkdir` or `cp -r` into a store). */
export interface TransferRecord {
  readonly snapshot: string;
  readonly source: string;
  readonly destination: string;
  /** Planned stream bytes (measured or estimated). */
  expectedBytes: number;
  bytes: number;
  readonly startedAt: number;
  /** The diff's parent, for the status line; null for a full stream. */
  parent: string | null;
}

const MAX_ERRORS = 20;
const MAX_LOG_LINES = 500;

/**
 * What the mount is doing, as text a person can `watch cat`: `/.buttersink/status` shows the
 * transfers in progress (snapshot, source, destination, bytes, rate, ETA) and the last
 * errors; `/.buttersink/log` the recent log. Pure apart from the injected clock.
 */
export class TransferStatus {
  readonly #now: () => number;
  readonly #transfers = new Set<TransferRecord>();
  readonly #errors: string[] = [];
  readonly #log: string[] = [];
  readonly #onLine: (line: string) => void;
  #version = 0;

  /** @param onLine also gets every log line (the `-l` file, stderr in the foreground). */
  constructor(now: () => number = Date.now, onLine: (line: string) => void = () => {}) {
    this.#now = now;
    this.#onLine = onLine;
  }

  /** Grows with every change of the text other than running byte counts. */
  get version(): number {
    return this.#version;
  }

  log(line: string): void {
    this.#version += 1;
    const stamped = `${new Date(this.#now()).toISOString()} ${line}`;
    this.#log.push(stamped);
    if (this.#log.length > MAX_LOG_LINES) this.#log.splice(0, this.#log.length - MAX_LOG_LINES);
    this.#onLine(line);
  }

  /** An operation failed: kept in the status file's last errors and logged. */
  error(message: string): void {
    this.#errors.push(`${new Date(this.#now()).toISOString()} ${message}`);
    if (this.#errors.length > MAX_ERRORS) this.#errors.splice(0, this.#errors.length - MAX_ERRORS);
    this.log(`error: ${message}`);
  }

  start(snapshot: string, source: string, destination: string, expectedBytes: number, parent: string | null): TransferRecord {
    const record: TransferRecord = { snapshot, source, destination, expectedBytes, bytes: 0, startedAt: this.#now(), parent };
    this.#transfers.add(record);
    this.log(
      `transfer ${snapshot}: ${source} -> ${destination} (${parent === null ? 'full' : `from ${parent}`}, ~${formatBytes(expectedBytes)})`,
    );
    return record;
  }

  finish(record: TransferRecord, outcome: { ok: true } | { ok: false; reason: string }): void {
    this.#transfers.delete(record);
    const seconds = Math.max(0.001, (this.#now() - record.startedAt) / 1000);
    if (outcome.ok) {
      this.log(`transferred ${record.snapshot} to ${record.destination}: ${formatBytes(record.bytes)} in ${seconds.toFixed(1)} s`);
    } else {
      this.error(`transfer of ${record.snapshot} to ${record.destination} failed: ${outcome.reason}`);
    }
  }

  get activeTransfers(): number {
    return this.#transfers.size;
  }

  renderStatus(): string {
    const now = this.#now();
    const lines = [`buttersink mount status at ${new Date(now).toISOString()}`, ''];
    if (this.#transfers.size === 0) lines.push('no transfers in progress');
    else lines.push(`transfers in progress (${this.#transfers.size}):`);
    for (const t of this.#transfers) {
      const seconds = (now - t.startedAt) / 1000;
      const rate = seconds > 0 ? t.bytes / seconds : 0;
      const left = Math.max(0, t.expectedBytes - t.bytes);
      const eta = rate > 0 ? `${Math.ceil(left / rate)} s` : '?';
      const percent = t.expectedBytes > 0 ? Math.min(100, Math.floor((100 * t.bytes) / t.expectedBytes)) : 0;
      lines.push(
        `  ${t.snapshot}  ${t.source} -> ${t.destination}  ${t.parent === null ? 'full' : `from ${t.parent}`}  ` +
          `${formatBytes(t.bytes)} / ${formatBytes(t.expectedBytes)} (${percent}%)  ${formatBytes(rate)}/s  ETA ${eta}`,
      );
    }
    lines.push('', this.#errors.length === 0 ? 'no errors' : `last errors (${this.#errors.length}, newest last):`);
    for (const e of this.#errors) lines.push(`  ${e}`);
    return `${lines.join('\n')}\n`;
  }

  renderLog(): string {
    return this.#log.length === 0 ? '' : `${this.#log.join('\n')}\n`;
  }
}
