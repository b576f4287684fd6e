import {
  BusyError,
  ButtersinkError,
  InterruptedError,
  PermissionError,
  StoreError,
  TransferError,
  UsageError,
} from '../model/errors.js';
import type { WireError } from './protocol.js';

/** A typed error as the server sends it; anything untyped is a bug and says so. */
export function toWireError(error: unknown): WireError {
  if (error instanceof ButtersinkError) {
    const kind: WireError['kind'] =
      error instanceof UsageError
        ? 'usage'
        : error instanceof PermissionError
          ? 'permission'
          : error instanceof TransferError
            ? 'transfer'
            : error instanceof BusyError
              ? 'busy'
              : error instanceof InterruptedError
                ? 'interrupted'
                : 'store';
    return {
      kind,
      message: error.message,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(error instanceof TransferError && error.stderrTail !== undefined ? { stderrTail: error.stderrTail } : {}),
    };
  }
  return { kind: 'internal', message: `internal error in buttersink server: ${error instanceof Error ? error.message : String(error)}` };
}

/**
 * The client's side: the same typed error, its message prefixed with where it happened.
 * A remote usage error means the two ends disagree, so it becomes a store error here.
 */
export function fromWireError(value: unknown, where: string): ButtersinkError {
  const wire = (typeof value === 'object' && value !== null ? value : {}) as Partial<WireError>;
  const message = `${where}: ${typeof wire.message === 'string' ? wire.message : 'the remote end failed without saying why'}`;
  const options = typeof wire.hint === 'string' ? { hint: wire.hint } : {};
  switch (wire.kind) {
    case 'permission':
      return new PermissionError(message, options);
    case 'transfer':
      return new TransferError(message, { ...options, ...(typeof wire.stderrTail === 'string' ? { stderrTail: wire.stderrTail } : {}) });
    case 'busy':
      return new BusyError(message, options);
    case 'interrupted':
      return new InterruptedError(message, options);
    default:
      return new StoreError(message, options);
  }
}
