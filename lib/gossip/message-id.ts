/**
 * Gossip message id: SHA-256 over a canonical byte encoding of (origin, sequence, topic,
 * payload). MessagePack has no canonical form (an integer or string has several valid
 * encodings), so the id is computed over fixed-width fields and length prefixes instead;
 * docs/PROTOCOL.md §Message id gives the same layout.
 *
 *   "aethel-p2p gossip v1" (20 ASCII bytes) || origin public key (32) || seq (u64 BE)
 *   || topic length (u16 BE) || topic (UTF-8) || payload length (u32 BE) || payload
 */
import { createHash } from 'node:crypto';
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

/** Transcript head: tag, origin, seq, topic length, topic (up to 256 bytes), payload length. */
const scratch = Buffer.allocUnsafe(GOSSIP_ID_TAG.length + 32 + 8 + 2 + 256 + 4);
GOSSIP_ID_TAG.copy(scratch, 0);

/**
 * gossipMessageId() of a GOSSIP body read by readGossip(), hashed from the body's own bytes:
 * no topic re-encoding, one hash object, one view (the payload).
 */
export function gossipMessageIdOfBody(body: Buffer, l: GossipLayout): Buffer {
  if (l.topicLength > 256) return gossipMessageId(body.subarray(l.originOffset, l.originOffset + 32), l.seq, l.topic, body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength));
  let o = GOSSIP_ID_TAG.length;
  o += body.copy(scratch, o, l.originOffset, l.originOffset + 32);
  scratch.writeUInt32BE(Math.floor(l.seq / 2 ** 32), o);
  scratch.writeUInt32BE(l.seq >>> 0, o + 4);
  scratch.writeUInt16BE(l.topicLength, o + 8);
  o += 10;
  o += body.copy(scratch, o, l.topicOffset, l.topicOffset + l.topicLength);
  scratch.writeUInt32BE(l.payloadLength, o);
  o += 4;
  return createHash('sha256')
    .update(scratch.subarray(0, o))
    .update(body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength))
    .digest();
}
