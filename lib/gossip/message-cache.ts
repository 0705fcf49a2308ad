/**
 * Recent gossip messages kept for lazy repair: a peer that learns of an id by IHAVE fetches
 * the message with IWANT from here. Bounded three ways (age, entries, payload bytes), oldest
 * evicted first; beyond the window a missed message is not recoverable (PROTOCOL.md §Repair).
 */
import { decodeMessage, encodeMessage } from '../wire/codec.js';
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
  /** The message id (32 bytes). */
  id: Buffer;
  /**
   * The GOSSIP body as this node forwards it (TTL, hops and seen-by for the next hop),
   * encoded: one buffer of the cache's own instead of a decoded message and its many
   * small views. `cachedMessage()` decodes it.
   */
  body: Buffer;
  /** TTL in `body`: an entry kept after its TTL ran out (0) is served with TTL 1. */
  ttl: number;
  /** When it entered the cache (clock ms). */
  at: number;
  /** Bytes charged against maxBytes. */
  bytes: number;
  /**
   * Peers (id hex) known to hold the message: never advertised to again. Also the peers an
   * IWANT for it is answered to: those we pushed it or advertised it to (and those it came
   * from or that advertised it to us, which hold it already).
   */
  knownBy: Set<string>;
  /** Times it was sent in answer to IWANT, per peer (id hex); created on the first answer. */
  servedTo: Map<string, number> | undefined;
}

/** Fixed cost charged per entry on top of its payload: ids, seen-by, bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 256;
/**
 * An entry answers at most this many IWANTs from one peer (gossipsub's GossipRetransmission):
 * bounds what a peer can make us re-send, and, counted per peer, lets no peer use up what
 * others need.
 */
export const MAX_SERVES_PER_PEER = 3;

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
  private readonly store = new SlabStore();
  /** Entries removed by the entry or byte cap before their age ran out, or refused as too large. */
  evictions = 0;

  constructor(private readonly opts: MessageCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Remember a message; a no-op if already present or the cache is disabled. `body` is its
   * encoding when the caller has it already (it is copied, never kept as given).
   */
  add(msg: Gossip, now: number, knownBy: Iterable<string>, body?: Buffer): void {
    if (this.opts.maxEntries === 0) return;
    const key = msg.id.toString('latin1');
    if (this.entries.has(key)) return;
    const bytes = msg.payload.length + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.opts.maxBytes) {
      this.evictions++;
      return;
    }
    const own = { id: this.store.copy(msg.id), body: this.store.copy(body ?? encodeMessage(msg)) };
    const entry: CacheEntry = { id: own.id, body: own.body, ttl: msg.ttl, at: now, bytes, knownBy: new Set(knownBy), servedTo: undefined };
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

  /**
   * Whether an IWANT from `peer` for this entry may be answered: the peer is in knownBy (we
   * pushed or advertised it to that peer) and was answered fewer than `maxPerPeer` times.
   */
  mayServe(e: CacheEntry, peer: string, maxPerPeer = MAX_SERVES_PER_PEER): 'ok' | 'unadvertised' | 'exhausted' {
    if (!e.knownBy.has(peer)) return 'unadvertised';
    return (e.servedTo?.get(peer) ?? 0) >= maxPerPeer ? 'exhausted' : 'ok';
  }

  /** Count one IWANT answer of `e` to `peer`. */
  served(e: CacheEntry, peer: string): void {
    (e.servedTo ??= new Map()).set(peer, (e.servedTo.get(peer) ?? 0) + 1);
  }

  /** Entries added since the last call, oldest first. */
  takeFresh(): CacheEntry[] {
    const f = [...this.fresh];
    this.fresh.clear();
    return f;
  }

  /** Entries added at or after `since` that `peer` is not known to hold, oldest first. */
  unknownTo(peer: string, since: number): CacheEntry[] {
    const out: CacheEntry[] = [];
    for (const e of this.entries.values()) if (e.at >= since && !e.knownBy.has(peer)) out.push(e);
    return out;
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
 * Bytes of one storage slab. Entries are copied into slabs one after another; since entries
 * leave oldest first, a slab is released (garbage collected) once its last entry has gone,
 * so at most about two slabs are partly dead at any time. One standalone buffer per entry
 * would cost several hundred bytes of allocator and ArrayBuffer overhead per message.
 */
const SLAB_BYTES = 64 * 1024;

/**
 * Copies of cached ids and bodies, in slabs of the cache's own. Encoded bodies come from
 * msgpackr's shared output blocks and ids from socket reads (up to 64 KiB, shared with other
 * frames): kept for minutes, a view would pin that whole block or read, and the byte cap would
 * not bound memory at all.
 */
class SlabStore {
  private slab = Buffer.alloc(0);
  private used = 0;

  copy(src: Buffer): Buffer {
    const n = src.length;
    if (n > SLAB_BYTES / 4) return Buffer.from(src); // large: a buffer of its own
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    src.copy(this.slab, this.used);
    this.used += n;
    return this.slab.subarray(this.used - n, this.used);
  }
}

/** The cached message, decoded (for an IWANT answer that must change its TTL, and for tests). */
export function cachedMessage(entry: CacheEntry): Gossip {
  return decodeMessage(entry.body) as Gossip;
}
