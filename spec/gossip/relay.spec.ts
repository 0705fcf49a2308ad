/**
 * The relay path on bytes (issue 14): what a copy costs. Hashes and signature checks are
 * counted by spying on node:crypto (named imports of a builtin follow its module object once
 * syncBuiltinESMExports() is called).
 */
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { expect } from 'chai';
import sinon from 'sinon';
import type { Clock } from '../../lib/clock.js';
import { ProtocolError } from '../../lib/errors.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipOptions, GossipPeer } from '../../lib/gossip/engine.js';
import { clearKnown, entryBody, isKnown, MessageCache, setKnown } from '../../lib/gossip/message-cache.js';
import type { CacheEntry } from '../../lib/gossip/message-cache.js';
import { gossipMessageId, gossipMessageIdOfBody } from '../../lib/gossip/message-id.js';
import { PeerSlots } from '../../lib/gossip/peer-slots.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { encodeMessage, packValue } from '../../lib/wire/codec.js';
import { decodeGossip, encodeGossip, GOSSIP_ID_OFFSET, readGossip, reforwardGossip } from '../../lib/wire/gossip-envelope.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

/** A peer that keeps the GOSSIP bodies it is sent, as given. */
class BodyPeer implements GossipPeer {
  readonly identity = generateIdentity();
  readonly idHex = this.identity.idHex;
  readonly prefixKey = this.identity.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1');
  readonly prefix = this.identity.id.subarray(0, LIMITS.seenByEntryBytes);
  readonly bodies: Buffer[] = [];
  readonly sent: Message[] = [];
  send(msg: Message): boolean {
    this.sent.push(msg);
    return true;
  }
  sendEncoded(type: number, body: Buffer): boolean {
    if (type === MessageType.GOSSIP) this.bodies.push(body);
    return true;
  }
}

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20, announce: false,
};

describe('GossipEngine: the relay path on bytes', () => {
  let now: number;
  let clock: Clock;
  let peers: BodyPeer[];
  let delivered: Buffer[];
  let invalid: string[];
  let self: Identity;
  let streamed: sinon.SinonSpy;
  let oneShot: sinon.SinonSpy;
  let verifies: sinon.SinonSpy;
  /** SHA-256 computations, streaming or one-shot. */
  const hashes = { get callCount() { return streamed.callCount + oneShot.callCount; }, resetHistory() { streamed.resetHistory(); oneShot.resetHistory(); } };

  function engine(over: Partial<GossipOptions> = {}): GossipEngine {
    return new GossipEngine(self, clock, { ...OPTIONS, ...over }, {
      peers: () => peers,
      deliver: (_topic, payload) => void delivered.push(Buffer.from(payload)),
      invalid: (_from, reason) => void invalid.push(reason),
    }, new Metrics(), seededRandom(3));
  }

  /** A GOSSIP body as a neighbour forwards it: hop 1, the origin in seen-by. */
  function body(origin: Identity, k: number, signed = true): Buffer {
    const seq = now * 1000 + k;
    const payload = packValue({ k });
    const id = gossipMessageId(origin.publicKey, seq, 't', payload);
    return encodeGossip({
      type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1,
      seenBy: [origin.id.subarray(0, 8)], payload, signature: signed ? origin.sign(id) : null,
    });
  }

  beforeEach(() => {
    now = 1_000_000;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    peers = Array.from({ length: 6 }, () => new BodyPeer());
    delivered = [];
    invalid = [];
    self = generateIdentity();
    streamed = sinon.spy(crypto, 'createHash');
    oneShot = sinon.spy(crypto, 'hash');
    verifies = sinon.spy(crypto, 'verify');
    syncBuiltinESMExports();
  });

  afterEach(() => {
    sinon.restore();
    syncBuiltinESMExports();
  });

  it('drops a seen copy before any hash or decode: a copy with a garbage tail counts as a duplicate', () => {
    const e = engine();
    const b = body(generateIdentity(), 1);
    e.onGossip(peers[0]!, b);
    expect(delivered).to.have.length(1);
    const garbled = Buffer.from(b);
    garbled[garbled.length - 66] = 0xc1; // the signature's header: decoding would throw SCHEMA
    hashes.resetHistory();
    verifies.resetHistory();
    e.onGossip(peers[1]!, garbled);
    e.onGossip(peers[2]!, b);
    expect(hashes.callCount).to.equal(0);
    expect(verifies.callCount).to.equal(0);
    expect(delivered).to.have.length(1);
    expect(invalid).to.deep.equal([]);
    // ...and the senders are now known to hold it (not advertised to on the heartbeat).
    e.heartbeat();
    for (const p of [peers[1]!, peers[2]!]) expect(p.sent.some((m) => m.type === MessageType.IHAVE)).to.equal(false);
  });

  it('hashes and verifies a unique message once, whatever the number of copies', () => {
    const e = engine();
    const b = body(generateIdentity(), 1);
    hashes.resetHistory();
    for (const p of peers) e.onGossip(p, Buffer.from(b));
    expect(hashes.callCount).to.equal(2); // the id, and the origin's node id (cached for its next messages)
    expect(verifies.callCount).to.equal(1);
    e.onGossip(peers[0]!, body(generateIdentity(), 2, true));
    expect(verifies.callCount).to.equal(2);
    expect(delivered).to.have.length(2);
  });

  it('forwards one body to every target: reforwardGossip of the received body, ttl - 1, hops + 1, itself and the targets in seen-by', () => {
    const e = engine();
    const origin = generateIdentity();
    const b = body(origin, 1);
    e.onGossip(peers[0]!, b);
    const targets = peers.filter((p) => p.bodies.length > 0);
    expect(targets).to.have.length(3);
    const sent = targets[0]!.bodies[0]!;
    for (const t of targets) expect(t.bodies[0]).to.equal(sent); // the same Buffer, not copies
    const expected = reforwardGossip(b, 4, 2, [origin.id.subarray(0, 8), self.id.subarray(0, 8), ...decodeGossip(sent).seenBy.slice(2)]);
    expect(sent.equals(expected)).to.equal(true);
    expect(decodeGossip(sent).seenBy.slice(2).map((x) => x.toString('hex')).sort()).to.deep.equal(targets.map((t) => t.prefix.toString('hex')).sort());
    // The payload delivered is the message's.
    expect(delivered[0]!.equals(decodeGossip(b).payload)).to.equal(true);
  });

  it('hands subscribers a copy of the payload, and a relay-only node (no subscriber) none at all', () => {
    let handed: Buffer | undefined;
    const e = new GossipEngine(self, clock, OPTIONS, {
      peers: () => peers,
      deliver: (_topic, payload) => void (handed = payload),
      invalid: () => undefined,
    }, new Metrics(), seededRandom(3));
    const b = body(generateIdentity(), 1);
    e.onGossip(peers[0]!, b);
    const sent = peers.find((p) => p.bodies.length > 0)!.bodies[0]!;
    const before = Buffer.from(sent);
    handed!.fill(0); // a subscriber that scribbles on what it got
    expect(sent.equals(before)).to.equal(true);
    let calls = 0;
    const relay = new GossipEngine(generateIdentity(), clock, OPTIONS, {
      peers: () => peers,
      deliver: () => void calls++,
      subscribed: (topic) => topic !== 't',
      invalid: () => undefined,
    }, new Metrics(), seededRandom(3));
    relay.onGossip(peers[0]!, body(generateIdentity(), 2));
    expect(calls).to.equal(0);
    expect(peers.filter((p) => p.bodies.length === 2)).to.have.length.at.least(1); // still forwarded
  });

  it('keeps nothing of the buffer a copy came in: the received bytes may be overwritten at once', () => {
    const e = engine();
    const b = body(generateIdentity(), 1);
    const read = Buffer.alloc(4096);
    b.copy(read, 100);
    e.onGossip(peers[0]!, read.subarray(100, 100 + b.length));
    read.fill(0);
    const cached = e.cache.get(b.subarray(GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32))!;
    expect(entryBody(cached).buffer).to.not.equal(read.buffer);
    expect(decodeGossip(entryBody(cached)).payload.equals(decodeGossip(b).payload)).to.equal(true);
  });

  it('throws ProtocolError SCHEMA for a new body that is not a well-formed GOSSIP, before hashing it', () => {
    const e = engine();
    const b = Buffer.from(body(generateIdentity(), 1));
    b[b.length - 66] = 0xc1; // the signature's header
    hashes.resetHistory();
    expect(() => e.onGossip(peers[0]!, b)).to.throw(ProtocolError).with.property('code', 'SCHEMA');
    expect(() => e.onGossip(peers[0]!, b.subarray(0, 30))).to.throw(ProtocolError).with.property('code', 'SCHEMA');
    expect(hashes.callCount).to.equal(0);
    expect(delivered).to.have.length(0);
  });

  it('serves a message kept after its TTL ran out with TTL 1, as the same bytes otherwise', () => {
    const e = engine();
    const origin = generateIdentity();
    const b = body(origin, 1);
    b[36] = 1; // arrives with TTL 1: delivered, cached with TTL 0, not forwarded
    e.onGossip(peers[0]!, b);
    e.heartbeat(); // advertised to the others, so their IWANT is answered
    e.onIWant(peers[1]!, [b.subarray(GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32)]);
    const served = decodeGossip(peers[1]!.bodies[0]!);
    expect(served.ttl).to.equal(1);
    expect(served.payload.equals(decodeGossip(b).payload)).to.equal(true);
  });
});

describe('gossipMessageIdOfBody', () => {
  it('equals gossipMessageId of the decoded fields, for small and large payloads and multi-byte topics', () => {
    const origin = generateIdentity();
    for (const [topic, size] of [['t', 0], ['consensus/ünï', 300], ['x'.repeat(256), 1000], ['big', 70_000], ['t', 300]] as const) {
      const payload = Buffer.alloc(size, size & 0xff);
      const id = gossipMessageId(origin.publicKey, 2 ** 40 + size, topic, payload);
      const b = encodeGossip({ type: MessageType.GOSSIP, id, origin: origin.publicKey, seq: 2 ** 40 + size, topic, ttl: 3, hops: 1, seenBy: [], payload, signature: null });
      expect(gossipMessageIdOfBody(b, readGossip(b)).equals(id), `${topic.slice(0, 10)} / ${size}`).to.equal(true);
    }
  });
});

describe('compact knownBy (peer slots and per-entry bits)', () => {
  const entryOf = (cache: MessageCache, n: number, known: number[]): CacheEntry => {
    const id = Buffer.alloc(32);
    id.writeUInt32BE(n, 0);
    return cache.add(encodeMessage({
      type: MessageType.GOSSIP, id, origin: Buffer.alloc(32, 1), seq: n, topic: 't', ttl: 5, hops: 1, seenBy: [], payload: Buffer.alloc(4), signature: null,
    }), 4, 0, known)!;
  };

  it('records, tests and clears any slot, below and above one word of bits', () => {
    const cache = new MessageCache({ maxAgeMs: 1000, maxEntries: 10, maxBytes: 1 << 20 });
    const e = entryOf(cache, 1, [0, 29, 30, 95]);
    expect([0, 1, 29, 30, 31, 59, 60, 95, 96, -1].map((s) => isKnown(e, s))).to.deep.equal([true, false, true, true, false, false, false, true, false, false]);
    clearKnown(e, 30);
    clearKnown(e, 0);
    setKnown(e, 61);
    expect([0, 29, 30, 61, 95].map((s) => isKnown(e, s))).to.deep.equal([false, true, false, true, true]);
    expect(cache.unknownTo(61, 0)).to.deep.equal([]);
    expect(cache.unknownTo(62, 0)).to.have.length(1);
  });

  it('gives a peer the same slot across reconnections, and reuses a number only after retireAfterMs without it', () => {
    const slots = new PeerSlots();
    const a = { idHex: 'a'.repeat(64), prefixKey: 'AAAAAAAA' };
    const b = { idHex: 'b'.repeat(64), prefixKey: 'BBBBBBBB' };
    expect(slots.slotOf(a.idHex, a.prefixKey, 0)).to.equal(0);
    expect(slots.slotOf(b.idHex, b.prefixKey, 0)).to.equal(1);
    expect(slots.slotOf(a.idHex, a.prefixKey, 10)).to.equal(0);
    expect(slots.prefix(1).toString('latin1')).to.equal('BBBBBBBB');
    expect(slots.sweep([b], 500, 1000)).to.deep.equal([]); // a gone 490 ms: kept
    expect(slots.sweep([b], 1010, 1000)).to.deep.equal([0]); // a gone 1000 ms: retired
    expect(slots.find(a.idHex)).to.equal(undefined);
    const c = { idHex: 'c'.repeat(64), prefixKey: 'CCCCCCCC' };
    expect(slots.slotOf(c.idHex, c.prefixKey, 1010)).to.equal(0);
    expect(slots.size).to.equal(2);
  });

  it('forgets a retired slot in every entry: its bits and its serve count', () => {
    const cache = new MessageCache({ maxAgeMs: 1000, maxEntries: 10, maxBytes: 1 << 20 });
    const e1 = entryOf(cache, 1, [3, 40]);
    const e2 = entryOf(cache, 2, [3]);
    cache.served(e1, 3);
    cache.forgetSlots([3, 40]);
    expect([isKnown(e1, 3), isKnown(e1, 40), isKnown(e2, 3)]).to.deep.equal([false, false, false]);
    expect(e1.servedTo?.get(3)).to.equal(undefined);
  });

  it('bounds IWANT answers per (peer, message) for a peer whose slot is above the first word, across its reconnection', () => {
    const peers: GossipPeer[] = [];
    const sentTo = new Map<string, number>();
    const mk = (id: Identity): GossipPeer => ({
      idHex: id.idHex, prefixKey: id.id.subarray(0, 8).toString('latin1'),
      send: () => true,
      sendEncoded: (type) => (type === MessageType.GOSSIP && sentTo.set(id.idHex, (sentTo.get(id.idHex) ?? 0) + 1), true),
    });
    for (let i = 0; i < 40; i++) peers.push(mk(generateIdentity()));
    let now = 0;
    const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    const e = new GossipEngine(generateIdentity(), clock, { ...OPTIONS, fanout: 0, iwantServesPerPeer: 2 }, {
      peers: () => peers, deliver: () => undefined, invalid: () => undefined,
    }, new Metrics(), seededRandom(1));
    const id = e.publish('t', packValue(1));
    e.heartbeat(); // advertised to all 40: each may ask
    const last = peers[39]!;
    expect(e.slots.find(last.idHex)).to.be.at.least(30);
    for (let i = 0; i < 5; i++) e.onIWant(last, [id]);
    const again = { ...last }; // the same peer on a new connection
    peers[39] = again;
    for (let i = 0; i < 5; i++) e.onIWant(again, [id]);
    expect(sentTo.get(last.idHex)).to.equal(2);
    expect(sentTo.get(peers[0]!.idHex) ?? 0).to.equal(0);
  });
});
