/**
 * Message body codec: standard MessagePack (no msgpackr records or structured clone, so any
 * MessagePack library can read it), one schema check per message type. Every message is an
 * array whose first element is its type code; fields follow in the order docs/PROTOCOL.md
 * gives. Invalid input becomes a ProtocolError (MALFORMED, UNKNOWN_TYPE or SCHEMA), never
 * another exception. msgpackr encodes; msgpack.ts's strict, bounded decoder decodes.
 */
import { isIP } from 'node:net';
import { Packr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import { KEY_BYTES, SIGNATURE_BYTES } from '../identity.js';
import { decodeGossip, encodeGossip, looksLikeGossip } from './gossip-envelope.js';
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

/** Bytes of one id in an IHAVE or IWANT: bin 8 header (0xc4, 32) then the id. */
const ID_ENTRY_BYTES = 2 + 32;

/**
 * An IHAVE or IWANT body, written directly: [type, [bin 32, ...]] with the array header
 * msgpackr would choose (fixarray below 16 items, array 16 above), so the bytes are the ones
 * packr.pack gives (spec/wire/codec.spec.ts compares them), without its general encoder. Ids
 * of another length (never sent by the engine) go through packr.
 */
function encodeIdList(type: number, ids: readonly Uint8Array[]): Buffer {
  const n = ids.length;
  for (let i = 0; i < n; i++) if (ids[i]!.length !== 32) return packr.pack([type, ids]);
  if (n > 0xffff) return packr.pack([type, ids]);
  const head = n < 16 ? 3 : 5;
  const out = Buffer.allocUnsafe(head + n * ID_ENTRY_BYTES);
  out[0] = 0x92;
  out[1] = type;
  if (n < 16) {
    out[2] = 0x90 | n;
  } else {
    out[2] = 0xdc;
    out[3] = n >>> 8;
    out[4] = n & 0xff;
  }
  let o = head;
  for (let i = 0; i < n; i++) {
    out[o] = 0xc4;
    out[o + 1] = 32;
    out.set(ids[i]!, o + 2);
    o += ID_ENTRY_BYTES;
  }
  return out;
}

/**
 * The ids of an IHAVE or IWANT body in encodeIdList()'s layout (fixarray or array 16 header,
 * at most LIMITS.idsPerAdvert entries of bin 8 with 32 bytes, nothing after them), as views of
 * the body; undefined when the body is laid out otherwise.
 */
function readIdList(body: Uint8Array): Buffer[] | undefined {
  const h = body[2]!;
  let n: number;
  let o: number;
  if ((h & 0xf0) === 0x90) {
    n = h & 0x0f;
    o = 3;
  } else if (h === 0xdc && body.length >= 5) {
    n = (body[3]! << 8) | body[4]!;
    o = 5;
  } else {
    return undefined;
  }
  if (n > LIMITS.idsPerAdvert || body.length !== o + n * ID_ENTRY_BYTES) return undefined;
  const ids: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++, o += ID_ENTRY_BYTES) {
    if (body[o] !== 0xc4 || body[o + 1] !== 32) return undefined;
    ids[i] = Buffer.from(body.buffer, body.byteOffset + o + 2, 32);
  }
  return ids;
}

/** Encode a message to a frame body. The caller guarantees the message is well-formed. */
export function encodeMessage(msg: Message): Buffer {
  switch (msg.type) {
    case MessageType.HANDSHAKE:
      return packr.pack([msg.type, msg.noise]);
    case MessageType.PING:
    case MessageType.PONG:
      return packr.pack([msg.type, msg.seq]);
    case MessageType.GOSSIP:
      return encodeGossip(msg);
    case MessageType.IHAVE:
    case MessageType.IWANT:
      return encodeIdList(msg.type, msg.ids);
    case MessageType.DIRECT:
      return packr.pack([msg.type, msg.ref, msg.topic, msg.payload, msg.wantReply]);
    case MessageType.ACK:
      return packr.pack([msg.type, msg.ref, msg.status, msg.reply]);
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

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(`${field}: expected bool`);
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
  [MessageType.HANDSHAKE]: 2,
  [MessageType.PING]: 2,
  [MessageType.PONG]: 2,
  [MessageType.GOSSIP]: 10,
  [MessageType.IHAVE]: 2,
  [MessageType.IWANT]: 2,
  [MessageType.DIRECT]: 5,
  [MessageType.ACK]: 4,
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
  // GOSSIP has a fixed layout (§4.5) read by offsets, without generic decoding.
  if (looksLikeGossip(body)) return decodeGossip(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  // IHAVE and IWANT as encodeIdList() writes them are read by offsets; any other encoding of
  // them takes the general path below (which also names what is wrong with a bad one).
  if (body.length >= 3 && body[0] === 0x92 && (body[1] === MessageType.IHAVE || body[1] === MessageType.IWANT)) {
    const ids = readIdList(body);
    if (ids) return { type: body[1], ids };
  }
  const a = decodeStrict(body, PROTOCOL_LIMITS);
  if (!Array.isArray(a) || a.length === 0) throw new ProtocolError('SCHEMA', 'message: expected non-empty array');
  const type: unknown = a[0];
  if (!(typeof type === 'number' || typeof type === 'bigint') || type < 0) fail('message: type code must be an unsigned integer');
  const arity = typeof type === 'number' ? ARITY[type] : undefined;
  if (arity === undefined) throw new ProtocolError('UNKNOWN_TYPE', `unknown message type ${String(type)}`);
  const name = MESSAGE_TYPE_NAMES[type as number];
  if (a.length !== arity) fail(`${name}: expected ${arity} elements, got ${a.length}`);
  switch (type) {
    case MessageType.HANDSHAKE:
      return { type, noise: bin(a[1], 'HANDSHAKE.noise', undefined, LIMITS.noiseMessageBytes) };
    case MessageType.PING:
    case MessageType.PONG:
      return { type, seq: uint(a[1], `${name}.seq`, 0xffffffff) };
    case MessageType.GOSSIP:
      // Only reached when the body is not in the fixed layout (a well-formed GOSSIP is read
      // by decodeGossip before generic decoding).
      fail('GOSSIP: not in the fixed layout of PROTOCOL.md §4.5');
    case MessageType.IHAVE:
    case MessageType.IWANT:
      return { type, ids: list(a[1], `${name}.ids`, LIMITS.idsPerAdvert, id32) };
    case MessageType.DIRECT:
      return {
        type,
        ref: bin(a[1], 'DIRECT.ref', LIMITS.refBytes),
        topic: str(a[2], 'DIRECT.topic', 1, LIMITS.topicBytes),
        payload: bin(a[3], 'DIRECT.payload'),
        wantReply: bool(a[4], 'DIRECT.wantReply'),
      };
    case MessageType.ACK:
      return {
        type,
        ref: bin(a[1], 'ACK.ref', LIMITS.refBytes),
        status: uint(a[2], 'ACK.status', 0xff),
        reply: a[3] === null ? null : bin(a[3], 'ACK.reply'),
      };
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

// ---- handshake payloads (§4.1) --------------------------------------------------------------

/** The first handshake message's payload (sent in clear, bound into the Noise transcript). */
export interface InitPayload {
  minVersion: number;
  maxVersion: number;
  networkId: string;
  /** True when the initiator seals records after the handshake; false for plaintext (lab) mode. */
  encrypted: boolean;
}

/** The second and third handshake messages' payload: who the sender is, proven. */
export interface IdentityPayload {
  /** The version the responder chose; the initiator echoes it. */
  version: number;
  /** Sender's Ed25519 public key; its node id is SHA-256 of it. */
  identityKey: Buffer;
  /** Ed25519 signature by identityKey over STATIC_KEY_TAG || the sender's Noise static key. */
  staticSignature: Buffer;
  listenHost: string;
  listenPort: number;
  /** The address the sender sees this connection coming from (the receiver's observed address). */
  observedHost: string;
  observedPort: number;
}

export function encodeInitPayload(p: InitPayload): Buffer {
  return packr.pack([p.minVersion, p.maxVersion, p.networkId, p.encrypted]);
}

export function decodeInitPayload(bytes: Uint8Array): InitPayload {
  const a = handshakeArray(bytes, 4, 'init payload');
  return {
    minVersion: uint(a[0], 'init.minVersion', 0xffff),
    maxVersion: uint(a[1], 'init.maxVersion', 0xffff),
    networkId: str(a[2], 'init.networkId', 1, LIMITS.networkIdBytes),
    encrypted: bool(a[3], 'init.encrypted'),
  };
}

export function encodeIdentityPayload(p: IdentityPayload): Buffer {
  return packr.pack([p.version, p.identityKey, p.staticSignature, p.listenHost, p.listenPort, p.observedHost, p.observedPort]);
}

/**
 * A host a peer may be told to dial: an IP literal, or a DNS name of letters, digits, '-'
 * and '.' (PROTOCOL.md §4.1). Anything else in a listen address is refused at the handshake.
 */
export function isHostAddress(host: string): boolean {
  return isIP(host) !== 0 || /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253})$/.test(host);
}

export function decodeIdentityPayload(bytes: Uint8Array): IdentityPayload {
  const a = handshakeArray(bytes, 7, 'identity payload');
  const p = checkedIdentity(a);
  if (p.listenPort > 0 && !isHostAddress(p.listenHost)) {
    throw new ProtocolError('SCHEMA', `identity.listenHost: ${JSON.stringify(p.listenHost)} is neither an IP literal nor a host name`);
  }
  return p;
}

function checkedIdentity(a: unknown[]): IdentityPayload {
  return {
    version: uint(a[0], 'identity.version', 0xffff),
    identityKey: bin(a[1], 'identity.identityKey', KEY_BYTES),
    staticSignature: bin(a[2], 'identity.staticSignature', SIGNATURE_BYTES),
    listenHost: str(a[3], 'identity.listenHost', 0, LIMITS.hostBytes),
    listenPort: uint(a[4], 'identity.listenPort', 0xffff),
    observedHost: str(a[5], 'identity.observedHost', 0, LIMITS.hostBytes),
    observedPort: uint(a[6], 'identity.observedPort', 0xffff),
  };
}

function handshakeArray(bytes: Uint8Array, arity: number, what: string): unknown[] {
  // Protocol limits and boxed floats, as for a message: a float version or port is SCHEMA.
  const a = decodeStrict(bytes, PROTOCOL_LIMITS);
  if (!Array.isArray(a) || a.length !== arity) throw new ProtocolError('SCHEMA', `${what}: expected an array of ${arity} elements`);
  return a;
}
