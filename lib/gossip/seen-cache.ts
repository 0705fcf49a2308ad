/**
 * The gossip dedup cache: which message ids this node has already seen. An id is remembered
 * for `ttlMs` from the moment it was first seen; a hard entry cap bounds memory under a flood
 * (the oldest entry is evicted first). Pure: time comes from the injected clock's now(), it
 * owns no timers, and `cleanup()` is called from the network's heartbeat.
 *
 * Keys are the id bytes decoded as latin1: one char per byte (a 32-char string for a SHA-256
 * id), a bijection so distinct ids never collide, and several times cheaper than hex. A
 * string key lets the Map hash by value, which a Buffer key would not.
 *
 * A Map iterates in insertion order, and an entry is only ever inserted at the current time
 * (re-adding never moves a live entry), so its order is first-seen order: the oldest entry
 * is always first. This relies on the clock being monotonic, as `Clock.now()` promises.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError, P2PError } from '../errors.js';

export interface SeenCacheOptions {
  /**
   * How long an id is remembered after it was first seen, ms; > 0. An entry first seen at t
   * is live for now in [t, t + ttlMs) and expired from t + ttlMs on, exactly at the boundary
   * included. Default `DEFAULT_SEEN_TTL_MS`. (The network option is `seenTtlMs`.)
   */
  ttlMs: number;
  /**
   * Hard cap on entries, an integer >= 1; at the cap, adding evicts the oldest entry.
   * Default `DEFAULT_SEEN_MAX_ENTRIES`. (The network option is `maxSeenEntries`.)
   */
  maxEntries: number;
}

/**
 * Default id lifetime, ms: 5 minutes, far longer than a message takes to cross the network
 * (TTL hops times per-hop latency), so a late duplicate is still recognised.
 */
export const DEFAULT_SEEN_TTL_MS = 300_000;

/**
 * Default entry cap: bounds memory under a flood (about 100 bytes per entry, so roughly
 * 10 MB) while holding 5 minutes of traffic at over 300 messages a second.
 */
export const DEFAULT_SEEN_MAX_ENTRIES = 100_000;

/**
 * Expired entries dropped per add(), at most. Above 1, so expiry outpaces insertion and a
 * backlog drains between heartbeats; small, so add() stays O(1).
 */
const EXPIRE_PER_ADD = 2;

export class SeenCache {
  /** How long an id is remembered, ms. */
  readonly ttlMs: number;
  /** Hard cap on entries. */
  readonly maxEntries: number;
  private readonly clock: Clock;
  /** latin1 key of the id -> first-seen time (clock ms). */
  private readonly firstSeen = new Map<string, number>();
  /**
   * Keys in first-seen order, with their time, read from `head` on: the oldest entry without
   * iterating the Map. (A Map iterator started afresh walks over every slot deleted since the
   * table was last rehashed: at the cap, or once entries expire, "delete the first entry" that
   * way costs O(entries) per add, not O(1).) A slot whose time no longer matches the Map is
   * stale (its key was deleted, or re-added with a new life) and is skipped.
   */
  private order: string[] = [];
  private orderTimes: number[] = [];
  private head = 0;
  private evictedTotal = 0;
  private expiredTotal = 0;

  /** Throws InvalidOptionError naming `seenTtlMs` or `maxSeenEntries`, the network options that feed it. */
  constructor(clock: Clock, options: Partial<SeenCacheOptions> = {}) {
    const ttlMs = options.ttlMs ?? DEFAULT_SEEN_TTL_MS;
    const maxEntries = options.maxEntries ?? DEFAULT_SEEN_MAX_ENTRIES;
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new InvalidOptionError('seenTtlMs', `expected a finite number > 0, got ${String(ttlMs)}`);
    }
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidOptionError('maxSeenEntries', `expected an integer >= 1, got ${String(maxEntries)}`);
    }
    this.clock = clock;
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
  }

  /** Entries held now, expired ones not yet dropped included. */
  get size(): number {
    return this.firstSeen.size;
  }

  /** Entries removed by the cap before they expired, total since construction. */
  get evictions(): number {
    return this.evictedTotal;
  }

  /** Entries removed because they expired, total since construction. */
  get expired(): number {
    return this.expiredTotal;
  }

  /** True if `id` was seen and has not expired. Reads only: drops nothing. */
  has(id: Uint8Array): boolean {
    return this.hasKey(keyOf(id));
  }

  /** has() for an id already turned into its key (the id's 32 bytes as a latin1 string). */
  hasKey(key: string): boolean {
    const seenAt = this.firstSeen.get(key);
    return seenAt !== undefined && this.clock.now() - seenAt < this.ttlMs;
  }

  /** hasKey() at clock time `now` (a caller checking many ids reads the clock once). */
  hasKeyAt(key: string, now: number): boolean {
    const seenAt = this.firstSeen.get(key);
    return seenAt !== undefined && now - seenAt < this.ttlMs;
  }

  /**
   * Record `id`; returns true if it was new (an expired entry counts as new and starts a new
   * life). Re-adding a live id returns false and keeps its first-seen time: duplicates do
   * not extend its life. At the cap, the oldest entry is removed first.
   */
  add(id: Uint8Array): boolean {
    return this.addKey(keyOf(id));
  }

  /**
   * add() for an id already turned into its key. The engine passes the key it computed for
   * the copy, which its message cache keeps too: one string per message, not two.
   */
  addKey(key: string): boolean {
    const now = this.clock.now();
    this.expire(now, EXPIRE_PER_ADD);
    const seenAt = this.firstSeen.get(key);
    if (seenAt !== undefined) {
      if (now - seenAt < this.ttlMs) return false;
      // Expired but not yet dropped: delete so the new life is inserted at the end.
      this.firstSeen.delete(key);
      this.expiredTotal++;
    }
    if (this.firstSeen.size >= this.maxEntries) this.removeOldest(now);
    this.firstSeen.set(key, now);
    this.order.push(key);
    this.orderTimes.push(now);
    return true;
  }

  /**
   * Drop every expired entry, oldest first, stopping at the first live one. Returns how many
   * were dropped. Called from the heartbeat.
   */
  cleanup(): number {
    return this.expire(this.clock.now(), Infinity);
  }

  /** Forget every id. The `evictions` and `expired` totals are kept: they are lifetime counters. */
  clear(): void {
    this.firstSeen.clear();
    this.order = [];
    this.orderTimes = [];
    this.head = 0;
  }

  /** Drop up to `limit` expired entries from the old end; returns how many. */
  private expire(now: number, limit: number): number {
    let dropped = 0;
    // Times in `order` never decrease, so while the oldest slot, stale or not, has not expired,
    // nothing has: the common case (add() at a steady rate) costs no Map lookup. Then the
    // oldest live slot (skipStale) is looked at again.
    while (dropped < limit && this.headExpired(now) && this.skipStale() && this.headExpired(now)) {
      this.firstSeen.delete(this.order[this.head]!);
      this.head++;
      dropped++;
    }
    this.expiredTotal += dropped;
    this.compact();
    return dropped;
  }

  /** Make room at the cap; the oldest entry counts as expired if it was, else as evicted. */
  private removeOldest(now: number): void {
    if (!this.skipStale()) return;
    this.firstSeen.delete(this.order[this.head]!);
    if (now - this.orderTimes[this.head]! < this.ttlMs) this.evictedTotal++;
    else this.expiredTotal++;
    this.head++;
  }

  /** The slot at `head` exists and has expired at `now`. */
  private headExpired(now: number): boolean {
    return this.head < this.order.length && now - this.orderTimes[this.head]! >= this.ttlMs;
  }

  /** Move `head` past stale slots; true if it then points at the oldest live entry. */
  private skipStale(): boolean {
    while (this.head < this.order.length && this.firstSeen.get(this.order[this.head]!) !== this.orderTimes[this.head]) this.head++;
    return this.head < this.order.length;
  }

  /** Drop consumed slots once they are the larger part of the arrays: amortised O(1). */
  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.order.length) return;
    this.order = this.order.slice(this.head);
    this.orderTimes = this.orderTimes.slice(this.head);
    this.head = 0;
  }
}

/** The Map key for an id: its bytes as latin1, without copying them first. */
function keyOf(id: Uint8Array): string {
  if (Buffer.isBuffer(id)) return id.toString('latin1');
  if (!(id instanceof Uint8Array)) throw P2PError.invalidArgument('message id must be a Uint8Array');
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}
