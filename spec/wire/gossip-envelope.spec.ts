import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from '../../lib/errors.js';
import { decodeMessage, encodeMessage, packValue } from '../../lib/wire/codec.js';
import {
  GOSSIP_HOPS_OFFSET, GOSSIP_ID_OFFSET, GOSSIP_SEEN_BY_OFFSET, GOSSIP_TTL_OFFSET, decodeGossip, encodeGossip, forwardGossip, gossipHeadOk, gossipIdOf,
  readGossip, reforwardGossip,
} from '../../lib/wire/gossip-envelope.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { gossipSigned, gossipUnsigned } from '../vectors/cases.js';
import { readStandardMsgpack } from './standard-msgpack.js';

function schemaError(body: Buffer): ProtocolError {
  try {
    decodeGossip(body);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('decodeGossip accepted the body');
}

const patched = (b: Buffer, at: number, v: number) => {
  const out = Buffer.from(b);
  out[at] = v;
  return out;
};

describe('GOSSIP envelope (PROTOCOL.md §4.5: the fixed layout)', () => {
  for (const [name, msg] of [['signed', gossipSigned], ['unsigned, with a seen-by list', gossipUnsigned]] as const) {
    it(`round-trips a ${name} GOSSIP and is read by any MessagePack reader as the documented array`, () => {
      const body = encodeGossip(msg);
      expect(decodeGossip(body)).to.deep.equal(msg);
      expect(decodeMessage(body)).to.deep.equal(msg);
      const a = readStandardMsgpack(body) as unknown[];
      expect(a).to.deep.equal([
        MessageType.GOSSIP, msg.id, msg.ttl, msg.hops, Buffer.concat(msg.seenBy), msg.origin, msg.seq, msg.topic, msg.payload, msg.signature,
      ]);
    });
  }

  it('puts the id, ttl, hops and seen-by header at fixed offsets', () => {
    const body = encodeGossip(gossipUnsigned);
    expect(body.subarray(0, 4).toString('hex')).to.equal('9a05c420');
    expect(gossipIdOf(body).equals(gossipUnsigned.id)).to.equal(true);
    expect(body.subarray(GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32).equals(gossipUnsigned.id)).to.equal(true);
    expect(body[GOSSIP_TTL_OFFSET]).to.equal(gossipUnsigned.ttl);
    expect(body[GOSSIP_HOPS_OFFSET]).to.equal(gossipUnsigned.hops);
    expect(body[GOSSIP_SEEN_BY_OFFSET]).to.equal(0xc4);
    expect(body[GOSSIP_SEEN_BY_OFFSET + 1]).to.equal(16);
  });

  it('reforwards by rewriting the head only: the tail bytes are copied, never re-encoded', () => {
    const body = encodeGossip(gossipSigned);
    const seen = [Buffer.alloc(8, 1), Buffer.alloc(8, 2), Buffer.alloc(8, 3)];
    const next = reforwardGossip(body, 9, 2, seen);
    expect(decodeGossip(next)).to.deep.equal({ ...gossipSigned, ttl: 9, hops: 2, seenBy: seen });
    expect(next.subarray(40 + 24).equals(body.subarray(40))).to.equal(true);
  });

  it('keeps the newest 16 seen-by entries when given more', () => {
    const seen = Array.from({ length: 20 }, (_, i) => Buffer.alloc(8, i));
    const m = decodeGossip(encodeGossip({ ...gossipSigned, seenBy: seen }));
    expect(m.seenBy).to.deep.equal(seen.slice(-16));
  });

  it('encodes every field combination the schema allows and decodes it back (property)', () => {
    const buf = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
    fc.assert(fc.property(fc.record({
      id: buf(32, 32), origin: buf(32, 32), seq: fc.maxSafeNat(), topic: fc.string({ minLength: 1, maxLength: 80 }).filter((t) => Buffer.byteLength(t) <= LIMITS.topicBytes),
      ttl: fc.integer({ min: 0, max: LIMITS.maxTtl }), hops: fc.integer({ min: 0, max: LIMITS.maxHops }),
      seenBy: fc.array(buf(8, 8), { maxLength: LIMITS.seenBy }), payload: buf(0, 70_000), signature: fc.option(buf(64, 64), { nil: null }),
    }), (f) => {
      const msg: Gossip = { type: MessageType.GOSSIP, ...f };
      expect(decodeMessage(encodeMessage(msg))).to.deep.equal(msg);
    }), { numRuns: 200 });
  });

  const bad: Array<[string, () => Buffer]> = [
    ['ttl 33', () => patched(encodeGossip(gossipSigned), GOSSIP_TTL_OFFSET, 33)],
    ['hops 33', () => patched(encodeGossip(gossipSigned), GOSSIP_HOPS_OFFSET, 33)],
    ['a seen-by of 7 bytes', () => patched(encodeGossip(gossipSigned), GOSSIP_SEEN_BY_OFFSET + 1, 7)],
    ['a seen-by over 16 entries (136 bytes)', () => patched(encodeGossip(gossipSigned), GOSSIP_SEEN_BY_OFFSET + 1, 136)],
    ['seen-by not bin 8', () => patched(encodeGossip(gossipSigned), GOSSIP_SEEN_BY_OFFSET, 0xc5)],
    ['an id that is not bin 8 of 32', () => patched(encodeGossip(gossipSigned), 3, 31)],
    ['a seq that is not uint 64', () => patched(encodeGossip(gossipSigned), 40 + 34, 0xd3)],
    ['a trailing byte', () => Buffer.concat([encodeGossip(gossipSigned), Buffer.from([0])])],
    ['a truncated signature', () => encodeGossip(gossipSigned).subarray(0, -1)],
    ['a signature of another type', () => Buffer.concat([encodeGossip(gossipUnsigned).subarray(0, -1), Buffer.from([0xc2])])],
  ];
  for (const [what, body] of bad) {
    it(`rejects ${what} with SCHEMA`, () => {
      expect(schemaError(body()).code).to.equal('SCHEMA');
    });
  }

  it('rejects a GOSSIP sent as a generic MessagePack array in the field order of version 1', () => {
    const m = gossipSigned;
    const v1 = packValue([MessageType.GOSSIP, m.id, m.origin, m.seq, m.topic, m.ttl, m.hops, m.seenBy, m.payload, m.signature]);
    expect(() => decodeMessage(v1)).to.throw(ProtocolError).with.property('code', 'SCHEMA');
  });

  describe('reading a relay needs (readGossip, gossipHeadOk, forwardGossip)', () => {
    it('readGossip locates every field that decodeGossip returns', () => {
      for (const msg of [gossipSigned, gossipUnsigned]) {
        const body = encodeGossip(msg);
        const l = readGossip(body);
        const d = decodeGossip(body);
        expect(body.subarray(l.originOffset, l.originOffset + 32).equals(d.origin)).to.equal(true);
        expect(body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength).equals(d.payload)).to.equal(true);
        expect(body.subarray(l.topicOffset, l.topicOffset + l.topicLength).toString('utf8')).to.equal(d.topic);
        expect(l.signatureOffset < 0 ? null : body.subarray(l.signatureOffset, l.signatureOffset + 64)).to.deep.equal(d.signature);
        expect([l.ttl, l.hops, l.seq, l.seenByCount]).to.deep.equal([d.ttl, d.hops, d.seq, d.seenBy.length]);
      }
    });

    it('gossipHeadOk accepts a well-formed head and refuses each bad head byte that decodeGossip refuses', () => {
      const body = encodeGossip(gossipUnsigned);
      expect(gossipHeadOk(body)).to.equal(true);
      for (const [at, v] of [[0, 0x9b], [2, 0xc5], [3, 31], [GOSSIP_TTL_OFFSET, LIMITS.maxTtl + 1], [GOSSIP_HOPS_OFFSET, LIMITS.maxHops + 1], [GOSSIP_SEEN_BY_OFFSET + 1, 7]] as const) {
        expect(gossipHeadOk(patched(body, at, v)), `byte ${at} = ${v}`).to.equal(false);
        expect(() => decodeGossip(patched(body, at, v))).to.throw(ProtocolError);
      }
      expect(gossipHeadOk(body.subarray(0, 50))).to.equal(false);
    });

    it('forwardGossip(body, ttl, hops, added) is reforwardGossip with the body\'s seen-by followed by added, at every length', () => {
      const entry = (i: number) => Buffer.alloc(LIMITS.seenByEntryBytes, i + 1);
      for (let own = 0; own <= LIMITS.seenBy; own++) {
        const body = encodeGossip({ ...gossipUnsigned, seenBy: Array.from({ length: own }, (_, i) => entry(i)) });
        for (let extra = 0; extra <= 5; extra++) {
          const added = Array.from({ length: extra }, (_, i) => entry(100 + i));
          const expected = reforwardGossip(body, 3, 4, [...decodeGossip(body).seenBy, ...added]);
          expect(forwardGossip(body, 3, 4, added).equals(expected), `own ${own}, added ${extra}`).to.equal(true);
        }
      }
    });
  });
});
