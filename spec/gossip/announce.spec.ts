import { expect } from 'chai';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { ANNOUNCE_WAIT_MAX_MS, ANNOUNCE_WAIT_MIN_MS, ANNOUNCE_WAIT_UNKNOWN_MS, GossipEngine, announceWaitMs } from '../../lib/gossip/engine.js';
import type { GossipOptions } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { packValue } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordingPeer as Peer } from '../helpers/gossip-peer.js';


const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20,
};

const tick = () => new Promise<void>((r) => queueMicrotask(r));

describe('GossipEngine: announce at once (lazy push, PROTOCOL.md §4.6)', () => {
  let clock: sinon.SinonFakeTimers;
  let self: Identity;
  let peers: Peer[];
  const engine = (over: Partial<GossipOptions> = {}) => new GossipEngine(self, systemClock, { ...OPTIONS, ...over }, {
    peers: () => peers, deliver: () => {}, invalid: () => {},
  }, new Metrics(), seededRandom(3));

  function gossipFrom(origin: Identity, n: number): Gossip {
    const payload = packValue({ n });
    const seq = Date.now() * 1000 + n;
    const id = gossipMessageId(origin.publicKey, seq, 't', payload);
    return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: origin.sign(id) };
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_700_000_000_000, toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    self = generateIdentity();
    peers = Array.from({ length: 7 }, (_, i) => new Peer(i === 0 ? 4 : undefined));
  });
  afterEach(() => clock.restore());

  it('announces a published message to every peer it did not push to, in the same tick, one IHAVE per peer', async () => {
    const e = engine();
    const a = e.publish('t', packValue(1));
    const b = e.publish('t', packValue(2));
    await tick();
    for (const p of peers) {
      const pushed = p.of(MessageType.GOSSIP).map((g) => g.id.toString('hex'));
      const announced = p.of(MessageType.IHAVE).flatMap((m) => m.ids.map((x) => x.toString('hex')));
      for (const id of [a, b]) {
        // Each peer learns of each message exactly once: pushed or announced.
        expect(pushed.includes(id.toString('hex')) !== announced.includes(id.toString('hex')), p.idHex.slice(0, 8)).to.equal(true);
      }
      expect(p.of(MessageType.IHAVE).length).to.be.at.most(1);
    }
    // And the heartbeat does not announce them again.
    const before = peers.map((p) => p.of(MessageType.IHAVE).length);
    e.heartbeat();
    expect(peers.map((p) => p.of(MessageType.IHAVE).length)).to.deep.equal(before);
  });

  describe('with a host end of turn (the network: forwarded once the turn\'s copies are in)', () => {
    let turn: Array<() => void>;
    const turnEngine = () => new GossipEngine(self, systemClock, OPTIONS, {
      peers: () => peers, deliver: () => {}, invalid: () => {}, endOfTurn: (fn) => void turn.push(fn),
    }, new Metrics(), seededRandom(3));
    const endTurn = () => { for (const fn of turn.splice(0)) fn(); };
    beforeEach(() => { turn = []; });

    it('delivers a new message at once and forwards it only at the end of the turn', () => {
      const delivered: string[] = [];
      const e = new GossipEngine(self, systemClock, OPTIONS, {
        peers: () => peers, deliver: (_t, _p, info) => void delivered.push(info.id), invalid: () => {}, endOfTurn: (fn) => void turn.push(fn),
      }, new Metrics(), seededRandom(3));
      const m = gossipFrom(generateIdentity(), 10);
      e.onGossip(peers[0]!, encodeGossip(m));
      expect(delivered).to.deep.equal([m.id.toString('hex')]);
      expect(peers.every((p) => p.sent.length === 0)).to.equal(true);
      expect(turn).to.have.length(1);
      endTurn();
      expect(peers.filter((p) => p.of(MessageType.GOSSIP).length === 1)).to.have.length(3);
    });

    it('neither pushes nor announces to peers that sent a copy or an IHAVE of it in the same turn', () => {
      const e = turnEngine();
      const m = gossipFrom(generateIdentity(), 11);
      const body = encodeGossip(m);
      e.onGossip(peers[0]!, body);
      e.onGossip(peers[1]!, body); // a duplicate: peers[1] holds it
      e.onIHave(peers[2]!, [m.id]); // peers[2] holds it
      endTurn();
      for (const p of peers.slice(0, 3)) expect(p.sent, p.idHex.slice(0, 8)).to.deep.equal([]);
      // The four others: three pushed, one announced.
      const rest = peers.slice(3);
      expect(rest.filter((p) => p.of(MessageType.GOSSIP).length === 1)).to.have.length(3);
      expect(rest.filter((p) => p.of(MessageType.IHAVE).length === 1)).to.have.length(1);
      // Known to hold it: not advertised to them by the heartbeat either.
      e.heartbeat();
      for (const p of peers.slice(0, 3)) expect(p.sent, p.idHex.slice(0, 8)).to.deep.equal([]);
    });

    it('without the same-turn copies, pushes to three of the six other peers and announces to the other three', () => {
      const e = turnEngine();
      e.onGossip(peers[0]!, encodeGossip(gossipFrom(generateIdentity(), 12)));
      endTurn();
      const others = peers.slice(1);
      expect(others.filter((p) => p.of(MessageType.GOSSIP).length === 1)).to.have.length(3);
      expect(others.filter((p) => p.of(MessageType.IHAVE).length === 1)).to.have.length(3);
    });
  });

  it('waits for the push copy before asking an announcer, and asks nothing when it comes', async () => {
    const e = engine();
    const m = gossipFrom(generateIdentity(), 1);
    const announcer = peers[0]!; // rtt 4 ms: waits 6 ms
    e.onIHave(announcer, [m.id]);
    expect(announcer.of(MessageType.IWANT)).to.deep.equal([]);
    await clock.tickAsync(3);
    e.onGossip(peers[1]!, encodeGossip(m));
    await clock.tickAsync(50);
    expect(announcer.of(MessageType.IWANT)).to.deep.equal([]);
  });

  it('asks the announcer when no copy came within 1.5 round trips, then the next announcer after two heartbeats', async () => {
    const e = engine();
    const m = gossipFrom(generateIdentity(), 2);
    const [first, second] = [peers[0]!, peers[1]!];
    e.onIHave(first, [m.id]);
    e.onIHave(second, [m.id]);
    await clock.tickAsync(5);
    expect(first.of(MessageType.IWANT)).to.deep.equal([]);
    await clock.tickAsync(1);
    expect(first.of(MessageType.IWANT).map((x) => x.ids[0]!.equals(m.id))).to.deep.equal([true]);
    expect(second.of(MessageType.IWANT)).to.deep.equal([]);
    await clock.tickAsync(2000);
    e.heartbeat();
    expect(second.of(MessageType.IWANT).map((x) => x.ids[0]!.equals(m.id))).to.deep.equal([true]);
  });

  it('skips an announcer whose answer would not be heard (host.mayAsk false: graylisted) and asks the next one at once', async () => {
    const graylisted = new Set<Peer>();
    const e = new GossipEngine(self, systemClock, OPTIONS, {
      peers: () => peers, deliver: () => {}, invalid: () => {}, mayAsk: (p) => !graylisted.has(p as Peer),
    }, new Metrics(), seededRandom(3));
    const m = gossipFrom(generateIdentity(), 3);
    const [first, second, third, fourth] = [peers[0]!, peers[1]!, peers[2]!, peers[3]!];
    for (const p of [first, second, third, fourth]) e.onIHave(p, [m.id]);
    graylisted.add(first); // graylisted after it announced, before the wait ran out
    await clock.tickAsync(6);
    expect(first.of(MessageType.IWANT)).to.deep.equal([]);
    expect(second.of(MessageType.IWANT).map((x) => x.ids[0]!.equals(m.id))).to.deep.equal([true]);
    // The second answers with a forgery and the third is graylisted by now: the fourth is asked at once.
    graylisted.add(third);
    e.onGossip(second, encodeGossip({ ...m, signature: Buffer.alloc(64, 7) }));
    expect(third.of(MessageType.IWANT)).to.deep.equal([]);
    expect(fourth.of(MessageType.IWANT).map((x) => x.ids[0]!.equals(m.id))).to.deep.equal([true]);
  });

  it('when a forgery gets its sender graylisted, asks another announcer at once for every id asked of it', async () => {
    const graylisted = new Set<Peer>();
    const e = new GossipEngine(self, systemClock, OPTIONS, {
      peers: () => peers, deliver: () => {}, invalid: (p) => graylisted.add(p as Peer), mayAsk: (p) => !graylisted.has(p as Peer),
    }, new Metrics(), seededRandom(3));
    const origin = generateIdentity();
    const [m1, m2] = [gossipFrom(origin, 4), gossipFrom(origin, 5)];
    const [forger, honest] = [peers[0]!, peers[1]!];
    for (const p of [forger, honest]) e.onIHave(p, [m1.id, m2.id]);
    await clock.tickAsync(6);
    expect(forger.of(MessageType.IWANT).flatMap((x) => x.ids).length).to.equal(2);
    e.onGossip(forger, encodeGossip({ ...m1, signature: Buffer.alloc(64, 7) }));
    const asked = honest.of(MessageType.IWANT).flatMap((x) => x.ids.map((id) => id.toString('hex')));
    expect(asked.sort()).to.deep.equal([m1.id.toString('hex'), m2.id.toString('hex')].sort());
  });

  it('at the next heartbeat, asks another announcer for an id asked of a peer graylisted since', async () => {
    const graylisted = new Set<Peer>();
    const e = new GossipEngine(self, systemClock, OPTIONS, {
      peers: () => peers, deliver: () => {}, invalid: () => {}, mayAsk: (p) => !graylisted.has(p as Peer),
    }, new Metrics(), seededRandom(3));
    const m = gossipFrom(generateIdentity(), 6);
    const [first, second] = [peers[0]!, peers[1]!];
    for (const p of [first, second]) e.onIHave(p, [m.id]);
    await clock.tickAsync(6);
    expect(first.of(MessageType.IWANT).length).to.equal(1);
    e.heartbeat();
    expect(second.of(MessageType.IWANT)).to.deep.equal([]); // not yet: the first may still answer
    graylisted.add(first); // e.g. over its rate limits: its answer would be dropped unread
    e.heartbeat();
    expect(second.of(MessageType.IWANT).map((x) => x.ids[0]!.equals(m.id))).to.deep.equal([true]);
  });

  it('bounds the wait: unknown round trip, tiny and huge ones', () => {
    expect(announceWaitMs(undefined)).to.equal(ANNOUNCE_WAIT_UNKNOWN_MS);
    expect(announceWaitMs(0.1)).to.equal(ANNOUNCE_WAIT_MIN_MS);
    expect(announceWaitMs(40)).to.equal(60);
    expect(announceWaitMs(10_000)).to.equal(ANNOUNCE_WAIT_MAX_MS);
  });

  it('waits twice the observed push lag when that is longer than 1.5 round trips, up to the bound', () => {
    expect(announceWaitMs(4, 30)).to.equal(60);
    expect(announceWaitMs(40, 10)).to.equal(60);
    expect(announceWaitMs(undefined, 100)).to.equal(200);
    expect(announceWaitMs(1, 5000)).to.equal(ANNOUNCE_WAIT_MAX_MS);
  });

  it('learns the push lag from push copies that come after an announcement, and waits longer for the next id', async () => {
    const e = engine();
    const announcer = peers[0]!; // rtt 4 ms: 6 ms while no lag is known
    for (let n = 10; n < 40; n++) {
      const m = gossipFrom(generateIdentity(), n);
      e.onIHave(announcer, [m.id]);
      await clock.tickAsync(5); // each push copy comes 5 ms after the announcement, in time
      e.onGossip(peers[1]!, encodeGossip(m));
    }
    expect(e.pushLagMs).to.be.within(4, 5);
    const m = gossipFrom(generateIdentity(), 40);
    e.onIHave(announcer, [m.id]);
    await clock.tickAsync(7);
    expect(announcer.of(MessageType.IWANT)).to.deep.equal([]); // the wait is now 2 x lag (8-10 ms), not 6
    await clock.tickAsync(4);
    expect(announcer.of(MessageType.IWANT)).to.have.length(1);
    e.clear();
  });

  it('does not push a message to the peers that announced it, and counts them as holding it', async () => {
    const e = engine({ fanout: 6 });
    const m = gossipFrom(generateIdentity(), 50);
    for (const p of peers.slice(1, 4)) e.onIHave(p, [m.id]);
    e.onGossip(peers[0]!, encodeGossip(m));
    await tick();
    for (const p of peers.slice(1, 4)) expect(p.of(MessageType.GOSSIP), 'announcer pushed to').to.deep.equal([]);
    for (const p of peers.slice(4)) expect(p.of(MessageType.GOSSIP)).to.have.length(1);
    e.heartbeat();
    for (const p of peers.slice(1, 4)) expect(p.of(MessageType.IHAVE), 'announcer advertised to').to.deep.equal([]);
    e.clear();
  });

  it('with announce off, announces only at the heartbeat and asks at once', async () => {
    const e = engine({ announce: false });
    e.publish('t', packValue(3));
    await tick();
    expect(peers.flatMap((p) => p.of(MessageType.IHAVE))).to.deep.equal([]);
    const m = gossipFrom(generateIdentity(), 3);
    e.onIHave(peers[0]!, [m.id]);
    expect(peers[0]!.of(MessageType.IWANT)).to.have.length(1);
    e.clear();
  });

  it('leaves no timer behind after clear()', async () => {
    const e = engine();
    e.onIHave(peers[2]!, [gossipFrom(generateIdentity(), 4).id]);
    expect(clock.countTimers()).to.equal(1);
    e.clear();
    expect(clock.countTimers()).to.equal(0);
  });
});
