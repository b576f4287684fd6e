/**
 * A small language for planner test cases. Snapshots are named; UUIDs are made up from the
 * names (`src:daily/1`, `dst:daily/1`) so that failures read well.
 *
 *   scenario()
 *     .source('a', { gen: 1 }).source('b', { gen: 2 })
 *     .dest('a')                      // a received copy of source `a`
 *     .diff('a', 'b', 1024).full('b', 1e9)
 *     .plan();
 *
 * Everything is resolved when the plan is made, so declarations may come in any order.
 */
import { effectiveUuid, type Snapshot } from '../../../src/model/snapshot.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import type { CandidateEdge, Plan, PlanInput, PlanPolicy, SendStep } from '../../../src/planner/plan-types.js';

export interface SourceOptions {
  /** Creation generation (and generation); default: declaration order, from 1. */
  readonly gen?: number;
  /** Set when the source snapshot was itself received from elsewhere. */
  readonly receivedUuid?: string;
  readonly uuid?: string;
}

export interface DestOptions {
  /** Received from this source snapshot (by name). Default: the source of the same name, if any. */
  readonly copyOf?: string;
  /** Explicit received UUID; `null` makes a snapshot unrelated to everything. Overrides `copyOf`. */
  readonly receivedUuid?: string | null;
  readonly uuid?: string;
  readonly gen?: number;
}

interface EdgeSpec {
  readonly from: string | null;
  readonly to: string;
  readonly bytes: number;
  readonly exact: boolean;
}

export const NOW = new Date('2026-01-01T00:00:00Z');

export class Scenario {
  readonly #sources: { name: string; options: SourceOptions }[] = [];
  readonly #dests: { name: string; options: DestOptions }[] = [];
  readonly #edges: EdgeSpec[] = [];
  #policy: PlanPolicy = { delete: false, destinationStoresDiffs: false, chainLinkPenaltyBytes: 0 };

  source(name: string, options: SourceOptions = {}): this {
    this.#sources.push({ name, options });
    return this;
  }

  dest(name: string, options: DestOptions = {}): this {
    this.#dests.push({ name, options });
    return this;
  }

  /** A diff from source `from` to source `to`. Names that are no source are passed on as raw UUIDs. */
  diff(from: string, to: string, bytes: number, { exact = true } = {}): this {
    this.#edges.push({ from, to, bytes, exact });
    return this;
  }

  full(to: string, bytes: number, { exact = true } = {}): this {
    this.#edges.push({ from: null, to, bytes, exact });
    return this;
  }

  policy(policy: Partial<PlanPolicy>): this {
    this.#policy = { ...this.#policy, ...policy };
    return this;
  }

  build(): PlanInput {
    const source = this.#sources.map(({ name, options }, i) =>
      snapshot(name, options.uuid ?? `src:${name}`, options.receivedUuid ?? null, options.gen ?? i + 1),
    );
    const sourceNamed = (name: string): Snapshot | undefined => source.find((s) => s.name === name);

    const destination = this.#dests.map(({ name, options }, i) => {
      const original = sourceNamed(options.copyOf ?? name);
      if (options.copyOf !== undefined && !original) throw new Error(`no source snapshot ${options.copyOf}`);
      // btrfs receive sets received_uuid to the sender's received_uuid if it has one, else its uuid.
      const receivedUuid = options.receivedUuid !== undefined ? options.receivedUuid : original ? effectiveUuid(original) : null;
      return snapshot(name, options.uuid ?? `dst:${name}`, receivedUuid, options.gen ?? i + 1);
    });

    const uuidOf = (name: string): string => sourceNamed(name)?.uuid ?? name;
    const edges: CandidateEdge[] = this.#edges.map((e) => ({
      to: uuidOf(e.to),
      from: e.from === null ? null : uuidOf(e.from),
      bytes: e.bytes,
      exact: e.exact,
    }));
    return { source, destination, edges, policy: this.#policy, now: NOW };
  }

  plan(): Plan {
    return planSync(this.build());
  }
}

export function scenario(): Scenario {
  return new Scenario();
}

function snapshot(name: string, uuid: string, receivedUuid: string | null, gen: number): Snapshot {
  return { name, uuid, parentUuid: null, receivedUuid, generation: gen, creationGeneration: gen, createdAt: null };
}

export function sendSteps(plan: Plan): SendStep[] {
  return plan.steps.filter((s): s is SendStep => s.kind === 'send');
}

/** The sends as `b <- a` (incremental) or `b <- full`, in plan order. */
export function sends(plan: Plan): string[] {
  return sendSteps(plan).map((s) => `${s.snapshot.name} <- ${s.parent?.name ?? 'full'}`);
}

/** Names of the deleted destination snapshots, in plan order. */
export function deletes(plan: Plan): string[] {
  return plan.steps.filter((s) => s.kind === 'delete').map((s) => s.snapshot.name);
}

export function names(snapshots: readonly Snapshot[]): string[] {
  return snapshots.map((s) => s.name);
}
