import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { ORIGIN_BUDGET_DEFAULTS, OriginBudget, PublishPacer } from '../../lib/peers/origin-budget.js';

/** One message that verified: looked at, and spent if allowed (as Sanctions and the engine do). */
function take(b: OriginBudget, origin: string): boolean {
  if (!b.allows(origin)) return false;
  b.spend(origin);
  return true;
}

describe('OriginBudget', () => {
  let now: number;
  let clock: Clock;
  beforeEach(() => {
    now = 0;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  });

  it('accepts an origin\'s burst, then originPerSecond, and counts what it refuses', () => {
    const b = new OriginBudget(clock);
    let accepted = 0;
    for (let i = 0; i < 5000; i++) if (take(b, 'flooder')) accepted++;
    expect(accepted).to.equal(ORIGIN_BUDGET_DEFAULTS.originBurst);
    expect(b.excess('flooder')).to.equal(5000 - accepted);
    now += 1000;
    accepted = 0;
    for (let i = 0; i < 1000; i++) if (take(b, 'flooder')) accepted++;
    expect(accepted).to.equal(ORIGIN_BUDGET_DEFAULTS.originPerSecond);
    expect(b.dropped).to.equal(5000 - ORIGIN_BUDGET_DEFAULTS.originBurst + 1000 - ORIGIN_BUDGET_DEFAULTS.originPerSecond);
  });

  it('keeps origins apart: one flooding origin leaves another\'s budget whole', () => {
    const b = new OriginBudget(clock, { originPerSecond: 1, originBurst: 2 });
    for (let i = 0; i < 10; i++) take(b, 'flooder');
    expect(take(b, 'honest')).to.equal(true);
    expect(take(b, 'honest')).to.equal(true);
    expect(b.excess('honest')).to.equal(0);
  });

  it('never binds an origin publishing within the documented rate (a burst of originBurst, then originPerSecond for ten minutes)', () => {
    const b = new OriginBudget(clock);
    for (let i = 0; i < ORIGIN_BUDGET_DEFAULTS.originBurst; i++) expect(take(b, 'o')).to.equal(true);
    for (let s = 0; s < 600; s++) {
      now = 1000 + s * 1000;
      for (let i = 0; i < ORIGIN_BUDGET_DEFAULTS.originPerSecond; i++) expect(take(b, 'o')).to.equal(true);
    }
    expect(b.excess('o')).to.equal(0);
  });

  it('allows() looks without spending; spend() spends', () => {
    const b = new OriginBudget(clock, { originPerSecond: 1, originBurst: 2 });
    for (let i = 0; i < 10; i++) expect(b.allows('o')).to.equal(true);
    b.spend('o');
    b.spend('o');
    expect(b.allows('o')).to.equal(false);
    expect(b.excess('o')).to.equal(1);
    now += 1000;
    expect(b.allows('o')).to.equal(true);
  });

  it('is off with originPerSecond 0', () => {
    const b = new OriginBudget(clock, { originPerSecond: 0 });
    for (let i = 0; i < 10_000; i++) expect(take(b, 'o')).to.equal(true);
  });

  it('forgets the least recently used origin beyond maxTrackedOrigins', () => {
    const b = new OriginBudget(clock, { originPerSecond: 1, originBurst: 1, maxTrackedOrigins: 2 });
    take(b, 'a');
    take(b, 'b');
    take(b, 'a'); // a refused, and now the most recent
    take(b, 'c'); // forgets b
    expect(b.size).to.equal(2);
    expect(b.evictions).to.equal(1);
    expect(b.excess('a')).to.equal(1);
    expect(take(b, 'b')).to.equal(true); // a fresh budget
  });

  it('forgets a budget that refilled and refused nothing, and keeps one that refused (a new origin gets a full budget anyway)', () => {
    const b = new OriginBudget(clock, { originPerSecond: 10, originBurst: 2 });
    take(b, 'honest');
    take(b, 'flooder');
    take(b, 'flooder');
    expect(take(b, 'flooder')).to.equal(false);
    expect(b.size).to.equal(2);
    now += 1000; // both full again
    take(b, 'other'); // looks at the least recently used: honest, full, nothing refused
    expect(b.size).to.equal(2);
    take(b, 'other2'); // then the flooder: full, but it was refused once
    expect(b.size).to.equal(3);
    expect(b.excess('flooder')).to.equal(1);
    expect(take(b, 'honest')).to.equal(true);
    expect(take(b, 'honest')).to.equal(true); // a full burst, as if never seen
    expect(take(b, 'honest')).to.equal(false);
  });

  it('names the option it refuses', () => {
    expect(() => new OriginBudget(clock, { originBurst: 0 })).to.throw(InvalidOptionError, 'scoring.originBurst');
    expect(() => new OriginBudget(clock, { maxTrackedOrigins: 1.5 })).to.throw(InvalidOptionError, 'scoring.maxTrackedOrigins');
  });
});

describe('PublishPacer', () => {
  let now: number;
  let timers: Array<{ at: number; fn: () => void; cancelled: boolean }>;
  let clock: Clock;
  /** Advance the fake clock to `to`, running due timers in order. */
  function advance(to: number): void {
    for (;;) {
      const due = timers.filter((t) => !t.cancelled && t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      now = due.at;
      due.cancelled = true;
      due.fn();
    }
    now = to;
  }
  beforeEach(() => {
    now = 0;
    timers = [];
    clock = {
      now: () => now,
      setTimeout: (fn, ms) => {
        const t = { at: now + ms, fn, cancelled: false };
        timers.push(t);
        return { cancel: () => void (t.cancelled = true) };
      },
      setInterval: () => ({ cancel() {} }),
    };
  });

  it('lets a burst through at once, then paces later publishes to originPerSecond, in call order', async () => {
    const p = new PublishPacer(clock, { originPerSecond: 10, originBurst: 3 });
    for (let i = 0; i < 3; i++) expect(p.acquire()).to.equal(undefined);
    const order: number[] = [];
    const waits = [0, 1, 2].map((i) => p.acquire()!.then(() => void order.push(i)));
    expect(p.pending).to.equal(3);
    advance(99);
    await Promise.resolve();
    expect(order).to.deep.equal([]);
    advance(100);
    await Promise.resolve();
    expect(order).to.deep.equal([0]);
    advance(300);
    await Promise.all(waits);
    expect(order).to.deep.equal([0, 1, 2]);
    expect(p.pending).to.equal(0);
  });

  it('releases every waiter on clear(), and never waits when the budget is off', async () => {
    const p = new PublishPacer(clock, { originPerSecond: 1, originBurst: 1 });
    p.acquire();
    const w = p.acquire()!;
    p.clear();
    await w;
    const off = new PublishPacer(clock, { originPerSecond: 0 });
    for (let i = 0; i < 10_000; i++) expect(off.acquire()).to.equal(undefined);
  });
});
