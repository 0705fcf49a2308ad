/**
 * Recent gossip messages kept for lazy repair: a peer that learns of an id by IHAVE fetches
 * the message with IWANT from here. Bounded three ways (age, entries, payload bytes), oldest
 * evicted first; beyond the window a missed message is not recoverable (PROTOCOL.md §Repair).
 */
import type { Gossip } from '../wire/messages.js';

export interface MessageCacheOptions {
  /** Entries older than this are dropped, ms. */
  maxAgeMs: number;
  /** Entry cap; 0 disables the cache (and so repair). */
  maxEntries: number;
  /**
   * Cap on the sum of payload bytes (plus a fixed per-entry overhead); never exceeded: a
   * message too large to fit on its own is not cached (so cannot be repaired).
   */
  maxBytes: number;
}

export interface CacheEntry {
  /** The message as this node forwards it (TTL and hops for the next hop). */
  msg: Gossip;
  /** When it entered the cache (clock ms). */
  at: number;
  /** Bytes charged against maxBytes. */
  bytes: number;
  /** Peers (id hex) known to hold the message: never advertised to again. */
  knownBy: Set<string>;
  /** Times it was sent in answer to IWANT. */
  serves: number;
}

/** Fixed cost charged per entry on top of its payload: ids, seen-by, bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 256;
/** An entry answers at most this many IWANTs: bounds what a peer can make us re-send. */
export const MAX_SERVES_PER_MESSAGE = 32;

export class MessageCache {
  private readonly entries = new Map<string, CacheEntry>();
  /**
   * Keys in insertion (= age) order from `head` on. Entries only ever leave from the old end,
   * so this is exactly the Map's order; it finds the oldest in O(1), where a fresh Map
   * iterator would first walk every slot deleted since the last rehash.
   */
  private order: string[] = [];
  private head = 0;
  /** Entries added since the last takeFresh(), oldest first; evicted ones leave it too. */
  private readonly fresh = new Set<CacheEntry>();
  private totalBytes = 0;
  /** Entries removed by the entry or byte cap before their age ran out, or refused as too large. */
  evictions = 0;

  constructor(private readonly opts: MessageCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Remember a message; a no-op if already present or the cache is disabled. */
  add(msg: Gossip, now: number, knownBy: Iterable<string>): void {
    if (this.opts.maxEntries === 0) return;
    const key = msg.id.toString('latin1');
    if (this.entries.has(key)) return;
    const bytes = msg.payload.length + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.opts.maxBytes) {
      this.evictions++;
      return;
    }
    const entry: CacheEntry = { msg: ownCopy(msg), at: now, bytes, knownBy: new Set(knownBy), serves: 0 };
    this.entries.set(key, entry);
    this.order.push(key);
    this.totalBytes += entry.bytes;
    while (this.entries.size > this.opts.maxEntries || this.totalBytes > this.opts.maxBytes) {
      this.evictOldest();
      this.evictions++;
    }
    this.fresh.add(entry);
  }

  get(id: Uint8Array): CacheEntry | undefined {
    return this.entries.get(Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1'));
  }

  markKnown(id: Uint8Array, peer: string): void {
    this.get(id)?.knownBy.add(peer);
  }

  /** The entry to answer an IWANT with, or undefined if absent or served too often. */
  serve(id: Uint8Array): CacheEntry | undefined {
    const e = this.get(id);
    if (!e || e.serves >= MAX_SERVES_PER_MESSAGE) return undefined;
    e.serves++;
    return e;
  }

  /** Entries added since the last call, oldest first. */
  takeFresh(): CacheEntry[] {
    const f = [...this.fresh];
    this.fresh.clear();
    return f;
  }

  /** Ids of entries added at or after `since` that `peer` is not known to hold, oldest first. */
  idsUnknownTo(peer: string, since: number): Buffer[] {
    const ids: Buffer[] = [];
    for (const e of this.entries.values()) if (e.at >= since && !e.knownBy.has(peer)) ids.push(e.msg.id);
    return ids;
  }

  /** Drop entries older than maxAgeMs. Returns how many. */
  expire(now: number): number {
    let n = 0;
    while (this.head < this.order.length && now - this.entries.get(this.order[this.head]!)!.at >= this.opts.maxAgeMs) {
      this.evictOldest();
      n++;
    }
    return n;
  }

  clear(): void {
    this.entries.clear();
    this.order = [];
    this.head = 0;
    this.fresh.clear();
    this.totalBytes = 0;
  }

  private evictOldest(): void {
    if (this.head >= this.order.length) return;
    const key = this.order[this.head++]!;
    const e = this.entries.get(key)!;
    this.entries.delete(key);
    this.fresh.delete(e);
    this.totalBytes -= e.bytes;
    // Drop consumed slots once they are the larger part of the array: amortised O(1).
    if (this.head >= 1024 && this.head * 2 >= this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The message with every byte field copied into one buffer of its own. A decoded message's
 * fields are views into the socket read they arrived in (up to 64 KiB, shared with other
 * frames): kept for minutes, a view would pin that whole read, and the byte cap, which
 * counts payload bytes, would not bound memory at all.
 */
function ownCopy(msg: Gossip): Gossip {
  let total = msg.id.length + msg.origin.length + msg.payload.length + (msg.signature?.length ?? 0);
  for (const e of msg.seenBy) total += e.length;
  const store = Buffer.allocUnsafeSlow(total);
  let at = 0;
  const copy = (b: Buffer): Buffer => {
    b.copy(store, at);
    at += b.length;
    return store.subarray(at - b.length, at);
  };
  return {
    ...msg,
    id: copy(msg.id),
    origin: copy(msg.origin),
    payload: copy(msg.payload),
    signature: msg.signature === null ? null : copy(msg.signature),
    seenBy: msg.seenBy.map(copy),
  };
}
