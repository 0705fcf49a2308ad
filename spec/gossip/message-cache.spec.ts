import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipOptions } from '../../lib/gossip/engine.js';
import { cachedMessage, entryBody, entryId, isKnown, MAX_SERVES_PER_PEER, MessageCache, setKnown } from '../../lib/gossip/message-cache.js';
import type { CacheEntry, MessageCacheOptions } from '../../lib/gossip/message-cache.js';
import { generateIdentity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { encodeMessage, packValue } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordingPeer } from '../helpers/gossip-peer.js';

/** A gossip message whose id's first four bytes hold `n`, with a payload of `payloadBytes`. */
function msg(n: number, payloadBytes = 10): Gossip {
  const id = Buffer.alloc(32);
  id.writeUInt32BE(n, 0);
  return {
    type: MessageType.GOSSIP, id, origin: Buffer.alloc(32, 1), seq: n, topic: 't', ttl: 5, hops: 1, seenBy: [],
    payload: Buffer.alloc(payloadBytes, 0x61), signature: null,
  };
}

const ids = (entries: CacheEntry[]) => entries.map((e) => cachedMessage(e).seq);

/** Cache `m` as its encoded body, held by the peers in slots `known`. */
function put(cache: MessageCache, m: Gossip, now: number, known: number[]): void {
  cache.add(encodeMessage(m), m.payload.length, now, known);
}

describe('MessageCache', () => {
  const WINDOW = 10_000;
  const opts = (over: Partial<MessageCacheOptions> = {}): MessageCacheOptions => ({ maxAgeMs: WINDOW, maxEntries: 100, maxBytes: 1 << 20, ...over });

  /** Bytes charged for an entry beyond its payload, measured on an empty-payload message. */
  function overhead(): number {
    const c = new MessageCache(opts());
    put(c, msg(0, 0), 0, []);
    return c.bytes;
  }

  it('keeps its own copy of a message, never a view that would pin the buffer it came in', () => {
    const m = msg(7, 300);
    const read = Buffer.alloc(64 * 1024); // a socket read, or an encoder's shared output block
    const view = (b: Buffer, at: number) => {
      b.copy(read, at);
      return read.subarray(at, at + b.length);
    };
    const cache = new MessageCache(opts());
    cache.add(view(encodeMessage(m), 1000), m.payload.length, 0, []);
    const entry = cache.get(m.id)!;
    expect(entryId(entry).buffer).to.not.equal(read.buffer);
    expect(entryBody(entry).buffer).to.not.equal(read.buffer);
    expect(cachedMessage(entry)).to.deep.equal(m);
  });

  describe('the window (messageCacheMs)', () => {
    it('keeps a message until one millisecond before the window ends', () => {
      const cache = new MessageCache(opts());
      put(cache, msg(1), 1000, []);
      expect(cache.expire(1000 + WINDOW - 1)).to.equal(0);
      expect(cache.get(msg(1).id)).to.not.equal(undefined);
    });

    it('drops a message exactly when the window ends, after which it cannot be served', () => {
      const cache = new MessageCache(opts());
      put(cache, msg(1), 1000, []);
      expect(cache.expire(1000 + WINDOW)).to.equal(1);
      expect(cache.size).to.equal(0);
      expect(cache.bytes).to.equal(0);
      expect(cache.get(msg(1).id)).to.equal(undefined);
      expect(cache.get(msg(1).id)).to.equal(undefined);
    });

    it('drops only the messages past the window, oldest first, and leaves the rest servable', () => {
      const cache = new MessageCache(opts());
      for (let i = 0; i < 5; i++) put(cache, msg(i), 1000 * i, []);
      // At WINDOW + 2000, the messages added at 0, 1000 and 2000 are past the window.
      expect(cache.expire(WINDOW + 2000)).to.equal(3);
      expect(cache.size).to.equal(2);
      expect(cache.get(msg(2).id)).to.equal(undefined);
      expect(cachedMessage(cache.get(msg(3).id)!).seq).to.equal(3);
      expect(cache.unknownTo(3, 0).map((e) => entryId(e).readUInt32BE(0))).to.deep.equal([3, 4]);
    });

    it('holds nothing past the next expiry when the window is 0', () => {
      const cache = new MessageCache(opts({ maxAgeMs: 0 }));
      put(cache, msg(1), 500, []);
      expect(cache.expire(500)).to.equal(1);
      expect(cache.size).to.equal(0);
    });
  });

  describe('the entry cap (maxCachedMessages)', () => {
    it('evicts the oldest message first when full, counts it, and never exceeds the cap', () => {
      const cache = new MessageCache(opts({ maxEntries: 3 }));
      let largest = 0;
      for (let i = 1; i <= 10; i++) {
        put(cache, msg(i), i, []);
        largest = Math.max(largest, cache.size);
      }
      expect(largest).to.equal(3);
      expect(cache.evictions).to.equal(7);
      expect(cache.unknownTo(3, 0).map((e) => entryId(e).readUInt32BE(0))).to.deep.equal([8, 9, 10]);
      expect(cache.get(msg(7).id)).to.equal(undefined);
    });

    it('is disabled by a cap of 0: nothing is kept, nothing can be served', () => {
      const cache = new MessageCache(opts({ maxEntries: 0 }));
      put(cache, msg(1), 0, []);
      expect(cache.size).to.equal(0);
      expect(cache.get(msg(1).id)).to.equal(undefined);
      expect(cache.takeFresh()).to.deep.equal([]);
    });

    it('keeps the first copy of a message: adding the same id again changes nothing', () => {
      const cache = new MessageCache(opts());
      put(cache, msg(1), 0, [0]);
      put(cache, { ...msg(1), ttl: 1 }, 50, [1]);
      expect(cache.size).to.equal(1);
      const e = cache.get(msg(1).id)!;
      expect(e.at).to.equal(0);
      expect(cachedMessage(e).ttl).to.equal(5);
      expect([0, 1, 2].map((slot) => isKnown(e, slot))).to.deep.equal([true, false, false]);
    });
  });

  describe('the byte cap (maxCachedBytes)', () => {
    it('charges each message its payload bytes plus a fixed overhead, and releases them on expiry', () => {
      const per = overhead();
      expect(per).to.be.greaterThan(0);
      const cache = new MessageCache(opts());
      put(cache, msg(1, 100), 0, []);
      put(cache, msg(2, 300), 1, []);
      expect(cache.bytes).to.equal(400 + 2 * per);
      cache.expire(WINDOW);
      expect(cache.bytes).to.equal(300 + per);
    });

    it('evicts the oldest messages until the total is within the cap', () => {
      const per = overhead();
      // Room for exactly three 1000-byte messages.
      const cache = new MessageCache(opts({ maxBytes: 3 * (1000 + per) }));
      for (let i = 1; i <= 3; i++) put(cache, msg(i, 1000), i, []);
      expect(cache.size).to.equal(3);
      expect(cache.evictions).to.equal(0);
      // A 2000-byte message needs the room of the two oldest.
      put(cache, msg(4, 2000), 4, []);
      expect(cache.unknownTo(3, 0).map((e) => entryId(e).readUInt32BE(0))).to.deep.equal([3, 4]);
      expect(cache.evictions).to.equal(2);
      expect(cache.bytes).to.equal(3000 + 2 * per);
      expect(cache.bytes).to.be.at.most(3 * (1000 + per));
    });

    it('does not cache a message larger than the whole cap, and keeps what it held', () => {
      const per = overhead();
      const cap = 5000 + per;
      const cache = new MessageCache(opts({ maxBytes: cap }));
      put(cache, msg(1, 10), 0, []);
      put(cache, msg(2, 6000), 1, []);
      expect(cache.get(msg(2).id)).to.equal(undefined);
      expect(cache.get(msg(1).id)).to.not.equal(undefined);
      expect(cache.bytes).to.be.at.most(cap);
      expect(cache.evictions).to.equal(1);
      expect(ids(cache.takeFresh())).to.deep.equal([1]);
    });
  });

  describe('serving and advertising', () => {
    it(`serves one message at most ${MAX_SERVES_PER_PEER} times to each peer it was offered to, and never to others`, () => {
      const cache = new MessageCache(opts());
      put(cache, msg(1), 0, [0, 1]);
      const e = cache.get(msg(1).id)!;
      let served = 0;
      for (let i = 0; i < MAX_SERVES_PER_PEER + 10; i++) {
        if (cache.mayServe(e, 0) === 'ok') {
          cache.served(e, 0);
          served++;
        }
      }
      expect(served).to.equal(MAX_SERVES_PER_PEER);
      expect(cache.mayServe(e, 0)).to.equal('exhausted');
      expect(cache.mayServe(e, 1)).to.equal('ok');
      expect(cache.mayServe(e, 2)).to.equal('unadvertised');
    });

    it('hands out messages added since the last call once, leaving out evicted ones', () => {
      const cache = new MessageCache(opts({ maxEntries: 2 }));
      put(cache, msg(1), 0, []);
      expect(ids(cache.takeFresh())).to.deep.equal([1]);
      expect(cache.takeFresh()).to.deep.equal([]);
      put(cache, msg(2), 1, []);
      put(cache, msg(3), 2, []);
      put(cache, msg(4), 3, []); // evicts 1 then 2
      expect(ids(cache.takeFresh())).to.deep.equal([3, 4]);
    });

    it('lists for a peer only the ids it is not known to hold, added at or after a time', () => {
      const cache = new MessageCache(opts());
      put(cache, msg(1), 100, [0]);
      put(cache, msg(2), 200, []);
      put(cache, msg(3), 300, []);
      setKnown(cache.get(msg(3).id)!, 0);
      const list = (peer: number, since: number) => cache.unknownTo(peer, since).map((e) => entryId(e).readUInt32BE(0));
      expect(list(0, 0)).to.deep.equal([2]);
      expect(list(1, 0)).to.deep.equal([1, 2, 3]);
      expect(list(1, 200)).to.deep.equal([2, 3]);
    });
  });
});


describe('the repair window seen from the gossip engine', () => {
  const MESSAGE_CACHE_MS = 5000;
  const OPTIONS: GossipOptions = {
    fanout: 3, gossipTtl: 10, seenTtlMs: 60_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
    repair: true, heartbeatMs: 1000, messageCacheMs: MESSAGE_CACHE_MS, maxCachedMessages: 1000, maxCachedBytes: 1 << 20,
  };
  let now: number;
  let peers: RecordingPeer[];

  function engine(): GossipEngine {
    const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    return new GossipEngine(generateIdentity(), clock, OPTIONS, {
      peers: () => peers,
      deliver: () => undefined,
      invalid: () => undefined,
    }, new Metrics(), seededRandom(3));
  }

  beforeEach(() => {
    now = 50_000;
    peers = [new RecordingPeer()];
  });

  it('answers an IWANT with the message while it is inside the window', () => {
    const e = engine();
    const id = e.publish('t', packValue('x'));
    const late = new RecordingPeer();
    now += MESSAGE_CACHE_MS - 1;
    e.onPeerConnected(late); // advertises the window: only then is its IWANT answered
    e.onIWant(late, [id]);
    const got = late.gossip();
    expect(got).to.have.length(1);
    expect(got[0]!.id.equals(id)).to.equal(true);
  });

  it('answers nothing once the window has passed: the message is not recoverable by repair', () => {
    const e = engine();
    const id = e.publish('t', packValue('x'));
    now += MESSAGE_CACHE_MS;
    e.heartbeat(); // expires the cache
    const late = new RecordingPeer();
    e.onIWant(late, [id]);
    expect(late.sent).to.deep.equal([]);
  });

  it('advertises a message to a newly connected peer inside the window, and not after it', () => {
    const e = engine();
    const id = e.publish('t', packValue('x'));
    now += MESSAGE_CACHE_MS - 1;
    const early = new RecordingPeer();
    e.onPeerConnected(early);
    const adverts = early.of(MessageType.IHAVE);
    expect(adverts.flatMap((m) => m.ids).some((x) => x.equals(id))).to.equal(true);

    now += 1;
    const late = new RecordingPeer();
    e.onPeerConnected(late);
    expect(late.of(MessageType.IHAVE)).to.deep.equal([]);
  });
});
