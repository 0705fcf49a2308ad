/**
 * Gossip message id: SHA-256 over a canonical byte encoding of (origin, sequence, topic,
 * payload). MessagePack has no canonical form (an integer or string has several valid
 * encodings), so the id is computed over fixed-width fields and length prefixes instead;
 * docs/PROTOCOL.md §Message id gives the same layout.
 *
 *   "aethel-p2p gossip v1" (20 ASCII bytes) || origin public key (32) || seq (u64 BE)
 *   || topic length (u16 BE) || topic (UTF-8) || payload length (u32 BE) || payload
 */
import { createHash, hash } from 'node:crypto';
import type { GossipLayout } from '../wire/gossip-envelope.js';

/** Domain-separation tag at the start of the id transcript. */
export const GOSSIP_ID_TAG = Buffer.from('aethel-p2p gossip v1', 'ascii');

/** The 32-byte id of a gossip message. */
export function gossipMessageId(origin: Uint8Array, seq: number, topic: string, payload: Uint8Array): Buffer {
  const topicBytes = Buffer.from(topic, 'utf8');
  const fixed = Buffer.allocUnsafe(8 + 2);
  fixed.writeBigUInt64BE(BigInt(seq), 0);
  fixed.writeUInt16BE(topicBytes.length, 8);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(payload.length, 0);
  return createHash('sha256')
    .update(GOSSIP_ID_TAG)
    .update(origin)
    .update(fixed)
    .update(topicBytes)
    .update(len)
    .update(payload)
    .digest();
}

/** Bodies up to this size are hashed in one call from a copy of their transcript. */
const ONE_SHOT_MAX_BYTES = 64 * 1024;
/** The transcript of the message being hashed (one message at a time: hashing is synchronous). */
let scratch = Buffer.allocUnsafe(1024);

/**
 * gossipMessageId() of a GOSSIP body read by readGossip(), hashed from the body's own bytes
 * (no topic re-encoding): the transcript is gathered in a reused buffer and hashed in one
 * call, which costs a quarter of a streaming hash object for a small message.
 */
export function gossipMessageIdOfBody(body: Buffer, l: GossipLayout): Buffer {
  const n = GOSSIP_ID_TAG.length + 32 + 8 + 2 + l.topicLength + 4 + l.payloadLength;
  if (n > ONE_SHOT_MAX_BYTES) {
    return gossipMessageId(body.subarray(l.originOffset, l.originOffset + 32), l.seq, l.topic, body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength));
  }
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, 2 * scratch.length));
  let o = GOSSIP_ID_TAG.copy(scratch, 0);
  o += body.copy(scratch, o, l.originOffset, l.originOffset + 32);
  scratch.writeUInt32BE(Math.floor(l.seq / 2 ** 32), o);
  scratch.writeUInt32BE(l.seq >>> 0, o + 4);
  scratch.writeUInt16BE(l.topicLength, o + 8);
  o += 10;
  o += body.copy(scratch, o, l.topicOffset, l.topicOffset + l.topicLength);
  scratch.writeUInt32BE(l.payloadLength, o);
  o += 4;
  o += body.copy(scratch, o, l.payloadOffset, l.payloadOffset + l.payloadLength);
  return hash('sha256', scratch.subarray(0, o), 'buffer');
}
