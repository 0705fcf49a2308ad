/**
 * One simulated node: the real GossipEngine and Dht wired the way lib/network.ts wires them
 * (peers() is the list of open links, deliver/invalid go to the node, DHT links are dialed
 * connections, peerSeen on every new connection, heartbeat() on an interval), over the
 * in-memory transport instead of TCP. Every message is encoded with the wire codec by the
 * sender and decoded by the receiver.
 *
 * Partition detection is the real lib/health PartitionMonitor: told of connections and
 * disconnections, and at each heartbeat of every link's last frame (as network.ts tells it),
 * then checked; a peer it reports partitioned has its link closed (GOODBYE). A closed overlay
 * link is redialed with capped exponential backoff.
 */
import type { TimerHandle } from '../clock.js';
import { Dht } from '../dht/dht.js';
import { PartitionMonitor } from '../health/partition-monitor.js';
import type { DhtHost, DhtLink, DhtOptions } from '../dht/dht.js';
import type { LookupContact } from '../dht/lookup.js';
import { P2PError } from '../errors.js';
import { GossipEngine } from '../gossip/engine.js';
import type { DeliveryInfo, GossipHost, GossipOptions, GossipPeer } from '../gossip/engine.js';
import type { Identity } from '../identity.js';
import { Metrics } from '../metrics.js';
import pino from 'pino';
import { Sanctions } from '../peers/sanctions.js';
import type { SanctionedConnection } from '../peers/sanctions.js';
import type { ScoringOptions } from '../peers/peer-ledger.js';
import { seededRandom } from '../random.js';
import { decodeMessage, encodeMessage } from '../wire/codec.js';
import { GoodbyeCode, LIMITS, MessageType } from '../wire/messages.js';
import { looksLikeGossip } from '../wire/gossip-envelope.js';
import type { InboundMessage, Message } from '../wire/messages.js';
import { ATTACK_TOPIC } from './adversary.js';
import type { AdversaryBehaviour } from './adversary.js';
import type { Endpoint, SimTransport } from './transport.js';
import type { VirtualClock } from './virtual-clock.js';

/** How a node behaves: honest, or one of the adversary models (lib/sim/adversary.ts). */

/** Sanctions log bans at info level; the simulator reports them in its result instead. */
const SILENT = pino({ level: 'silent' });
export type Behaviour = 'honest' | AdversaryBehaviour;


/** Port every simulated node listens on (addresses differ by host). */
export const SIM_PORT = 7000;

export interface SimNodeConfig {
  gossip: GossipOptions;
  dht: DhtOptions;
  /** A link silent this long is closed, ms (network.ts: partitionTimeoutMs). */
  partitionTimeoutMs: number;
  /** A link silent this long gets a PING at the next heartbeat, ms. */
  pingIntervalMs: number;
  /** A dial to an unreachable node fails after this long, ms. */
  dialTimeoutMs: number;
  /** First redial delay of a lost overlay link, ms; doubles per failure up to redialMaxMs. */
  redialMinMs: number;
  redialMaxMs: number;
  /**
   * Per-peer accounting as network.ts does it (lib/peers/peer-ledger.ts): budgets charged
   * before the engines see a message, scores, graylisting and bans. Undefined: none (the
   * engines' own rules only).
   */
  scoring: ScoringOptions | undefined;
  /** How long a peer whose score reached the ban line stays banned, ms. */
  banDurationMs: number;
}

/** What a node needs from the network it lives in. */
export interface SimContext {
  readonly clock: VirtualClock;
  readonly transport: SimTransport;
  readonly nodes: readonly SimNode[];
  readonly config: SimNodeConfig;
  readonly seed: number;
  /** Node listening at `host`, if any. */
  nodeAt(host: string): SimNode | undefined;
  /** Node whose id (latin1 key) is `key`, if any. */
  nodeById(key: string): SimNode | undefined;
  /** The gossip engine delivered a message at `node`. */
  onDeliver(node: SimNode, payload: Buffer, info: DeliveryInfo): void;
  /** Track an async operation: while any is in flight the run loop runs its continuations after every event. */
  track<T>(p: Promise<T>): Promise<T>;
  /** `node` banned `peer` (its score reached the ban line) for `reason`. */
  onBan(node: SimNode, peer: SimNode, reason: string): void;
  /** Bans made so far by every node (onBan): while 0, no node has anyone to refuse. */
  readonly bans: { readonly total: number };
  /** Outgoing gossip of a byzantine node: the adversary model decides what goes out. */
  adversarySend(node: SimNode, to: SimNode, type: number, body: Buffer): boolean;
}

/** An open connection to an overlay peer, as this node's engines see it. */
export class SimLink implements GossipPeer, DhtLink {
  readonly idHex: string;
  readonly prefixKey: string;
  /** Virtual time of the last frame from the peer on this link. */
  lastContact: number;
  lastPing = 0;

  constructor(readonly owner: SimNode, readonly peer: SimNode) {
    this.idHex = peer.identity.idHex;
    this.prefixKey = peer.identity.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1');
    this.lastContact = owner.ctx.clock.now();
  }

  send(msg: Message): boolean {
    return this.owner.transmit(this.peer, msg.type, encodeMessage(msg));
  }

  sendEncoded(type: number, body: Buffer): boolean {
    return this.owner.transmit(this.peer, type, body);
  }
}

interface Redial {
  delayMs: number;
  timer: TimerHandle | undefined;
}

export class SimNode implements Endpoint {
  readonly metrics = new Metrics();
  readonly host: string;
  up = true;
  gossip!: GossipEngine;
  dht!: Dht;
  /** Open links by peer index. */
  readonly links = new Map<number, SimLink>();
  /** The list the gossip engine sees (rebuilt on change, as network.ts does). */
  private handles: SimLink[] = [];
  /** Overlay peers this node keeps a connection to (redialed when lost). */
  readonly overlay = new Set<number>();
  private readonly redials = new Map<number, Redial>();
  private readonly dialing = new Set<number>();
  private heartbeatTimer: TimerHandle | undefined;
  /** The real partition monitor, on the virtual clock. */
  readonly monitor: PartitionMonitor;
  /** Peers the monitor reported partitioned, and reconnections of such peers, since start. */
  partitionReports = 0;
  recoveries = 0;
  /** Incremented on every restart: a fresh engine gets fresh random streams. */
  private generation = 0;
  /** Per-peer budgets, per-origin budgets, scores and bans, as network.ts's (undefined when the scenario runs without them). */
  sanctions: Sanctions | undefined;

  constructor(
    readonly ctx: SimContext,
    readonly index: number,
    readonly identity: Identity,
    readonly behaviour: Behaviour,
  ) {
    // Each node in a /24 of its own, so the routing table's address-group limits see distinct networks.
    this.host = `${10 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}.1`;
    this.monitor = new PartitionMonitor(ctx.clock, { partitionTimeoutMs: ctx.config.partitionTimeoutMs });
    this.createEngines();
  }

  get honest(): boolean {
    return this.behaviour === 'honest';
  }

  /** Start the heartbeat, at a seeded phase so nodes do not beat in lockstep. */
  start(phaseMs: number): void {
    const period = this.ctx.config.gossip.heartbeatMs;
    this.heartbeatTimer?.cancel();
    const first = this.ctx.clock.setTimeout(() => {
      this.heartbeat();
      this.heartbeatTimer = this.ctx.clock.setInterval(() => this.heartbeat(), period);
    }, phaseMs);
    this.heartbeatTimer = first;
  }

  /** Periodic work, as network.ts's heartbeat: partition check, pings, gossip repair, DHT refresh. */
  heartbeat(): void {
    if (!this.up) return;
    const { pingIntervalMs } = this.ctx.config;
    const now = this.ctx.clock.now();
    // As network.ts: each link's last contact reaches the monitor at the heartbeat, not per frame.
    for (const link of this.handles) this.monitor.contact(link.idHex, link.lastContact);
    for (const idHex of this.monitor.check()) {
      this.partitionReports++;
      const peer = this.ctx.nodeById(Buffer.from(idHex, 'hex').toString('latin1'));
      const link = peer && this.links.get(peer.index);
      if (link) this.close(link, true);
    }
    for (const link of this.handles) {
      if (now - link.lastContact >= pingIntervalMs && now - link.lastPing >= pingIntervalMs) {
        link.lastPing = now;
        link.send({ type: MessageType.PING, seq: now & 0xffffffff });
      }
    }
    this.gossip.heartbeat();
    void this.dht.refresh();
  }

  /** Power loss: no goodbye, state lost, peers find out by timeout. */
  crash(): void {
    if (!this.up) return;
    this.up = false;
    this.heartbeatTimer?.cancel();
    for (const r of this.redials.values()) r.timer?.cancel();
    this.redials.clear();
    this.dialing.clear();
    this.links.clear();
    this.handles = [];
    this.monitor.clear();
    this.gossip.clear();
    this.dht.clear();
    this.sanctions = undefined;
  }

  /** Come back with the same identity and fresh engines; redial the overlay. */
  restart(phaseMs: number): void {
    if (this.up) return;
    this.up = true;
    this.generation++;
    this.createEngines();
    this.start(phaseMs);
    for (const peer of this.overlay) this.dial(peer);
  }

  /** Dial an overlay peer (no-op if connected or a dial is under way). */
  dial(peerIndex: number): void {
    if (!this.up || this.links.has(peerIndex) || this.dialing.has(peerIndex)) return;
    const peer = this.ctx.nodes[peerIndex];
    if (!peer || peer === this || this.banned(peer)) return;
    this.dialing.add(peerIndex);
    this.ctx.track(this.connectTo(peer)).then(
      () => {
        this.dialing.delete(peerIndex);
        this.redials.delete(peerIndex);
      },
      (err: unknown) => {
        this.dialing.delete(peerIndex);
        // Refused for a ban (GOODBYE MISBEHAVIOR): not a loss to redial, as isLoss() in lib/peers/peer-registry.ts.
        if ((err as P2PError).code !== 'BANNED') this.scheduleRedial(peerIndex);
      },
    );
  }

  /** Send one frame body to `to`: through the adversary model for a byzantine node's gossip. */
  transmit(to: SimNode, type: number, body: Buffer): boolean {
    if (!this.up) return false;
    if (this.behaviour !== 'honest' && (type === MessageType.GOSSIP || type === MessageType.IHAVE || type === MessageType.IWANT)) {
      return this.ctx.adversarySend(this, to, type, body);
    }
    return this.ctx.transport.send(this, to, type, body);
  }

  /** A frame body from node `from`: decode it with the wire codec and dispatch, as network.ts does. */
  receive(from: number, type: number, body: Buffer): void {
    if (!this.up) return;
    let msg: InboundMessage;
    try {
      msg = looksLikeGossip(body) ? { type: MessageType.GOSSIP, body } : (decodeMessage(body) as InboundMessage); // GOSSIP: read by the engine
    } catch (err) {
      this.metrics.invalid((err as P2PError).code ?? 'MALFORMED');
      return;
    }
    const link = this.links.get(from);
    if (link) link.lastContact = this.ctx.clock.now();
    const sender = this.ctx.nodes[from]!;
    const sanctions = this.sanctions;
    // As network.ts's dispatch(): a banned peer's frames still in flight are not read; a
    // graylisted peer's gossip and requests are ignored; what exceeds a budget is dropped.
    if (sanctions && ((this.ctx.bans.total > 0 && sanctions.isBanned(sender.identity.idHex)) || sanctions.gate(sender.identity.idHex, msg))) return;
    switch (msg.type) {
      case MessageType.GOSSIP:
        if (!link) return void this.metrics.drop('not_connected');
        try {
          this.gossip.onGossip(link, msg.body);
        } catch (err) {
          this.metrics.invalid((err as P2PError).code ?? 'MALFORMED');
        }
        return;
      case MessageType.IHAVE:
        if (link) this.gossip.onIHave(link, msg.ids);
        return;
      case MessageType.IWANT:
        if (link) this.gossip.onIWant(link, msg.ids);
        return;
      case MessageType.PING:
        if (link) link.send({ type: MessageType.PONG, seq: msg.seq });
        return;
      case MessageType.GOODBYE:
        // Redialed only when the peer timed us out (a partition), as isLoss() in lib/peers/peer-registry.ts.
        if (link) this.close(link, false, msg.code === GoodbyeCode.TIMEOUT);
        return;
      case MessageType.FIND_NODE:
        return this.dht.onFindNode(link ?? this.transientLink(sender), msg);
      case MessageType.NODES:
        if (!this.dht.onNodes(link ?? this.transientLink(sender), msg)) this.reportInvalid(sender, 'unsolicited_nodes');
        return;
      default:
        return;
    }
  }

  /** Register an open connection to `peer` (replacing a stale one), as PeerRegistry.register(). */
  attach(peer: SimNode): void {
    const old = this.links.get(peer.index);
    const link = new SimLink(this, peer);
    this.links.set(peer.index, link);
    this.handles = old ? this.handles.map((h) => (h === old ? link : h)) : [...this.handles, link];
    this.redials.get(peer.index)?.timer?.cancel();
    this.redials.delete(peer.index);
    if (this.monitor.connected(link.idHex)) this.recoveries++;
    this.sanctions?.connected(link.idHex, this.overlay.has(peer.index));
    this.dht.peerSeen(peer.identity.id, peer.host, SIM_PORT);
    this.gossip.onPeerConnected(link);
  }

  /** The open link to endpoint `from`, if any: the transport's connection identity. */
  connectionTo(from: number): object | undefined {
    return this.links.get(from);
  }

  /** Open links, as the gossip engine sees them. */
  peers(): readonly SimLink[] {
    return this.handles;
  }

  private close(link: SimLink, sayGoodbye: boolean, redial = true, code: number = GoodbyeCode.TIMEOUT, reason = 'silent'): void {
    if (this.links.get(link.peer.index) !== link) return;
    if (sayGoodbye) link.send({ type: MessageType.GOODBYE, code, reason });
    this.links.delete(link.peer.index);
    this.handles = this.handles.filter((h) => h !== link);
    this.monitor.disconnected(link.idHex);
    if (redial && this.overlay.has(link.peer.index)) this.scheduleRedial(link.peer.index);
  }

  /** Open links to peers this node banned: 0 whenever a ban closes its link, as it must. */
  linksToBanned(): number {
    let n = 0;
    for (const link of this.handles) if (this.banned(link.peer)) n++;
    return n;
  }

  /** Whether this node banned `peer` (by id or address). */
  private banned(peer: SimNode): boolean {
    return this.sanctions?.isBanned(peer.identity.idHex, peer.host) === true;
  }

  /** A peer sent something invalid, as network.ts's reportInvalid(): counted, scored, maybe banned. */
  private reportInvalid(peer: SimNode, reason: string): void {
    if (this.sanctions) this.sanctions.invalid(peer.identity.idHex, reason);
    else this.metrics.invalid(reason);
  }

  /** The link to `peerId` as Sanctions closes it when it bans: GOODBYE MISBEHAVIOR, not redialed. */
  private sanctionedLink(peerId: string): SanctionedConnection | undefined {
    const peer = this.ctx.nodeById(Buffer.from(peerId, 'hex').toString('latin1'));
    const link = peer && this.links.get(peer.index);
    if (!peer || !link) return undefined;
    return {
      peerIdHex: peerId,
      socket: { remoteAddress: peer.host },
      close: (code, reason) => this.close(link, true, false, code, reason),
    };
  }

  private scheduleRedial(peerIndex: number): void {
    if (!this.up || !this.overlay.has(peerIndex)) return;
    const { redialMinMs, redialMaxMs } = this.ctx.config;
    const r = this.redials.get(peerIndex) ?? { delayMs: redialMinMs / 2, timer: undefined };
    r.delayMs = Math.min(redialMaxMs, r.delayMs * 2);
    r.timer?.cancel();
    r.timer = this.ctx.clock.setTimeout(() => this.dial(peerIndex), r.delayMs);
    this.redials.set(peerIndex, r);
  }

  /** Resolves after a dial + handshake round trip to `peer`; rejects after dialTimeoutMs when it cannot be reached. */
  private handshake(peer: SimNode): Promise<void> {
    const { clock, transport, config } = this.ctx;
    const delay = transport.reachable(this.index, peer.index) ? 2 * transport.latency(this.index, peer.index) : config.dialTimeoutMs;
    return new Promise((resolve, reject) => {
      clock.setTimeout(() => {
        if (this.up && transport.reachable(this.index, peer.index)) resolve();
        else reject(new P2PError('TIMEOUT', `dial ${peer.host} timed out`));
      }, delay);
    });
  }

  /** An overlay connection to `peer`, registered on both ends. */
  private async connectTo(peer: SimNode): Promise<void> {
    await this.handshake(peer);
    // Either end refuses a banned peer right after the handshake (network.ts refuseBanned()).
    if (this.banned(peer) || peer.banned(this)) throw new P2PError('BANNED', `${peer.host} and ${this.host}: one banned the other`);
    if (this.links.has(peer.index) && peer.links.has(this.index)) return;
    this.attach(peer);
    peer.attach(this);
  }

  /**
   * A one-off connection for a DHT query (network.ts dials a contact it has no link to).
   * Both ends learn each other as PeerRegistry.register() does: peerSeen.
   */
  private async dhtLinkTo(contact: LookupContact): Promise<DhtLink> {
    const peer = this.ctx.nodeAt(contact.host);
    if (!peer || peer === this || contact.port !== SIM_PORT) throw new P2PError('NOT_CONNECTED', `nobody listens at ${contact.host}:${contact.port}`);
    if (!peer.identity.id.equals(contact.id)) throw new P2PError('NOT_CONNECTED', `${contact.host} is another node`);
    const open = this.links.get(peer.index);
    if (open) return open;
    if (this.banned(peer)) throw new P2PError('BANNED', `${peer.host} is banned`);
    await this.handshake(peer);
    if (peer.banned(this)) throw new P2PError('BANNED', `${peer.host} refused: banned`);
    this.dht.peerSeen(peer.identity.id, peer.host, SIM_PORT);
    peer.dht.peerSeen(this.identity.id, this.host, SIM_PORT);
    return this.transientLink(peer);
  }

  private transientLink(peer: SimNode): DhtLink {
    return { idHex: peer.identity.idHex, send: (m: Message) => this.transmit(peer, m.type, encodeMessage(m)) };
  }

  private createEngines(): void {
    const { ctx } = this;
    const salt = (ctx.seed ^ Math.imul(this.index + 1, 0x9e3779b1) ^ Math.imul(this.generation + 1, 0x85ebca6b)) >>> 0;
    const gossipRandom = seededRandom(salt);
    const byteRandom = seededRandom(salt ^ 0x27d4eb2f);
    const randomBytes = (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(byteRandom() * 256);
      return b;
    };
    // Honest nodes only: an attacker does not sanction its victims (nor cut itself off).
    const scoring = this.behaviour === 'honest' ? ctx.config.scoring : undefined;
    const sanctions = scoring && new Sanctions(ctx.clock, scoring, ctx.config.banDurationMs, this.metrics, SILENT, {
      connectionOf: (id) => this.sanctionedLink(id),
      onInvalid: () => {},
      onBanned: (id, reason) => {
        const peer = ctx.nodeById(Buffer.from(id, 'hex').toString('latin1'));
        if (peer) ctx.onBan(this, peer, reason);
      },
    });
    this.sanctions = sanctions;
    const peerOf = (from: GossipPeer) => (from as SimLink).peer;
    const gossipHost: GossipHost = {
      peers: () => this.handles,
      // An attacker's own valid messages (unique-flood) are not the scenario's: not recorded.
      deliver: (topic, payload, info) => (topic === ATTACK_TOPIC ? undefined : ctx.onDeliver(this, payload, info)),
      invalid: (from, reason) => this.reportInvalid(peerOf(from), reason),
      // The budget and scoring hooks network.ts gives its engine.
      ...sanctions?.gossipHost(),
    };
    this.gossip = new GossipEngine(this.identity, ctx.clock, ctx.config.gossip, gossipHost, this.metrics, gossipRandom);
    const host: DhtHost = {
      linkTo: (c) => this.dhtLinkTo(c),
      isAlive: (c) => {
        const peer = ctx.nodeById(c.id.toString('latin1'));
        const link = peer && this.links.get(peer.index);
        if (link) return Promise.resolve(ctx.clock.now() - link.lastContact < ctx.config.partitionTimeoutMs);
        return ctx.track(this.dhtLinkTo(c).then(() => true, () => false));
      },
      isConnected: (id) => {
        const peer = ctx.nodeById(id.toString('latin1'));
        return peer !== undefined && this.links.has(peer.index);
      },
    };
    this.dht = new Dht(this.identity.id, ctx.clock, ctx.config.dht, host, randomBytes);
  }
}
