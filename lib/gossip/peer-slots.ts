/**
 * Small integer slots for the peers a gossip engine talks to, so that "who holds this cached
 * message" is a few bits per entry (message-cache.ts) rather than a set of 64-char hex ids.
 *
 * The engine asks slotOf() for a peer whenever it needs its slot (the first call assigns
 * one), and calls sweep() from its heartbeat with the peers connected now. A slot outlives
 * its peer's connection by `retireAfterMs` (the repair cache's age limit plus a heartbeat):
 * a peer that reconnects within it finds its slot, and so the cache's record of what it
 * holds and was served (iwantServesPerPeer stays per peer, not per connection). Only then is
 * the slot retired, its bits cleared by the caller, and the number reused. Pure bookkeeping:
 * no sockets, no timers, time passed in.
 */
import { LIMITS } from '../wire/messages.js';

const NO_SLOTS: readonly number[] = Object.freeze([]);

/** Bytes of a seen-by entry: the first bytes of a node id. */
const PREFIX_BYTES = LIMITS.seenByEntryBytes;

export class PeerSlots {
  private readonly byId = new Map<string, number>();
  /** Per slot: last time its peer was connected (clock ms). */
  private lastSeen: number[] = [];
  /**
   * Per slot its seen-by prefix, at PREFIX_BYTES x slot, and its length: one buffer, where a
   * Buffer per slot was about 130 bytes each (and held on to an 8 KiB pool).
   */
  private prefixBytes: Buffer = Buffer.alloc(0);
  private readonly prefixLength: number[] = [];
  /** The prefix as two big-endian 32-bit words, for comparisons without allocating. */
  readonly prefixHi: number[] = [];
  readonly prefixLo: number[] = [];
  private readonly free: number[] = [];

  /** Slots in use (assigned, not retired). */
  get size(): number {
    return this.byId.size;
  }

  /** The slot of the peer with this id hex and seen-by prefix (latin1), assigned on first use. */
  slotOf(idHex: string, prefixKey: string, now: number): number {
    let slot = this.byId.get(idHex);
    if (slot === undefined) {
      slot = this.free.length > 0 ? this.free.pop()! : this.prefixLength.length;
      const at = slot * PREFIX_BYTES;
      if (at + PREFIX_BYTES > this.prefixBytes.length) {
        const grown = Buffer.alloc(Math.max(2 * this.prefixBytes.length, 16 * PREFIX_BYTES));
        this.prefixBytes.copy(grown);
        this.prefixBytes = grown;
      }
      const length = this.prefixBytes.write(prefixKey.slice(0, PREFIX_BYTES), at, 'latin1');
      this.prefixLength[slot] = length;
      this.prefixHi[slot] = length >= PREFIX_BYTES ? this.prefixBytes.readUInt32BE(at) : -1;
      this.prefixLo[slot] = length >= PREFIX_BYTES ? this.prefixBytes.readUInt32BE(at + 4) : -1;
      this.byId.set(idHex, slot);
    }
    this.lastSeen[slot] = now;
    return slot;
  }

  /** The slot of a peer if it has one (never assigns). */
  find(idHex: string): number | undefined {
    return this.byId.get(idHex);
  }

  /** The seen-by prefix (8 bytes) of the peer in `slot`: a view, valid until the slot is retired. */
  prefix(slot: number): Buffer {
    const at = slot * PREFIX_BYTES;
    return this.prefixBytes.subarray(at, at + this.prefixLength[slot]!);
  }

  /**
   * Heartbeat: `connected` are the peers connected now. Returns the slots retired
   * (their peer not connected for `retireAfterMs`): the caller clears them from the cache.
   */
  sweep(connected: readonly { readonly idHex: string }[], now: number, retireAfterMs: number): readonly number[] {
    for (const p of connected) {
      const slot = this.byId.get(p.idHex);
      if (slot !== undefined) this.lastSeen[slot] = now;
    }
    // Usually none is retired: no array then, and forEach rather than for-of (no [id, slot]
    // array per slot). Deleting the entry being visited is allowed.
    let retired: number[] | undefined;
    this.byId.forEach((slot, id) => {
      if (now - this.lastSeen[slot]! < retireAfterMs) return;
      this.byId.delete(id);
      (retired ??= []).push(slot);
    });
    if (retired === undefined) return NO_SLOTS;
    for (const slot of retired) this.free.push(slot);
    return retired;
  }

  clear(): void {
    this.byId.clear();
    this.lastSeen = [];
    this.prefixBytes = Buffer.alloc(0);
    this.prefixLength.length = 0;
    this.prefixHi.length = 0;
    this.prefixLo.length = 0;
    this.free.length = 0;
  }
}
