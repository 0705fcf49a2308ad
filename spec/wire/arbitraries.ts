/**
 * fast-check generators of valid protocol messages: every type, with field sizes reaching
 * their limits. Used by the property tests of the codec and the frame decoder.
 */
import fc from 'fast-check';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

const buf = (min: number, max = min) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
/** Well-formed text of a..b UTF-8 bytes (graphemes, so no lone surrogates). */
const text = (minBytes: number, maxBytes: number) =>
  fc.string({ unit: 'grapheme', minLength: minBytes, maxLength: maxBytes })
    .filter((s) => Buffer.byteLength(s) >= minBytes && Buffer.byteLength(s) <= maxBytes);
const u = (max: number) => fc.integer({ min: 0, max });
const u32 = u(0xffffffff);
const u16 = u(0xffff);
/** Mostly short lists, sometimes at the cap. */
const list = <T>(item: fc.Arbitrary<T>, cap: number) =>
  fc.oneof({ weight: 5, arbitrary: fc.array(item, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(item, { minLength: cap, maxLength: cap }) });

export const arbMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant(MessageType.HANDSHAKE), noise: buf(0, LIMITS.noiseMessageBytes) }),
  fc.record({ type: fc.constantFrom(MessageType.PING, MessageType.PONG), seq: u32 }),
  fc.record({
    type: fc.constant(MessageType.GOSSIP), id: buf(32), origin: buf(32), seq: fc.maxSafeNat(), topic: text(1, LIMITS.topicBytes),
    ttl: u(LIMITS.maxTtl), hops: u(LIMITS.maxHops), seenBy: list(buf(8), LIMITS.seenBy), payload: buf(0, 300),
    signature: fc.option(buf(64), { nil: null }),
  }),
  fc.record({ type: fc.constantFrom(MessageType.IHAVE, MessageType.IWANT), ids: list(buf(32), LIMITS.idsPerAdvert) }),
  fc.record({ type: fc.constant(MessageType.DIRECT), ref: buf(LIMITS.refBytes), topic: text(1, LIMITS.topicBytes), payload: buf(0, 300), wantReply: fc.boolean() }),
  fc.record({ type: fc.constant(MessageType.ACK), ref: buf(LIMITS.refBytes), status: u(0xff), reply: fc.option(buf(0, 300), { nil: null }) }),
  fc.record({ type: fc.constant(MessageType.FIND_NODE), reqId: u32, target: buf(32) }),
  fc.record({
    type: fc.constant(MessageType.NODES), reqId: u32,
    contacts: list(fc.record({ id: buf(32), host: text(1, LIMITS.hostBytes), port: u16 }), LIMITS.contacts),
  }),
  fc.record({ type: fc.constant(MessageType.GOODBYE), code: u16, reason: text(0, LIMITS.reasonBytes) }),
) as fc.Arbitrary<Message>;
