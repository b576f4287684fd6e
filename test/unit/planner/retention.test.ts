import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot } from '../../../src/model/snapshot.js';
import {
  applyRetention,
  type Dated,
  parseKeepPolicy,
  periodLabel,
  periodsBack,
  planRetention,
  timeFromName,
} from '../../../src/planner/retention.js';

// Local times throughout (the policy counts periods in local time), so the tests hold in any TZ.
const at = (y: number, mo: number, d: number, h = 3, mi = 0) => new Date(y, mo - 1, d, h, mi);
const NOW = at(2026, 12, 2, 12); // a Wednesday

/** One snapshot a night at 03:00 for `days` days up to NOW, named by date. */
function nightly(days: number): Dated<string>[] {
  return Array.from({ length: days }, (_, i) => {
    const time = at(2026, 12, 2 - (days - 1 - i));
    return {
      item: `home.${time.getFullYear()}${String(time.getMonth() + 1).padStart(2, '0')}${String(time.getDate()).padStart(2, '0')}`,
      time,
      order: i,
    };
  });
}

describe('parseKeepPolicy', () => {
  test('latest N and N per hour, day, week, month, year; * for no limit; blanks or commas', () => {
    assert.deepEqual(parseKeepPolicy('5 24h 7d,4w 12m *y'), {
      text: '5 24h 7d 4w 12m *y',
      latest: 5,
      hourly: 24,
      daily: 7,
      weekly: 4,
      monthly: 12,
      yearly: Number.POSITIVE_INFINITY,
    });
    assert.equal(parseKeepPolicy('14d').latest, 0);
  });

  test('refuses what it cannot read, a kind given twice, and a policy that keeps nothing', () => {
    assert.throws(() => parseKeepPolicy('7days'), /"7days" is not N .* followed by h, d, w, m or y/);
    assert.throws(() => parseKeepPolicy('7d 3d'), /daily given twice/);
    assert.throws(() => parseKeepPolicy('3 4'), /latest count given twice/);
    assert.throws(() => parseKeepPolicy('0 0d'), /would keep nothing/);
    assert.throws(() => parseKeepPolicy('  '), /empty --keep policy/);
    assert.throws(() => parseKeepPolicy('-1d'), /is not N/);
  });
});

describe('periods in local time', () => {
  test('periodsBack counts calendar periods, not 24-hour spans', () => {
    assert.equal(periodsBack('daily', at(2026, 12, 1, 23, 59), at(2026, 12, 2, 0, 1)), 1, 'yesterday, two minutes ago');
    assert.equal(periodsBack('daily', at(2026, 12, 2, 0, 1), at(2026, 12, 2, 23, 59)), 0);
    assert.equal(periodsBack('hourly', at(2026, 12, 2, 11, 59), at(2026, 12, 2, 12, 0)), 1);
    // Weeks run Monday to Sunday: Sunday Nov 29 is last week, Monday Nov 30 this one.
    assert.equal(periodsBack('weekly', at(2026, 11, 29), NOW), 1);
    assert.equal(periodsBack('weekly', at(2026, 11, 30), NOW), 0);
    assert.equal(periodsBack('monthly', at(2026, 11, 30), NOW), 1);
    assert.equal(periodsBack('monthly', at(2025, 12, 31), NOW), 12);
    assert.equal(periodsBack('yearly', at(2025, 12, 31), NOW), 1);
  });

  test('labels', () => {
    assert.equal(periodLabel('hourly', at(2026, 3, 4, 5, 6)), '2026-03-04 05:00');
    assert.equal(periodLabel('daily', at(2026, 3, 4)), '2026-03-04');
    assert.equal(periodLabel('weekly', at(2026, 12, 6)), 'week of 2026-11-30', 'a Sunday belongs to the week that began on Monday');
    assert.equal(periodLabel('monthly', at(2026, 3, 4)), '2026-03');
    assert.equal(periodLabel('yearly', at(2026, 3, 4)), '2026');
  });
});

describe('applyRetention', () => {
  test('latest N keeps the newest N, whatever their time', () => {
    const { kept, dropped } = applyRetention(nightly(10), parseKeepPolicy('3'), NOW);
    assert.deepEqual([...kept.keys()], ['home.20261202', 'home.20261201', 'home.20261130']);
    assert.equal(kept.get('home.20261202'), 'the latest');
    assert.equal(kept.get('home.20261201'), 'one of the latest 3');
    assert.equal(dropped.size, 7);
    assert.equal(dropped.get('home.20261123'), '--keep 3 does not keep it');
  });

  test('7d 4w 2m: the first of each of the last 7 days, 4 weeks and 2 months', () => {
    const { kept } = applyRetention(nightly(70), parseKeepPolicy('7d 4w 2m'), NOW);
    const days = ['20261126', '20261127', '20261128', '20261129', '20261130', '20261201', '20261202'];
    for (const d of days) assert.match(kept.get(`home.${d}`) ?? '', /^first of day /, d);
    // Weeks begin on Mondays: Nov 30 (this week), 23, 16, 9. Nov 30 is a day first.
    assert.equal(kept.get('home.20261123'), 'first of week week of 2026-11-23');
    assert.equal(kept.get('home.20261116'), 'first of week week of 2026-11-16');
    assert.equal(kept.get('home.20261109'), 'first of week week of 2026-11-09');
    // Months: December and November; November's first is the 1st.
    assert.equal(kept.get('home.20261101'), 'first of month 2026-11');
    assert.equal(kept.size, 7 + 3 + 1);
  });

  test('several snapshots a day: the first of the day is the one kept; hourly within the hour', () => {
    const items: Dated<string>[] = [at(2026, 12, 2, 1, 10), at(2026, 12, 2, 1, 40), at(2026, 12, 2, 2, 5), at(2026, 12, 2, 11, 0)].map(
      (time, order) => ({ item: `s${order}`, time, order }),
    );
    assert.deepEqual([...applyRetention(items, parseKeepPolicy('1d'), NOW).kept.keys()], ['s0']);
    const hourly = applyRetention(items, parseKeepPolicy('24h'), NOW).kept;
    assert.deepEqual([...hourly.keys()].sort(), ['s0', 's2', 's3']);
    assert.equal(hourly.get('s0'), 'first of hour 2026-12-02 01:00');
  });

  test('* keeps every period; a snapshot without a time and a protected one are always kept', () => {
    const items: Dated<string>[] = [
      { item: 'old', time: at(2019, 6, 1), order: 0 },
      { item: 'older', time: at(2019, 5, 1), order: 1 },
      { item: 'untimed', time: null, order: 2 },
      { item: 'parent', time: at(2026, 10, 3), order: 3 },
      { item: 'new', time: at(2026, 12, 1), order: 4 },
    ];
    const { kept, dropped } = applyRetention(items, parseKeepPolicy('*y'), NOW, new Map([['parent', 'the next incremental needs it']]));
    assert.equal(kept.get('older'), 'first of year 2019');
    assert.equal(kept.get('untimed'), 'its time is not known');
    assert.equal(kept.get('parent'), 'the next incremental needs it');
    // 2026's first is parent (kept, with its own reason): new is no first of anything.
    assert.deepEqual([...dropped.keys()], ['old', 'new']);
  });
});

describe('timeFromName', () => {
  test("btrbk's, timeshift's and plain dates, in local time; the last date in the name", () => {
    assert.deepEqual(timeFromName('home.20261128T0300'), at(2026, 11, 28, 3, 0));
    assert.deepEqual(timeFromName('home.20261128'), at(2026, 11, 28, 0, 0));
    assert.deepEqual(timeFromName('2026-11-28_03-00-01'), new Date(2026, 10, 28, 3, 0, 1));
    assert.deepEqual(timeFromName('daily/2026-11-28'), at(2026, 11, 28, 0, 0));
    assert.deepEqual(timeFromName('2025-01-01/copy-2026-11-28 17:45'), at(2026, 11, 28, 17, 45));
  });

  test('no date: null; digits that are no date are not taken for one', () => {
    assert.equal(timeFromName('s1'), null);
    assert.equal(timeFromName('snapshot-42'), null);
    assert.equal(timeFromName('2026-13-01'), null);
    assert.equal(timeFromName('2026-02-31'), null);
    assert.equal(timeFromName('id-1234567890'), null, 'a longer run of digits');
  });
});

describe('planRetention: one run of sync --keep', () => {
  const snap = (name: string, uuid: string, extra: Partial<Snapshot> = {}): Snapshot => ({
    name,
    uuid,
    parentUuid: null,
    receivedUuid: null,
    generation: 10,
    creationGeneration: 5,
    createdAt: null,
    ...extra,
  });

  test("sends only what it keeps; deletes what it drops; times from names, else the source's creation time", () => {
    // Source: nightly snapshots without dates in their names; the destination received two of
    // them today (their own creation time is the time they were received).
    const source = [1, 2, 3, 4, 5].map((d) => snap(`n${d}`, `u${d}`, { createdAt: at(2026, 11, 27 + d) }));
    const destination = [
      snap('n1', 'd1', { receivedUuid: 'u1', createdAt: NOW }),
      snap('n2', 'd2', { receivedUuid: 'u2', createdAt: NOW }),
      snap('manual-2020-01-01', 'd9', { createdAt: NOW }),
    ];
    const plan = planRetention({ wanted: source, sourceAll: source, destination, policy: parseKeepPolicy('2d'), now: NOW });
    // 2d: today (Dec 2: n5) and yesterday (Dec 1: n4).
    assert.deepEqual(
      plan.send.map((s) => s.name),
      ['n4', 'n5'],
    );
    assert.deepEqual(
      plan.skipped.map((s) => s.snapshot.name),
      ['n3'],
    );
    assert.deepEqual(
      plan.deletes.map((d) => d.snapshot.name).sort(),
      ['manual-2020-01-01', 'n1', 'n2'],
      "n1 and n2 by their source's time, not the receive's; the manual one by its name's date",
    );
    assert.deepEqual(plan.kept, []);
  });

  test('the newest snapshot the source has is always kept: the next incremental starts from it', () => {
    const source = [snap('a.2019-01-01', 'u1'), snap('a.2019-02-01', 'u2')];
    const destination = [snap('a.2019-01-01', 'd1', { receivedUuid: 'u1' })];
    const plan = planRetention({ wanted: source, sourceAll: source, destination, policy: parseKeepPolicy('1d'), now: NOW });
    assert.deepEqual(
      plan.send.map((s) => s.name),
      ['a.2019-02-01'],
    );
    assert.deepEqual(
      plan.deletes.map((d) => d.snapshot.name),
      ['a.2019-01-01'],
    );
    const onlyOld = planRetention({ wanted: source.slice(0, 1), sourceAll: source, destination, policy: parseKeepPolicy('1d'), now: NOW });
    assert.deepEqual(onlyOld.kept, [
      { snapshot: destination[0], reason: 'the newest the source has: the next incremental starts from it' },
    ]);
  });
});
