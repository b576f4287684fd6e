import cliProgress from 'cli-progress';
import type { Plan, PlanStep } from '../planner/plan-types.js';
import { formatBytes } from '../util/format-bytes.js';
import type { TransferObserver } from './transfer-observer.js';

export interface ProgressSink {
  /** A finished step, one line, for the terminal and the log. */
  line(text: string): void;
  /** The same, for the log only (the bar already showed it). */
  record(text: string): void;
}

/**
 * Renders a sync on the terminal: one line per finished step and, when `showBar`, a live
 * bar on stderr with bytes, rate, ETA and the snapshot being sent. The bar's total is the
 * plan's size and grows if the streams turn out bigger.
 */
export class ProgressReporter implements TransferObserver {
  readonly #bars: cliProgress.MultiBar | undefined;
  readonly #sink: ProgressSink;
  #bar: cliProgress.SingleBar | undefined;
  #total: number;
  #moved = 0;
  #startedAt = performance.now();
  #current = '';
  #stopped = false;

  constructor(plan: Plan, sink: ProgressSink, showBar: boolean) {
    this.#sink = sink;
    this.#total = Math.max(1, plan.totalBytes);
    this.#bars = showBar
      ? new cliProgress.MultiBar(
          {
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
            forceRedraw: false,
            fps: 5,
            // Asked for with --progress on a pipe or a log: print a line now and then.
            noTTYOutput: process.stderr.isTTY !== true,
            notTTYSchedule: 1000,
            format: (_options, params, payload: { step: string }) => this.#format(params, payload.step),
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  }

  #format(params: cliProgress.Params, step: string): string {
    const elapsed = (performance.now() - this.#startedAt) / 1000;
    const rate = elapsed > 0 ? this.#moved / elapsed : 0;
    const left = Math.max(0, this.#total - this.#moved);
    const eta = rate > 0 ? formatSeconds(left / rate) : '--';
    const width = 24;
    const filled = Math.round(Math.min(1, params.progress) * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    return `[${bar}] ${formatBytes(this.#moved)} / ${formatBytes(this.#total)}  ${formatBytes(rate)}/s  ETA ${eta}  ${step}`;
  }

  stepStarted(step: PlanStep, index: number, total: number): void {
    this.#current = `${index + 1}/${total} ${step.kind === 'send' ? step.snapshot.name : `delete ${step.snapshot.name}`}`;
    if (this.#bars && !this.#bar) this.#bar = this.#bars.create(this.#total, 0, { step: this.#current });
    this.#bar?.update(this.#moved, { step: this.#current });
  }

  bytesMoved(bytes: number): void {
    this.#moved += bytes;
    if (this.#moved > this.#total) {
      this.#total = this.#moved;
      this.#bar?.setTotal(this.#total);
    }
    this.#bar?.update(this.#moved, { step: this.#current });
  }

  stepFinished(step: PlanStep, outcome: { bytes: number; seconds: number }): void {
    const text =
      step.kind === 'send'
        ? `sent ${step.snapshot.name} ${step.parent ? `(from ${step.parent.name})` : '(full)'}: ${formatBytes(outcome.bytes)} in ${formatSeconds(outcome.seconds)}` +
          (outcome.seconds > 0 ? ` (${formatBytes(outcome.bytes / outcome.seconds)}/s)` : '')
        : `deleted ${step.snapshot.name}`;
    if (this.#bars) {
      this.#bars.log(`${text}\n`);
      this.#sink.record(text);
    } else {
      this.#sink.line(text);
    }
  }

  /** Removes the bar, also on failure; later calls do nothing. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // Step lines given to the bar are written on its next redraw: force one before stopping.
    if (this.#bar) this.#bars?.update();
    this.#bars?.stop();
  }
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
