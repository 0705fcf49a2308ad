/**
 * The eager-tree push mode (`push: 'tree'`, PROTOCOL.md §4.6, "Eager-tree push"): which links
 * a node pushes new messages over (eager) and which it only announces them on (lazy), after
 * Plumtree (Leitao, Pereira, Rodrigues, "Epidemic Broadcast Trees", 2007), mapped onto the
 * existing IHAVE and IWANT messages: no new message type and no byte changed on the wire.
 *
 * Pure bookkeeping: no sockets, no timers. The gossip engine (engine.ts) owns one and tells
 * it, with peer slots (peer-slots.ts) as names:
 * - pushed(): a new message was pushed to these peers;
 * - prune(): a link carried a duplicate (the engine received one over it, or was told by an
 *   IHAVE that a copy it pushed was one), so move it to lazy; refused for the last eager peer;
 * - graft(): a link is needed (an IWANT came over it or went out over it, or it is new);
 * - rotate(): the heartbeat; pushes older than two heartbeats are forgotten;
 * - forget(): slots retired by PeerSlots.sweep (their numbers are reused).
 * It asks isLazy() when choosing push targets, and wasPushed() when an IHAVE comes in.
 */

/**
 * Message ids whose push targets are remembered per generation (two generations: the one
 * being filled and the one before). The answer to a push (a duplicate's IHAVE) comes within a
 * round trip, well within a heartbeat; a full generation is rotated early, so under a burst
 * of more than this many new messages per heartbeat, a late prune is missed (the link stays
 * eager until its next duplicate). Bounds the memory: at most 2 x 8192 ids and their targets.
 */
export const MAX_PUSHES_REMEMBERED = 8192;

export class PushTree {
  /** Lazy (pruned) links, by peer slot. Every other connected peer is eager. */
  private readonly lazy = new Set<number>();
  /** Push targets per message id (latin1), this generation and the one before. */
  private pushesNow = new Map<string, number[]>();
  private pushesBefore = new Map<string, number[]>();
  /** Links moved to lazy and back, since start (for specs and metrics). */
  prunes = 0;
  grafts = 0;

  /** Whether the peer in `slot` is lazy (announced to, not pushed to). */
  isLazy(slot: number): boolean {
    return this.lazy.size > 0 && this.lazy.has(slot);
  }

  /** Lazy links now. */
  get lazyCount(): number {
    return this.lazy.size;
  }

  /** The message `key` (id, latin1) was pushed to `slots`. */
  pushed(key: string, slots: number[]): void {
    if (slots.length === 0) return;
    if (this.pushesNow.size >= MAX_PUSHES_REMEMBERED) this.rotate();
    this.pushesNow.set(key, slots);
  }

  /** Whether message `key` was pushed to the peer in `slot` within the last two generations. */
  wasPushed(key: string, slot: number): boolean {
    const slots = this.pushesNow.get(key) ?? this.pushesBefore.get(key);
    return slots !== undefined && slots.includes(slot);
  }

  /**
   * Move the peer in `slot` to lazy, unless it is the last eager one among `connectedSlots`
   * (the slots of the peers connected now): a node always keeps one link it pushes over, so
   * pruning alone never leaves it announcing only. True when the link was moved.
   */
  prune(slot: number, connectedSlots: readonly number[]): boolean {
    if (this.lazy.has(slot)) return false;
    let otherEager = false;
    for (const s of connectedSlots) {
      if (s !== slot && !this.lazy.has(s)) {
        otherEager = true;
        break;
      }
    }
    if (!otherEager) return false;
    this.lazy.add(slot);
    this.prunes++;
    return true;
  }

  /** Move the peer in `slot` back to eager. True when it was lazy. */
  graft(slot: number): boolean {
    if (!this.lazy.delete(slot)) return false;
    this.grafts++;
    return true;
  }

  /** Heartbeat: the generation before is forgotten, this one becomes it. */
  rotate(): void {
    const old = this.pushesBefore;
    old.clear();
    this.pushesBefore = this.pushesNow;
    this.pushesNow = old;
  }

  /** Slots retired (PeerSlots.sweep): their numbers will name other peers, which start eager. */
  forget(slots: readonly number[]): void {
    for (const s of slots) this.lazy.delete(s);
  }

  clear(): void {
    this.lazy.clear();
    this.pushesNow.clear();
    this.pushesBefore.clear();
  }
}
