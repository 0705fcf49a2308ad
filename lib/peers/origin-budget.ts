/**
 * Per-origin accept budget: how many new, validly signed gossip messages each origin (the
 * publisher's key, whichever peer relays them) may put through this node per second. A
 * per-peer budget cannot stop one signer flooding unique messages: the flood arrives under
 * every budget of the peer that sends it, and the node then relays it, so its honest
 * neighbours' budgets for this node fill with the flood and they sanction an honest relay.
 * Dropping an origin's excess here, before it is delivered or forwarded, keeps the flood at
 * originPerSecond on every link after the first honest node. Pure bookkeeping over an
 * injected clock, no sockets and no timers.
 *
 * Who calls what: in signed mode (an unsigned origin is not authenticated, so there is no
 * budget to keep), the gossip engine asks its host mayAccept(from, origin) once per unique
 * message whose id it recomputed, before verifying the signature (so the excess costs a
 * hash, not a verification); the network's callback calls allows() with the origin key and,
 * on false, drops the message (counted as origin_budget) and charges the origin's record in
 * the peer ledger, never the relay's. Only a message whose signature then verifies spends
 * the budget (accepted -> spend()): a forged copy claiming an honest origin costs its sender
 * a bad_signature and the origin nothing. This node's own signed broadcasts wait in
 * PublishPacer (below) so that it never exceeds the budget its peers apply to it.
 *
 * At most maxTrackedOrigins budgets: touching one moves it to the back, and creating one
 * more forgets the least recently used (whose next message finds a full bucket again; each
 * message that makes a new origin cost its relay a verification first, within that relay's
 * verification budget). A budget that has refilled and never refused anything is forgotten
 * too (spend() looks at the least recently used one each time): it says no more than an
 * origin never seen, which gets a full bucket. So an honest origin costs memory for about
 * 1/originPerSecond after its message, not for as long as it is among the last
 * maxTrackedOrigins (at 100 origins, 18 KB per node kept for nothing).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import { TokenBucket } from './token-bucket.js';

export interface OriginBudgetOptions {
  /**
   * New messages per second accepted from one origin; 0 turns the per-origin budget off.
   * Default 500: half the per-peer verification budget (1,000/s), so a relay forwarding one
   * flooding origin at this rate stays within its neighbours' budget for it, and above what
   * a PBFT-style node publishes (one message per phase per round, hundreds of rounds a second).
   */
  originPerSecond: number;
  /** Burst, messages. Default 1000. */
  originBurst: number;
  /** Origins tracked at once. Default 10000. */
  maxTrackedOrigins: number;
}

export const ORIGIN_BUDGET_DEFAULTS: Readonly<OriginBudgetOptions> = Object.freeze({
  originPerSecond: 500,
  originBurst: 1000,
  maxTrackedOrigins: 10_000,
});

/** Apply defaults and validate; `prefix` names the option in errors ('scoring'). */
export function resolveOriginBudgetOptions(o: Partial<OriginBudgetOptions> = {}, prefix = 'scoring'): OriginBudgetOptions {
  const d = ORIGIN_BUDGET_DEFAULTS;
  const num = (k: keyof OriginBudgetOptions, min: number): number => {
    const v = (o[k] ?? d[k]) as unknown;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new InvalidOptionError(`${prefix}.${k}`, `expected a number >= ${min}, got ${String(v)}`);
    return v;
  };
  const r = { originPerSecond: num('originPerSecond', 0), originBurst: num('originBurst', 1), maxTrackedOrigins: num('maxTrackedOrigins', 1) };
  if (!Number.isInteger(r.maxTrackedOrigins)) throw new InvalidOptionError(`${prefix}.maxTrackedOrigins`, 'expected an integer');
  return r;
}

interface OriginRecord {
  bucket: TokenBucket;
  excess: number;
}

export class OriginBudget {
  readonly opts: OriginBudgetOptions;
  /** Insertion order is recency: the first entry is the least recently used. */
  private readonly origins = new Map<string, OriginRecord>();
  /** Messages refused, all origins. */
  dropped = 0;
  /** Budgets forgotten to stay within maxTrackedOrigins. */
  evictions = 0;

  constructor(
    private readonly clock: Clock,
    options: Partial<OriginBudgetOptions> = {},
  ) {
    this.opts = resolveOriginBudgetOptions(options);
  }

  get size(): number {
    return this.origins.size;
  }

  /**
   * Whether `origin` (any string key) has a message left in its budget, without spending it.
   * False: over budget, drop the message (counted as excess).
   */
  allows(origin: string): boolean {
    if (this.opts.originPerSecond === 0) return true;
    const r = this.origins.get(origin);
    if (!r || r.bucket.available(this.clock.now()) >= 1) return true;
    this.origins.delete(origin); // most recently used: a flooder is the last to be forgotten
    this.origins.set(origin, r);
    r.excess++;
    this.dropped++;
    return false;
  }

  /** Spend one message of `origin`'s budget (a message that verified). */
  spend(origin: string): void {
    if (this.opts.originPerSecond === 0) return;
    const now = this.clock.now();
    let r = this.origins.get(origin);
    if (r) {
      this.origins.delete(origin);
    } else {
      if (this.origins.size >= this.opts.maxTrackedOrigins) {
        this.origins.delete(this.origins.keys().next().value!);
        this.evictions++;
      }
      r = { bucket: new TokenBucket(this.opts.originPerSecond, this.opts.originBurst, now), excess: 0 };
    }
    this.origins.set(origin, r);
    r.bucket.take(now);
    this.forgetRefilled(now);
  }

  /** Forget the least recently used budget if it is full again and refused nothing (as good as no record). */
  private forgetRefilled(now: number): void {
    const [origin, r] = this.origins.entries().next().value!;
    if (r.excess === 0 && r.bucket.available(now) >= r.bucket.burst) this.origins.delete(origin);
  }

  /** Messages of `origin` refused while it was tracked. */
  excess(origin: string): number {
    return this.origins.get(origin)?.excess ?? 0;
  }

  clear(): void {
    this.origins.clear();
  }
}

/**
 * This node's own side of the per-origin budget: broadcast() waits here so that it never
 * publishes faster than its peers accept from one origin (originPerSecond after a burst of
 * originBurst), so an honest node publishing in a tight loop is slowed rather than dropped
 * and charged by its neighbours. Waiters go in call order. The network calls acquire() in
 * broadcast() and clear() on stop (which lets every waiter go: broadcast then throws STOPPED).
 */
export class PublishPacer {
  private readonly bucket: TokenBucket | undefined;
  private readonly waiting: Array<() => void> = [];
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    options: Partial<OriginBudgetOptions> = {},
  ) {
    const o = resolveOriginBudgetOptions(options);
    // originPerSecond 0: no per-origin budget, nothing to wait for.
    this.bucket = o.originPerSecond > 0 ? new TokenBucket(o.originPerSecond, o.originBurst, clock.now()) : undefined;
  }

  /** Broadcasts waiting for their turn. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Undefined: publish now. Else a promise that resolves when this publish's turn has come. */
  acquire(): Promise<void> | undefined {
    if (!this.bucket) return undefined;
    if (this.waiting.length === 0 && this.bucket.take(this.clock.now())) return undefined;
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (const release of this.waiting.splice(0)) release();
  }

  private schedule(): void {
    if (this.timer || !this.bucket) return;
    const missing = 1 - this.bucket.available(this.clock.now());
    const delayMs = Math.max(1, Math.ceil((missing * 1000) / this.bucket.ratePerSecond));
    this.timer = this.clock.setTimeout(this.release, delayMs);
  }

  private readonly release = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    while (this.waiting.length > 0 && this.bucket!.take(now)) this.waiting.shift()!();
    if (this.waiting.length > 0) this.schedule();
  };
}
