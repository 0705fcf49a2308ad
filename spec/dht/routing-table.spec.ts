import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  DEFAULT_K,
  DEFAULT_MAX_PER_GROUP_IN_BUCKET,
  DEFAULT_MAX_PER_GROUP_IN_TABLE,
  DEFAULT_REPLACEMENT_CACHE,
  ID_BYTES,
  RoutingTable,
  bucketIndexOf,
  compareDistance,
  xorDistance,
} from '../../lib/dht/routing-table.js';
import type { Contact } from '../../lib/dht/routing-table.js';
import { InvalidOptionError, P2PError } from '../../lib/errors.js';

/**
 * A 32-byte id whose leading bits are `bits` (most significant first) and whose remaining bits
 * come from `fill` repeated. With the all-zero local id, an id whose first 1 is at bit
 * position p (0 = most significant) lands in bucket 255 - p.
 */
function idWithPrefix(bits: string, fill = 0x00): Buffer {
  const id = Buffer.alloc(ID_BYTES, fill);
  for (let p = 0; p < bits.length; p++) {
    const byte = p >> 3;
    const mask = 0x80 >> (p & 7);
    id[byte] = bits[p] === '1' ? id[byte]! | mask : id[byte]! & ~mask;
  }
  return id;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const big = (b: Uint8Array): bigint => BigInt('0x' + hex(b));

/**
 * A contact in a /24 of its own (derived from its id), so the address-group limits never bind
 * in the tests of the Kademlia rules; the limits have their own tests below.
 */
function contact(id: Buffer, lastSeen = 0, port = 4000): Contact {
  const h = createHash('sha256').update(id).digest();
  return { id, host: `10.${h[0]}.${h[1]}.1`, port, lastSeen };
}

function ids(contacts: Contact[]): string[] {
  return contacts.map((c) => hex(c.id));
}

/** Deterministic byte source (mulberry32) standing in for crypto.randomBytes. */
function seededRandom(seed: number): (n: number) => Buffer {
  let s = seed >>> 0;
  return (n) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
    }
    return out;
  };
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    expect((err as P2PError).code).to.equal(code);
    return;
  }
  expect.fail(`expected a P2PError with code ${code}`);
}

const LOCAL = idWithPrefix(''); // all zero: an id's bucket is 255 minus the position of its first 1 bit

// Ids in bucket 255 (first bit 1): the far half of the space.
const FAR_A = idWithPrefix('1000'); // 0b1000... -> differs from local at bit 0 -> bucket 255
const FAR_B = idWithPrefix('1001'); // 0b1001... -> bucket 255
const FAR_C = idWithPrefix('1010'); // 0b1010... -> bucket 255
const FAR_D = idWithPrefix('1011'); // 0b1011... -> bucket 255
const FAR_E = idWithPrefix('1100'); // 0b1100... -> bucket 255
// Nearer ids.
const MID = idWithPrefix('01'); // 0b01... -> first 1 at bit 1 -> bucket 254
const NEAR = idWithPrefix('001'); // 0b001... -> bucket 253

describe('xorDistance', () => {
  it('is the byte-wise XOR of the two ids', () => {
    // 0b1100... ^ 0b1010... = 0b0110...
    expect(hex(xorDistance(idWithPrefix('1100'), idWithPrefix('1010')))).to.equal(hex(idWithPrefix('0110')));
  });

  it('XORs every byte, including the last', () => {
    const a = idWithPrefix('', 0x0f);
    const b = idWithPrefix('', 0xff);
    expect(hex(xorDistance(a, b))).to.equal('f0'.repeat(ID_BYTES));
  });

  it('is zero from an id to itself', () => {
    expect(hex(xorDistance(FAR_D, FAR_D))).to.equal('00'.repeat(ID_BYTES));
  });

  it('rejects ids of different lengths with INVALID_ARGUMENT', () => {
    expectCode(() => xorDistance(Buffer.alloc(32), Buffer.alloc(31)), 'INVALID_ARGUMENT');
  });
});

describe('compareDistance', () => {
  const cases: Array<[string, Buffer, Buffer, Buffer, number]> = [
    // target 0b0000..., a 0b01..., b 0b1... : a is nearer
    ['a nearer in the first bit', LOCAL, MID, FAR_A, -1],
    ['a farther in the first bit', LOCAL, FAR_A, MID, 1],
    ['the same id', LOCAL, FAR_C, FAR_C, 0],
    // target 0b1100...: 0b1101... is at distance 0b0001..., 0b1000... at 0b0100...
    ['a nearer to a non-zero target', idWithPrefix('1100'), idWithPrefix('1101'), idWithPrefix('1000'), -1],
    // ids differing only in the very last bit: decided by the last byte
    ['a nearer in the last bit', LOCAL, idWithPrefix('0'.repeat(255) + '0', 0), idWithPrefix('0'.repeat(255) + '1'), -1],
  ];
  for (const [name, target, a, b, expected] of cases) {
    it(`returns ${expected} for ${name}`, () => {
      expect(compareDistance(target, a, b)).to.equal(expected);
    });
  }

  it('agrees with comparing XOR distances as 256-bit integers', () => {
    const id = fc.uint8Array({ minLength: ID_BYTES, maxLength: ID_BYTES });
    fc.assert(
      fc.property(id, id, id, (t, a, b) => {
        const da = big(xorDistance(t, a));
        const db = big(xorDistance(t, b));
        const expected = da < db ? -1 : da > db ? 1 : 0;
        return compareDistance(t, a, b) === expected;
      }),
      { numRuns: 300 },
    );
  });
});

describe('bucketIndexOf', () => {
  const cases: Array<[string, Buffer, Buffer, number]> = [
    ['0b1... (first bit differs)', LOCAL, idWithPrefix('1'), 255],
    ['0b01...', LOCAL, idWithPrefix('01'), 254],
    ['0b00000001... (last bit of byte 0)', LOCAL, idWithPrefix('00000001'), 248],
    ['0b000000001... (first bit of byte 1)', LOCAL, idWithPrefix('000000001'), 247],
    ['only the last bit set', LOCAL, idWithPrefix('0'.repeat(255) + '1'), 0],
    // local 0b1011..., id 0b1010...: first difference at bit 3 -> bucket 252
    ['a non-zero local id', idWithPrefix('1011', 0xaa), idWithPrefix('1010', 0xaa), 252],
  ];
  for (const [name, local, id, expected] of cases) {
    it(`puts ${name} in bucket ${expected}`, () => {
      expect(bucketIndexOf(local, id)).to.equal(expected);
    });
  }

  it('returns -1 for the local id itself', () => {
    expect(bucketIndexOf(FAR_D, Buffer.from(FAR_D))).to.equal(-1);
  });

  it('returns i such that 2^i <= distance < 2^(i+1) for any two distinct ids', () => {
    const id = fc.uint8Array({ minLength: ID_BYTES, maxLength: ID_BYTES });
    fc.assert(
      fc.property(id, id, (a, b) => {
        const d = big(xorDistance(a, b));
        fc.pre(d !== 0n);
        const i = bucketIndexOf(a, b);
        return 1n << BigInt(i) <= d && d < 1n << BigInt(i + 1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('bucket placement', () => {
  it('keeps ids of different buckets apart so a full bucket does not block another', () => {
    const table = new RoutingTable(LOCAL, { k: 2 });
    expect(table.add(contact(FAR_A)).status).to.equal('added'); // bucket 255
    expect(table.add(contact(FAR_B)).status).to.equal('added'); // bucket 255, now full
    expect(table.add(contact(FAR_C)).status).to.equal('full'); // bucket 255
    expect(table.add(contact(MID)).status).to.equal('added'); // bucket 254 still has room
    expect(table.add(contact(NEAR)).status).to.equal('added'); // bucket 253
    expect(table.size).to.equal(4);
  });

  it('lists contacts by bucket index ascending in all()', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A)); // bucket 255
    table.add(contact(MID)); // bucket 254
    table.add(contact(NEAR)); // bucket 253
    expect(ids(table.all())).to.deep.equal([hex(NEAR), hex(MID), hex(FAR_A)]);
  });
});

describe('ordering within a bucket', () => {
  it('keeps contacts least-recently seen first', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_C, 1));
    table.add(contact(FAR_A, 2));
    table.add(contact(FAR_B, 3));
    expect(ids(table.all())).to.deep.equal([hex(FAR_C), hex(FAR_A), hex(FAR_B)]);
  });

  it('moves a re-added contact to the tail and refreshes its address and lastSeen', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A, 1, 4000));
    table.add(contact(FAR_B, 2));
    const result = table.add({ id: FAR_A, host: '10.0.0.9', port: 5000, lastSeen: 7 });
    expect(result).to.deep.equal({ status: 'updated' });
    expect(table.size).to.equal(2);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_A)]);
    expect(table.get(FAR_A)).to.deep.include({ host: '10.0.0.9', port: 5000, lastSeen: 7 });
  });

  it('moves a touched contact to the tail with the given lastSeen', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A, 1));
    table.add(contact(FAR_B, 2));
    table.touch(FAR_A, 50);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_A)]);
    expect(table.get(FAR_A)?.lastSeen).to.equal(50);
  });

  it('ignores touch() for an unknown id', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A, 1));
    table.touch(FAR_B, 50);
    expect(table.has(FAR_B)).to.equal(false);
    expect(table.size).to.equal(1);
  });
});

describe('the local id', () => {
  it('is ignored by add()', () => {
    const table = new RoutingTable(LOCAL);
    expect(table.add(contact(Buffer.from(LOCAL)))).to.deep.equal({ status: 'self' });
    expect(table.size).to.equal(0);
    expect(table.has(LOCAL)).to.equal(false);
  });
});

describe('the full-bucket rule (k = 2)', () => {
  function fullTable(): RoutingTable {
    const table = new RoutingTable(LOCAL, { k: 2 });
    table.add(contact(FAR_A, 1)); // oldest in bucket 255
    table.add(contact(FAR_B, 2));
    return table;
  }

  it('answers full with the least-recently seen contact and does not insert the newcomer', () => {
    const table = fullTable();
    const result = table.add(contact(FAR_C, 3));
    expect(result.status).to.equal('full');
    expect(result.status === 'full' && hex(result.oldest.id)).to.equal(hex(FAR_A));
    expect(table.has(FAR_C)).to.equal(false);
    expect(table.size).to.equal(2);
  });

  it('keeps an old contact that answers the ping, moves it to the tail and leaves the newcomer waiting', () => {
    const table = fullTable();
    table.add(contact(FAR_C, 3));
    expect(table.resolveFull(FAR_A, true, FAR_C, 100)).to.equal(true);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_A)]);
    expect(table.get(FAR_A)?.lastSeen).to.equal(100);
    expect(table.has(FAR_C)).to.equal(false);
    // The newcomer was waiting in the replacement cache: freeing a slot promotes it.
    table.remove(FAR_B);
    expect(ids(table.all())).to.deep.equal([hex(FAR_A), hex(FAR_C)]);
  });

  it('evicts an old contact that does not answer and inserts the newcomer at the tail', () => {
    const table = fullTable();
    table.add(contact(FAR_C, 3));
    expect(table.resolveFull(FAR_A, false, FAR_C, 100)).to.equal(true);
    expect(table.has(FAR_A)).to.equal(false);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_C)]);
    expect(table.size).to.equal(2);
  });

  it('inserts the newcomer named, not just any waiting one', () => {
    const table = fullTable();
    table.add(contact(FAR_C, 3));
    table.add(contact(FAR_D, 4)); // also waiting, and more recent
    table.resolveFull(FAR_A, false, FAR_C, 100);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_C)]);
  });

  it('never lets newcomers push out contacts that keep answering', () => {
    const table = fullTable();
    for (const [i, newcomer] of [FAR_C, FAR_D, FAR_E].entries()) {
      const result = table.add(contact(newcomer, 10 + i));
      expect(result.status).to.equal('full');
      if (result.status === 'full') table.resolveFull(result.oldest.id, true, newcomer, 20 + i);
    }
    expect(ids(table.all()).sort()).to.deep.equal([hex(FAR_A), hex(FAR_B)].sort());
  });

  it('rejects a newcomer from a different bucket than the old contact', () => {
    const table = fullTable();
    expectCode(() => table.resolveFull(FAR_A, false, MID, 100), 'INVALID_ARGUMENT');
    expect(table.has(FAR_A)).to.equal(true);
  });

  it('reports no change when the old contact is gone and the bucket is full again', () => {
    const table = fullTable();
    table.add(contact(FAR_C, 3));
    table.remove(FAR_A); // FAR_C promoted, bucket full again
    expect(table.resolveFull(FAR_A, false, FAR_D, 100)).to.equal(false);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B), hex(FAR_C)]);
  });
});

describe('the replacement cache', () => {
  it('is bounded: the oldest waiting newcomer is dropped first', () => {
    const table = new RoutingTable(LOCAL, { k: 1, replacementCacheSize: 2 });
    table.add(contact(FAR_A, 1));
    table.add(contact(FAR_B, 2)); // waits
    table.add(contact(FAR_C, 3)); // waits
    table.add(contact(FAR_D, 4)); // waits; FAR_B dropped
    table.remove(FAR_A);
    expect(ids(table.all())).to.deep.equal([hex(FAR_D)]);
    table.remove(FAR_D);
    expect(ids(table.all())).to.deep.equal([hex(FAR_C)]);
    table.remove(FAR_C);
    expect(table.size).to.equal(0); // FAR_B is gone
  });

  it('counts a re-added waiting newcomer once, as the most recent', () => {
    const table = new RoutingTable(LOCAL, { k: 1, replacementCacheSize: 2 });
    table.add(contact(FAR_A, 1));
    table.add(contact(FAR_B, 2));
    table.add(contact(FAR_C, 3));
    table.add(contact(FAR_B, 4)); // FAR_B again: moves to the tail instead of taking a second slot
    table.remove(FAR_A);
    expect(ids(table.all())).to.deep.equal([hex(FAR_B)]);
    expect(table.get(FAR_B)?.lastSeen).to.equal(4);
    table.remove(FAR_B);
    expect(ids(table.all())).to.deep.equal([hex(FAR_C)]);
  });

  it('remembers nobody when its size is 0, so a dead old contact just leaves a free slot', () => {
    const table = new RoutingTable(LOCAL, { k: 1, replacementCacheSize: 0 });
    table.add(contact(FAR_A, 1));
    expect(table.add(contact(FAR_B, 2)).status).to.equal('full');
    expect(table.resolveFull(FAR_A, false, FAR_B, 100)).to.equal(true);
    expect(table.size).to.equal(0);
    expect(table.add(contact(FAR_B, 101)).status).to.equal('added');
  });
});

describe('remove', () => {
  it('returns true for a present contact and false for an absent one', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A));
    expect(table.remove(FAR_A)).to.equal(true);
    expect(table.remove(FAR_A)).to.equal(false);
    expect(table.size).to.equal(0);
  });

  it('promotes the most recently seen waiting replacement into the freed slot', () => {
    const table = new RoutingTable(LOCAL, { k: 2 });
    table.add(contact(FAR_A, 1));
    table.add(contact(FAR_B, 2));
    table.add(contact(FAR_C, 3)); // waits
    table.add(contact(FAR_D, 4)); // waits, most recent
    expect(table.remove(FAR_B)).to.equal(true);
    expect(ids(table.all())).to.deep.equal([hex(FAR_A), hex(FAR_D)]);
    expect(table.size).to.equal(2);
  });

  it('drops a failed id from the replacement cache so it is never promoted', () => {
    const table = new RoutingTable(LOCAL, { k: 1 });
    table.add(contact(FAR_A, 1));
    table.add(contact(FAR_B, 2)); // waits
    expect(table.remove(FAR_B)).to.equal(false); // not in a bucket
    table.remove(FAR_A);
    expect(table.size).to.equal(0);
  });
});

describe('closest', () => {
  it('orders hand-picked contacts by XOR distance to the target', () => {
    const table = new RoutingTable(LOCAL);
    for (const id of [FAR_A, FAR_B, FAR_C, FAR_D, FAR_E, MID, NEAR]) table.add(contact(id));
    // target 0b1011...: FAR_D (0b1011) at 0, FAR_C (0b1010) at 0b0001, FAR_B (0b1001) at 0b0010,
    // FAR_A (0b1000) at 0b0011, FAR_E (0b1100) at 0b0111, NEAR (0b0010) at 0b1001, MID (0b0100) at 0b1111
    const target = idWithPrefix('1011');
    expect(ids(table.closest(target, 7))).to.deep.equal([FAR_D, FAR_C, FAR_B, FAR_A, FAR_E, NEAR, MID].map(hex));
    expect(ids(table.closest(target, 2))).to.deep.equal([hex(FAR_D), hex(FAR_C)]);
  });

  it('leaves out excluded ids', () => {
    const table = new RoutingTable(LOCAL);
    for (const id of [FAR_A, FAR_B, FAR_C, FAR_D]) table.add(contact(id));
    const target = idWithPrefix('1011');
    const result = table.closest(target, 2, [Buffer.from(FAR_D), FAR_B]);
    expect(ids(result)).to.deep.equal([hex(FAR_C), hex(FAR_A)]);
  });

  it('returns everything when n exceeds the size, and nothing for n = 0', () => {
    const table = new RoutingTable(LOCAL);
    table.add(contact(FAR_A));
    table.add(contact(MID));
    expect(table.closest(FAR_A, 10)).to.have.length(2);
    expect(table.closest(FAR_A, 0)).to.deep.equal([]);
  });

  it('matches a brute-force sort of every contact for random tables', () => {
    // Ids built as local XOR (random bytes with `depth` leading bits cleared), so they spread
    // over many buckets and small k makes some of them full.
    const bytes = fc.uint8Array({ minLength: ID_BYTES, maxLength: ID_BYTES });
    const nearId = fc.tuple(bytes, fc.integer({ min: 0, max: 40 }));
    fc.assert(
      fc.property(
        bytes,
        fc.array(nearId, { maxLength: 80 }),
        bytes,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 40 }),
        (local, spec, target, k, n) => {
          const table = new RoutingTable(local, { k });
          for (const [raw, depth] of spec) {
            const d = Buffer.from(raw);
            for (let bit = 0; bit < depth; bit++) d[bit >> 3] = d[bit >> 3]! & ~(0x80 >> (bit & 7));
            table.add(contact(xorDistance(local, d)));
          }
          const expected = table
            .all()
            .map((c) => ({ h: hex(c.id), d: big(xorDistance(c.id, target)) }))
            .sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0))
            .slice(0, n)
            .map((e) => e.h);
          expect(ids(table.closest(target, n))).to.deep.equal(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('isolation from callers', () => {
  it('copies ids on the way in and out, so mutating a Buffer cannot corrupt the table', () => {
    const table = new RoutingTable(LOCAL);
    const id = Buffer.from(FAR_A);
    table.add(contact(id));
    id.fill(0xff);
    const out = table.all()[0]!;
    out.id.fill(0x11);
    out.lastSeen = 999;
    expect(table.has(FAR_A)).to.equal(true);
    expect(hex(table.all()[0]!.id)).to.equal(hex(FAR_A));
    expect(table.get(FAR_A)?.lastSeen).to.equal(0);
  });

  it('copies the local id, so mutating the caller Buffer does not move every bucket', () => {
    const local = Buffer.from(LOCAL);
    const table = new RoutingTable(local);
    local.fill(0xff);
    expect(table.add(contact(Buffer.from(LOCAL))).status).to.equal('self');
  });
});

describe('option validation', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['k', { k: 0 }],
    ['k', { k: 257 }],
    ['k', { k: 1.5 }],
    ['k', { k: Number.NaN }],
    ['replacementCacheSize', { replacementCacheSize: -1 }],
    ['replacementCacheSize', { replacementCacheSize: 257 }],
    ['replacementCacheSize', { replacementCacheSize: 0.5 }],
    ['createdAt', { createdAt: Number.POSITIVE_INFINITY }],
    ['maxPerGroupInBucket', { maxPerGroupInBucket: 0 }],
    ['maxPerGroupInBucket', { maxPerGroupInBucket: 1.5 }],
    ['maxPerGroupInTable', { maxPerGroupInTable: 0 }],
    ['maxPerGroupInTable', { maxPerGroupInTable: 70_000 }],
    ['groupExempt', { groupExempt: 'loopback' }],
  ];
  for (const [field, options] of bad) {
    it(`names ${field} when given ${JSON.stringify(options, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, () => {
      try {
        new RoutingTable(LOCAL, options);
      } catch (err) {
        expect(err).to.be.instanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).field).to.equal(field);
        expect((err as InvalidOptionError).code).to.equal('INVALID_OPTION');
        return;
      }
      expect.fail('expected InvalidOptionError');
    });
  }

  it('uses the documented defaults and keeps an explicit replacementCacheSize of 0', () => {
    const table = new RoutingTable(LOCAL);
    expect(table.k).to.equal(DEFAULT_K);
    expect(table.replacementCacheSize).to.equal(DEFAULT_REPLACEMENT_CACHE);
    expect(new RoutingTable(LOCAL, { replacementCacheSize: 0 }).replacementCacheSize).to.equal(0);
    expect(table.maxPerGroupInBucket).to.equal(DEFAULT_MAX_PER_GROUP_IN_BUCKET).and.equal(2);
    expect(table.maxPerGroupInTable).to.equal(DEFAULT_MAX_PER_GROUP_IN_TABLE).and.equal(10);
  });

  it('rejects a local id that is not 32 bytes with INVALID_ARGUMENT', () => {
    expectCode(() => new RoutingTable(Buffer.alloc(31)), 'INVALID_ARGUMENT');
  });

  it('rejects a contact id that is not 32 bytes with INVALID_ARGUMENT', () => {
    const table = new RoutingTable(LOCAL);
    expectCode(() => table.add(contact(Buffer.alloc(33))), 'INVALID_ARGUMENT');
  });
});

describe('staleBuckets', () => {
  it('is empty for an empty table', () => {
    expect(new RoutingTable(LOCAL).staleBuckets(1e9, 1000)).to.deep.equal([]);
  });

  it('lists buckets from the nearest contact up whose last change is older than maxAgeMs', () => {
    const table = new RoutingTable(LOCAL); // createdAt 0
    table.add(contact(NEAR, 5000)); // bucket 253 changed at 5000
    // cutoff 6000 - 2000 = 4000: 254 and 255 (never changed, at 0) are stale, 253 is not,
    // and nothing below the nearest contact's bucket is listed.
    expect(table.staleBuckets(6000, 2000)).to.deep.equal([254, 255]);
    expect(table.staleBuckets(8000, 2000)).to.deep.equal([253, 254, 255]);
  });

  it('does not count a bucket changed exactly maxAgeMs ago as stale', () => {
    const table = new RoutingTable(LOCAL, { createdAt: 1000 });
    table.add(contact(FAR_A, 1000)); // bucket 255
    expect(table.staleBuckets(3000, 2000)).to.deep.equal([]);
    expect(table.staleBuckets(3001, 2000)).to.deep.equal([255]);
  });

  it('starts every bucket at createdAt', () => {
    const table = new RoutingTable(LOCAL, { createdAt: 10_000 });
    table.add(contact(MID, 10_000)); // bucket 254
    expect(table.staleBuckets(11_000, 5000)).to.deep.equal([]);
    expect(table.staleBuckets(16_000, 5000)).to.deep.equal([254, 255]);
  });

  it('is reset by touch(), an alive resolveFull() and markRefreshed(), but not by a full add', () => {
    const table = new RoutingTable(LOCAL, { k: 1 });
    table.add(contact(MID, 0)); // bucket 254
    table.add(contact(FAR_A, 0)); // bucket 255
    expect(table.staleBuckets(10_000, 1000)).to.deep.equal([254, 255]);
    expect(table.add(contact(FAR_B, 9500)).status).to.equal('full');
    expect(table.staleBuckets(10_000, 1000)).to.deep.equal([254, 255]);
    table.touch(MID, 9500);
    expect(table.staleBuckets(10_000, 1000)).to.deep.equal([255]);
    table.resolveFull(FAR_A, true, FAR_B, 9600);
    expect(table.staleBuckets(10_000, 1000)).to.deep.equal([]);
    table.markRefreshed(254, 20_000);
    expect(table.staleBuckets(20_500, 1000)).to.deep.equal([255]);
  });
});

describe('randomIdInBucket', () => {
  const local = Buffer.from('9f'.repeat(16) + '3c'.repeat(16), 'hex');
  const buckets = [0, 1, 7, 8, 9, 100, 128, 200, 247, 248, 254, 255];

  for (const i of buckets) {
    it(`only produces ids in bucket ${i}`, () => {
      const table = new RoutingTable(local);
      const random = seededRandom(i + 1);
      for (let n = 0; n < 50; n++) {
        expect(bucketIndexOf(local, table.randomIdInBucket(i, random))).to.equal(i);
      }
    });
  }

  it('lands in bucket i for any random bytes and any local id', () => {
    const bytes = fc.uint8Array({ minLength: ID_BYTES, maxLength: ID_BYTES });
    fc.assert(
      fc.property(bytes, bytes, fc.integer({ min: 0, max: 255 }), (loc, rnd, i) => {
        const table = new RoutingTable(loc);
        return bucketIndexOf(loc, table.randomIdInBucket(i, () => Buffer.from(rnd))) === i;
      }),
      { numRuns: 300 },
    );
  });

  it('reaches both ends of the bucket: distance 2^i from zero bytes, 2^(i+1)-1 from 0xff bytes', () => {
    const table = new RoutingTable(local);
    for (const i of buckets) {
      const low = big(xorDistance(local, table.randomIdInBucket(i, (n) => Buffer.alloc(n, 0x00))));
      const high = big(xorDistance(local, table.randomIdInBucket(i, (n) => Buffer.alloc(n, 0xff))));
      expect(low, `bucket ${i} low end`).to.equal(1n << BigInt(i));
      expect(high, `bucket ${i} high end`).to.equal((1n << BigInt(i + 1)) - 1n);
    }
  });

  it('uses the random bytes below bit i, so different draws give different ids', () => {
    const table = new RoutingTable(local);
    const random = seededRandom(42);
    const seen = new Set<string>();
    for (let n = 0; n < 20; n++) seen.add(hex(table.randomIdInBucket(255, random)));
    expect(seen.size).to.equal(20);
  });

  it('rejects a bucket index outside 0..255 with INVALID_ARGUMENT', () => {
    const table = new RoutingTable(local);
    expectCode(() => table.randomIdInBucket(256, seededRandom(1)), 'INVALID_ARGUMENT');
    expectCode(() => table.randomIdInBucket(-1, seededRandom(1)), 'INVALID_ARGUMENT');
  });
});

describe('address-group limits', () => {
  /** The n-th id of bucket 255 - depth (first 1 bit at position depth, then n's 8 bits). */
  const inBucket = (n: number, depth = 0): Buffer => idWithPrefix('0'.repeat(depth) + '1' + n.toString(2).padStart(8, '0'));
  const at = (id: Buffer, host: string, lastSeen = 0): Contact => ({ id, host, port: 4000, lastSeen });

  it('refuses a third contact of one /24 in a bucket and counts it; other groups still get places', () => {
    const table = new RoutingTable(LOCAL);
    expect(table.add(at(inBucket(1), '203.0.113.1')).status).to.equal('added');
    expect(table.add(at(inBucket(2), '203.0.113.2')).status).to.equal('added');
    expect(table.add(at(inBucket(3), '203.0.113.3'))).to.deep.equal({ status: 'refused', reason: 'group_bucket' });
    expect(table.add(at(inBucket(4), '198.51.100.4')).status).to.equal('added');
    expect(table.has(inBucket(3))).to.equal(false);
    expect(table.refusedByGroup).to.deep.equal({ bucket: 1, table: 0 });
    expect(table.groupCount('203.0.113.200')).to.equal(2);
  });

  it('refuses the eleventh contact of one /24 across the table, two per bucket being allowed', () => {
    const table = new RoutingTable(LOCAL);
    // Two per bucket in buckets 255..250: the first ten fit, the rest are refused.
    const results = [];
    for (let depth = 0; depth < 6; depth++) {
      for (let n = 0; n < 2; n++) results.push(table.add(at(inBucket(n, depth), `203.0.113.${depth * 2 + n}`)).status);
    }
    expect(results.filter((r) => r === 'added')).to.have.length(10);
    expect(results.slice(10)).to.deep.equal(['refused', 'refused']);
    expect(table.refusedByGroup).to.deep.equal({ bucket: 0, table: 2 });
    expect(table.groupCount('203.0.113.9')).to.equal(10);
  });

  it('counts an IPv6 /48 as one group, and an IPv4-mapped address as its IPv4 /24', () => {
    const table = new RoutingTable(LOCAL);
    table.add(at(inBucket(1), '2001:db8:1:a::1'));
    table.add(at(inBucket(2), '2001:db8:1:b::2'));
    expect(table.add(at(inBucket(3), '2001:db8:1:c::3')).status).to.equal('refused');
    expect(table.add(at(inBucket(4), '2001:db8:2::4')).status).to.equal('added');
    table.add(at(inBucket(5), '192.0.2.1'));
    table.add(at(inBucket(6), '::ffff:192.0.2.2'));
    expect(table.add(at(inBucket(7), '192.0.2.3')).status).to.equal('refused');
  });

  it('exempts hosts the groupExempt predicate names, without counting them', () => {
    const table = new RoutingTable(LOCAL, { groupExempt: (h) => h.startsWith('127.') });
    for (let n = 0; n < 15; n++) expect(table.add(at(inBucket(n), '127.0.0.1')).status).to.equal('added');
    expect(table.groupCount('127.0.0.1')).to.equal(0);
    table.add(at(inBucket(20), '203.0.113.1'));
    table.add(at(inBucket(21), '203.0.113.2'));
    expect(table.add(at(inBucket(22), '203.0.113.3')).status).to.equal('refused');
  });

  it('honours explicit limits of 1 per bucket and 3 per table', () => {
    const table = new RoutingTable(LOCAL, { maxPerGroupInBucket: 1, maxPerGroupInTable: 3 });
    expect(table.add(at(inBucket(1), '203.0.113.1')).status).to.equal('added');
    expect(table.add(at(inBucket(2), '203.0.113.2')).status).to.equal('refused');
    for (let depth = 1; depth < 4; depth++) table.add(at(inBucket(1, depth), '203.0.113.9'));
    expect(table.groupCount('203.0.113.0')).to.equal(3);
  });

  it('does not keep a refused newcomer waiting: a dead contact is replaced by a waiting one that fits', () => {
    const table = new RoutingTable(LOCAL, { k: 3 });
    table.add(at(inBucket(1), '203.0.113.1', 1));
    table.add(at(inBucket(2), '203.0.113.2', 2));
    table.add(at(inBucket(3), '198.51.100.3', 3));
    expect(table.add(at(inBucket(4), '203.0.113.4', 4)).status).to.equal('refused');
    const full = table.add(at(inBucket(5), '192.0.2.5', 5));
    expect(full.status).to.equal('full');
    // The oldest (203.0.113.1) fails its ping: its place goes to the waiting 192.0.2.5.
    expect(table.resolveFull(inBucket(1), false, inBucket(5), 6)).to.equal(true);
    expect(table.has(inBucket(5))).to.equal(true);
    expect(table.has(inBucket(4))).to.equal(false);
  });

  it('passes over a waiting replacement whose group filled up while it waited', () => {
    const table = new RoutingTable(LOCAL, { k: 3 });
    table.add(at(inBucket(1), '192.0.2.1', 1));
    table.add(at(inBucket(2), '203.0.113.2', 2));
    table.add(at(inBucket(3), '198.51.100.3', 3));
    expect(table.add(at(inBucket(4), '203.0.113.4', 4)).status).to.equal('full'); // one 203.0.113 so far: may wait
    expect(table.add(at(inBucket(5), '198.51.100.5', 5)).status).to.equal('full');
    // 192.0.2.1 moves into 203.0.113: now two of that group are in the bucket.
    expect(table.add(at(inBucket(1), '203.0.113.1', 6)).status).to.equal('updated');
    // 198.51.100.3 is removed; the most recent waiting (198.51.100.5) fits, 203.0.113.4 would not.
    expect(table.remove(inBucket(3))).to.equal(true);
    expect(table.has(inBucket(5))).to.equal(true);
    table.remove(inBucket(5));
    expect(table.has(inBucket(4)), 'its group is full in the bucket').to.equal(false);
    expect(table.size).to.equal(2);
  });

  it('keeps the old address of a known contact whose new address is in a full group', () => {
    const table = new RoutingTable(LOCAL);
    table.add(at(inBucket(1), '203.0.113.1'));
    table.add(at(inBucket(2), '203.0.113.2'));
    table.add(at(inBucket(3), '198.51.100.3'));
    expect(table.add(at(inBucket(3), '203.0.113.3', 9))).to.deep.equal({ status: 'refused', reason: 'group_bucket' });
    expect(table.get(inBucket(3))).to.deep.include({ host: '198.51.100.3', lastSeen: 0 });
    expect(table.groupCount('198.51.100.0')).to.equal(1);
  });
});
