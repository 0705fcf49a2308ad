/**
 * The gossip engine with its signature checks handed over (GossipHost.verifyAsync): a fake
 * verifier holds each request until the test gives the verdict, so what happens while a
 * message is in flight is deterministic. The real pool has its own spec (verify-pool.spec.ts).
 */
import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipHost, GossipOptions } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity, verifySignature } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { packValue } from '../../lib/wire/codec.js';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordingPeer as FakePeer } from '../helpers/gossip-peer.js';


interface Pending {
  origin: Buffer;
  id: Buffer;
  signature: Buffer;
  done: (valid: boolean) => void;
}

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20, announce: false,
};

describe('GossipEngine with signatures verified elsewhere (verifyAsync)', () => {
  let now: number;
  let clock: Clock;
  let peers: FakePeer[];
  let delivered: string[];
  let invalid: Array<[string, string]>;
  let pending: Pending[];
  let room: boolean;
  let metrics: Metrics;
  let timers: Array<() => void>;

  function engine(over: Partial<GossipHost> = {}): GossipEngine {
    return new GossipEngine(generateIdentity(), clock, OPTIONS, {
      peers: () => peers,
      deliver: (_topic, _payload, info) => delivered.push(info.id),
      invalid: (from, reason) => invalid.push([from.idHex, reason]),
      verifyAsync: (origin, id, signature, done) => {
        if (!room) return false;
        // Copies: the engine promises nothing about its views once verifyAsync returns.
        pending.push({ origin: Buffer.from(origin), id: Buffer.from(id), signature: Buffer.from(signature), done });
        return true;
      },
      ...over,
    }, metrics, seededRandom(5));
  }

  /** Give every pending request its true verdict (as the pool would), oldest first. */
  function settleAll(): void {
    for (const p of pending.splice(0)) p.done(verifySignature(p.origin, p.id, p.signature));
  }

  function signed(origin: Identity, seq: number, data: unknown = 'hello', over: Partial<Gossip> = {}): Gossip {
    const payload = packValue(data);
    const s = now * 1000 + seq;
    const id = gossipMessageId(origin.publicKey, s, 't', payload);
    return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq: s, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: origin.sign(id), ...over };
  }

  beforeEach(() => {
    now = 2_000_000;
    timers = [];
    clock = {
      now: () => now,
      setTimeout: (fn) => {
        timers.push(fn);
        return { cancel() {} };
      },
      setInterval: () => ({ cancel() {} }),
    };
    peers = Array.from({ length: 6 }, () => new FakePeer());
    delivered = [];
    invalid = [];
    pending = [];
    room = true;
    metrics = new Metrics();
  });

  it('delivers and forwards a message only once its verdict comes back valid', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip(g));
    expect(pending).to.have.length(1);
    expect(delivered).to.deep.equal([]);
    expect(peers.flatMap((p) => p.of(MessageType.GOSSIP))).to.have.length(0);
    settleAll();
    expect(delivered).to.deep.equal([g.id.toString('hex')]);
    expect(peers.flatMap((p) => p.of(MessageType.GOSSIP))).to.have.length(3);
    expect(e.seen.has(g.id)).to.equal(true);
  });

  it('keeps its own copy of the body: the view it was given may be overwritten before the verdict', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1, 'payload that must survive');
    const body = encodeGossip(g);
    e.onGossip(peers[0]!, body);
    body.fill(0); // what a reused read buffer would do
    settleAll();
    expect(delivered).to.deep.equal([g.id.toString('hex')]);
    const fwd = peers.flatMap((p) => p.of(MessageType.GOSSIP))[0]!;
    expect(fwd.id.equals(g.id)).to.equal(true);
    expect(verifySignature(g.origin, fwd.id, fwd.signature!)).to.equal(true);
  });

  it('refuses a forged signature when its verdict comes, as the synchronous path does', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1, 'x', { signature: Buffer.alloc(64, 9) });
    e.onGossip(peers[0]!, encodeGossip(g));
    settleAll();
    expect(delivered).to.deep.equal([]);
    expect(invalid).to.deep.equal([[peers[0]!.idHex, 'bad_signature']]);
    expect(e.seen.has(g.id)).to.equal(false);
  });

  it('counts a second copy with the same signature as a duplicate, verifies it once, and does not push to its sender', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip(g));
    e.onGossip(peers[1]!, encodeGossip({ ...g, ttl: 4, hops: 2 }));
    expect(pending).to.have.length(1);
    expect(metrics.duplicatesReceived).to.equal(1);
    settleAll();
    expect(delivered).to.have.length(1);
    expect(peers[0]!.of(MessageType.GOSSIP)).to.have.length(0);
    expect(peers[1]!.of(MessageType.GOSSIP)).to.have.length(0);
    // A copy after the verdict is a duplicate from the seen-cache, as always.
    e.onGossip(peers[2]!, encodeGossip(g));
    expect(metrics.duplicatesReceived).to.equal(2);
    expect(pending).to.have.length(0);
  });

  it('verifies a copy with another signature too, so a forgery that came first cannot suppress the genuine message', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1);
    const forged = { ...g, signature: Buffer.alloc(64, 3) };
    e.onGossip(peers[0]!, encodeGossip(forged));
    e.onGossip(peers[1]!, encodeGossip(g));
    expect(pending).to.have.length(2);
    settleAll();
    expect(invalid).to.deep.equal([[peers[0]!.idHex, 'bad_signature']]);
    expect(delivered).to.deep.equal([g.id.toString('hex')]);
  });

  it('lets only one of two messages with the same (origin, seq) through when both were in flight: the other is a replay', () => {
    const e = engine();
    const origin = generateIdentity();
    const a = signed(origin, 7, 'first');
    const b = signed(origin, 7, 'second'); // an origin signing two messages with one seq
    e.onGossip(peers[0]!, encodeGossip(a));
    e.onGossip(peers[1]!, encodeGossip(b));
    expect(pending).to.have.length(2);
    settleAll();
    expect(delivered).to.deep.equal([a.id.toString('hex')]);
    expect(invalid).to.deep.equal([[peers[1]!.idHex, 'replay']]);
  });

  it('verifies synchronously when the verifier has no room, delivering at once', () => {
    room = false;
    const e = engine();
    const g = signed(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip(g));
    expect(delivered).to.deep.equal([g.id.toString('hex')]);
    expect(pending).to.have.length(0);
    // And a forgery is refused at once.
    e.onGossip(peers[1]!, encodeGossip(signed(generateIdentity(), 2, 'x', { signature: Buffer.alloc(64, 4) })));
    expect(invalid).to.deep.equal([[peers[1]!.idHex, 'bad_signature']]);
  });

  it('keeps the cheap checks before verification: a replayed or tampered copy is refused without a request', () => {
    const e = engine();
    const origin = generateIdentity();
    const g = signed(origin, 1);
    e.onGossip(peers[0]!, encodeGossip(g));
    settleAll();
    // Same (origin, seq), other content: a replay, refused before any verification.
    e.onGossip(peers[1]!, encodeGossip(signed(origin, 1, 'other')));
    // Tampered payload under a claimed new id: id_mismatch.
    const t = signed(origin, 2);
    e.onGossip(peers[2]!, encodeGossip({ ...t, payload: packValue('tampered') }));
    expect(pending).to.have.length(0);
    expect(invalid.map((x) => x[1])).to.deep.equal(['replay', 'id_mismatch']);
  });

  it('drops verdicts that come after clear() (the node stopped) without delivering or throwing', () => {
    const e = engine();
    e.onGossip(peers[0]!, encodeGossip(signed(generateIdentity(), 1)));
    e.onGossip(peers[1]!, encodeGossip(signed(generateIdentity(), 2, 'x', { signature: Buffer.alloc(64, 1) })));
    e.clear();
    expect(() => settleAll()).to.not.throw();
    expect(delivered).to.deep.equal([]);
    expect(invalid).to.deep.equal([]);
  });

  it('does not ask for an id it is verifying, and asks an announcer at once if the copy in flight is refused', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip({ ...g, signature: Buffer.alloc(64, 2) }));
    e.onIHave(peers[1]!, [g.id]);
    expect(peers[1]!.of(MessageType.IWANT)).to.have.length(0);
    settleAll();
    expect(invalid).to.deep.equal([[peers[0]!.idHex, 'bad_signature']]);
    for (const t of timers.splice(0)) t();
    const asked = peers[1]!.of(MessageType.IWANT).flatMap((m) => m.ids.map((x) => x.toString('hex')));
    expect(asked).to.deep.equal([g.id.toString('hex')]);
    // Its answer is delivered as a repair.
    e.onGossip(peers[1]!, encodeGossip(g));
    settleAll();
    expect(delivered).to.deep.equal([g.id.toString('hex')]);
  });

  it('does not push a valid message to a peer that announced it while it was in flight', () => {
    const e = engine();
    const g = signed(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip(g));
    for (const p of peers.slice(1)) e.onIHave(p, [g.id]);
    settleAll();
    expect(delivered).to.have.length(1);
    expect(peers.flatMap((p) => p.of(MessageType.GOSSIP))).to.have.length(0);
  });
});
