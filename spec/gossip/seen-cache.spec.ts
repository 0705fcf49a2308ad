import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import type { TimerHandle } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { DEFAULT_SEEN_MAX_ENTRIES, DEFAULT_SEEN_TTL_MS, SeenCache } from '../../lib/gossip/seen-cache.js';

/** A 32-byte message id whose first four bytes hold `n` (big-endian); the rest are zero. */
function id(n: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(n, 0);
  return b;
}

describe('SeenCache', () => {
  let fake: sinon.SinonFakeTimers;

  // systemClock reads Date.now() and the global timers at call time, so sinon drives it.
  beforeEach(() => {
    fake = sinon.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    fake.restore();
  });

  describe('addKey', () => {
    it('records an id given as its latin1 key exactly as add() records the id', () => {
      const cache = new SeenCache(systemClock);
      expect(cache.addKey(id(7).toString('latin1'))).to.equal(true);
      expect(cache.has(id(7))).to.equal(true);
      expect(cache.add(id(7))).to.equal(false);
      expect(cache.addKey(id(7).toString('latin1'))).to.equal(false);
      expect(cache.has(id(8))).to.equal(false);
      expect(cache.size).to.equal(1);
    });
  });

  describe('hasKeyAt', () => {
    it('answers as hasKey() would at the given clock time, up to the expiry boundary', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      const key = id(7).toString('latin1');
      cache.addKey(key);
      const t = Date.now();
      expect(cache.hasKeyAt(key, t + 999)).to.equal(true);
      expect(cache.hasKeyAt(key, t + 1000)).to.equal(false);
      expect(cache.hasKeyAt(id(8).toString('latin1'), t)).to.equal(false);
      fake.tick(1000);
      expect(cache.hasKey(key)).to.equal(cache.hasKeyAt(key, t + 1000));
    });
  });

  describe('options', () => {
    it('defaults to a 5 minute lifetime and a 100000 entry cap', () => {
      const cache = new SeenCache(systemClock);
      expect(cache.ttlMs).to.equal(DEFAULT_SEEN_TTL_MS).and.to.equal(300_000);
      expect(cache.maxEntries).to.equal(DEFAULT_SEEN_MAX_ENTRIES).and.to.equal(100_000);
    });

    const bad: Array<[Record<string, unknown>, string]> = [
      [{ ttlMs: 0 }, 'seenTtlMs'],
      [{ ttlMs: -5 }, 'seenTtlMs'],
      [{ ttlMs: Infinity }, 'seenTtlMs'],
      [{ ttlMs: Number.NaN }, 'seenTtlMs'],
      [{ maxEntries: 0 }, 'maxSeenEntries'],
      [{ maxEntries: 2.5 }, 'maxSeenEntries'],
    ];
    for (const [opts, field] of bad) {
      const label = Object.entries(opts).map(([k, v]) => `${k}: ${String(v)}`).join(', ');
      it(`rejects { ${label} } with an InvalidOptionError naming ${field}`, () => {
        expect(() => new SeenCache(systemClock, opts)).to.throw(InvalidOptionError).with.property('field', field);
      });
    }
  });

  describe('expiry', () => {
    it('remembers an id until one millisecond before its lifetime ends', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      cache.add(id(1));
      fake.tick(999);
      expect(cache.has(id(1))).to.equal(true);
    });

    it('forgets an id exactly when its lifetime ends, the boundary included', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      cache.add(id(1));
      fake.tick(1000);
      expect(cache.has(id(1))).to.equal(false);
    });

    it('treats an id added again at the boundary as new and gives it a new lifetime', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      cache.add(id(1));
      fake.tick(1000);
      expect(cache.add(id(1))).to.equal(true);
      fake.tick(999);
      expect(cache.has(id(1))).to.equal(true);
      fake.tick(1);
      expect(cache.has(id(1))).to.equal(false);
      expect(cache.expired).to.equal(1);
    });

    it('does not extend an id\'s lifetime when a duplicate arrives', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      cache.add(id(1));
      fake.tick(600);
      expect(cache.add(id(1))).to.equal(false);
      fake.tick(400);
      expect(cache.has(id(1))).to.equal(false);
    });

    it('drops only the expired entries on cleanup, and says how many', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      cache.add(id(1));
      cache.add(id(2));
      fake.tick(500);
      cache.add(id(3));
      fake.tick(500); // ids 1 and 2 are exactly at their boundary, id 3 is half-way
      expect(cache.size).to.equal(3);
      expect(cache.cleanup()).to.equal(2);
      expect(cache.size).to.equal(1);
      expect(cache.has(id(3))).to.equal(true);
      expect(cache.expired).to.equal(2);
      expect(cache.evictions).to.equal(0);
    });

    it('empties itself through a periodic cleanup timer once traffic stops', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 5000 });
      const timer: TimerHandle = systemClock.setInterval(() => cache.cleanup(), 1000);
      try {
        // Ids 0..49 added 100 ms apart, at +0 .. +4900 ms.
        for (let i = 0; i < 50; i++) {
          if (i > 0) fake.tick(100);
          cache.add(id(i));
        }
        expect(cache.size).to.equal(50);
        // The cleanup at +9000 ms drops the ids added at or before +4000 (0..40).
        fake.tick(4100);
        expect(cache.size).to.equal(9);
        expect(cache.has(id(41))).to.equal(true);
        // The last id expires at +9900; the cleanup at +10000 drops it without any add.
        fake.tick(1000);
        expect(cache.size).to.equal(0);
        expect(cache.expired).to.equal(50);
      } finally {
        timer.cancel();
      }
    });

    it('also drains expired entries a few at a time as new ids are added', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000 });
      for (let i = 0; i < 10; i++) cache.add(id(i));
      fake.tick(1000);
      cache.add(id(100));
      // An add drops some (a bounded number, not all) of the expired entries, oldest first.
      const droppedByAdd = 11 - cache.size;
      expect(droppedByAdd).to.be.within(1, 9);
      expect(cache.expired).to.equal(droppedByAdd);
      expect(cache.cleanup()).to.equal(10 - droppedByAdd);
      expect(cache.expired).to.equal(10);
      expect(cache.size).to.equal(1);
      expect(cache.has(id(100))).to.equal(true);
    });
  });

  describe('the hard cap', () => {
    it('evicts the oldest entry first when full, and counts the eviction', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 60_000, maxEntries: 3 });
      for (let i = 1; i <= 3; i++) {
        cache.add(id(i));
        fake.tick(10);
      }
      expect(cache.add(id(4))).to.equal(true);
      expect(cache.size).to.equal(3);
      expect(cache.has(id(1))).to.equal(false);
      expect([2, 3, 4].map((n) => cache.has(id(n)))).to.deep.equal([true, true, true]);
      expect(cache.evictions).to.equal(1);
      expect(cache.expired).to.equal(0);
    });

    it('evicts in first-seen order: a duplicate does not make an old id young again', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 60_000, maxEntries: 3 });
      cache.add(id(1));
      cache.add(id(2));
      cache.add(id(3));
      expect(cache.add(id(1))).to.equal(false); // duplicate of the oldest
      cache.add(id(4));
      expect(cache.has(id(1))).to.equal(false);
      expect(cache.has(id(2))).to.equal(true);
    });

    it('counts an entry that leaves the cap already expired as expired, not evicted', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 1000, maxEntries: 1 });
      cache.add(id(1));
      fake.tick(1000);
      cache.add(id(2));
      expect(cache.evictions).to.equal(0);
      expect(cache.expired).to.equal(1);
      expect(cache.size).to.equal(1);
    });

    it('stays at the cap under a flood of distinct ids, every overflow counted as an eviction', () => {
      const cap = 1000;
      const flood = 20_000;
      const cache = new SeenCache(systemClock, { ttlMs: 300_000, maxEntries: cap });
      let maxSize = 0;
      for (let i = 0; i < flood; i++) {
        expect(cache.add(id(i))).to.equal(true);
        maxSize = Math.max(maxSize, cache.size);
        if (i % 100 === 0) fake.tick(1);
      }
      expect(maxSize).to.equal(cap);
      expect(cache.size).to.equal(cap);
      expect(cache.evictions).to.equal(flood - cap);
      // The survivors are exactly the newest `cap` ids.
      expect(cache.has(id(flood - cap - 1))).to.equal(false);
      expect(cache.has(id(flood - cap))).to.equal(true);
      expect(cache.has(id(flood - 1))).to.equal(true);
    });
  });

  describe('duplicates', () => {
    it('never reports a live id as new, however often it is added', () => {
      const cache = new SeenCache(systemClock, { ttlMs: 10_000, maxEntries: 100 });
      expect(cache.add(id(7))).to.equal(true);
      const again: boolean[] = [];
      for (let i = 0; i < 50; i++) {
        again.push(cache.add(id(7)));
        fake.tick(100);
      }
      expect(again.every((x) => x === false)).to.equal(true);
      expect(cache.size).to.equal(1);
      expect(cache.evictions).to.equal(0);
    });

    it('recognises the same id given as a Buffer, a Uint8Array or a view into a larger buffer', () => {
      const cache = new SeenCache(systemClock);
      cache.add(id(42));
      const big = Buffer.concat([Buffer.from([0xff, 0xff]), id(42), Buffer.from([0xee])]);
      expect(cache.add(new Uint8Array(id(42)))).to.equal(false);
      expect(cache.add(big.subarray(2, 34))).to.equal(false);
      expect(cache.has(new Uint8Array(big.buffer, big.byteOffset + 2, 32))).to.equal(true);
      expect(cache.size).to.equal(1);
    });

    it('keeps ids that differ only in their last byte apart', () => {
      const cache = new SeenCache(systemClock);
      const a = id(0);
      const b = Buffer.from(a);
      b[31] = 1;
      expect(cache.add(a)).to.equal(true);
      expect(cache.add(b)).to.equal(true);
      expect(cache.size).to.equal(2);
    });
  });
});
