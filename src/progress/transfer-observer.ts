import type { PlanStep } from '../planner/plan-types.js';

/**
 * What the sync shell reports while it works. The CLI renders it (progress bar, log file);
 * stores never report progress themselves: bytes are counted in the copy path.
 */
export interface TransferObserver {
  stepStarted(step: PlanStep, index: number, total: number): void;
  bytesMoved(bytes: number): void;
  stepFinished(step: PlanStep, outcome: { bytes: number; seconds: number }): void;
}

export const silentObserver: TransferObserver = {
  stepStarted() {},
  bytesMoved() {},
  stepFinished() {},
};
