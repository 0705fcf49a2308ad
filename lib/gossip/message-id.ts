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
