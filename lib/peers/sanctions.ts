/**
 * The network's scoring wiring: from what peers send to budgets, penalties, graylist and ban.
 * Holds the per-peer ledger (peer-ledger.ts), the per-origin budget and the publish pacer
 * (origin-budget.ts) and the ban list (ban-list.ts), and acts on their verdicts through a
 * small host (the network): closing a banned peer's connection, emitting its events.
 *
 * Who calls what (all from lib/network.ts):
 * - dispatch() calls gate() for every inbound message before any engine sees it;
 * - the gossip engine's host callbacks (mayVerify, mayAccept, mayServe, firstDelivery,
 *   duplicate, invalid, mayAsk) are gossipHost() here;
 * - invalid() for anything else a peer sent that was invalid (bad payload, unsolicited NODES);
 * - connected() when a connection opens; isBanned()/refuseBanned() after a handshake;
 *   prune() on the network's periodic tick; the pacer's acquire() in broadcast().
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { P2PError } from '../errors.js';
import type { GossipHost } from '../gossip/engine.js';
import { nodeIdOf } from '../identity.js';
import type { Metrics } from '../metrics.js';
import { GoodbyeCode, MessageType } from '../wire/messages.js';
import type { InboundMessage } from '../wire/messages.js';
import { BanList } from './ban-list.js';
import { OriginBudget, PublishPacer } from './origin-budget.js';
import { chargeInbound, PeerLedger, rateKindOf } from './peer-ledger.js';
import type { ScoringOptions } from './peer-ledger.js';

/** The connection of a peer as the sanctions see it. */
export interface SanctionedConnection {
  readonly peerIdHex: string;
  readonly socket: { readonly remoteAddress?: string | undefined };
  close(code: number, reason: string, error?: P2PError): void;
}

/** What the sanctions need from the network. */
export interface SanctionsHost {
  /** The open connection to `peerId`, if any. */
  connectionOf(peerId: string): SanctionedConnection | undefined;
  /** A peer sent something invalid ('peer:invalid'). */
  onInvalid(peerId: string, reason: string): void;
  /** A peer was banned ('peer:banned'). */
  onBanned(peerId: string, reason: string): void;
}

/** Why gate() refused a message: counted under this reason in droppedByReason. */
export type GateRefusal = 'graylisted' | 'rate_limited';

/** Types ignored from a graylisted peer: its gossip is not forwarded, its requests not served. */
const GRAYLIST_IGNORES: ReadonlySet<number> = new Set([MessageType.GOSSIP, MessageType.IHAVE, MessageType.IWANT, MessageType.FIND_NODE]);

export class Sanctions {
  readonly ledger: PeerLedger;
  readonly origins: OriginBudget;
  readonly pacer: PublishPacer;
  readonly bans: BanList;

  constructor(
    clock: Clock,
    scoring: Partial<ScoringOptions> | undefined,
    private readonly banDurationMs: number,
    private readonly counters: Metrics,
    private readonly log: Logger,
    private readonly host: SanctionsHost,
  ) {
    this.ledger = new PeerLedger(clock, scoring);
    this.origins = new OriginBudget(clock, this.ledger.opts);
    this.pacer = new PublishPacer(clock, this.ledger.opts);
    this.bans = new BanList(clock);
  }

  /**
   * Budgets first: a graylisted peer's gossip and requests are ignored, and what exceeds a
   * peer's budget for its type is dropped (and costs it score). Undefined: pass it on.
   */
  gate(peerId: string, msg: InboundMessage): GateRefusal | undefined {
    if (GRAYLIST_IGNORES.has(msg.type) && this.ledger.verdict(peerId) !== 'ok') {
      this.ledger.ignored(peerId, rateKindOf(msg.type));
      this.counters.drop('graylisted');
      this.banIfDue(peerId, 'graylisted');
      return 'graylisted';
    }
    if (!chargeInbound(this.ledger, peerId, msg)) {
      this.counters.drop('rate_limited');
      this.banIfDue(peerId, 'rate_limited');
      return 'rate_limited';
    }
    return undefined;
  }

  /** The scoring callbacks of the gossip engine's host. */
  gossipHost(): Required<Pick<GossipHost, 'invalid' | 'mayVerify' | 'mayAccept' | 'accepted' | 'mayServe' | 'mayAsk' | 'firstDelivery' | 'duplicate'>> {
    return {
      invalid: (from, reason) => this.invalid(from.idHex, reason),
      mayVerify: (from) => this.ledger.mayVerify(from.idHex) || this.overBudget(from.idHex, 'verify_budget'),
      mayAccept: (_from, origin) => this.origins.allows(origin.toString('latin1')) || this.originOverBudget(origin),
      accepted: (origin) => this.origins.spend(origin.toString('latin1')),
      mayServe: (from, bytes) => this.ledger.mayServe(from.idHex, bytes),
      mayAsk: (peer) => this.ledger.verdict(peer.idHex) === 'ok',
      firstDelivery: (from) => this.ledger.firstDelivery(from.idHex),
      duplicate: (from) => this.ledger.duplicate(from.idHex),
    };
  }

  /** A peer (or an origin, for a payload it signed) sent something invalid: counted, reported, charged. */
  invalid(peerId: string, reason: string): void {
    this.counters.invalid(reason);
    this.log.debug({ peer: peerId.slice(0, 12), reason }, 'invalid message');
    this.host.onInvalid(peerId, reason);
    this.ledger.invalid(peerId, reason);
    this.banIfDue(peerId, reason);
  }

  /** A connection opened: see PeerLedger.connected() (`chosen`: we dialed it, or a member). */
  connected(peerId: string, chosen: boolean): void {
    this.ledger.connected(peerId, chosen);
  }

  /** Whether a peer id or an address is banned now. */
  isBanned(peerId: string, host = ''): boolean {
    return this.bans.isBanned(peerId, host);
  }

  /** Close a connection from a banned peer (id or address) right after its handshake. */
  refuseBanned(conn: SanctionedConnection): boolean {
    if (!this.isBanned(conn.peerIdHex, conn.socket.remoteAddress ?? '')) return false;
    conn.close(GoodbyeCode.MISBEHAVIOR, 'banned', new P2PError('BANNED', `peer ${conn.peerIdHex.slice(0, 12)} is banned`));
    return true;
  }

  /** Forget bans that ended. */
  prune(): void {
    this.bans.prune();
  }

  /** A peer went over a budget (already counted and penalized by the ledger). Returns false. */
  private overBudget(peerId: string, reason: string): false {
    this.banIfDue(peerId, reason);
    return false;
  }

  /** A message of `origin` over its per-origin budget: charged to the origin, not to the relay. Returns false. */
  private originOverBudget(origin: Buffer): false {
    const id = nodeIdOf(origin).toString('hex');
    this.ledger.originExcess(id);
    this.banIfDue(id, 'origin_budget');
    return false;
  }

  /**
   * Ban a peer whose score reached scoring.banScore: by id and by the address its connection
   * comes from, for banDurationMs; close its connection with GOODBYE MISBEHAVIOR.
   */
  private banIfDue(peerId: string, reason: string): void {
    if (this.ledger.verdict(peerId) !== 'ban') return;
    const conn = this.host.connectionOf(peerId);
    const closeIt = () => conn?.close(GoodbyeCode.MISBEHAVIOR, `banned: ${reason}`, new P2PError('BANNED', `peer ${peerId.slice(0, 12)} banned: ${reason}`));
    if (this.bans.isBanned(peerId)) {
      // Banned already (its last frames are still arriving): counted and reported once.
      closeIt();
      return;
    }
    this.bans.ban(peerId, conn?.socket.remoteAddress ?? '', this.banDurationMs, reason);
    this.counters.peersBanned++;
    this.log.info({ peer: peerId.slice(0, 12), reason, score: this.ledger.score(peerId) }, 'peer banned');
    closeIt();
    this.host.onBanned(peerId, reason);
  }
}
