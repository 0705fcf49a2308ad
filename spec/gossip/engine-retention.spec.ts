/**
 * What the engine keeps past the call that gave it a buffer (issue 14, peak memory): copies,
 * never views into the block a record came in, and small ones not in Node's shared 8 KiB
 * buffer pool, where one kept slice keeps the whole block alive.
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

describe('GossipEngine: what it keeps of received buffers', () => {
  const clock: Clock = { now: () => 1_000_000, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };

  it('forwards at the end of the turn from a copy: overwriting the received block before the turn ends changes nothing sent or cached', () => {
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

  it('asks for an id (IWANT) with bytes of its own, not a slice of the IHAVE (it keeps the wanted id as a key only)', () => {
    const from = new RecordingPeer();
    const engine = new GossipEngine(generateIdentity(), clock, OPTIONS, {
      peers: () => [from], deliver: () => {}, invalid: () => {},
    }, new Metrics(), seededRandom(1));
    const block = Buffer.alloc(200, 0x22);
    const announced = block.subarray(50, 82);
    engine.onIHave(from, [announced]);
    const [want] = from.of(MessageType.IWANT);
    expect(want!.ids).to.have.length(1);
    const id = want!.ids[0]!;
    expect(id.equals(announced)).to.equal(true);
    expect(id.buffer).to.not.equal(block.buffer);
    block.fill(0);
    expect(id.equals(Buffer.alloc(32, 0x22))).to.equal(true);
  });
});
