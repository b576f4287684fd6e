/** What the fault campaign counts: one tally per path and fault, in the order first met. */

/** One row of the campaign's result (RELIABILITY.md's table). */
export interface CampaignRow {
  /** The transfer path: local-local, local-s3, s3-local, local-ssh, ssh-local or mount. */
  readonly path: string;
  readonly fault: string;
  readonly runs: number;
  /** Runs after which nothing was lost and nothing incomplete looked complete. */
  readonly survived: number;
  /** Survived runs whose data was also compared with the source and found equal. */
  readonly verified: number;
  /** Partial receives (or unfinished uploads) left behind by the survived runs. */
  readonly partialsLeft: number;
  /** What went wrong, once per kind of problem. */
  readonly notes: readonly string[];
}

export interface Tally {
  runs: number;
  survived: number;
  verified: number;
  partialsLeft: number;
  notes: Set<string>;
}

export class Tallies {
  readonly #byKey = new Map<string, { path: string; fault: string; tally: Tally }>();

  /** The tally of `fault` on `path`, made empty the first time. */
  of(path: string, fault: string): Tally {
    const key = `${path}\t${fault}`;
    if (!this.#byKey.has(key))
      this.#byKey.set(key, { path, fault, tally: { runs: 0, survived: 0, verified: 0, partialsLeft: 0, notes: new Set() } });
    return this.#byKey.get(key)!.tally;
  }

  rows(): CampaignRow[] {
    return [...this.#byKey.values()].map(({ path, fault, tally }) => ({
      path,
      fault,
      runs: tally.runs,
      survived: tally.survived,
      verified: tally.verified,
      partialsLeft: tally.partialsLeft,
      notes: [...tally.notes],
    }));
  }
}
