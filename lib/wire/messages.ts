/**
 * Message types of protocol version 2: numeric codes, fields and limits. docs/PROTOCOL.md is
 * the normative text; this file and it change together.
 */

/** Highest protocol version this implementation speaks; the pair uses the highest common one. */
export const PROTOCOL_VERSION = 2;
/** Lowest protocol version this implementation speaks. */
export const MIN_PROTOCOL_VERSION = 2;

/** Numeric type codes: the first element of every message array. */
export const MessageType = {
  /** One Noise XX handshake message (§4.1); only before the connection is open. Code 2 (v1's AUTH) is retired. */
  HANDSHAKE: 1,
  PING: 3,
  PONG: 4,
  GOSSIP: 5,
  IHAVE: 6,
  IWANT: 7,
  DIRECT: 8,
  ACK: 9,
  FIND_NODE: 10,
  NODES: 11,
  GOODBYE: 12,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];
export type MessageTypeName = keyof typeof MessageType;

/** Name of a type code, for logs, metrics and dumps. */
export const MESSAGE_TYPE_NAMES: Readonly<Record<number, MessageTypeName>> = Object.freeze(
  Object.fromEntries(Object.entries(MessageType).map(([name, code]) => [code, name as MessageTypeName])),
);

/** Reason codes carried by GOODBYE. */
export const GoodbyeCode = {
  /** Orderly shutdown or removePeer(). */
  NORMAL: 0,
  /** Bytes that are not a valid frame or message (bad length, MessagePack, schema, type). */
  PROTOCOL_ERROR: 1,
  VERSION_MISMATCH: 2,
  NETWORK_MISMATCH: 3,
  BAD_SIGNATURE: 4,
  HANDSHAKE_TIMEOUT: 5,
  SELF_CONNECTION: 6,
  DUPLICATE_CONNECTION: 7,
  /** The peer was silent longer than the partition timeout. */
  TIMEOUT: 8,
  /** The receiver already has its maximum number of connections. */
  TOO_MANY_PEERS: 9,
  /** A message that is valid in itself but not allowed in this state (e.g. GOSSIP before AUTH). */
  UNEXPECTED_MESSAGE: 10,
  /**
   * The link was opened only for a DHT query and is no longer needed. Not a departure: the
   * peer is still up and stays in routing tables; neither side redials or reports it.
   */
  IDLE: 11,
  /** One side requires encrypted records and the other asked for plaintext (§4.1). */
  ENCRYPTION_MISMATCH: 12,
  /** A record failed authentication or its counter would wrap (§4.2); usually unsendable. */
  BAD_RECORD: 13,
  /**
   * The sender scored this peer's behaviour below its ban threshold (forged signatures,
   * invalid messages, budgets exceeded: docs/API.md "Peer scoring and rate limits") and has
   * banned it for a while, by id and address. Sent also to a banned peer that connects.
   */
  MISBEHAVIOR: 14,
  /** The receiver admits only its configured members (onlyMembers), and the sender is not one. */
  NOT_MEMBER: 15,
  /** The receiver's inbound slots are full and it chose this peer to make room for a newcomer. */
  EVICTED: 16,
} as const;
export type GoodbyeCodeValue = (typeof GoodbyeCode)[keyof typeof GoodbyeCode];
export const GOODBYE_CODE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(GoodbyeCode).map(([name, code]) => [code, name])),
);

/** Wire limits, enforced by the decoder. Each is documented in docs/PROTOCOL.md §Limits. */
export const LIMITS = Object.freeze({
  /** networkId: UTF-8 bytes. */
  networkIdBytes: 64,
  /** HELLO listenHost: UTF-8 bytes (a hostname or IP literal). */
  hostBytes: 255,
  /** Topic: UTF-8 bytes, at least 1. */
  topicBytes: 256,
  /** Highest TTL a GOSSIP may carry; gossipTtl is capped to it. */
  maxTtl: 32,
  /** Highest hop count (hops only grow while TTL shrinks, so maxTtl bounds it). */
  maxHops: 32,
  /** Entries in a GOSSIP seen-by list. */
  seenBy: 16,
  /** Bytes of each seen-by entry: the first 8 bytes of a node id. */
  seenByEntryBytes: 8,
  /** Message ids in one IHAVE or IWANT. */
  idsPerAdvert: 1024,
  /** Contacts in one NODES reply. */
  contacts: 64,
  /** GOODBYE reason text, UTF-8 bytes. */
  reasonBytes: 256,
  /** Bytes of a DIRECT/ACK reference. */
  refBytes: 16,
  /**
   * Largest frame body before the connection is open (HANDSHAKE, GOODBYE): an unauthenticated
   * peer can make us buffer at most this much per connection. A HANDSHAKE is under 800 bytes.
   */
  preOpenFrameBytes: 1024,
  /** Largest Noise message carried by one HANDSHAKE. */
  noiseMessageBytes: 1000,
});

export interface Handshake {
  type: typeof MessageType.HANDSHAKE;
  /** One Noise message (§4.1): e; or e, ee, s, es; or s, se, each with its payload. */
  noise: Buffer;
}
export interface Ping {
  type: typeof MessageType.PING;
  seq: number;
}
export interface Pong {
  type: typeof MessageType.PONG;
  seq: number;
}
export interface Gossip {
  type: typeof MessageType.GOSSIP;
  /** Claimed message id; every receiver recomputes and compares it. */
  id: Buffer;
  /** Origin's raw Ed25519 public key; the origin's node id is its SHA-256. */
  origin: Buffer;
  /** Per-origin sequence number. */
  seq: number;
  topic: string;
  /** Hops left; a receiver forwards only if ttl > 1 after... see PROTOCOL.md §Gossip. */
  ttl: number;
  /** Hops travelled so far (0 from the origin). */
  hops: number;
  /** 8-byte prefixes of node ids that already hold the message. */
  seenBy: Buffer[];
  /** The application data, MessagePack-encoded. */
  payload: Buffer;
  /** Origin's signature over the id; null when the network runs unsigned. */
  signature: Buffer | null;
}
export interface IHave {
  type: typeof MessageType.IHAVE;
  ids: Buffer[];
}
export interface IWant {
  type: typeof MessageType.IWANT;
  ids: Buffer[];
}
export interface Direct {
  type: typeof MessageType.DIRECT;
  /** Random reference chosen by the sender; the ACK echoes it and retries reuse it. */
  ref: Buffer;
  topic: string;
  payload: Buffer;
  /** True for request(): the ACK carries the handler's return value. */
  wantReply: boolean;
}
/** What happened to a DIRECT at its receiver (§4.9). */
export const AckStatus = {
  /** Handed to at least one handler (for a request: the first handler's value is in `reply`). */
  DELIVERED: 0,
  /** Nobody on the receiver subscribes to the topic: not delivered. */
  NO_SUBSCRIBER: 1,
  /** The handler threw or its promise rejected (request only); `reply` holds the error text. */
  HANDLER_FAILED: 2,
  /** Refused by the receiver's rate limits; the sender may retry later. */
  REFUSED: 3,
  /** A retry of a ref already delivered: not delivered again (the first ACK was lost). */
  DUPLICATE: 4,
} as const;
export type AckStatusValue = (typeof AckStatus)[keyof typeof AckStatus];
export interface Ack {
  type: typeof MessageType.ACK;
  ref: Buffer;
  status: number;
  /** A request's reply (MessagePack), a handler failure's text (UTF-8), or null. */
  reply: Buffer | null;
}
export interface FindNode {
  type: typeof MessageType.FIND_NODE;
  reqId: number;
  target: Buffer;
}
export interface NodeContact {
  id: Buffer;
  host: string;
  port: number;
}
export interface Nodes {
  type: typeof MessageType.NODES;
  reqId: number;
  contacts: NodeContact[];
}
export interface Goodbye {
  type: typeof MessageType.GOODBYE;
  code: number;
  reason: string;
}

export type Message = Handshake | Ping | Pong | Gossip | IHave | IWant | Direct | Ack | FindNode | Nodes | Goodbye;

/**
 * A GOSSIP as a connection hands it up after the handshake: the body as it came off the
 * wire, undecoded (a relay reads it by offsets, lib/wire/gossip-envelope.ts). `body` is a
 * view into a socket read: handle it synchronously, copy what you keep.
 */
export interface GossipFrame {
  type: typeof MessageType.GOSSIP;
  body: Buffer;
}

/** What a connection emits as 'message': every type decoded, except GOSSIP (a GossipFrame). */
export type InboundMessage = Exclude<Message, Gossip> | GossipFrame;
