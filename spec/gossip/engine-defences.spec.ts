/**
 * The gossip engine against hostile peers: replays after the seen-cache forgot, IWANT drain
 * and amplification, forged-signature floods. The engine is wired to a real PeerLedger the
 * way lib/network.ts wires it.
 */
import { expect } from 'chai';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipOptions, GossipPeer } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { OriginBudget } from '../../lib/peers/origin-budget.js';
import { PeerLedger, SCORING_DEFAULTS } from '../../lib/peers/peer-ledger.js';
import { seededRandom } from '../../lib/random.js';
import { decodeMessage, encodeMessage, packValue } from '../../lib/wire/codec.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';

class FakePeer implements GossipPeer {
  readonly identity = generateIdentity();
  readonly idHex = this.identity.idHex;
  readonly prefixKey = this.identity.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1');
  readonly sent: Message[] = [];
  /** Encoded GOSSIP bytes received. */
  gossipBytes = 0;
  send(msg: Message): boolean {
    if (msg.type === MessageType.GOSSIP) this.gossipBytes += encodeMessage(msg).length;
    this.sent.push(msg);
    return true;
  }
  sendEncoded(type: number, body: Buffer): boolean {
    if (type === MessageType.GOSSIP) this.gossipBytes += body.length;
    this.sent.push(decodeMessage(body));
    return true;
  }
  gossip(): Gossip[] {
    return this.sent.filter((m): m is Gossip => m.type === MessageType.GOSSIP);
  }
  advertised(): Buffer[] {
    return this.sent.flatMap((m) => (m.type === MessageType.IHAVE ? m.ids : []));
  }
}

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 100, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 5000, maxCachedBytes: 64 << 20,
};

describe('GossipEngine defences', () => {
  let now: number;
  let clock: Clock;
  let peers: FakePeer[];
  let delivered: string[];
  let invalid: Array<{ from: string; reason: string }>;
  let metrics: Metrics;
  let ledger: PeerLedger;

  const seqNow = (k = 0): number => now * 1000 + k;
  function signed(origin: Identity, seq: number, data: unknown = 'x', size = 0): Gossip {
    const payload = packValue(size > 0 ? Buffer.alloc(size, 7) : data);
    const id = gossipMessageId(origin.publicKey, seq, 't', payload);
    return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: origin.sign(id) };
  }
  function engine(over: Partial<GossipOptions> = {}): GossipEngine {
    return new GossipEngine(generateIdentity(), clock, { ...OPTIONS, ...over }, {
      peers: () => peers,
      deliver: (_t, _p, info) => delivered.push(info.id),
      invalid: (from, reason) => {
        invalid.push({ from: from.idHex, reason });
        ledger.invalid(from.idHex, reason);
      },
      mayVerify: (from) => ledger.mayVerify(from.idHex),
      mayServe: (from, bytes) => ledger.mayServe(from.idHex, bytes),
      firstDelivery: (from) => ledger.firstDelivery(from.idHex),
      duplicate: (from) => ledger.duplicate(from.idHex),
    }, metrics, seededRandom(11));
  }
  /** An IWANT as the network charges it: its size earns the asker serve credit. */
  function iwant(e: GossipEngine, from: FakePeer, ids: Buffer[]): number {
    const bytes = encodeMessage({ type: MessageType.IWANT, ids }).length;
    ledger.received(from.idHex, bytes);
    e.onIWant(from, ids);
    return bytes;
  }
  /** A peer this node knew and that connected again: the ledger grants it the serve burst. */
  function reconnected(p: FakePeer): void {
    ledger.connected(p.idHex);
    ledger.connected(p.idHex);
  }

  beforeEach(() => {
    now = 5_000_000;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    peers = Array.from({ length: 4 }, () => new FakePeer());
    delivered = [];
    invalid = [];
    metrics = new Metrics();
    ledger = new PeerLedger(clock);
  });

  describe('replays', () => {
    it('delivers 0 of 50 recorded messages replayed after a flood evicted them from the seen-cache', () => {
      const e = engine();
      const victim = generateIdentity();
      const recorded = Array.from({ length: 50 }, (_, k) => signed(victim, seqNow(k)));
      for (const m of recorded) e.onGossip(peers[0]!, encodeGossip(m));
      expect(delivered).to.have.length(50);
      const flooder = generateIdentity();
      for (let k = 0; k < 3 * OPTIONS.maxSeenEntries; k++) e.onGossip(peers[1]!, encodeGossip(signed(flooder, seqNow(k))));
      for (const m of recorded) expect(e.seen.has(m.id)).to.equal(false);
      delivered = [];
      for (const m of recorded) e.onGossip(peers[2]!, encodeGossip(m));
      expect(delivered).to.have.length(0);
      expect(invalid.filter((i) => i.reason === 'replay')).to.have.length(50);
    });

    it('delivers 0 messages replayed after seenTtlMs, when the seen-cache has expired them', () => {
      const e = engine();
      const origin = generateIdentity();
      const recorded = Array.from({ length: 20 }, (_, k) => signed(origin, seqNow(k)));
      for (const m of recorded) e.onGossip(peers[0]!, encodeGossip(m));
      now += OPTIONS.seenTtlMs + 1;
      e.heartbeat();
      expect(e.seen.size).to.equal(0);
      delivered = [];
      for (const m of recorded) e.onGossip(peers[1]!, encodeGossip(m));
      expect(delivered).to.have.length(0);
      expect(invalid.map((i) => i.reason)).to.deep.equal(Array(20).fill('too_old'));
    });

    it('delivers 0 replays even when a flood of new origins also evicted the origin from the replay window', () => {
      const e = engine({ maxReplayOrigins: 10 });
      const victim = generateIdentity();
      const recorded = Array.from({ length: 10 }, (_, k) => signed(victim, seqNow(k)));
      for (const m of recorded) e.onGossip(peers[0]!, encodeGossip(m));
      now += 1;
      for (let k = 0; k < 2 * OPTIONS.maxSeenEntries; k++) e.onGossip(peers[1]!, encodeGossip(signed(generateIdentity(), seqNow(k))));
      expect(e.replay.evictions).to.be.greaterThan(0);
      delivered = [];
      for (const m of recorded) e.onGossip(peers[2]!, encodeGossip(m));
      expect(delivered).to.have.length(0);
    });

    it('hands an origin its own messages back never, even after its seen-cache forgot them', () => {
      const e = engine({ maxSeenEntries: 10 });
      const mine: Gossip[] = [];
      for (let k = 0; k < 5; k++) {
        e.publish('t', packValue(k));
        now += 1;
      }
      for (const p of peers) for (const m of p.gossip()) if (!mine.some((x) => x.id.equals(m.id))) mine.push(m);
      for (let k = 0; k < 30; k++) e.onGossip(peers[1]!, encodeGossip(signed(generateIdentity(), seqNow(k))));
      delivered = [];
      for (const m of mine) e.onGossip(peers[2]!, encodeGossip({ ...m, seenBy: [] }));
      expect(delivered).to.have.length(0);
      expect(invalid.every((i) => i.reason === 'replay')).to.equal(true);
    });

    it('publishes strictly increasing seqs that follow the clock in microseconds', () => {
      const e = engine();
      e.publish('t', packValue(1));
      e.publish('t', packValue(2));
      now += 7;
      e.publish('t', packValue(3));
      const seqs = [...new Set(peers.flatMap((p) => p.gossip().map((g) => g.seq)))].sort((a, b) => a - b);
      expect(seqs).to.deep.equal([now * 1000 - 7000, now * 1000 - 6999, now * 1000]);
    });
  });

  describe('IWANT', () => {
    /** An engine holding `n` messages of `size` bytes, advertised to every peer by a heartbeat. */
    function holding(n: number, size: number): { e: GossipEngine; ids: Buffer[] } {
      const e = engine({ maxCachedMessages: n, maxSeenEntries: n });
      ledger = new PeerLedger(clock, { verifyBurst: n }); // the source's n messages are all verified
      const origin = generateIdentity();
      const source = new FakePeer();
      const ids: Buffer[] = [];
      for (let k = 0; k < n; k++) {
        const m = signed(origin, seqNow(k), undefined, size);
        e.onGossip(source, encodeGossip(m));
        ids.push(m.id);
      }
      e.heartbeat();
      for (const p of peers) {
        p.sent.length = 0;
        p.gossipBytes = 0;
      }
      return { e, ids };
    }

    it('answers one peer at most 3 times per id, and the same ids still reach an honest peer after 32 asks', () => {
      const { e, ids } = holding(200, 256);
      const [attacker, honest] = [peers[0]!, peers[1]!];
      reconnected(attacker); // even with the burst of a known peer
      reconnected(honest);
      let asked = 0;
      for (let round = 0; round < 32; round++) {
        for (let i = 0; i < ids.length; i += 64) asked += iwant(e, attacker, ids.slice(i, i + 64));
      }
      expect(attacker.gossip()).to.have.length(3 * ids.length);
      const amplification = attacker.gossipBytes / asked;
      expect(amplification).to.be.at.most(2);
      iwant(e, honest, ids);
      expect(honest.gossip()).to.have.length(ids.length);
      console.log(`      IWANT drain (200 ids x 32 asks): served ${attacker.gossipBytes} B for ${asked} B asked, amplification ${amplification.toFixed(2)}`);
    });

    it('answers only ids it advertised or pushed to the asker', () => {
      const { e, ids } = holding(10, 10);
      const stranger = new FakePeer(); // connected after the heartbeat: told nothing
      reconnected(stranger);
      iwant(e, stranger, ids);
      expect(stranger.gossip()).to.have.length(0);
      expect(metrics.dropped('iwant_refused')).to.equal(10);
      e.onPeerConnected(stranger); // a connection advertises the whole window: now it may ask
      iwant(e, stranger, ids);
      expect(stranger.gossip()).to.have.length(10);
    });

    it('serves a new silent asker never more than twice the bytes it sends', () => {
      const { e, ids } = holding(200, 4096);
      ledger = new PeerLedger(clock, { serveSharedBurstBytes: 0 }); // this node's shared allowance spent (by other askers)
      const sybil = peers[0]!;
      ledger.connected(sybil.idHex); // a first connection: no burst
      let asked = 0;
      for (let i = 0; i < ids.length; i += 10) asked += iwant(e, sybil, ids.slice(i, i + 10));
      expect(sybil.gossipBytes).to.be.at.most(2 * asked);
      expect(metrics.dropped('serve_budget')).to.be.greaterThan(0);
    });

    it('serves a known peer back after a disconnection its burst, then never more than twice the bytes it sends', () => {
      const { e, ids } = holding(2500, 4096);
      ledger = new PeerLedger(clock, { serveSharedBurstBytes: 0 }); // this node's shared allowance spent (by other askers)
      const attacker = peers[0]!;
      reconnected(attacker);
      // Spend the burst: ask for 1300 ids at once.
      const askedFirst = iwant(e, attacker, ids.slice(0, 1300));
      const burst = attacker.gossipBytes;
      expect(burst).to.be.at.most(SCORING_DEFAULTS.serveBurstBytes + 2 * askedFirst);
      // Then ask for 20 fresh ids (one ask each: the best ratio an asker can get) every second for 60 s.
      let asked = 0;
      for (let s = 0; s < 60; s++) {
        asked += iwant(e, attacker, ids.slice(1300 + s * 20, 1320 + s * 20));
        now += 1000;
      }
      const served = attacker.gossipBytes - burst;
      const body = attacker.gossip()[0]!;
      // What was left of the burst (less than one message) may still go out: 2x plus one body at most.
      expect(served).to.be.at.most(2 * asked + encodeMessage(body).length);
      expect(served).to.be.greaterThan(0);
      console.log(`      silent asker: burst ${burst} B for ${askedFirst} B asked; then ${served} B served for ${asked} B asked in 60 s, amplification ${(served / asked).toFixed(2)}`);
    });
  });

  describe('origin budget', () => {
    /** An engine whose host keeps a per-origin budget of 5 messages (no refill), as Sanctions wires it. */
    function budgeted(over: Partial<GossipOptions> = {}): { e: GossipEngine; budget: OriginBudget; verifications: () => number } {
      const budget = new OriginBudget(clock, { originPerSecond: 1, originBurst: 5 });
      let verifications = 0;
      const e = new GossipEngine(generateIdentity(), clock, { ...OPTIONS, ...over }, {
        peers: () => peers,
        deliver: (_t, _p, info) => delivered.push(info.id),
        invalid: (from, reason) => invalid.push({ from: from.idHex, reason }),
        mayAccept: (_from, origin) => budget.allows(origin.toString('latin1')),
        accepted: (origin) => {
          verifications++;
          budget.spend(origin.toString('latin1'));
        },
      }, metrics, seededRandom(11));
      return { e, budget, verifications: () => verifications + invalid.filter((i) => i.reason === 'bad_signature').length };
    }

    it('drops an origin\'s excess before verifying it, and counts it', () => {
      const { e, verifications } = budgeted();
      const flooder = generateIdentity();
      for (let k = 0; k < 50; k++) e.onGossip(peers[0]!, encodeGossip(signed(flooder, seqNow(k))));
      expect(delivered).to.have.length(5);
      expect(verifications()).to.equal(5);
      expect(metrics.dropped('origin_budget')).to.equal(45);
    });

    it('is not spent by forgeries claiming an honest origin: its genuine messages still pass', () => {
      const { e } = budgeted();
      const honest = generateIdentity();
      const payload = packValue('x');
      for (let k = 0; k < 20; k++) {
        const seq = seqNow(k);
        const id = gossipMessageId(honest.publicKey, seq, 't', payload);
        e.onGossip(peers[0]!, encodeGossip({ type: MessageType.GOSSIP, id, origin: honest.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: Buffer.alloc(64, 1) }));
      }
      expect(invalid.filter((i) => i.reason === 'bad_signature')).to.have.length(20);
      const genuine = Array.from({ length: 5 }, (_, k) => signed(honest, seqNow(100 + k)));
      for (const m of genuine) e.onGossip(peers[1]!, encodeGossip(m));
      expect(delivered).to.deep.equal(genuine.map((m) => m.id.toString('hex')));
      expect(metrics.dropped('origin_budget')).to.equal(0);
    });

    it('drops an origin\'s excess before it costs the relay a verification', () => {
      const budget = new OriginBudget(clock, { originPerSecond: 1, originBurst: 5 });
      const l = new PeerLedger(clock, { verifyPerSecond: 0, verifyBurst: 5 });
      const e = new GossipEngine(generateIdentity(), clock, OPTIONS, {
        peers: () => peers,
        deliver: (_t, _p, info) => delivered.push(info.id),
        invalid: (from, reason) => invalid.push({ from: from.idHex, reason }),
        mayVerify: (from) => l.mayVerify(from.idHex),
        mayAccept: (_from, origin) => budget.allows(origin.toString('latin1')),
        accepted: (origin) => budget.spend(origin.toString('latin1')),
      }, metrics, seededRandom(11));
      const flooder = generateIdentity();
      for (let k = 0; k < 50; k++) e.onGossip(peers[0]!, encodeGossip(signed(flooder, seqNow(k))));
      expect(metrics.dropped('origin_budget')).to.equal(45);
      expect(metrics.dropped('verify_budget')).to.equal(0);
      expect(l.verdict(peers[0]!.idHex)).to.equal('ok');
    });

    it('does not apply in unsigned mode, where an origin is not authenticated', () => {
      const { e } = budgeted({ signMessages: false });
      const origin = generateIdentity();
      for (let k = 0; k < 20; k++) e.onGossip(peers[0]!, encodeGossip({ ...signed(origin, seqNow(k)), signature: null }));
      expect(delivered).to.have.length(20);
      expect(metrics.dropped('origin_budget')).to.equal(0);
    });
  });

  describe('verification budget', () => {
    it('verifies at most verifyBurst + verifyPerSecond x t forgeries from one peer, and still verifies an honest peer', () => {
      const e = engine();
      const forger = peers[0]!;
      const victim = generateIdentity();
      const payload = packValue('x');
      const forgeries = (n: number, from: number): Gossip[] => Array.from({ length: n }, (_, k) => {
        const seq = seqNow(from + k);
        const id = gossipMessageId(victim.publicKey, seq, 't', payload);
        return { type: MessageType.GOSSIP, id, origin: victim.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: Buffer.alloc(64, 1) };
      });
      // No ban in this spec (the network bans): the budget alone must bound the cost.
      for (const f of forgeries(5000, 0)) e.onGossip(forger, encodeGossip(f));
      const verified = () => invalid.filter((i) => i.reason === 'bad_signature').length;
      expect(verified()).to.equal(SCORING_DEFAULTS.verifyBurst);
      expect(metrics.dropped('verify_budget')).to.equal(5000 - SCORING_DEFAULTS.verifyBurst);
      now += 1000;
      for (const f of forgeries(5000, 10_000)) e.onGossip(forger, encodeGossip(f));
      expect(verified()).to.equal(SCORING_DEFAULTS.verifyBurst + SCORING_DEFAULTS.verifyPerSecond);
      const honest = signed(generateIdentity(), seqNow(1));
      e.onGossip(peers[1]!, encodeGossip(honest));
      expect(delivered).to.deep.equal([honest.id.toString('hex')]);
      expect(ledger.verdict(forger.idHex)).to.equal('ban');
      expect(ledger.verdict(peers[1]!.idHex)).to.equal('ok');
    });

    it('does not charge messages it asked for by IWANT', () => {
      const e = engine();
      const l2 = ledger;
      const origin = generateIdentity();
      const msgs = Array.from({ length: 10 }, (_, k) => signed(origin, seqNow(k)));
      ledger = new PeerLedger(clock, { verifyPerSecond: 0, verifyBurst: 1 });
      e.onIHave(peers[0]!, msgs.map((m) => m.id));
      for (const m of msgs) e.onGossip(peers[0]!, encodeGossip(m));
      expect(delivered).to.have.length(10);
      ledger = l2;
    });
  });
});
