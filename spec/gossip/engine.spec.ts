import { expect } from 'chai';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine, sample } from '../../lib/gossip/engine.js';
import type { DeliveryInfo, GossipOptions } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity, verifySignature } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { packValue } from '../../lib/wire/codec.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordingPeer as FakePeer } from '../helpers/gossip-peer.js';


const OPTIONS: GossipOptions = {
  fanout: 3,
  gossipTtl: 10,
  seenTtlMs: 300_000,
  maxSeenEntries: 1000,
  signMessages: true,
  deliverOwnMessages: false,
  repair: true,
  heartbeatMs: 1000,
  messageCacheMs: 120_000,
  maxCachedMessages: 1000,
  maxCachedBytes: 1 << 20,
  // Heartbeat repair as such; announcing at once has its own spec (announce.spec.ts).
  announce: false,
};

/**
 * Seqs are publish times in microseconds: a test's `seq` is an offset from the clock's start,
 * so it is never older than the seen-cache TTL (which the replay window would refuse).
 */
let seqBase = 0;

function signedGossip(origin: Identity, seq: number, topic = 't', data: unknown = 'hello', over: Partial<Gossip> = {}): Gossip {
  const payload = packValue(data);
  const id = gossipMessageId(origin.publicKey, seqBase + seq, topic, payload);
  return {
    type: MessageType.GOSSIP, id, origin: origin.publicKey, seq: seqBase + seq, topic, ttl: 5, hops: 1, seenBy: [], payload,
    signature: origin.sign(id), ...over,
  };
}

describe('GossipEngine', () => {
  let now: number;
  let clock: Clock;
  let peers: FakePeer[];
  let delivered: Array<{ topic: string; payload: Buffer; info: DeliveryInfo }>;
  let invalid: Array<{ from: string; reason: string }>;
  let metrics: Metrics;
  let self: Identity;

  function engine(over: Partial<GossipOptions> = {}): GossipEngine {
    return new GossipEngine(self, clock, { ...OPTIONS, ...over }, {
      peers: () => peers,
      deliver: (topic, payload, info) => delivered.push({ topic, payload, info }),
      invalid: (from, reason) => invalid.push({ from: from.idHex, reason }),
    }, metrics, seededRandom(7));
  }

  beforeEach(() => {
    now = 1_000_000;
    seqBase = now * 1000;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    peers = Array.from({ length: 6 }, () => new FakePeer());
    delivered = [];
    invalid = [];
    metrics = new Metrics();
    self = generateIdentity();
  });

  describe('publish', () => {
    it('pushes a signed message to exactly fanout peers, each listed in seen-by with the origin', () => {
      const e = engine();
      const id = e.publish('consensus', packValue({ v: 1 }));
      const receivers = peers.filter((p) => p.gossip().length > 0);
      expect(receivers).to.have.length(3);
      const msg = receivers[0]!.gossip()[0]!;
      expect(msg.id.equals(id)).to.equal(true);
      expect(msg.ttl).to.equal(10);
      expect(msg.hops).to.equal(1);
      expect(verifySignature(self.publicKey, id, msg.signature!)).to.equal(true);
      const seenBy = msg.seenBy.map((b) => b.toString('latin1'));
      expect(seenBy).to.include(self.id.subarray(0, 8).toString('latin1'));
      for (const r of receivers) expect(seenBy).to.include(r.prefixKey);
      expect(metrics.gossipSent).to.equal(3);
    });

    it('does not deliver to itself unless deliverOwnMessages is set', () => {
      engine().publish('t', packValue(1));
      expect(delivered).to.have.length(0);
      engine({ deliverOwnMessages: true }).publish('t', packValue(1));
      expect(delivered).to.have.length(1);
      expect(delivered[0]!.info.hops).to.equal(0);
    });

    it('gives each message a distinct id even with the same payload', () => {
      const e = engine();
      expect(e.publish('t', packValue(1)).equals(e.publish('t', packValue(1)))).to.equal(false);
    });
  });

  describe('receiving', () => {
    it('delivers a valid message once and forwards it with TTL decremented, never back to the sender', () => {
      const e = engine();
      const origin = generateIdentity();
      const from = peers[0]!;
      e.onGossip(from, encodeGossip(signedGossip(origin, 1)));
      expect(delivered).to.have.length(1);
      expect(delivered[0]!.info).to.include({ topic: 't', from: origin.idHex, hops: 1, direct: false });
      expect(from.gossip()).to.have.length(0);
      const forwarded = peers.flatMap((p) => p.gossip());
      expect(forwarded).to.have.length(3);
      for (const f of forwarded) {
        expect(f.ttl).to.equal(4);
        expect(f.hops).to.equal(2);
      }
    });

    it('treats a replayed copy as a duplicate: not delivered, not forwarded, counted', () => {
      const e = engine();
      const msg = signedGossip(generateIdentity(), 1);
      e.onGossip(peers[0]!, encodeGossip(msg));
      const sentBefore = peers.reduce((n, p) => n + p.sent.length, 0);
      e.onGossip(peers[1]!, encodeGossip(msg));
      expect(delivered).to.have.length(1);
      expect(peers.reduce((n, p) => n + p.sent.length, 0)).to.equal(sentBefore);
      expect(metrics.duplicatesReceived).to.equal(1);
    });

    it('never forwards to peers already in seen-by', () => {
      const e = engine({ fanout: 6 });
      const msg = signedGossip(generateIdentity(), 1, 't', 'x', {
        seenBy: [Buffer.from(peers[1]!.prefixKey, 'latin1'), Buffer.from(peers[2]!.prefixKey, 'latin1')],
      });
      e.onGossip(peers[0]!, encodeGossip(msg));
      expect(peers[1]!.gossip()).to.have.length(0);
      expect(peers[2]!.gossip()).to.have.length(0);
      expect(peers.slice(3).every((p) => p.gossip().length === 1)).to.equal(true);
    });

    it('keeps seen-by within its cap when forwarding', () => {
      const e = engine();
      const full = Array.from({ length: LIMITS.seenBy }, (_, i) => Buffer.alloc(8, i + 100));
      e.onGossip(peers[0]!, encodeGossip(signedGossip(generateIdentity(), 1, 't', 'x', { seenBy: full })));
      const f = peers.flatMap((p) => p.gossip())[0]!;
      expect(f.seenBy).to.have.length(LIMITS.seenBy);
      expect(f.seenBy.map((b) => b.toString('latin1'))).to.include(self.id.subarray(0, 8).toString('latin1'));
    });

    it('lists itself in seen-by once when the sender had already listed it', () => {
      const e = engine();
      const mine = self.id.subarray(0, 8);
      e.onGossip(peers[0]!, encodeGossip(signedGossip(generateIdentity(), 1, 't', 'x', { seenBy: [Buffer.alloc(8, 1), Buffer.from(mine)] })));
      const f = peers.flatMap((p) => p.gossip())[0]!;
      expect(f.seenBy.filter((b) => b.equals(mine))).to.have.length(1);
    });

    it('delivers but does not forward a message arriving with TTL 1', () => {
      const e = engine();
      e.onGossip(peers[0]!, encodeGossip(signedGossip(generateIdentity(), 1, 't', 'x', { ttl: 1 })));
      expect(delivered).to.have.length(1);
      expect(peers.flatMap((p) => p.gossip())).to.have.length(0);
      expect(metrics.dropped('ttl_expired')).to.equal(1);
    });

    const rejections: Array<[string, (g: Gossip) => Gossip, string]> = [
      ['a forged signature', (g) => ({ ...g, signature: generateIdentity().sign(g.id) }), 'bad_signature'],
      ['a tampered payload under the original id', (g) => ({ ...g, payload: packValue('evil') }), 'id_mismatch'],
      ['a claimed id that does not match', (g) => ({ ...g, id: Buffer.alloc(32, 9) }), 'id_mismatch'],
      ['TTL 0', (g) => ({ ...g, ttl: 0 }), 'ttl_zero'],
      ['no signature on a signed network', (g) => ({ ...g, signature: null }), 'unsigned'],
    ];
    for (const [what, mutate, reason] of rejections) {
      it(`rejects ${what} (${reason}): not delivered, not forwarded, reported against the sender`, () => {
        const e = engine();
        e.onGossip(peers[0]!, encodeGossip(mutate(signedGossip(generateIdentity(), 1))));
        expect(delivered).to.have.length(0);
        expect(peers.flatMap((p) => p.gossip())).to.have.length(0);
        expect(invalid).to.deep.equal([{ from: peers[0]!.idHex, reason }]);
      });
    }

    it('still delivers the genuine message after a forged copy of it arrived first', () => {
      const e = engine();
      const genuine = signedGossip(generateIdentity(), 1);
      e.onGossip(peers[0]!, encodeGossip({ ...genuine, signature: Buffer.alloc(64, 1) }));
      e.onGossip(peers[1]!, encodeGossip(genuine));
      expect(delivered).to.have.length(1);
    });

    it('accepts unsigned messages when signing is off', () => {
      const e = engine({ signMessages: false });
      e.onGossip(peers[0]!, encodeGossip(signedGossip(generateIdentity(), 1, 't', 'x', { signature: null })));
      expect(delivered).to.have.length(1);
    });
  });

  describe('lazy repair', () => {
    it('answers IHAVE with IWANT for unseen ids only, and IWANT with the cached message', () => {
      const a = engine();
      const msg = signedGossip(generateIdentity(), 1);
      a.onGossip(peers[0]!, encodeGossip(msg));
      const b = engine();
      const asker = peers[5]!;
      b.onIHave(asker, [msg.id, Buffer.alloc(32, 3)]);
      b.onGossip(peers[1]!, encodeGossip(signedGossip(generateIdentity(), 2))); // unrelated
      const iwant = asker.sent.find((m) => m.type === MessageType.IWANT);
      expect(iwant).to.deep.equal({ type: MessageType.IWANT, ids: [msg.id, Buffer.alloc(32, 3)] });
      // A serves it from its cache, to a peer it advertised it to.
      const requester = new FakePeer();
      peers.push(requester);
      a.heartbeat();
      a.onIWant(requester, [msg.id, Buffer.alloc(32, 3)]);
      expect(requester.gossip()).to.have.length(1);
      expect(requester.gossip()[0]!.id.equals(msg.id)).to.equal(true);
    });

    it('does not ask again for an id it has already seen', () => {
      const e = engine();
      const msg = signedGossip(generateIdentity(), 1);
      e.onGossip(peers[0]!, encodeGossip(msg));
      e.onIHave(peers[1]!, [msg.id]);
      expect(peers[1]!.sent.some((m) => m.type === MessageType.IWANT)).to.equal(false);
    });

    it('advertises new messages on the next heartbeat to peers not known to hold them', () => {
      const e = engine();
      const msg = signedGossip(generateIdentity(), 1);
      e.onGossip(peers[0]!, encodeGossip(msg));
      e.heartbeat();
      const pushedTo = new Set(peers.filter((p) => p.gossip().length > 0).map((p) => p.idHex));
      for (const p of peers) {
        const ihave = p.sent.find((m) => m.type === MessageType.IHAVE);
        const knows = p === peers[0] || pushedTo.has(p.idHex);
        expect(Boolean(ihave), `peer knows=${knows}`).to.equal(!knows);
      }
      // and only once
      for (const p of peers) p.sent.length = 0;
      e.heartbeat();
      expect(peers.some((p) => p.sent.some((m) => m.type === MessageType.IHAVE))).to.equal(false);
    });

    it('re-asks another advertiser when the first does not answer within two heartbeats', () => {
      const e = engine();
      const id = Buffer.alloc(32, 5);
      e.onIHave(peers[0]!, [id]);
      e.onIHave(peers[1]!, [id]);
      expect(peers[1]!.sent.some((m) => m.type === MessageType.IWANT)).to.equal(false);
      now += 2000;
      e.heartbeat();
      expect(peers[1]!.sent.find((m) => m.type === MessageType.IWANT)).to.deep.equal({ type: MessageType.IWANT, ids: [id] });
    });

    it('sends no adverts when repair is off', () => {
      const e = engine({ repair: false });
      e.onGossip(peers[0]!, encodeGossip(signedGossip(generateIdentity(), 1)));
      e.heartbeat();
      expect(peers.some((p) => p.sent.some((m) => m.type === MessageType.IHAVE))).to.equal(false);
    });
  });

  describe('a peer that falls behind (its outbound queue is full)', () => {
    const iHaves = (p: FakePeer) => p.sent.filter((m) => m.type === MessageType.IHAVE).flatMap((m) => (m.type === MessageType.IHAVE ? m.ids.map((i) => i.toString('hex')) : []));

    it('is advertised what it missed once it accepts again, and only once', () => {
      const slow = peers[0]!;
      peers = [slow];
      const e = engine();
      slow.accepting = false;
      const id = e.publish('t', packValue('while full')).toString('hex');
      now += 1000;
      e.heartbeat(); // still full: the advert is refused too
      expect(slow.sent).to.deep.equal([]);
      slow.accepting = true;
      now += 1000;
      e.heartbeat();
      expect(iHaves(slow)).to.deep.equal([id]);
      now += 1000;
      e.heartbeat();
      expect(iHaves(slow), 'not advertised again').to.deep.equal([id]);
    });

    it('is not counted as holding a message whose push was refused', () => {
      const e = engine({ fanout: 6 });
      peers[2]!.accepting = false;
      const id = e.publish('t', packValue('x')).toString('hex');
      peers[2]!.accepting = true;
      now += 1000;
      e.heartbeat();
      expect(iHaves(peers[2]!)).to.deep.equal([id]);
      for (const p of [peers[0]!, peers[1]!, peers[3]!]) expect(iHaves(p), 'the others got the push').to.deep.equal([]);
    });
  });

  describe('sample', () => {
    it('returns n distinct elements, or all when fewer', () => {
      const r = seededRandom(1);
      const s = sample([1, 2, 3, 4, 5, 6], 3, r);
      expect(new Set(s).size).to.equal(3);
      expect(sample([1, 2], 5, r).sort()).to.deep.equal([1, 2]);
    });
  });
});
