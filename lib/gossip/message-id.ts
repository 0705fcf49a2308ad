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
/**
 * The transcript of the message being hashed (one message at a time: hashing is synchronous),
 * GOSSIP_ID_TAG already in place at its start.
 */
let scratch = transcriptBuffer(1024);

function transcriptBuffer(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  GOSSIP_ID_TAG.copy(b, 0);
  return b;
}

/**
 * gossipMessageId() of a GOSSIP body read by readGossip(), hashed from the body's own bytes
 * (no topic re-encoding): the transcript is gathered in a reused buffer and hashed in one
 * call, which costs a quarter of a streaming hash object for a small message. The short
 * fields are copied byte by byte (Buffer.copy makes a view per call).
 */
export function gossipMessageIdOfBody(body: Buffer, l: GossipLayout): Buffer {
  const n = GOSSIP_ID_TAG.length + 32 + 8 + 2 + l.topicLength + 4 + l.payloadLength;
  if (n > ONE_SHOT_MAX_BYTES) {
    return gossipMessageId(body.subarray(l.originOffset, l.originOffset + 32), l.seq, l.topic, body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength));
  }
  if (scratch.length < n) scratch = transcriptBuffer(Math.max(n, 2 * scratch.length));
  const t = scratch;
  let o = GOSSIP_ID_TAG.length;
  for (let i = l.originOffset, end = l.originOffset + 32; i < end; i++) t[o++] = body[i]!;
  t.writeUInt32BE(Math.floor(l.seq / 2 ** 32), o);
  t.writeUInt32BE(l.seq >>> 0, o + 4);
  t.writeUInt16BE(l.topicLength, o + 8);
  o += 10;
  for (let i = l.topicOffset, end = l.topicOffset + l.topicLength; i < end; i++) t[o++] = body[i]!;
  t.writeUInt32BE(l.payloadLength, o);
  o += 4;
  o += body.copy(t, o, l.payloadOffset, l.payloadOffset + l.payloadLength);
  return hash('sha256', t.subarray(0, o), 'buffer');
}
