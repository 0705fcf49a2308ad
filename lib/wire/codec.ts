/**
 * Message body codec: standard MessagePack (no msgpackr records or structured clone, so any
 * MessagePack library can read it), one schema check per message type. Every message is an
 * array whose first element is its type code; fields follow in the order docs/PROTOCOL.md
 * gives. Invalid input becomes a ProtocolError (MALFORMED, UNKNOWN_TYPE or SCHEMA), never
 * another exception. msgpackr encodes; msgpack.ts's strict, bounded decoder decodes.
 */
import { Packr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import { KEY_BYTES, SIGNATURE_BYTES } from '../identity.js';
import { LIMITS, MessageType, MESSAGE_TYPE_NAMES } from './messages.js';
import type { Message, NodeContact } from './messages.js';
import { assertEncodable, decodeStrict, MsgpackFloat, PAYLOAD_LIMITS, PROTOCOL_LIMITS } from './msgpack.js';

// One instance, reused: msgpackr amortises its buffers across calls. With these options its
// output is standard MessagePack (ints, floats, str, bin, array, map, timestamp) only.
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  encodeUndefinedAsNil: true,
});

/**
 * Encode application data to MessagePack. Throws P2PError INVALID_ARGUMENT naming the path
 * (`data.a[2]: functions cannot be encoded`) for a value MessagePack cannot carry faithfully
 * or that peers' PAYLOAD_LIMITS would refuse (see assertEncodable in msgpack.ts).
 */
export function packValue(value: unknown): Buffer {
  assertEncodable(value, PAYLOAD_LIMITS);
  return packr.pack(value);
}

/**
 * Decode application data: exactly one standard MessagePack value within PAYLOAD_LIMITS
 * (timestamps become Dates). Throws ProtocolError MALFORMED otherwise.
 */
export function unpackValue(bytes: Uint8Array): unknown {
  return decodeStrict(bytes, PAYLOAD_LIMITS);
}

// MessagePack integers above 2^32 would be packed by msgpackr as float64; a BigInt makes it
// pack a 64-bit integer, which is what the spec says the field is.
const u64 = (n: number): number | bigint => (n > 0xffffffff ? BigInt(n) : n);

/** Encode a message to a frame body. The caller guarantees the message is well-formed. */
export function encodeMessage(msg: Message): Buffer {
  switch (msg.type) {
    case MessageType.HELLO:
      return packr.pack([msg.type, msg.version, msg.networkId, msg.publicKey, msg.nonce, msg.listenHost, msg.listenPort]);
    case MessageType.AUTH:
      return packr.pack([msg.type, msg.signature]);
    case MessageType.PING:
    case MessageType.PONG:
      return packr.pack([msg.type, msg.seq]);
    case MessageType.GOSSIP:
      return packr.pack([
        msg.type, msg.id, msg.origin, u64(msg.seq), msg.topic, msg.ttl, msg.hops, msg.seenBy, msg.payload, msg.signature,
      ]);
    case MessageType.IHAVE:
    case MessageType.IWANT:
      return packr.pack([msg.type, msg.ids]);
    case MessageType.DIRECT:
      return packr.pack([msg.type, msg.ref, msg.topic, msg.payload]);
    case MessageType.ACK:
      return packr.pack([msg.type, msg.ref]);
    case MessageType.FIND_NODE:
      return packr.pack([msg.type, msg.reqId, msg.target]);
    case MessageType.NODES:
      return packr.pack([msg.type, msg.reqId, msg.contacts.map((c) => [c.id, c.host, c.port])]);
    case MessageType.GOODBYE:
      return packr.pack([msg.type, msg.code, msg.reason]);
  }
}

// ---- schema checks -------------------------------------------------------------------------

function fail(what: string): never {
  throw new ProtocolError('SCHEMA', what);
}

function bin(v: unknown, field: string, exactBytes?: number, maxBytes?: number): Buffer {
  if (!Buffer.isBuffer(v)) fail(`${field}: expected bin`);
  if (exactBytes !== undefined && v.length !== exactBytes) fail(`${field}: expected ${exactBytes} bytes, got ${v.length}`);
  if (maxBytes !== undefined && v.length > maxBytes) fail(`${field}: ${v.length} bytes exceeds ${maxBytes}`);
  return v;
}

function str(v: unknown, field: string, minBytes: number, maxBytes: number): string {
  if (typeof v !== 'string') fail(`${field}: expected str`);
  // UTF-8 length is at most 3 bytes per UTF-16 unit; skip the count when that already fits.
  const bytes = v.length * 3 <= maxBytes ? -1 : Buffer.byteLength(v);
  if (bytes > maxBytes) fail(`${field}: ${bytes} bytes exceeds ${maxBytes}`);
  if (v.length < minBytes) fail(`${field}: shorter than ${minBytes} byte(s)`);
  return v;
}

function uint(v: unknown, field: string, max: number): number {
  // Decoded floats arrive boxed: 7.0 is not an integer on the wire, whatever its value.
  if (v instanceof MsgpackFloat) fail(`${field}: expected integer 0..${max}, got float`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`${field}: expected integer 0..${max}`);
  return v;
}

function list<T>(v: unknown, field: string, max: number, item: (x: unknown, f: string) => T): T[] {
  if (!Array.isArray(v)) fail(`${field}: expected array`);
  if (v.length > max) fail(`${field}: ${v.length} entries exceeds ${max}`);
  return v.map((x, i) => item(x, `${field}[${i}]`));
}

const id32 = (x: unknown, f: string) => bin(x, f, KEY_BYTES);

function contact(v: unknown, field: string): NodeContact {
  if (!Array.isArray(v) || v.length !== 3) fail(`${field}: expected [id, host, port]`);
  return { id: id32(v[0], `${field}.id`), host: str(v[1], `${field}.host`, 1, LIMITS.hostBytes), port: uint(v[2], `${field}.port`, 0xffff) };
}

/** Field count per type code, including the type element. */
const ARITY: Readonly<Record<number, number>> = {
  [MessageType.HELLO]: 7,
  [MessageType.AUTH]: 2,
  [MessageType.PING]: 2,
  [MessageType.PONG]: 2,
  [MessageType.GOSSIP]: 10,
  [MessageType.IHAVE]: 2,
  [MessageType.IWANT]: 2,
  [MessageType.DIRECT]: 4,
  [MessageType.ACK]: 2,
  [MessageType.FIND_NODE]: 3,
  [MessageType.NODES]: 3,
  [MessageType.GOODBYE]: 3,
};

/**
 * Decode and validate a frame body. Throws ProtocolError: MALFORMED (not one complete
 * standard MessagePack value within PROTOCOL_LIMITS: 0xc1, any ext, nesting over 3, over
 * 1,280 items), SCHEMA (not a non-empty array; a type code that is not an unsigned integer;
 * wrong field count, type, length or range, a float where an integer is due included), or
 * UNKNOWN_TYPE (an unsigned integer type code this version does not know).
 */
export function decodeMessage(body: Uint8Array): Message {
  const a = decodeStrict(body, PROTOCOL_LIMITS);
  if (!Array.isArray(a) || a.length === 0) throw new ProtocolError('SCHEMA', 'message: expected non-empty array');
  const type: unknown = a[0];
  if (!(typeof type === 'number' || typeof type === 'bigint') || type < 0) fail('message: type code must be an unsigned integer');
  const arity = typeof type === 'number' ? ARITY[type] : undefined;
  if (arity === undefined) throw new ProtocolError('UNKNOWN_TYPE', `unknown message type ${String(type)}`);
  const name = MESSAGE_TYPE_NAMES[type as number];
  if (a.length !== arity) fail(`${name}: expected ${arity} elements, got ${a.length}`);
  switch (type) {
    case MessageType.HELLO:
      return {
        type,
        version: uint(a[1], 'HELLO.version', 0xffff),
        networkId: str(a[2], 'HELLO.networkId', 1, LIMITS.networkIdBytes),
        publicKey: bin(a[3], 'HELLO.publicKey', KEY_BYTES),
        nonce: bin(a[4], 'HELLO.nonce', KEY_BYTES),
        listenHost: str(a[5], 'HELLO.listenHost', 0, LIMITS.hostBytes),
        listenPort: uint(a[6], 'HELLO.listenPort', 0xffff),
      };
    case MessageType.AUTH:
      return { type, signature: bin(a[1], 'AUTH.signature', SIGNATURE_BYTES) };
    case MessageType.PING:
    case MessageType.PONG:
      return { type, seq: uint(a[1], `${name}.seq`, 0xffffffff) };
    case MessageType.GOSSIP:
      return {
        type,
        id: id32(a[1], 'GOSSIP.id'),
        origin: bin(a[2], 'GOSSIP.origin', KEY_BYTES),
        seq: uint(a[3], 'GOSSIP.seq', Number.MAX_SAFE_INTEGER),
        topic: str(a[4], 'GOSSIP.topic', 1, LIMITS.topicBytes),
        ttl: uint(a[5], 'GOSSIP.ttl', LIMITS.maxTtl),
        hops: uint(a[6], 'GOSSIP.hops', LIMITS.maxHops),
        seenBy: list(a[7], 'GOSSIP.seenBy', LIMITS.seenBy, (x, f) => bin(x, f, LIMITS.seenByEntryBytes)),
        payload: bin(a[8], 'GOSSIP.payload'),
        signature: a[9] === null ? null : bin(a[9], 'GOSSIP.signature', SIGNATURE_BYTES),
      };
    case MessageType.IHAVE:
    case MessageType.IWANT:
      return { type, ids: list(a[1], `${name}.ids`, LIMITS.idsPerAdvert, id32) };
    case MessageType.DIRECT:
      return {
        type,
        ref: bin(a[1], 'DIRECT.ref', LIMITS.refBytes),
        topic: str(a[2], 'DIRECT.topic', 1, LIMITS.topicBytes),
        payload: bin(a[3], 'DIRECT.payload'),
      };
    case MessageType.ACK:
      return { type, ref: bin(a[1], 'ACK.ref', LIMITS.refBytes) };
    case MessageType.FIND_NODE:
      return { type, reqId: uint(a[1], 'FIND_NODE.reqId', 0xffffffff), target: id32(a[2], 'FIND_NODE.target') };
    case MessageType.NODES:
      return { type, reqId: uint(a[1], 'NODES.reqId', 0xffffffff), contacts: list(a[2], 'NODES.contacts', LIMITS.contacts, contact) };
    case MessageType.GOODBYE:
      return { type, code: uint(a[1], 'GOODBYE.code', 0xffff), reason: str(a[2], 'GOODBYE.reason', 0, LIMITS.reasonBytes) };
    default:
      throw new ProtocolError('UNKNOWN_TYPE', `unknown message type ${String(type)}`);
  }
}
