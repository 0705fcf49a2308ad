/**
 * Recent gossip messages kept for lazy repair: a peer that learns of an id by IHAVE fetches
 * the message with IWANT from here. Bounded three ways (age, entries, payload bytes), oldest
 * evicted first; beyond the window a missed message is not recoverable (PROTOCOL.md §Repair).
 */
import { decodeMessage } from '../wire/codec.js';
import { GOSSIP_ID_OFFSET, GOSSIP_TTL_OFFSET } from '../wire/gossip-envelope.js';
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
  /**
   * Where the GOSSIP body as this node forwards it (TTL, hops and seen-by for the next hop)
   * lies, encoded, in one of the cache's own slabs: `length` bytes at `offset` of `slab`.
   * Read it with entryBody(); `cachedMessage()` decodes it. Offsets rather than a Buffer view:
   * a view is about 100 bytes of heap, kept for every cached message in every node.
   */
  slab: ArrayBufferLike;
  offset: number;
  length: number;
  /** TTL in the body: an entry kept after its TTL ran out (0) is served with TTL 1. */
  ttl: number;
  /** When it entered the cache (clock ms). */
  at: number;
  /** Bytes charged against maxBytes. */
  bytes: number;
  /**
   * Peers known to hold the message, by slot (peer-slots.ts): bit s of `known` for slots
   * 0..KNOWN_BITS-1, then KNOWN_BITS slots per word of `knownMore` (created when needed).
   * Never advertised to again. Also the peers an IWANT for it is answered to: those we pushed
   * it or advertised it to (and those it came from or that advertised it to us, which hold it
   * already). Read and change it with isKnown / setKnown / clearKnown.
   */
  known: number;
  knownMore: number[] | undefined;
  /** Times it was sent in answer to IWANT, per peer slot; created on the first answer. */
  servedTo: Map<number, number> | undefined;
}

/** The entry's encoded GOSSIP body: a new view into its slab (see CacheEntry.slab). */
export function entryBody(e: CacheEntry): Buffer {
  return Buffer.from(e.slab, e.offset, e.length);
}

/** The entry's message id: a new 32-byte view into its slab (an advertisement needs it briefly). */
export function entryId(e: CacheEntry): Buffer {
  return Buffer.from(e.slab, e.offset + GOSSIP_ID_OFFSET, 32);
}

/** Slots per word of a knownBy bitset: 30 keeps every word a small integer (no boxed number). */
const KNOWN_BITS = 30;

/** Whether the peer in `slot` is known to hold the entry's message (a negative slot never is). */
export function isKnown(e: CacheEntry, slot: number): boolean {
  if (slot < 0) return false;
  if (slot < KNOWN_BITS) return (e.known & (1 << slot)) !== 0;
  const w = e.knownMore?.[Math.floor(slot / KNOWN_BITS) - 1];
  return w !== undefined && (w & (1 << slot % KNOWN_BITS)) !== 0;
}

/** Record that the peer in `slot` holds the entry's message. */
export function setKnown(e: CacheEntry, slot: number): void {
  if (slot < KNOWN_BITS) {
    e.known |= 1 << slot;
    return;
  }
  const more = (e.knownMore ??= []);
  const i = Math.floor(slot / KNOWN_BITS) - 1;
  while (more.length <= i) more.push(0);
  more[i]! |= 1 << slot % KNOWN_BITS;
}

/** Forget that the peer in `slot` holds the entry's message. */
export function clearKnown(e: CacheEntry, slot: number): void {
  if (slot < KNOWN_BITS) {
    e.known &= ~(1 << slot);
    return;
  }
  const i = Math.floor(slot / KNOWN_BITS) - 1;
  if (e.knownMore && i < e.knownMore.length) e.knownMore[i]! &= ~(1 << slot % KNOWN_BITS);
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
   * Remember a message; a no-op if already present or the cache is disabled. `body` is the
   * GOSSIP body as forwarded, in the fixed layout (copied, never kept as given: it may be a
   * view into a shared block); `payloadBytes` its payload's length (what maxBytes counts);
   * `knownBy` the slots of the peers known to hold it; `key` the id as a latin1 string, when
   * the caller has it. Returns the entry (the one already
   * held for that id, if any), or undefined when not cached.
   */
  add(body: Buffer, payloadBytes: number, now: number, knownBy: readonly number[], key = body.toString('latin1', GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32)): CacheEntry | undefined {
    if (this.opts.maxEntries === 0) return undefined;
    const held = this.entries.get(key);
    if (held) return held;
    const bytes = payloadBytes + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.opts.maxBytes) {
      this.evictions++;
      return undefined;
    }
    const at = this.store.copy(body);
    const own = at < 0 ? Buffer.from(body) : this.store.slab; // large: a buffer of its own
    const entry: CacheEntry = {
      slab: own.buffer, offset: own.byteOffset + Math.max(0, at), length: body.length, ttl: body[GOSSIP_TTL_OFFSET]!, at: now, bytes,
      known: 0, knownMore: undefined, servedTo: undefined,
    };
    for (const slot of knownBy) setKnown(entry, slot);
    this.entries.set(key, entry);
    this.order.push(key);
    this.totalBytes += entry.bytes;
    while (this.entries.size > this.opts.maxEntries || this.totalBytes > this.opts.maxBytes) {
      this.evictOldest();
      this.evictions++;
    }
    this.fresh.add(entry);
    return this.entries.get(key);
  }

  get(id: Uint8Array): CacheEntry | undefined {
    return this.entries.get(Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1'));
  }

  /** The entry by its id's latin1 key (what the engine computes once per copy). */
  getByKey(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  /**
   * Whether an IWANT from the peer in `slot` for this entry may be answered: the peer is in
   * knownBy (we pushed or advertised it to that peer) and was answered fewer than
   * `maxPerPeer` times.
   */
  mayServe(e: CacheEntry, slot: number, maxPerPeer = MAX_SERVES_PER_PEER): 'ok' | 'unadvertised' | 'exhausted' {
    if (!isKnown(e, slot)) return 'unadvertised';
    return (e.servedTo?.get(slot) ?? 0) >= maxPerPeer ? 'exhausted' : 'ok';
  }

  /** Count one IWANT answer of `e` to the peer in `slot`. */
  served(e: CacheEntry, slot: number): void {
    (e.servedTo ??= new Map()).set(slot, (e.servedTo.get(slot) ?? 0) + 1);
  }

  /** Slots given up (peer-slots.ts sweep): forget them in every entry, so a reused number starts clean. */
  forgetSlots(slots: readonly number[]): void {
    if (slots.length === 0) return;
    for (const e of this.entries.values()) {
      for (const s of slots) {
        clearKnown(e, s);
        e.servedTo?.delete(s);
      }
    }
  }

  /** Entries added since the last call, oldest first. */
  takeFresh(): CacheEntry[] {
    if (this.fresh.size === 0) return []; // and no clear(): it allocates a new table
    const f = [...this.fresh];
    this.fresh.clear();
    return f;
  }

  /** Entries added at or after `since` that the peer in `slot` is not known to hold, oldest first (every entry for slot -1). */
  unknownTo(slot: number, since: number): CacheEntry[] {
    const out: CacheEntry[] = [];
    for (const e of this.entries.values()) if (e.at >= since && !isKnown(e, slot)) out.push(e);
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

/** Bytes of a cache's first slab; the next ones double up to SLAB_BYTES. */
const FIRST_SLAB_BYTES = 4 * 1024;

/**
 * Copies of cached bodies, in slabs of the cache's own. A body given to add() may be a view
 * into a larger shared block (a socket read, a buffer pool): kept for minutes, a view would pin
 * that whole block, and the byte cap would not bound memory at all.
 */
class SlabStore {
  /** The slab copies go into now. */
  slab = Buffer.alloc(0);
  private used = 0;

  /**
   * Copy `src` into `slab` (a new one when it is full) and return its offset there, or -1
   * for a body too large for a slab (not copied: it takes a buffer of its own). An offset
   * rather than a view of the copy: the cache keeps the slab's ArrayBuffer and the offset, and
   * a view would be about 100 bytes of garbage per message.
   */
  copy(src: Buffer): number {
    const n = src.length;
    if (n > SLAB_BYTES / 4) return -1;
    if (this.used + n > this.slab.length) {
      // The first slabs are small (a node that caches a few messages holds a few KiB, not
      // SLAB_BYTES: a simulator runs 100,000 caches in one process); each next one doubles.
      let size = Math.max(FIRST_SLAB_BYTES, this.slab.length * 2);
      while (size < n) size *= 2;
      this.slab = Buffer.allocUnsafeSlow(Math.min(size, SLAB_BYTES));
      this.used = 0;
    }
    src.copy(this.slab, this.used);
    this.used += n;
    return this.used - n;
  }
}

/** The cached message, decoded (for an IWANT answer that must change its TTL, and for tests). */
export function cachedMessage(entry: CacheEntry): Gossip {
  return decodeMessage(entryBody(entry)) as Gossip;
}
