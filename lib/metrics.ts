/**
 * Counters for one node. Plain integer fields bumped on the data path; snapshot() copies
 * them for callers. No timers, no allocation per event beyond a map slot per new reason.
 */
import { MESSAGE_TYPE_NAMES } from './wire/messages.js';

/** Why a message was not sent or not processed: keys of `droppedByReason`. */
export type DropReason =
  | 'queue_full'      // the peer's outbound queue was at its byte cap
  | 'not_connected'   // the connection closed before the message could be written
  | 'too_large'       // the encoded message exceeds maxFrameBytes
  | 'ttl_expired'     // a gossip message arrived with no hops left, so it was not forwarded
  | 'send_failed'     // sendToPeer gave up after its retries
  | 'handler_error'   // a subscriber's handler threw
  | 'no_subscriber'   // a direct message or request arrived for a topic nobody here subscribes to
  | 'rate_limited'    // a peer's message over its budget for that type (lib/peers/peer-ledger.ts)
  | 'graylisted'      // GOSSIP, IHAVE, IWANT or FIND_NODE from a graylisted peer, ignored
  | 'verify_budget'   // an unsolicited GOSSIP over its sender's signature-verification budget
  | 'serve_budget'    // an IWANT answer over the asker's serve budget (amplification bound)
  | 'iwant_refused';  // an IWANT for an id not advertised to the asker, or answered 3 times already

export interface MetricsSnapshot {
  /** Protocol messages written to peers, all types. */
  messagesSent: number;
  /** Valid protocol messages received from peers, all types. */
  messagesReceived: number;
  /** Messages lost: sum of droppedByReason. */
  messagesDropped: number;
  connectedPeers: number;
  /** Entries in the gossip seen-cache now. */
  seenMessages: number;
  /** Bytes written to sockets, 4-byte frame headers included. */
  bytesSent: number;
  /** Bytes read from sockets that formed frames, headers included. */
  bytesReceived: number;
  /** Gossip and direct messages handed to local subscribers. */
  delivered: number;
  /** Gossip copies received for a message already seen. */
  duplicatesReceived: number;
  /** Gossip copies sent to peers (origin sends + forwards + repair replies). */
  gossipSent: number;
  sentByType: Record<string, number>;
  receivedByType: Record<string, number>;
  droppedByReason: Record<string, number>;
  /** Messages and connections rejected because of what a peer sent, by error code. */
  invalidByReason: Record<string, number>;
  /** Peers banned for misbehaviour (score at or below scoring.banScore) since start. */
  peersBanned: number;
}

export class Metrics {
  messagesSent = 0;
  messagesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  delivered = 0;
  duplicatesReceived = 0;
  gossipSent = 0;
  peersBanned = 0;
  private readonly sentByType = new Map<number, number>();
  private readonly receivedByType = new Map<number, number>();
  private readonly droppedByReason = new Map<string, number>();
  private readonly invalidByReason = new Map<string, number>();

  frameOut(type: number, frameBytes: number): void {
    this.messagesSent++;
    this.bytesSent += frameBytes;
    this.sentByType.set(type, (this.sentByType.get(type) ?? 0) + 1);
  }

  frameIn(type: number, frameBytes: number): void {
    this.messagesReceived++;
    this.bytesReceived += frameBytes;
    this.receivedByType.set(type, (this.receivedByType.get(type) ?? 0) + 1);
  }

  /** Bytes that arrived but did not make a valid message (still on the wire). */
  rawIn(bytes: number): void {
    this.bytesReceived += bytes;
  }

  drop(reason: DropReason, count = 1): void {
    this.droppedByReason.set(reason, (this.droppedByReason.get(reason) ?? 0) + count);
  }

  invalid(reason: string): void {
    this.invalidByReason.set(reason, (this.invalidByReason.get(reason) ?? 0) + 1);
  }

  dropped(reason: DropReason): number {
    return this.droppedByReason.get(reason) ?? 0;
  }

  snapshot(live: { connectedPeers: number; seenMessages: number }): MetricsSnapshot {
    const byName = (m: Map<number, number>) =>
      Object.fromEntries([...m].map(([t, n]) => [MESSAGE_TYPE_NAMES[t] ?? String(t), n]));
    let messagesDropped = 0;
    for (const n of this.droppedByReason.values()) messagesDropped += n;
    return {
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      messagesDropped,
      connectedPeers: live.connectedPeers,
      seenMessages: live.seenMessages,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      delivered: this.delivered,
      duplicatesReceived: this.duplicatesReceived,
      gossipSent: this.gossipSent,
      sentByType: byName(this.sentByType),
      receivedByType: byName(this.receivedByType),
      droppedByReason: Object.fromEntries(this.droppedByReason),
      invalidByReason: Object.fromEntries(this.invalidByReason),
      peersBanned: this.peersBanned,
    };
  }
}
