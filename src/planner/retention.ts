/**
 * Retention on the destination (`--keep`), btrbk's `target_preserve` in buttersink's words:
 * which snapshots a backup keeps, by how recent they are and which hour, day, week, month or
 * year they stand for. Pure: the caller passes the time of each snapshot and the clock.
 *
 *   --keep '5 24h 7d 4w 12m *y'
 *
 * keeps the 5 newest snapshots; the first snapshot of each of the last 24 hours, 7 days, 4
 * weeks (Monday to Sunday), 12 months; and the first of every year (`*`: without limit). A
 * period counts back from now on the calendar (`7d` is today and the 6 days before), in local
 * time, as btrbk counts. A snapshot is kept when any rule keeps it.
 */
import { CorrelationIndex, type Snapshot } from '../model/snapshot.js';

/** How many periods of each kind to keep the first snapshot of; Infinity for `*`. */
export interface KeepPolicy {
  /** The text it was parsed from, for messages. */
  readonly text: string;
  /** The newest N snapshots, whatever their time. */
  readonly latest: number;
  readonly hourly: number;
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
  readonly yearly: number;
}

export type Bucket = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const BUCKETS: readonly Bucket[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const SUFFIX: Readonly<Record<string, Bucket>> = { h: 'hourly', d: 'daily', w: 'weekly', m: 'monthly', y: 'yearly' };

/**
 * Parses `N`, `Nh`, `Nd`, `Nw`, `Nm`, `Ny` (N a whole number or `*`), separated by blanks or
 * commas, each kind at most once.
 * @throws Error with a message that says what is wrong and what is allowed.
 */
export function parseKeepPolicy(text: string): KeepPolicy {
  const counts: Record<string, number> = { latest: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 };
  const seen = new Set<string>();
  const words = text.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) throw new Error('an empty --keep policy would keep nothing');
  for (const word of words) {
    const match = /^(\d+|\*)([hdwmy]?)$/.exec(word);
    if (!match) {
      throw new Error(
        `--keep: ${JSON.stringify(word)} is not N (the latest N) or N followed by h, d, w, m or y (the first snapshot of each of the last N hours, days, weeks, months, years); * for no limit`,
      );
    }
    const kind = match[2] === '' ? 'latest' : SUFFIX[match[2]!]!;
    if (seen.has(kind)) throw new Error(`--keep: ${kind === 'latest' ? 'the latest count' : kind} given twice in ${JSON.stringify(text)}`);
    seen.add(kind);
    counts[kind] = match[1] === '*' ? Number.POSITIVE_INFINITY : Number(match[1]);
  }
  if (Object.values(counts).every((n) => n === 0)) throw new Error(`--keep ${JSON.stringify(text)} would keep nothing`);
  return {
    text: words.join(' '),
    latest: counts.latest!,
    hourly: counts.hourly!,
    daily: counts.daily!,
    weekly: counts.weekly!,
    monthly: counts.monthly!,
    yearly: counts.yearly!,
  };
}

/** A snapshot as retention sees it: its time (null when unknown) and a tie-breaking order. */
export interface Dated<T> {
  readonly item: T;
  readonly time: Date | null;
  /** Orders snapshots of the same time (and those without one): higher is newer. */
  readonly order: number;
}

export interface RetentionResult<T> {
  /** What is kept, with why (the first rule that keeps it). */
  readonly kept: Map<T, string>;
  /** What is not, with why. */
  readonly dropped: Map<T, string>;
}

/**
 * Applies `policy` at `now`. `protect` keeps items whatever the policy says, with their
 * reason (the next incremental's parent, a snapshot being used). An item without a time is
 * always kept: nothing is deleted on a guess.
 */
export function applyRetention<T>(
  items: readonly Dated<T>[],
  policy: KeepPolicy,
  now: Date,
  protect: ReadonlyMap<T, string> = new Map(),
): RetentionResult<T> {
  const kept = new Map<T, string>();
  const keep = (item: T, reason: string): void => {
    if (!kept.has(item)) kept.set(item, reason);
  };
  for (const [item, reason] of protect) if (items.some((d) => d.item === item)) keep(item, reason);
  for (const d of items) if (d.time === null) keep(d.item, 'its time is not known');

  const newestFirst = [...items].sort((a, b) => compareTime(b, a));
  for (const [i, d] of newestFirst.slice(0, Math.min(policy.latest, newestFirst.length)).entries()) {
    keep(d.item, i === 0 ? 'the latest' : `one of the latest ${policy.latest}`);
  }
  for (const bucket of BUCKETS) {
    const count = policy[bucket];
    if (count === 0) continue;
    // The oldest snapshot of each period within reach: sorted oldest first, the first seen wins.
    const firstOf = new Map<string, Dated<T>>();
    for (const d of [...items].sort(compareTime)) {
      if (d.time === null || periodsBack(bucket, d.time, now) >= count) continue;
      const label = periodLabel(bucket, d.time);
      if (!firstOf.has(label)) firstOf.set(label, d);
    }
    for (const [label, d] of firstOf) keep(d.item, `${BUCKET_WORD[bucket]} ${label}`);
  }

  const dropped = new Map<T, string>();
  for (const d of items) {
    if (!kept.has(d.item)) dropped.set(d.item, `--keep ${policy.text} does not keep it`);
  }
  return { kept, dropped };
}

const BUCKET_WORD: Readonly<Record<Bucket, string>> = {
  hourly: 'first of hour',
  daily: 'first of day',
  weekly: 'first of week',
  monthly: 'first of month',
  yearly: 'first of year',
};

function compareTime<T>(a: Dated<T>, b: Dated<T>): number {
  const ta = a.time?.getTime() ?? Number.NEGATIVE_INFINITY;
  const tb = b.time?.getTime() ?? Number.NEGATIVE_INFINITY;
  return ta !== tb ? ta - tb : a.order - b.order;
}

/** How many periods of this kind lie between `time`'s and `now`'s (0: the same one); local time. */
export function periodsBack(bucket: Bucket, time: Date, now: Date): number {
  switch (bucket) {
    case 'hourly':
      return Math.floor((startOfHour(now) - startOfHour(time)) / 3_600_000);
    case 'daily':
      return dayNumber(now) - dayNumber(time);
    case 'weekly':
      return Math.floor((dayNumber(now) - weekday(now) - (dayNumber(time) - weekday(time))) / 7);
    case 'monthly':
      return now.getFullYear() * 12 + now.getMonth() - (time.getFullYear() * 12 + time.getMonth());
    case 'yearly':
      return now.getFullYear() - time.getFullYear();
  }
}

/** The period a time falls in, as people write it (local time). */
export function periodLabel(bucket: Bucket, time: Date): string {
  const date = `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())}`;
  switch (bucket) {
    case 'hourly':
      return `${date} ${pad(time.getHours())}:00`;
    case 'daily':
      return date;
    case 'weekly': {
      const monday = new Date(time.getFullYear(), time.getMonth(), time.getDate() - weekday(time));
      return `week of ${monday.getFullYear()}-${pad(monday.getMonth() + 1)}-${pad(monday.getDate())}`;
    }
    case 'monthly':
      return date.slice(0, 7);
    case 'yearly':
      return String(time.getFullYear());
  }
}

function startOfHour(t: Date): number {
  return new Date(t.getFullYear(), t.getMonth(), t.getDate(), t.getHours()).getTime();
}

/** Days since the epoch of the local calendar date (immune to DST). */
function dayNumber(t: Date): number {
  return Math.round(Date.UTC(t.getFullYear(), t.getMonth(), t.getDate()) / 86_400_000);
}

/** 0 for Monday ... 6 for Sunday. */
function weekday(t: Date): number {
  return (t.getDay() + 6) % 7;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * The time a snapshot's name gives, as btrbk, snapper-like and timeshift-like tools write it
 * (`home.20261128T0300`, `2026-11-28`, `daily/2026-11-28_03-00-01`), in local time; null when
 * the name holds no date. The last date in the name wins (a prefix may hold another).
 */
export function timeFromName(name: string): Date | null {
  const pattern = /(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:[T_ -]?(\d{2})[:-]?(\d{2})(?:[:-]?(\d{2}))?)?(?!\d)/g;
  let found: Date | null = null;
  for (const m of name.matchAll(pattern)) {
    const [year, month, day, hour, minute, second] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v))) as number[];
    if (month! < 1 || month! > 12 || day! < 1 || day! > 31 || hour! > 23 || minute! > 59 || second! > 59) continue;
    const date = new Date(year!, month! - 1, day!, hour, minute, second);
    if (date.getMonth() !== month! - 1) continue; // 2026-02-31
    found = date;
  }
  return found;
}

/** What `--keep` makes of one run: what to send, what to delete, and why each is kept. */
export interface RetentionPlan {
  /** The wanted source snapshots that are sent: those the policy keeps (others are skipped). */
  readonly send: readonly Snapshot[];
  /** Destination snapshots the policy does not keep, with why. */
  readonly deletes: readonly { snapshot: Snapshot; reason: string }[];
  /** Destination snapshots it keeps, with why. */
  readonly kept: readonly { snapshot: Snapshot; reason: string }[];
  /** Wanted source snapshots the destination lacks and would not keep: not sent. */
  readonly skipped: readonly { snapshot: Snapshot; reason: string }[];
}

/**
 * Retention over what the destination will hold: its snapshots and the wanted ones it lacks,
 * so that nothing is sent only to be deleted (btrbk does the same). A snapshot's time is the
 * date in its name, else its source's creation time (a received snapshot's own is the time it
 * was received), else its own. The newest wanted snapshot is always kept: the next run's
 * incremental starts from it, the last snapshot the two sides have in common.
 */
export function planRetention(input: {
  readonly wanted: readonly Snapshot[];
  readonly sourceAll: readonly Snapshot[];
  readonly destination: readonly Snapshot[];
  readonly policy: KeepPolicy;
  readonly now: Date;
}): RetentionPlan {
  const inSource = new CorrelationIndex(input.sourceAll);
  const inDestination = new CorrelationIndex(input.destination);
  const toSend = input.wanted.filter((s) => !inDestination.has(s));
  const timeOf = (s: Snapshot): Date | null =>
    timeFromName(s.name) ?? inSource.find(s).find((source) => source.createdAt !== null)?.createdAt ?? s.createdAt;
  const all = [...input.destination, ...toSend];
  const rank = new Map([...all].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s, i) => [s, i]));
  const dated = all.map((item) => ({ item, time: timeOf(item), order: rank.get(item)! }));

  const protect = new Map<Snapshot, string>();
  const wanted = new CorrelationIndex(input.wanted);
  const newestWanted = dated
    .filter((d) => wanted.has(d.item))
    .sort((a, b) => (a.time?.getTime() ?? 0) - (b.time?.getTime() ?? 0) || a.order - b.order)
    .at(-1);
  if (newestWanted) protect.set(newestWanted.item, 'the newest the source has: the next incremental starts from it');

  const { kept, dropped } = applyRetention(dated, input.policy, input.now, protect);
  return {
    send: toSend.filter((s) => kept.has(s)),
    deletes: input.destination.filter((s) => dropped.has(s)).map((snapshot) => ({ snapshot, reason: dropped.get(snapshot)! })),
    kept: input.destination.filter((s) => kept.has(s)).map((snapshot) => ({ snapshot, reason: kept.get(snapshot)! })),
    skipped: toSend.filter((s) => dropped.has(s)).map((snapshot) => ({ snapshot, reason: dropped.get(snapshot)! })),
  };
}
