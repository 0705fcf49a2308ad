import { expect } from 'chai';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipOptions, GossipPeer } from '../../lib/gossip/engine.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { decodeMessage, packValue, unpackValue } from '../../lib/wire/codec.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 60_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 30_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20,
  // Synchronous link and no timers: IWANT answers an IHAVE at once. (With announce on, the
  // ask waits 1.5 round trips on a timer; the cluster specs cover catch-up that way.)
  announce: false,
};

/**
 * Two gossip engines joined by a link the test can cut: while it is down, whatever is sent
 * into it is lost (what a silent TCP link does to the frames queued in it).
 */
class Side {
  readonly identity: Identity = generateIdentity();
  readonly delivered: unknown[] = [];
  engine!: GossipEngine;
  /** This side's view of the other: sending to it crosses the link. */
  remote!: GossipPeer;
  connected = true;
}

/** Two sides and their link: `link.up = false` loses everything sent into it. */
function pair(clock: Clock): { a: Side; b: Side; link: { up: boolean } } {
  const a = new Side();
  const b = new Side();
  const link = { up: true };
  for (const [self, other] of [[a, b], [b, a]] as const) {
    self.engine = new GossipEngine(self.identity, clock, OPTIONS, {
      peers: () => (self.connected ? [self.remote] : []),
      deliver: (_t, payload) => void self.delivered.push(unpackValue(payload)),
      invalid: (_f, reason) => expect.fail(`invalid: ${reason}`),
    }, new Metrics(), seededRandom(1));
    const deliver = (m: Message) => {
      if (!link.up) return; // lost in the dead link
      const from = other.remote; // how `other` sees `self`
      switch (m.type) {
        case MessageType.GOSSIP: return other.engine.onGossip(from, encodeGossip(m));
        case MessageType.IHAVE: return other.engine.onIHave(from, m.ids);
        case MessageType.IWANT: return other.engine.onIWant(from, m.ids);
      }
    };
    self.remote = {
      idHex: other.identity.idHex,
      prefixKey: other.identity.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1'),
      send: (m) => (deliver(m), true),
      sendEncoded: (_type, body) => (deliver(decodeMessage(body)), true),
    };
  }
  return { a, b, link };
}

describe('catch-up after a partition (gossip engine)', () => {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };

  it('re-advertises a message pushed into a link that died, so the peer fetches it on reconnect', () => {
    const { a, b, link } = pair(clock);
    link.up = false; // silent: not yet detected, so a still pushes to b
    a.engine.publish('consensus', packValue('pushed into the dead link'));
    now += 1000;
    a.engine.heartbeat(); // and advertises it to b, also lost
    expect(b.delivered).to.deep.equal([]);

    // Partition detected on both sides, then healed: both ends run the catch-up.
    now += 5000;
    link.up = true;
    a.engine.onPeerConnected(a.remote);
    b.engine.onPeerConnected(b.remote);
    expect(b.delivered).to.deep.equal(['pushed into the dead link']);
  });

  it('brings each side what the other broadcast while they were apart, once', () => {
    const { a, b, link } = pair(clock);
    link.up = false;
    a.connected = false;
    b.connected = false;
    for (let i = 0; i < 3; i++) {
      a.engine.publish('consensus', packValue(`a${i}`));
      b.engine.publish('consensus', packValue(`b${i}`));
      now += 2000;
    }
    link.up = true;
    a.connected = true;
    b.connected = true;
    a.engine.onPeerConnected(a.remote);
    b.engine.onPeerConnected(b.remote);
    a.engine.onPeerConnected(a.remote); // a second reconnection brings nothing new
    expect(a.delivered).to.deep.equal(['b0', 'b1', 'b2']);
    expect(b.delivered).to.deep.equal(['a0', 'a1', 'a2']);
  });

  it('cannot bring what left the repair window before the link came back', () => {
    const { a, b, link } = pair(clock);
    link.up = false;
    a.connected = false;
    a.engine.publish('consensus', packValue('too old'));
    now += OPTIONS.messageCacheMs;
    a.engine.publish('consensus', packValue('recent'));
    link.up = true;
    a.connected = true;
    a.engine.onPeerConnected(a.remote);
    expect(b.delivered).to.deep.equal(['recent']);
  });
});
