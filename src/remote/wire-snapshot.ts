import type { Snapshot } from '../model/snapshot.js';
import { ProtocolError } from './protocol.js';

/** A {@link Snapshot} as JSON: the creation time as an ISO string. */
export interface WireSnapshot {
  readonly name: string;
  readonly uuid: string;
  readonly parentUuid: string | null;
  readonly receivedUuid: string | null;
  readonly generation: number;
  readonly creationGeneration: number;
  readonly createdAt: string | null;
}

export function toWireSnapshot(s: Snapshot): WireSnapshot {
  return {
    name: s.name,
    uuid: s.uuid,
    parentUuid: s.parentUuid,
    receivedUuid: s.receivedUuid,
    generation: s.generation,
    creationGeneration: s.creationGeneration,
    createdAt: s.createdAt?.toISOString() ?? null,
  };
}

/** Checks every field: the other end is not trusted to send well-formed snapshots. */
export function fromWireSnapshot(value: unknown): Snapshot {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const isText = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length < 4096;
  const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  const isOptionalText = (x: unknown): x is string | null => x === null || isText(x);
  const createdAt = v.createdAt === null ? null : typeof v.createdAt === 'string' ? new Date(v.createdAt) : undefined;
  if (
    !isText(v.name) ||
    !isText(v.uuid) ||
    !isOptionalText(v.parentUuid) ||
    !isOptionalText(v.receivedUuid) ||
    !isCount(v.generation) ||
    !isCount(v.creationGeneration) ||
    createdAt === undefined ||
    (createdAt !== null && Number.isNaN(createdAt.getTime()))
  ) {
    throw new ProtocolError('a snapshot in a protocol message is malformed');
  }
  return {
    name: v.name,
    uuid: v.uuid,
    parentUuid: v.parentUuid,
    receivedUuid: v.receivedUuid,
    generation: v.generation,
    creationGeneration: v.creationGeneration,
    createdAt,
  };
}
