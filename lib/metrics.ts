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
  | 'send_timeout'    // sendToPeer's timeoutMs ran out before the ACK (the peer may still get it)
  | 'send_aborted'    // sendToPeer's AbortSignal fired before the ACK (the peer may still get it)
  | 'rate_limited'    // a peer's message over its budget for that type (lib/peers/peer-ledger.ts)
  | 'graylisted'      // GOSSIP, IHAVE, IWANT or FIND_NODE from a graylisted peer, ignored
  | 'verify_budget'   // an unsolicited GOSSIP over its sender's signature-verification budget
  | 'serve_budget'    // an IWANT answer over the asker's serve budget (amplification bound)
  | 'origin_budget'   // a new gossip message over its origin's rate (lib/peers/origin-budget.ts)
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
  /** Dials that did not end in a connection (peer:dial-failed), by error code. */
  dialFailuresByCode: Record<string, number>;
}

/**
 * A cumulative histogram with fixed upper bounds, as Prometheus defines one: counts[i] holds
 * observations <= bounds[i] and above bounds[i - 1]; the last slot is +Inf. O(buckets) per
 * observation, no allocation.
 */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per bound, +Inf last (what the `le` buckets of the text format carry). */
  cumulative(): number[] {
    let run = 0;
    return this.counts.map((n) => (run += n));
  }
}

/** Hop-count buckets: gossip reaches 10,000 nodes in about 8 hops (docs/SCALE.md). */
export const HOPS_BUCKETS: readonly number[] = Object.freeze([1, 2, 3, 4, 5, 6, 8, 10, 16, 32]);
/** Round-trip buckets, seconds: loopback (sub-ms) to intercontinental with queueing (seconds). */
export const SECONDS_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
/** Topics with a label of their own; later topics share the label 'other'. */
export const MAX_TOPIC_LABELS = 32;
/** The label of topics beyond MAX_TOPIC_LABELS. */
export const OTHER_TOPIC = 'other';

/**
 * Per-topic delivery counts and hop histograms. The first MAX_TOPIC_LABELS topics delivered
 * keep their own label for the node's lifetime (a counter's label never moves, so rates stay
 * right); later ones are summed under 'other', so a peer cannot grow the series count by
 * inventing topics.
 */
export class TopicStats {
  private readonly byTopic = new Map<string, { delivered: number; hops: Histogram }>();

  private entry(topic: string): { delivered: number; hops: Histogram } {
    let e = this.byTopic.get(topic);
    if (e) return e;
    const key = this.byTopic.size < MAX_TOPIC_LABELS ? topic : OTHER_TOPIC;
    e = this.byTopic.get(key);
    if (!e) this.byTopic.set(key, (e = { delivered: 0, hops: new Histogram(HOPS_BUCKETS) }));
    return e;
  }

  /** One message handed to subscribers; `hops` only for gossip received from the network. */
  delivered(topic: string, hops: number | undefined): void {
    const e = this.entry(topic);
    e.delivered++;
    if (hops !== undefined) e.hops.observe(hops);
  }

  /** Every labelled topic, in the order first seen ('other' where it fell). */
  entries(): Array<[topic: string, delivered: number, hops: Histogram]> {
    return [...this.byTopic].map(([t, e]) => [t, e.delivered, e.hops]);
  }
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
  private readonly dialFailuresByCode = new Map<string, number>();
  /** Deliveries and hops by topic (bounded labels). */
  readonly topics = new TopicStats();
  /** sendToPeer: seconds from writing the DIRECT to its ACK, for the attempt that was acknowledged. */
  readonly directAckSeconds = new Histogram(SECONDS_BUCKETS);
  /** PING to PONG, seconds; fed through observeRtt() for each PONG. */
  readonly peerRttSeconds = new Histogram(SECONDS_BUCKETS);

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

  /** A dial that did not end in a connection. */
  dialFailed(code: string): void {
    this.dialFailuresByCode.set(code, (this.dialFailuresByCode.get(code) ?? 0) + 1);
  }

  /** A PING round trip, ms. */
  observeRtt(ms: number): void {
    this.peerRttSeconds.observe(ms / 1000);
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
      dialFailuresByCode: Object.fromEntries(this.dialFailuresByCode),
    };
  }
}
