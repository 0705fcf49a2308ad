/**
 * The known-peer table: every identity the node has been connected to, whether its address
 * is proven, and whether it is worth keeping. Pure bookkeeping over an injected clock: no
 * sockets, no timers. The network reports connections (connected/disconnected), endpoint
 * proofs (proveAddress: this node dialed host:port and the handshake showed the id) and asks:
 *
 * - isProven(id): the address may be handed out and redialed (the DHT hands out only these);
 * - worthKeeping(id): redial it when lost, and count it in health(): a member, a peer whose
 *   address is proven, or one that stayed connected provenAfterMs or delivered something
 *   useful. An identity that connected, proved nothing and left is forgotten at once.
 *
 * The table is capped (maxKnownPeers): adding beyond the cap evicts a disconnected
 * non-member, unproven and not worth keeping first, least recently useful first.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';

export interface KnownPeersOptions {
  /** Peers remembered at most (connected ones and members always stay). Default 1000. */
  maxKnownPeers?: number;
  /** An unproven peer connected this long, ms, is worth keeping. Default 120000 (2 minutes). */
  provenAfterMs?: number;
}

export const KNOWN_PEERS_DEFAULTS = Object.freeze({ maxKnownPeers: 1000, provenAfterMs: 120_000 });

export interface KnownPeerRecord {
  readonly id: string;
  /** Address to redial: the proven one, else the one the peer claimed ('' / 0: none). */
  host: string;
  port: number;
  /** This node dialed host:port and the handshake showed this id. */
  addressProven: boolean;
  member: boolean;
  connected: boolean;
  /** Clock time of the current (or last) connection. */
  connectedAt: number;
  /** Clock time the peer last proved useful (stayed, delivered); 0 if never. */
  lastUsefulAt: number;
  /** Stayed connected provenAfterMs, or delivered something useful, at least once. */
  established: boolean;
}

export class KnownPeers {
  readonly maxKnownPeers: number;
  readonly provenAfterMs: number;
  private readonly peers = new Map<string, KnownPeerRecord>();

  /**
   * @param usefulness useful first deliveries of a peer (the scoring ledger); > 0 makes it worth keeping.
   * @param isMember whether an id is a configured member (never evicted, always kept).
   */
  constructor(
    private readonly clock: Clock,
    options: KnownPeersOptions = {},
    private readonly usefulness: (id: string) => number = () => 0,
    private readonly isMember: (id: string) => boolean = () => false,
  ) {
    const max = options.maxKnownPeers ?? KNOWN_PEERS_DEFAULTS.maxKnownPeers;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) throw new InvalidOptionError('maxKnownPeers', `expected an integer >= 1, got ${String(max)}`);
    const after = options.provenAfterMs ?? KNOWN_PEERS_DEFAULTS.provenAfterMs;
    if (typeof after !== 'number' || !Number.isInteger(after) || after < 0) throw new InvalidOptionError('provenAfterMs', `expected an integer >= 0, got ${String(after)}`);
    this.maxKnownPeers = max;
    this.provenAfterMs = after;
  }

  get size(): number {
    return this.peers.size;
  }

  get(id: string): Readonly<KnownPeerRecord> | undefined {
    return this.peers.get(id);
  }

  has(id: string): boolean {
    return this.peers.has(id);
  }

  ids(): IterableIterator<string> {
    return this.peers.keys();
  }

  /**
   * Note a member's configured address (proven by configuration). Returns the ids evicted to
   * stay within the cap.
   */
  addMember(id: string, host: string, port: number): string[] {
    const r = this.ensure(id);
    r.member = true;
    if (port > 0) {
      r.host = host;
      r.port = port;
      r.addressProven = true;
    }
    return this.trim();
  }

  /**
   * A connection to `id` is open. `address` is where to redial it: for an outbound
   * connection the address dialed (proven), for an inbound one the peer's claim (unproven,
   * unless it equals an address already proven for this id). Returns evicted ids.
   */
  connected(id: string, address: { host: string; port: number; proven: boolean }): string[] {
    const r = this.ensure(id);
    // A duplicate connection replacing the first one does not restart the peer's time.
    if (!r.connected) r.connectedAt = this.clock.now();
    r.connected = true;
    if (address.proven) {
      r.host = address.host;
      r.port = address.port;
      r.addressProven = true;
    } else if (!r.addressProven && address.port > 0) {
      r.host = address.host;
      r.port = address.port;
    }
    return this.trim();
  }

  /** The connection to `id` closed: settle whether it proved itself while connected. */
  disconnected(id: string): void {
    const r = this.peers.get(id);
    if (!r || !r.connected) return;
    if (this.provingNow(r)) {
      r.established = true;
      r.lastUsefulAt = this.clock.now();
    }
    r.connected = false;
  }

  /** This node dialed host:port and the handshake there showed `id`. */
  proveAddress(id: string, host: string, port: number): void {
    const r = this.peers.get(id);
    if (!r) return;
    r.host = host;
    r.port = port;
    r.addressProven = true;
  }

  /** The address of `id` is proven: by a dial of ours that reached it, or by configuration (a member's address). */
  isProven(id: string): boolean {
    return this.peers.get(id)?.addressProven === true;
  }

  /** Worth redialing when lost and counting in health: member, proven address, or established (stayed or useful). */
  worthKeeping(id: string): boolean {
    const r = this.peers.get(id);
    if (!r) return this.isMember(id);
    return r.member || this.isMember(id) || r.addressProven || r.established || (r.connected && this.provingNow(r));
  }

  /** Forget `id`. Members stay (their record is reset to disconnected). */
  remove(id: string): void {
    const r = this.peers.get(id);
    if (!r) return;
    if (r.member || this.isMember(id)) r.connected = false;
    else this.peers.delete(id);
  }

  private provingNow(r: KnownPeerRecord): boolean {
    return (r.connected && this.clock.now() - r.connectedAt >= this.provenAfterMs) || this.usefulness(r.id) > 0;
  }

  private ensure(id: string): KnownPeerRecord {
    let r = this.peers.get(id);
    if (!r) {
      r = { id, host: '', port: 0, addressProven: false, member: this.isMember(id), connected: false, connectedAt: 0, lastUsefulAt: 0, established: false };
      this.peers.set(id, r);
    }
    return r;
  }

  /** Evict until within the cap: disconnected non-members, not worth keeping first, then least recently useful. */
  private trim(): string[] {
    const evicted: string[] = [];
    while (this.peers.size > this.maxKnownPeers) {
      let victim: KnownPeerRecord | undefined;
      let victimRank = Infinity;
      for (const r of this.peers.values()) {
        if (r.connected || r.member) continue;
        // Rank: unkept before kept, then by when last useful (0 = never).
        const rank = (this.worthKeeping(r.id) ? 1 : 0) * 1e15 + r.lastUsefulAt;
        if (rank < victimRank) {
          victim = r;
          victimRank = rank;
        }
      }
      if (!victim) break; // everyone is connected or a member: the connection caps bound them
      this.peers.delete(victim.id);
      evicted.push(victim.id);
    }
    return evicted;
  }
}
