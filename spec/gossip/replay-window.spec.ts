import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { ReplayWindow } from '../../lib/gossip/replay-window.js';
import { seededRandom } from '../../lib/random.js';

const origin = (n: number): Buffer => Buffer.alloc(32, n);

describe('ReplayWindow', () => {
  let now: number;
  let clock: Clock;
  /** A seq published `agoMs` before now, as an origin with our clock would stamp it. */
  const seqAt = (agoMs: number, k = 0): number => (now - agoMs) * 1000 + k;
  beforeEach(() => {
    now = 10_000_000;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  });
  const make = (over: Partial<ConstructorParameters<typeof ReplayWindow>[1]> = {}) =>
    new ReplayWindow(clock, { horizonMs: 300_000, ...over }, seededRandom(1));

  it('accepts a new seq, and refuses it as a replay once committed', () => {
    const w = make();
    const s = seqAt(0);
    expect(w.check(origin(1), s)).to.equal('new');
    w.commit(origin(1), s);
    expect(w.check(origin(1), s)).to.equal('replay');
    expect(w.check(origin(2), s)).to.equal('new');
  });

  it('judges by key (checkKey, commitKey) exactly as by the key bytes, a Uint8Array view included', () => {
    const w = make();
    const s = seqAt(0);
    const key = origin(1).toString('latin1');
    expect(w.checkKey(key, s)).to.equal('new');
    w.commitKey(key, s);
    expect(w.check(origin(1), s)).to.equal('replay');
    const block = Buffer.concat([Buffer.alloc(5), origin(2)]);
    w.commit(new Uint8Array(block.buffer, block.byteOffset + 5, 32), s);
    expect(w.checkKey(origin(2).toString('latin1'), s)).to.equal('replay');
    expect(w.checkKey(origin(3).toString('latin1'), s)).to.equal('new');
  });

  it('changes nothing on check: an unverified copy cannot move a window', () => {
    const w = make({ windowSize: 2 });
    for (let k = 0; k < 10; k++) w.check(origin(1), seqAt(0, k));
    w.commit(origin(1), seqAt(0, 1));
    expect(w.check(origin(1), seqAt(0, 0))).to.equal('new');
  });

  it('accepts messages reordered within the window and refuses deeper ones as too_old', () => {
    const w = make({ windowSize: 4 });
    for (const k of [5, 3, 4, 7, 6]) {
      expect(w.check(origin(1), seqAt(0, k))).to.equal('new');
      w.commit(origin(1), seqAt(0, k));
    }
    // Window holds 4..7; 3 fell out and became the floor.
    expect(w.check(origin(1), seqAt(0, 3))).to.equal('too_old');
    expect(w.check(origin(1), seqAt(0, 2))).to.equal('too_old');
    expect(w.check(origin(1), seqAt(0, 4))).to.equal('replay');
    expect(w.check(origin(1), seqAt(0, 8))).to.equal('new');
  });

  it('refuses any seq older than the horizon, tracked origin or not', () => {
    const w = make();
    expect(w.check(origin(9), seqAt(300_001))).to.equal('too_old');
    expect(w.check(origin(9), seqAt(299_999))).to.equal('new');
  });

  it('still refuses a replay after its origin was evicted (the slot floor)', () => {
    const w = make({ maxOrigins: 2 });
    const old = seqAt(1000);
    w.commit(origin(1), old);
    w.commit(origin(2), seqAt(0));
    w.commit(origin(3), seqAt(0)); // evicts origin 1
    expect(w.size).to.equal(2);
    expect(w.evictions).to.equal(1);
    expect(w.check(origin(1), old)).to.equal('too_old');
    // Its newer messages are still accepted, and it is tracked again from its floor.
    expect(w.check(origin(1), seqAt(0, 1))).to.equal('new');
    w.commit(origin(1), seqAt(0, 1));
    expect(w.check(origin(1), old)).to.equal('too_old');
  });

  it('cannot be made to refuse an origin by a far-future seq of an evicted one', () => {
    const w = make({ maxOrigins: 1, evictedSlots: 1 }); // every origin shares the one slot
    w.commit(origin(1), Number.MAX_SAFE_INTEGER);
    w.commit(origin(2), seqAt(0)); // evicts origin 1: its floor is clamped to now
    w.commit(origin(3), seqAt(0)); // evicts origin 2
    now += 1;
    expect(w.check(origin(4), seqAt(0))).to.equal('new');
  });

  it('forgets seqs past the horizon (memory follows the message rate, not the run time)', () => {
    const w = make({ windowSize: 1024 });
    for (let k = 0; k < 100; k++) w.commit(origin(1), seqAt(0, k));
    now += 400_000;
    w.commit(origin(1), seqAt(0));
    expect(w.check(origin(1), seqAt(400_000, 5))).to.equal('too_old');
    expect(w.check(origin(1), seqAt(0))).to.equal('replay');
  });

  it('names the bad option', () => {
    expect(() => make({ windowSize: 0 })).to.throw(InvalidOptionError).with.property('field', 'windowSize');
    expect(() => new ReplayWindow(clock, { horizonMs: 0 })).to.throw(InvalidOptionError).with.property('field', 'horizonMs');
  });
});
