import { expect } from 'chai';
import { VirtualClock } from '../../lib/sim/virtual-clock.js';

describe('sim/VirtualClock', () => {
  it('runs events in due-time order, and events due at the same time in the order they were scheduled', () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.setTimeout(() => order.push('b@10'), 10);
    clock.setTimeout(() => order.push('a@5'), 5);
    clock.setTimeout(() => order.push('c@10'), 10);
    clock.setTimeout(() => order.push('d@10'), 10);
    clock.setTimeout(() => order.push('e@0'), 0);
    while (clock.step()) { /* drain */ }
    expect(order).to.deep.equal(['e@0', 'a@5', 'b@10', 'c@10', 'd@10']);
    expect(clock.now()).to.equal(10);
  });

  it('keeps insertion order among many simultaneous events (the heap is not stable by itself)', () => {
    const clock = new VirtualClock();
    const order: number[] = [];
    for (let i = 0; i < 200; i++) clock.setTimeout(() => order.push(i), i % 3);
    while (clock.step()) { /* drain */ }
    const expected = [0, 1, 2].flatMap((r) => Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 3 === r));
    expect(order).to.deep.equal(expected);
  });

  it('repeats an interval until it is cancelled, and skips cancelled timeouts', () => {
    const clock = new VirtualClock();
    const ticks: number[] = [];
    const t = clock.setInterval(() => ticks.push(clock.now()), 100);
    const dropped = clock.setTimeout(() => ticks.push(-1), 150);
    dropped.cancel();
    clock.setTimeout(() => t.cancel(), 350);
    while (clock.step()) { /* drain */ }
    expect(ticks).to.deep.equal([100, 200, 300]);
  });

  it('runs an event scheduled for the current millisecond after the ones already due then, before the next millisecond', () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.setTimeout(() => {
      order.push('a@5');
      clock.setTimeout(() => order.push('c@5'), 0);
    }, 5);
    clock.setTimeout(() => order.push('b@5'), 5);
    clock.setTimeout(() => order.push('d@6'), 6);
    expect(clock.pending).to.equal(3);
    while (clock.step()) { /* drain */ }
    expect(order).to.deep.equal(['a@5', 'b@5', 'c@5', 'd@6']);
    expect(clock.pending).to.equal(0);
    expect(clock.peekTime()).to.equal(undefined);
  });

  it('stops at the given time and leaves later events queued', () => {
    const clock = new VirtualClock();
    let ran = 0;
    clock.setTimeout(() => ran++, 10);
    clock.setTimeout(() => ran++, 30);
    while (clock.step(20)) { /* drain */ }
    expect(ran).to.equal(1);
    expect(clock.peekTime()).to.equal(30);
  });

  it('runs frames and timers due at one millisecond in the order they were scheduled, and reuses run buckets', () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.onFrame = (from, to, type, body) => order.push(`f${from}>${to}:${type}:${body.toString()}@${clock.now()}`);
    for (let round = 0; round < 3; round++) {
      const t = clock.now() + 10;
      clock.scheduleFrame(t, 1, 2, 7, Buffer.from('a'));
      clock.at(t, () => order.push(`t@${clock.now()}`));
      for (let i = 0; i < 20; i++) clock.scheduleFrame(t, i, 0, 8, Buffer.from(String(i)));
      clock.scheduleFrame(t - 5, 3, 4, 9, Buffer.from('early'));
      while (clock.step()) { /* drain */ }
    }
    const one = (t: number) => [`f3>4:9:early@${t - 5}`, `f1>2:7:a@${t}`, `t@${t}`, ...Array.from({ length: 20 }, (_, i) => `f${i}>0:8:${i}@${t}`)];
    expect(order).to.deep.equal([...one(10), ...one(20), ...one(30)]);
    expect(clock.executed).to.equal(3 * 23);
    expect(clock.pending).to.equal(0);
  });
});
