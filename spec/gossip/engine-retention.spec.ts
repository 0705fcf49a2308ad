/**
 * A new message is forwarded at the host's end of turn (GossipHost.endOfTurn), from a copy of
 * its body: the engine keeps no view of the buffer it came in, so a turn's forwards do not
 * keep every received record alive until the turn ends (issue 14, peak memory).
 */
import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipOptions } from '../../lib/gossip/engine.js';
import { entryBody } from '../../lib/gossip/message-cache.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { packValue } from '../../lib/wire/codec.js';
import { decodeGossip, encodeGossip } from '../../lib/wire/gossip-envelope.js';
import { MessageType } from '../../lib/wire/messages.js';
import { RecordingPeer } from '../helpers/gossip-peer.js';

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20, announce: false,
};

describe('GossipEngine: a forward deferred to the end of the turn', () => {
  const clock: Clock = { now: () => 1_000_000, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };

  it('is built from a copy: overwriting the received block before the turn ends changes nothing sent or cached', () => {
    const self = generateIdentity();
    const origin = generateIdentity();
    const from = new RecordingPeer();
    const others = [new RecordingPeer(), new RecordingPeer(), new RecordingPeer()];
    const turn: Array<() => void> = [];
    const engine = new GossipEngine(self, clock, OPTIONS, {
      peers: () => [from, ...others], deliver: () => {}, invalid: () => {}, endOfTurn: (fn) => void turn.push(fn),
    }, new Metrics(), seededRandom(1));
    const payload = packValue({ n: 7 });
    const seq = 1_000_000_000;
    const id = gossipMessageId(origin.publicKey, seq, 't', payload);
    const body = encodeGossip({
      type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1,
      seenBy: [origin.id.subarray(0, 8)], payload, signature: origin.sign(id),
    });
    // The body as a record hands it up: a view into a larger block, between other bytes.
    const block = Buffer.alloc(body.length + 200, 0x11);
    body.copy(block, 100);
    engine.onGossip(from, block.subarray(100, 100 + body.length));
    expect(turn).to.have.length(1);
    expect(others.flatMap((p) => p.gossip())).to.deep.equal([]); // not forwarded yet

    block.fill(0xee); // the block's memory is reused before the turn ends
    turn.forEach((fn) => fn());

    const sent = others.flatMap((p) => p.gossip());
    expect(sent).to.have.length(3);
    for (const g of sent) {
      expect(g.id.equals(id)).to.equal(true);
      expect(g.payload.equals(payload)).to.equal(true);
      expect(g.ttl).to.equal(4);
    }
    const cached = decodeGossip(entryBody(engine.cache.get(id)!));
    expect(cached.payload.equals(payload)).to.equal(true);
    expect(cached.origin.equals(origin.publicKey)).to.equal(true);
  });
});
