/**
 * The GOSSIP envelope of protocol version 2 (docs/PROTOCOL.md §4.5): a MessagePack array
 * written in one fixed layout, so that a relay finds the id, TTL and hops at fixed offsets
 * and rewrites the seen-by list without decoding or re-encoding the rest:
 *
 *   offset  bytes
 *   0       0x9a                       fixarray of 10 elements
 *   1       0x05                       type GOSSIP
 *   2       0xc4 0x20                  bin 8, 32 bytes
 *   4       id (32)
 *   36      ttl                        positive fixint 0..32
 *   37      hops                       positive fixint 0..32
 *   38      0xc4 L                     bin 8, L = 8 x entries (0..16 entries)
 *   40      seen-by prefixes (L)
 *   40+L    the tail, identical at every hop:
 *             0xc4 0x20 origin (32)    bin 8
 *             0xcf seq (8, big-endian) uint 64
 *             topic                    str (any str format)
 *             payload                  bin (any bin format)
 *             signature                0xc4 0x40 + 64 bytes, or 0xc0 (nil)
 *
 * Any MessagePack library reads it as an ordinary array; a receiver rejects a GOSSIP in any
 * other layout (SCHEMA). This file knows the envelope only: no hashing, no verification.
 */
import { ProtocolError } from '../errors.js';
import { LIMITS, MessageType } from './messages.js';
import type { Gossip } from './messages.js';

/** Offsets of the fixed part. */
export const GOSSIP_ID_OFFSET = 4;
export const GOSSIP_TTL_OFFSET = 36;
export const GOSSIP_HOPS_OFFSET = 37;
export const GOSSIP_SEEN_BY_OFFSET = 38;
const HEAD_BYTES = 40;
const ORIGIN_BYTES = 32;
const SIGNATURE_BYTES = 64;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Smallest well-formed GOSSIP body: empty seen-by, 1-byte topic, empty payload, nil signature. */
const MIN_BODY_BYTES = HEAD_BYTES + 2 + ORIGIN_BYTES + 9 + 2 + 2 + 1;

/**
 * True when the fixed head of `body` (offsets 0..39: layout bytes, ttl and hops in range, a
 * valid seen-by length) is well formed and the body is long enough for the rest: what a relay
 * checks before it reads the id, ttl or seen-by of a copy it may drop unread. The tail is
 * checked by readGossip.
 */
export function gossipHeadOk(body: Uint8Array): boolean {
  if (body.length < MIN_BODY_BYTES || body[0] !== 0x9a || body[1] !== MessageType.GOSSIP || body[2] !== 0xc4 || body[3] !== 32) return false;
  if (body[GOSSIP_TTL_OFFSET]! > LIMITS.maxTtl || body[GOSSIP_HOPS_OFFSET]! > LIMITS.maxHops || body[GOSSIP_SEEN_BY_OFFSET] !== 0xc4) return false;
  const seenBytes = body[GOSSIP_SEEN_BY_OFFSET + 1]!;
  return seenBytes % LIMITS.seenByEntryBytes === 0 && seenBytes <= LIMITS.seenBy * LIMITS.seenByEntryBytes && body.length >= MIN_BODY_BYTES + seenBytes;
}

/** True when `body` starts like a GOSSIP (array header and type), whatever follows. */
export function looksLikeGossip(body: Uint8Array): boolean {
  return body.length > 1 && body[1] === MessageType.GOSSIP && (body[0]! & 0xf0) === 0x90;
}

/** The claimed id of a GOSSIP body, as a view (no copy); the body must have passed decodeGossip or looksLikeGossip + length. */
export function gossipIdOf(body: Buffer): Buffer {
  return body.subarray(GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32);
}

/** Where the tail (origin onwards) starts. */
export function gossipTailOffset(body: Uint8Array): number {
  return HEAD_BYTES + body[GOSSIP_SEEN_BY_OFFSET + 1]!;
}

/** Encode a GOSSIP in the fixed layout. The caller guarantees the fields are in range. */
export function encodeGossip(msg: Gossip): Buffer {
  const topic = Buffer.from(msg.topic, 'utf8');
  const tail = encodeTail(msg.origin, msg.seq, topic, msg.payload, msg.signature);
  return withHead(msg.id, msg.ttl, msg.hops, msg.seenBy, tail, 0, tail.length);
}

/**
 * A new body for the next hop: the same id and tail (copied as bytes, never re-encoded),
 * with `ttl`, `hops` and `seenBy` replaced.
 */
export function reforwardGossip(body: Buffer, ttl: number, hops: number, seenBy: readonly Buffer[]): Buffer {
  const start = gossipTailOffset(body);
  return withHead(gossipIdOf(body), ttl, hops, seenBy, body, start, body.length);
}

/**
 * reforwardGossip(body, ttl, hops, [...the body's own seen-by, ...added]) without building
 * that list: the body's entries are copied as bytes, then `added`, the newest
 * LIMITS.seenBy kept. One allocation: the new body.
 */
export function forwardGossip(body: Buffer, ttl: number, hops: number, added: readonly Buffer[]): Buffer {
  const start = gossipTailOffset(body);
  const own = body[GOSSIP_SEEN_BY_OFFSET + 1]! / LIMITS.seenByEntryBytes;
  const total = own + added.length;
  const n = Math.min(total, LIMITS.seenBy);
  const drop = total - n; // oldest entries left out: first the body's own, then added ones
  const seenBytes = n * LIMITS.seenByEntryBytes;
  const out = Buffer.allocUnsafe(HEAD_BYTES + seenBytes + (body.length - start));
  // The head and seen-by entries are a few bytes each: copied by hand (Buffer.copy makes a
  // view per call); the tail in one copy.
  for (let i = 0; i < GOSSIP_TTL_OFFSET; i++) out[i] = body[i]!;
  out[GOSSIP_TTL_OFFSET] = ttl;
  out[GOSSIP_HOPS_OFFSET] = hops;
  out[GOSSIP_SEEN_BY_OFFSET] = 0xc4;
  out[GOSSIP_SEEN_BY_OFFSET + 1] = seenBytes;
  let o = HEAD_BYTES;
  if (drop < own) for (let i = gossipSeenByOffset(drop), end = gossipSeenByOffset(own); i < end; i++) out[o++] = body[i]!;
  for (let i = Math.max(0, drop - own); i < added.length; i++) {
    const e = added[i]!;
    for (let j = 0; j < LIMITS.seenByEntryBytes; j++) out[o++] = e[j]!;
  }
  body.copy(out, o, start, body.length);
  return out;
}

function withHead(id: Buffer, ttl: number, hops: number, seenBy: readonly Buffer[], tail: Buffer, from: number, to: number): Buffer {
  const n = Math.min(seenBy.length, LIMITS.seenBy);
  const seenBytes = n * LIMITS.seenByEntryBytes;
  const out = Buffer.allocUnsafe(HEAD_BYTES + seenBytes + (to - from));
  out[0] = 0x9a;
  out[1] = MessageType.GOSSIP;
  out[2] = 0xc4;
  out[3] = 32;
  id.copy(out, GOSSIP_ID_OFFSET, 0, 32);
  out[GOSSIP_TTL_OFFSET] = ttl;
  out[GOSSIP_HOPS_OFFSET] = hops;
  out[GOSSIP_SEEN_BY_OFFSET] = 0xc4;
  out[GOSSIP_SEEN_BY_OFFSET + 1] = seenBytes;
  // Keep the newest entries when over the cap (they are the most recent targets).
  for (let i = 0; i < n; i++) seenBy[seenBy.length - n + i]!.copy(out, HEAD_BYTES + i * LIMITS.seenByEntryBytes, 0, LIMITS.seenByEntryBytes);
  tail.copy(out, HEAD_BYTES + seenBytes, from, to);
  return out;
}

function encodeTail(origin: Buffer, seq: number, topic: Buffer, payload: Buffer, signature: Buffer | null): Buffer {
  const topicHead = strHeader(topic.length);
  const payloadHead = binHeader(payload.length);
  const size = 2 + ORIGIN_BYTES + 9 + topicHead.length + topic.length + payloadHead.length + payload.length + (signature ? 2 + SIGNATURE_BYTES : 1);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  out[o++] = 0xc4;
  out[o++] = ORIGIN_BYTES;
  o += origin.copy(out, o, 0, ORIGIN_BYTES);
  out[o++] = 0xcf;
  out.writeUInt32BE(Math.floor(seq / 2 ** 32), o);
  out.writeUInt32BE(seq >>> 0, o + 4);
  o += 8;
  o += topicHead.copy(out, o);
  o += topic.copy(out, o);
  o += payloadHead.copy(out, o);
  o += payload.copy(out, o);
  if (signature) {
    out[o++] = 0xc4;
    out[o++] = SIGNATURE_BYTES;
    signature.copy(out, o, 0, SIGNATURE_BYTES);
  } else {
    out[o] = 0xc0;
  }
  return out;
}

function strHeader(n: number): Buffer {
  if (n < 32) return Buffer.from([0xa0 | n]);
  if (n < 0x100) return Buffer.from([0xd9, n]);
  return Buffer.from([0xda, n >> 8, n & 0xff]);
}

function binHeader(n: number): Buffer {
  if (n < 0x100) return Buffer.from([0xc4, n]);
  if (n < 0x10000) return Buffer.from([0xc5, n >> 8, n & 0xff]);
  const h = Buffer.allocUnsafe(5);
  h[0] = 0xc6;
  h.writeUInt32BE(n, 1);
  return h;
}

function bad(what: string): never {
  throw new ProtocolError('SCHEMA', `GOSSIP: ${what}`);
}

/**
 * Where the fields of a GOSSIP body lie: what decodeGossip checks, as offsets and numbers
 * (the topic as a string), without a view per field. A relay reads this once per new message.
 */
export interface GossipLayout {
  ttl: number;
  hops: number;
  /** Seen-by entries, at GOSSIP_SEEN_BY_OFFSET + 2 onwards, LIMITS.seenByEntryBytes each. */
  seenByCount: number;
  /** The origin's 32-byte public key. */
  originOffset: number;
  seq: number;
  topic: string;
  /** The topic's UTF-8 bytes. */
  topicOffset: number;
  topicLength: number;
  payloadOffset: number;
  payloadLength: number;
  /** The 64-byte signature, or -1 when it is nil. */
  signatureOffset: number;
}

/** Offset of seen-by entry `i`. */
export function gossipSeenByOffset(i: number): number {
  return HEAD_BYTES + i * LIMITS.seenByEntryBytes;
}

/**
 * Check a GOSSIP body in the fixed layout and say where its fields are. Throws ProtocolError
 * SCHEMA for any other layout or an out-of-range field (the same checks as decodeGossip).
 */
export function readGossip(body: Buffer): GossipLayout {
  if (body.length < HEAD_BYTES + 2 + ORIGIN_BYTES + 9 + 1 + 2 + 1) bad(`body of ${body.length} bytes is too short`);
  if (body[0] !== 0x9a || body[1] !== MessageType.GOSSIP || body[2] !== 0xc4 || body[3] !== 32) bad('not in the fixed layout (array of 10, type, id as bin 8 of 32 bytes)');
  const ttl = body[GOSSIP_TTL_OFFSET]!;
  const hops = body[GOSSIP_HOPS_OFFSET]!;
  if (ttl > LIMITS.maxTtl) bad(`ttl must be a positive fixint 0..${LIMITS.maxTtl}`);
  if (hops > LIMITS.maxHops) bad(`hops must be a positive fixint 0..${LIMITS.maxHops}`);
  if (body[GOSSIP_SEEN_BY_OFFSET] !== 0xc4) bad('seenBy must be bin 8');
  const seenBytes = body[GOSSIP_SEEN_BY_OFFSET + 1]!;
  if (seenBytes % LIMITS.seenByEntryBytes !== 0 || seenBytes > LIMITS.seenBy * LIMITS.seenByEntryBytes) {
    bad(`seenBy must hold 0..${LIMITS.seenBy} entries of ${LIMITS.seenByEntryBytes} bytes, got ${seenBytes} bytes`);
  }
  let o = HEAD_BYTES + seenBytes;
  if (o + 2 + ORIGIN_BYTES + 9 > body.length) bad('truncated origin and seq');
  if (body[o] !== 0xc4 || body[o + 1] !== ORIGIN_BYTES) bad('origin must be bin 8 of 32 bytes');
  const originOffset = o + 2;
  o += 2 + ORIGIN_BYTES;
  if (body[o] !== 0xcf) bad('seq must be uint 64');
  const hi = body.readUInt32BE(o + 1);
  if (hi > 0x1fffff) bad('seq above 2^53 - 1');
  const seq = hi * 2 ** 32 + body.readUInt32BE(o + 5);
  o += 9;
  // topic: any str format
  if (o + 1 > body.length) bad('truncated topic');
  let topicLen: number;
  const t = body[o]!;
  if ((t & 0xe0) === 0xa0) { topicLen = t & 0x1f; o += 1; }
  else if (t === 0xd9) { if (o + 2 > body.length) bad('truncated topic'); topicLen = body[o + 1]!; o += 2; }
  else if (t === 0xda) { if (o + 3 > body.length) bad('truncated topic'); topicLen = body.readUInt16BE(o + 1); o += 3; }
  else if (t === 0xdb) { if (o + 5 > body.length) bad('truncated topic'); topicLen = body.readUInt32BE(o + 1); o += 5; }
  else bad('topic must be str');
  if (topicLen < 1 || topicLen > LIMITS.topicBytes) bad(`topic must be 1..${LIMITS.topicBytes} UTF-8 bytes`);
  if (o + topicLen > body.length) bad('truncated topic');
  let topic: string;
  let ascii = true;
  for (let i = o; i < o + topicLen && ascii; i++) ascii = body[i]! < 0x80;
  if (ascii) {
    topic = body.toString('latin1', o, o + topicLen); // ASCII: the same string, without a view
  } else {
    try {
      topic = UTF8.decode(body.subarray(o, o + topicLen));
    } catch {
      bad('topic is not valid UTF-8');
    }
  }
  const topicOffset = o;
  o += topicLen;
  // payload: any bin format
  if (o + 1 > body.length) bad('truncated payload');
  let payloadLength: number;
  const p = body[o]!;
  if (p === 0xc4) { if (o + 2 > body.length) bad('truncated payload'); payloadLength = body[o + 1]!; o += 2; }
  else if (p === 0xc5) { if (o + 3 > body.length) bad('truncated payload'); payloadLength = body.readUInt16BE(o + 1); o += 3; }
  else if (p === 0xc6) { if (o + 5 > body.length) bad('truncated payload'); payloadLength = body.readUInt32BE(o + 1); o += 5; }
  else bad('payload must be bin');
  if (o + payloadLength > body.length) bad('truncated payload');
  const payloadOffset = o;
  o += payloadLength;
  if (o + 1 > body.length) bad('truncated signature');
  let signatureOffset: number;
  if (body[o] === 0xc0) {
    signatureOffset = -1;
    o += 1;
  } else if (body[o] === 0xc4 && body[o + 1] === SIGNATURE_BYTES) {
    if (o + 2 + SIGNATURE_BYTES > body.length) bad('truncated signature');
    signatureOffset = o + 2;
    o += 2 + SIGNATURE_BYTES;
  } else {
    bad('signature must be nil or bin 8 of 64 bytes');
  }
  if (o !== body.length) bad(`${body.length - o} byte(s) after the last field`);
  return { ttl, hops, seenByCount: seenBytes / LIMITS.seenByEntryBytes, originOffset, seq, topic, topicOffset, topicLength: topicLen, payloadOffset, payloadLength, signatureOffset };
}

/**
 * Decode a GOSSIP body in the fixed layout. Fields are views into `body` (copy what you
 * keep). Throws ProtocolError SCHEMA for any other layout or an out-of-range field.
 */
export function decodeGossip(body: Buffer): Gossip {
  const l = readGossip(body);
  const seenBy: Buffer[] = [];
  for (let i = 0; i < l.seenByCount; i++) seenBy.push(body.subarray(gossipSeenByOffset(i), gossipSeenByOffset(i + 1)));
  return {
    type: MessageType.GOSSIP,
    id: gossipIdOf(body),
    origin: body.subarray(l.originOffset, l.originOffset + ORIGIN_BYTES),
    seq: l.seq,
    topic: l.topic,
    ttl: l.ttl,
    hops: l.hops,
    seenBy,
    payload: body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength),
    signature: l.signatureOffset < 0 ? null : body.subarray(l.signatureOffset, l.signatureOffset + SIGNATURE_BYTES),
  };
}
