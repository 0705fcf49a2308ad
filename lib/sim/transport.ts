/**
 * The simulator's in-memory transport: frames between endpoints, over the virtual clock. It
 * carries frame bodies exactly as TCP would (the sender encoded them with the wire codec and
 * the receiver decodes them), and charges each frame its body plus the 4-byte header.
 *
 * Link model: a per-pair latency (fixed part plus a seeded random part, constant for a pair,
 * so each link stays FIFO like a TCP stream), an independent loss probability per frame,
 * partitions (endpoints in different groups cannot reach each other while a partition is
 * active) and endpoints that are down (crashed: frames to them are lost).
 *
 * A partition holds frames rather than losing them, as TCP does: a frame sent across it on
 * an open connection is delivered, in order, once the partition heals, if the receiver still
 * has that same connection then; a connection closed meanwhile (the partition monitor timed
 * it out) takes its unsent bytes with it.
 */
import type { Metrics } from '../metrics.js';
import { seededRandom } from '../random.js';
import { FRAME_HEADER_BYTES } from '../wire/frame.js';
import type { VirtualClock } from './virtual-clock.js';

/** What the transport needs from a simulated node. */
export interface Endpoint {
  /** Position in the network, 0-based. */
  readonly index: number;
  /** False while crashed. */
  readonly up: boolean;
  readonly metrics: Metrics;
  /** A frame body arrived from endpoint `from`. */
  receive(from: number, type: number, body: Buffer): void;
  /** The receiver's open connection to `from` (any object that is replaced when it reconnects), or undefined. */
  connectionTo(from: number): object | undefined;
}

export interface LinkModel {
  /** One-way latency every link has, ms. */
  latencyMs: number;
  /** Extra one-way latency, uniform in [0, jitterMs), drawn once per pair from the seed, ms. */
  jitterMs: number;
  /** Probability that a frame is lost, 0..1. */
  loss: number;
}

/** Frame counters of the whole network (per-node ones are in each node's Metrics). */
export interface TransportStats {
  framesSent: number;
  framesLost: number;
  framesUnreachable: number;
  /** Frames held by a partition and delivered after it healed. */
  framesHeld: number;
  /** Bytes sent (headers included), indexed by message type code (0..255). */
  bytesByType: Float64Array;
  /** Frames sent, indexed by message type code (0..255). */
  framesByType: Float64Array;
}

export class SimTransport {
  readonly stats: TransportStats = { framesSent: 0, framesLost: 0, framesUnreachable: 0, framesHeld: 0, bytesByType: new Float64Array(256), framesByType: new Float64Array(256) };
  private readonly lossRandom: () => number;
  /** Group of each endpoint while a partition is active; undefined when whole. */
  private groups: Int32Array | undefined;
  /** Frames waiting for the partition to heal, in the order they reached it. */
  private held: Array<{ from: number; to: Endpoint; type: number; body: Buffer; bytes: number; connection: object }> = [];

  constructor(
    private readonly clock: VirtualClock,
    private readonly endpoints: readonly Endpoint[],
    private readonly model: LinkModel,
    private readonly seed: number,
  ) {
    this.lossRandom = seededRandom(seed ^ 0x5eed1055);
    clock.onFrame = (from, to, type, body) => this.land(from, this.endpoints[to]!, type, body);
  }

  /** Split the network: `groups[i]` is endpoint i's group. */
  partition(groups: Int32Array): void {
    this.groups = groups;
  }

  /** End the partition: held frames go on, each after its link's latency, if their connection survived. */
  heal(): void {
    this.groups = undefined;
    const held = this.held;
    this.held = [];
    for (const h of held) {
      this.clock.setTimeout(() => {
        if (this.reachable(h.from, h.to.index) && h.to.connectionTo(h.from) === h.connection) {
          this.stats.framesHeld++;
          this.arrive(h.from, h.to, h.type, h.body, h.bytes);
        } else {
          this.stats.framesUnreachable++;
        }
      }, this.latency(h.from, h.to.index));
    }
  }

  get partitioned(): boolean {
    return this.groups !== undefined;
  }

  /** Whether a frame from a to b would arrive now (both up, same side of any partition). */
  reachable(a: number, b: number): boolean {
    const ea = this.endpoints[a];
    const eb = this.endpoints[b];
    if (!ea?.up || !eb?.up) return false;
    return this.groups === undefined || this.groups[a] === this.groups[b];
  }

  /** One-way latency between a and b, ms: the same both ways and for the whole run. */
  latency(a: number, b: number): number {
    if (this.model.jitterMs === 0) return this.model.latencyMs;
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    return this.model.latencyMs + Math.floor(pairUnit(this.seed, lo, hi) * this.model.jitterMs);
  }

  /**
   * Queue a frame body from `from` to `to`. It is charged to the sender now and delivered
   * after the pair's latency, unless lost or the receiver is unreachable when it arrives.
   */
  send(from: Endpoint, to: Endpoint, type: number, body: Buffer): boolean {
    if (!from.up) return false;
    const bytes = body.length + FRAME_HEADER_BYTES;
    from.metrics.frameOut(type, bytes);
    const s = this.stats;
    s.framesSent++;
    s.bytesByType[type & 255]! += bytes;
    s.framesByType[type & 255]!++;
    if (this.model.loss > 0 && this.lossRandom() < this.model.loss) {
      s.framesLost++;
      return true; // the sender cannot tell: the frame left its queue
    }
    // No object per frame in flight (VirtualClock.scheduleFrame).
    this.clock.scheduleFrame(this.clock.now() + this.latency(from.index, to.index), from.index, to.index, type, body);
    return true;
  }

  /** A frame's latency has passed: deliver it, hold it at a partition, or lose it. */
  private land(from: number, to: Endpoint, type: number, body: Buffer): void {
    const bytes = body.length + FRAME_HEADER_BYTES;
    if (this.reachable(from, to.index)) return this.arrive(from, to, type, body, bytes);
    const connection = this.groups && this.endpoints[from]!.up && to.up ? to.connectionTo(from) : undefined;
    if (connection) this.held.push({ from, to, type, body, bytes, connection });
    else this.stats.framesUnreachable++;
  }

  private arrive(from: number, to: Endpoint, type: number, body: Buffer, bytes: number): void {
    to.metrics.frameIn(type, bytes);
    to.receive(from, type, body);
  }
}

/** A uniform number in [0, 1) fixed by (seed, a, b): a 32-bit integer hash, no state. */
export function pairUnit(seed: number, a: number, b: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ a, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}
