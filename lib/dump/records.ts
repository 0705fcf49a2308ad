/**
 * The wire dump format, version 1: NDJSON, one JSON object a line, in the order written.
 * docs/DEBUGGING.md documents it for people; these types are the same text for code.
 *
 * Every line has `t` (wall-clock time in microseconds since the Unix epoch, so the dumps of
 * several nodes on one host merge by time) and `kind`. Binary values are lowercase hex for
 * ids and base64 for frame bodies.
 */

/** Format version written in the header line. */
export const DUMP_FORMAT_VERSION = 1;

/** First line of every dump: who wrote it. */
export interface DumpHeader {
  t: number;
  kind: 'dump';
  v: number;
  /** Node id of the writer, 64 hex chars. */
  node: string;
}

/** One frame in or out of one connection. */
export interface FrameRecord {
  t: number;
  kind: 'frame';
  /** Connection number, unique within the writing process. */
  conn: number;
  dir: 'in' | 'out';
  /** "host:port" of this end and of the other end of the TCP connection. */
  local: string;
  remote: string;
  /** Peer node id (64 hex), null until its HELLO has arrived. */
  peer: string | null;
  /** Body length in bytes (the 4-byte length prefix not included). */
  len: number;
  /** The frame body exactly as on the wire, base64. */
  body: string;
}

/**
 * What the node decided and why, one line each. `msg` is a gossip message id (64 hex),
 * `peer` the node id of the peer concerned, `to` the peers a copy went to.
 *   delivered     a new, verified message, handed to local subscribers (peer: sent it; hops as received;
 *                 via: "push", or "repair" when it arrived while this node had asked for it by IWANT)
 *   duplicate     a copy of a message already seen (peer: who sent the copy)
 *   rejected      a copy refused (reason: id_mismatch, ttl_zero, unsigned, bad_signature)
 *   dropped       a message not passed on (reason: ttl_expired, queue_full; peer: the target, when one)
 *   forwarded     copies pushed (to; ttl as sent; peer: who it came from, absent when we originated it;
 *                 via: "push" or "iwant" for a repair reply)
 *   connect, disconnect (reason), partitioned, recovered, invalid (reason): peer state
 *   stalled       this node's event loop was stopped (reason says how long): peers' silence during it
 *                 is not held against them
 */
export type TraceEventName =
  | 'delivered' | 'duplicate' | 'rejected' | 'dropped' | 'forwarded'
  | 'connect' | 'disconnect' | 'partitioned' | 'recovered' | 'invalid' | 'stalled';

export interface TraceRecord {
  t: number;
  kind: 'trace';
  event: TraceEventName;
  msg?: string;
  peer?: string;
  to?: string[];
  reason?: string;
  ttl?: number;
  hops?: number;
  via?: 'push' | 'iwant' | 'repair';
}

/** Written when lines had to be dropped because the disk was slower than the traffic. */
export interface LossRecord {
  t: number;
  kind: 'loss';
  /** Frame lines and trace lines dropped since the previous loss line. */
  frames: number;
  traces: number;
  /** Bytes of JSON those lines would have taken. */
  bytes: number;
}

export type DumpRecord = DumpHeader | FrameRecord | TraceRecord | LossRecord;

/** A trace event as the engines report it: the record without time and kind. */
export type TraceEvent = Omit<TraceRecord, 't' | 'kind'>;
