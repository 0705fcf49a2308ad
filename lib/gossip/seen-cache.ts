/**
 * The gossip dedup cache: message ids remembered for ttlMs, with a hard entry cap so memory
 * stays bounded under a flood (oldest evicted first). Pure: time from the injected clock, no
 * timers; cleanup() is called from the heartbeat.
 *
 * Keys are the id bytes as a latin1 string: one byte per char, no hex conversion on the hot
 * path, and a string key lets a Map hash it.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';

export interface SeenCacheOptions {
  /** How long an id is remembered, ms. An entry is expired once now - firstSeen >= ttlMs. */
  ttlMs: number;
  /** Hard cap on entries. */
  maxEntries: number;
}

export const DEFAULT_SEEN_TTL_MS = 300_000;
export const DEFAULT_SEEN_MAX_ENTRIES = 100_000;

/** Entries expired per add(), so expiry keeps pace between heartbeats. */
const EXPIRE_PER_ADD = 2;

export class SeenCache {
  private readonly map = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private evicted = 0;
  private expiredCount = 0;

  constructor(private readonly clock: Clock, options: Partial<SeenCacheOptions> = {}) {
    const ttl = options.ttlMs ?? DEFAULT_SEEN_TTL_MS;
    const max = options.maxEntries ?? DEFAULT_SEEN_MAX_ENTRIES;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new InvalidOptionError('seenTtlMs', `expected a positive number, got ${ttl}`);
    if (!Number.isInteger(max) || max < 1) throw new InvalidOptionError('maxSeenEntries', `expected a positive integer, got ${max}`);
    this.ttlMs = ttl;
    this.maxEntries = max;
  }

  get size(): number {
    return this.map.size;
  }
  /** Entries removed by the cap before their TTL. */
  get evictions(): number {
    return this.evicted;
  }
  /** Entries removed by expiry, total. */
  get expired(): number {
    return this.expiredCount;
  }

  has(id: Uint8Array): boolean {
    const t = this.map.get(key(id));
    return t !== undefined && this.clock.now() - t < this.ttlMs;
  }

  /** Record id; true if it was new (an expired entry counts as new). First-seen time is kept. */
  add(id: Uint8Array): boolean {
    const now = this.clock.now();
    this.expire(now, EXPIRE_PER_ADD);
    const k = key(id);
    const t = this.map.get(k);
    if (t !== undefined) {
      if (now - t < this.ttlMs) return false;
      this.map.delete(k);
    }
    if (this.map.size >= this.maxEntries) {
      this.map.delete(this.map.keys().next().value as string);
      this.evicted++;
    }
    this.map.set(k, now);
    return true;
  }

  /** Drop expired entries; returns how many. */
  cleanup(): number {
    return this.expire(this.clock.now(), Infinity);
  }

  clear(): void {
    this.map.clear();
  }

  private expire(now: number, max: number): number {
    let n = 0;
    for (const [k, t] of this.map) {
      if (n >= max || now - t < this.ttlMs) break; // insertion order is time order
      this.map.delete(k);
      n++;
    }
    this.expiredCount += n;
    return n;
  }
}

function key(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1');
}
