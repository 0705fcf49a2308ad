/**
 * What the simulator observes of gossip: which node delivered which published message, when,
 * after how many hops, and every delivery that does not match a published message (forged or
 * tampered content reaching an application). Bounded by messages x nodes bits plus a hop
 * histogram; a running digest of every delivery makes two runs comparable event for event.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { DeliveryInfo } from '../gossip/engine.js';
import { LIMITS } from '../wire/messages.js';

interface Published {
  index: number;
  payload: Buffer;
  at: number;
  origin: number;
  /** delivered[node] = 1 once node delivered it. */
  delivered: Uint8Array;
  honestDeliveries: number;
  /** Virtual time of the latest first delivery at an honest node, ms (hostile nodes' deliveries do not count: time to full delivery is about honest nodes). */
  lastAt: number;
}

/** Delays are counted per whole ms up to this, longer ones in one last bucket (10 minutes). */
const MAX_DELAY_BUCKET_MS = 600_000;

export class DeliveryRecorder {
  private readonly byId = new Map<string, Published>();
  readonly published: Published[] = [];
  deliveries = 0;
  honestDeliveries = 0;
  forgedDelivered = 0;
  duplicateDeliveries = 0;
  readonly hops = new Float64Array(LIMITS.maxHops + 1);
  /** First deliveries by delay from publication, whole virtual ms (the last bucket: that long or longer). */
  private readonly delays = new Float64Array(MAX_DELAY_BUCKET_MS + 1);
  private readonly digest: Hash = createHash('sha256');

  constructor(private readonly nodes: number, private readonly isHonest: (node: number) => boolean) {}

  /** A message was published: remember its genuine content. */
  publish(idHex: string, payload: Buffer, origin: number, at: number): void {
    const p: Published = { index: this.published.length, payload: Buffer.from(payload), at, origin, delivered: new Uint8Array(this.nodes), honestDeliveries: 0, lastAt: at };
    this.byId.set(idHex, p);
    this.published.push(p);
  }

  /** A node's engine handed a message to the application. */
  deliver(node: number, payload: Buffer, info: DeliveryInfo, at: number): void {
    this.digest.update(`${at} ${node} ${info.id} ${info.hops}\n`);
    const p = this.byId.get(info.id);
    if (!p || !p.payload.equals(payload)) {
      this.forgedDelivered++;
      return;
    }
    if (p.delivered[node] === 1) {
      this.duplicateDeliveries++;
      return;
    }
    p.delivered[node] = 1;
    this.deliveries++;
    if (this.isHonest(node)) {
      this.honestDeliveries++;
      p.honestDeliveries++;
      if (at > p.lastAt) p.lastAt = at;
    }
    this.hops[Math.min(info.hops, LIMITS.maxHops)]!++;
    this.delays[Math.min(Math.floor(at - p.at), MAX_DELAY_BUCKET_MS)]!++;
  }

  /** Median, 99th percentile and max of the first deliveries' delay from publication, whole virtual ms; null before any. */
  delayStats(): { p50: number; p99: number; max: number } | null {
    if (this.deliveries === 0) return null;
    const at = (q: number) => {
      const rank = Math.ceil(q * this.deliveries);
      let acc = 0;
      for (let ms = 0; ms < this.delays.length; ms++) if ((acc += this.delays[ms]!) >= rank) return ms;
      return MAX_DELAY_BUCKET_MS;
    };
    return { p50: at(0.5), p99: at(0.99), max: at(1) };
  }

  /** Hex digest of every delivery so far (time, node, id, hops), in order. */
  traceDigest(): string {
    return this.digest.copy().digest('hex');
  }

  /** Mean, 99th percentile and max of the hop counts of first deliveries. */
  hopStats(): { mean: number; p99: number; max: number } {
    let n = 0;
    let sum = 0;
    let max = 0;
    this.hops.forEach((c, h) => {
      n += c;
      sum += c * h;
      if (c > 0) max = h;
    });
    if (n === 0) return { mean: 0, p99: 0, max: 0 };
    const rank = Math.ceil(0.99 * n);
    let acc = 0;
    let p99 = 0;
    for (let h = 0; h < this.hops.length; h++) {
      acc += this.hops[h]!;
      if (acc >= rank) {
        p99 = h;
        break;
      }
    }
    return { mean: round(sum / n, 3), p99, max };
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
