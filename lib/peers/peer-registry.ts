/**
 * The peer registry: the network's table of peers and connections, and the wiring that fills
 * and empties it. It dials through the Dialer (dialer.ts: one attempt per address at a time,
 * within the dial limits), takes charge of every connection whose handshake is under way,
 * admits or refuses each one once its handshake shows an id (bans, duplicate connections,
 * admission slots and eviction), remembers where to redial a peer (known peers), and when a
 * connection closes decides whether to redial it, forget it, or dial the bootstrap addresses
 * again. The policy lives in the pure modules beside it (admission.ts, known-peers.ts,
 * dial-limiter.ts, ../health/partition-monitor.ts, ../health/reconnector.ts); this module
 * applies their verdicts to connections. It opens no socket itself (the host dials) and owns
 * no global timer: time comes from the injected clock.
 *
 * Who calls what (all from lib/network.ts, which builds it):
 * - the transport calls acceptSocket() for each accepted socket before anything is read,
 *   and adopt() for each inbound connection (the Dialer adopts the dialed ones);
 * - start() and addPeer() call connect(); start() then reconnect() for members not reached
 *   and rejoin() when alone; discoverPeers() calls keepFound(); the DHT calls linkTo() and
 *   isAlive() through its host, and sendToPeer() reaches a peer through linkTo();
 * - the heartbeat reads handles, calls partitioned() for each peer the partition monitor
 *   found silent, and trimLookupLinks() when no DHT query is in flight;
 * - stop() calls cancelRedials(), then closeAll().
 * It answers through a small host (PeerRegistryHost): dial, message, connected, peerSeen,
 * rejoined and the peer events, which the network emits as its own.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { P2PError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { LookupContact } from '../dht/lookup.js';
import type { PartitionMonitor } from '../health/partition-monitor.js';
import { Reconnector } from '../health/reconnector.js';
import type { Metrics } from '../metrics.js';
import type { ResolvedOptions } from '../options.js';
import type { BackoffScheduler } from '../retry/backoff.js';
import type { CloseInfo, Connection } from '../transport/connection.js';
import { GOODBYE_CODE_NAMES, GoodbyeCode, LIMITS } from '../wire/messages.js';
import type { InboundMessage, Message } from '../wire/messages.js';
import type { Socket } from 'node:net';
import { Admission, preferDiverse } from './admission.js';
import type { AdmissionRefusal, PendingVerdict } from './admission.js';
import { Dialer } from './dialer.js';
import type { DialFailure } from './dialer.js';
import type { DialKind } from './dial-limiter.js';
import { KnownPeers } from './known-peers.js';
import type { Sanctions } from './sanctions.js';

export type PeerState = 'connecting' | 'connected' | 'disconnected' | 'partitioned';

/** What the network knows about a peer. */
export interface PeerInfo {
  /** Node id, 64 hex chars. */
  id: string;
  /** Address the peer accepts connections on (port 0: it does not listen). */
  host: string;
  port: number;
  state: PeerState;
  /** Clock time (ms) of the last valid frame from the peer; 0 if never. */
  lastContact: number;
  /** Last PING round trip, ms. */
  rttMs?: number;
}

/**
 * Why a connection ended, as a stable code beside the free-text reason: the P2PError code when
 * an error closed it ('MALFORMED', 'HANDSHAKE_TIMEOUT', ...), else the GOODBYE code name sent
 * or received ('NORMAL', 'TIMEOUT', 'IDLE', 'TOO_MANY_PEERS', ...), else 'CONNECTION_LOST'
 * (the socket ended or was reset without a GOODBYE).
 */
export type DisconnectCode = ErrorCode | keyof typeof GoodbyeCode | 'CONNECTION_LOST';

/** Third argument of 'peer:disconnect'. */
export interface DisconnectDetail {
  code: DisconnectCode;
  /** True when the peer ended it (GOODBYE received, socket ended or reset). */
  byPeer: boolean;
}

/** What admissionStats() reports. */
export interface AdmissionStats {
  inbound: number;
  outbound: number;
  members: number;
  pending: number;
  knownPeers: number;
  reconnecting: number;
  refused: Record<string, number>;
  dialsRefused: Record<string, number>;
}

/** The peer events the registry raises; the network emits them (P2PNetworkEvents documents each). */
export interface PeerEvents {
  'peer:connect': [peer: PeerInfo];
  'peer:disconnect': [peer: PeerInfo, reason: string, detail: DisconnectDetail];
  'peer:dial-failed': [failure: DialFailure];
  'peer:partitioned': [peer: PeerInfo];
  'peer:recovered': [peer: PeerInfo];
}

/** The options the registry reads (resolved and validated by lib/options.ts). */
export type PeerRegistryOptions = Pick<ResolvedOptions,
  'bootstrap' | 'members' | 'onlyMembers' | 'minPeers' | 'partitionTimeoutMs' | 'dialTimeoutMs' | 'handshakeTimeoutMs' |
  'retry' | 'reconnectForMs' | 'maxInboundPeers' | 'maxOutboundPeers' | 'maxPeers' | 'maxInboundPerIp' | 'maxInboundPerGroup' |
  'admissionAllowlist' | 'maxPendingHandshakes' | 'maxPendingPerIp' | 'minEvictionAgeMs' | 'maxKnownPeers' | 'provenAfterMs' |
  'maxUnprovenDials' | 'minRedialIntervalMs'>;

/** The modules the registry consults (built by the network, shared with it). */
export interface PeerRegistryParts {
  /** Contact times and partition state of every known peer. */
  monitor: PartitionMonitor;
  /** Runs the redial tasks (shared with sendToPeer's retries). */
  retry: BackoffScheduler;
  /** Bans checked after each handshake; told of each connection that opens. */
  sanctions: Pick<Sanctions, 'refuseBanned' | 'connected'>;
  /** Useful first deliveries of a peer (eviction protection, known-peer keeping). */
  usefulness: (peerId: string) => number;
  /** Counts failed dials by code. */
  metrics: Pick<Metrics, 'dialFailed'>;
  /** Child loggers: `p2p` (admission), `transport` (dials, failed connections), `health` (partitions, redials), `dht` (rejoin). */
  logs: { p2p: Logger; transport: Logger; health: Logger; dht: Logger };
}

/** What the registry asks of the network. */
export interface PeerRegistryHost {
  /** This node's id (hex): the duplicate-connection rule compares it with the peer's. */
  readonly selfId: string;
  /** Whether connections are taken and dials made now (the network is starting or running). */
  accepting(): boolean;
  /** Whether the network is running: redials are scheduled only then. */
  running(): boolean;
  /** Open a connection to host:port (the transport): resolves once TCP is connected, with the handshake under way. */
  dial(host: string, port: number, timeoutMs: number): Promise<Connection>;
  /** A message from a connected peer. */
  message(peer: PeerHandle, msg: InboundMessage): void;
  /** A peer connected and 'peer:connect' was emitted: start the gossip catch-up with it. */
  connected(peer: PeerHandle): void;
  /** A peer's address for the routing table. */
  peerSeen(id: Buffer, host: string, port: number): void;
  /** A bootstrap address answered after the node had lost every peer: refill the routing table. */
  rejoined(): void;
  emit<K extends keyof PeerEvents>(event: K, ...args: PeerEvents[K]): void;
}

/** A connected peer as the engines see it (the gossip engine's GossipPeer, the DHT's link). */
export class PeerHandle {
  readonly idHex: string;
  readonly prefixKey: string;
  constructor(readonly conn: Connection) {
    this.idHex = conn.peerIdHex;
    this.prefixKey = conn.peerId!.subarray(0, LIMITS.seenByEntryBytes).toString('latin1');
  }
  send(msg: Message): boolean {
    return this.conn.send(msg);
  }
  sendEncoded(type: number, body: Buffer): boolean {
    return this.conn.sendEncoded(type, body);
  }
  get rttMs(): number | undefined {
    return this.conn.rttMs;
  }
}

interface KnownPeer {
  id: string;
  host: string;
  port: number;
  conn: Connection | undefined;
  handle: PeerHandle | undefined;
  /**
   * The open connection was dialed only to query this peer in a DHT lookup (or to ping it
   * for the routing table): it is closed again once no lookup needs it, unless the node has
   * no more than minPeers connections. Kademlia keeps contacts in the table, not connections.
   */
  lookupOnly: boolean;
}

type PendingRefusal = Exclude<PendingVerdict, 'ok'>;

/** Reconnector key of the re-bootstrap task (never a peer id: those are 64 hex chars). */
const BOOTSTRAP_KEY = 'bootstrap';

export class PeerRegistry {
  /** Slots, per-source limits, pending handshakes, eviction, members (admission.ts). */
  private readonly admission: Admission;
  /** Who is worth keeping, whose address is proven; capped (known-peers.ts). */
  private readonly knownPeers: KnownPeers;
  /** One dial per address at a time, within the per-address limits (dialer.ts). */
  private readonly dialer: Dialer;
  private readonly reconnector: Reconnector;
  /** Redials of members: never give up. */
  private readonly memberReconnector: Reconnector;
  private readonly monitor: PartitionMonitor;
  private readonly logs: PeerRegistryParts['logs'];
  /** Connections refused or evicted by admission, by reason (admissionStats()). */
  private readonly refused: Record<PendingRefusal | AdmissionRefusal | 'EVICTED', number> = {
    too_many_pending: 0, too_many_pending_from_ip: 0, NOT_MEMBER: 0, TOO_MANY_PEERS: 0, TOO_MANY_FROM_IP: 0, TOO_MANY_FROM_GROUP: 0, EVICTED: 0,
  };
  /** The IP each accepted socket holds a pending-handshake slot for (read once, at accept). */
  private readonly pendingIp = new WeakMap<Socket, string>();
  private readonly known = new Map<string, KnownPeer>();
  private readonly handshaking = new Set<Connection>();
  /** Callers of whenConnected(), by peer id: called when the peer connects. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private connectedHandles: PeerHandle[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly opts: PeerRegistryOptions,
    private readonly parts: PeerRegistryParts,
    private readonly host: PeerRegistryHost,
  ) {
    const o = opts;
    this.monitor = parts.monitor;
    this.logs = parts.logs;
    this.admission = new Admission(clock, {
      maxInboundPeers: o.maxInboundPeers,
      maxOutboundPeers: o.maxOutboundPeers,
      maxPeers: o.maxPeers,
      maxInboundPerIp: o.maxInboundPerIp,
      maxInboundPerGroup: o.maxInboundPerGroup,
      admissionAllowlist: o.admissionAllowlist,
      maxPendingHandshakes: o.maxPendingHandshakes,
      maxPendingPerIp: o.maxPendingPerIp,
      minEvictionAgeMs: o.minEvictionAgeMs,
      members: o.members.map((m) => m.id),
      onlyMembers: o.onlyMembers,
    }, { usefulness: parts.usefulness, rttMs: (id) => this.known.get(id)?.conn?.rttMs });
    this.knownPeers = new KnownPeers(clock, { maxKnownPeers: o.maxKnownPeers, provenAfterMs: o.provenAfterMs }, parts.usefulness, (id) => this.admission.isMember(id));
    this.dialer = new Dialer(clock, o, parts.metrics, parts.logs.transport, {
      accepting: () => host.accepting(),
      dial: (h, port, timeoutMs) => host.dial(h, port, timeoutMs),
      adopt: (conn) => this.adopt(conn),
      whenConnected: (id, timeoutMs) => this.whenConnected(id, timeoutMs),
      proveAddress: (id, h, port) => this.knownPeers.proveAddress(id, h, port),
      failed: (f) => host.emit('peer:dial-failed', f),
    });
    for (const a of o.bootstrap) this.trust(a.host, a.port);
    for (const m of o.members) {
      this.knownPeers.addMember(m.id, m.host, m.port);
      if (m.port > 0) this.trust(m.host, m.port);
    }
    this.reconnector = new Reconnector(clock, parts.retry, { retry: o.retry, reconnectForMs: o.reconnectForMs }, (key, err) =>
      this.logs.health.info({ peer: key.slice(0, 12), err: err instanceof Error ? err.message : String(err) }, 'gave up reconnecting'),
    );
    this.memberReconnector = new Reconnector(clock, parts.retry, { retry: o.retry, reconnectForMs: Infinity });
  }

  /** The connected peers, in the order they connected (a new array after each change: safe to iterate while peers come and go). */
  get handles(): readonly PeerHandle[] {
    return this.connectedHandles;
  }

  /** The open connection to `peerId`, if any. */
  connectionOf(peerId: string): Connection | undefined {
    return this.known.get(peerId)?.conn;
  }

  /** The address the registry would redial `peerId` at (port 0: none), if it knows the peer. */
  addressOf(peerId: string): { host: string; port: number } | undefined {
    const p = this.known.get(peerId);
    return p && { host: p.host, port: p.port };
  }

  /** What the network knows about `peerId`; undefined if it is not in the table. */
  info(peerId: string): PeerInfo | undefined {
    const p = this.known.get(peerId);
    return p && this.infoOf(p);
  }

  /** Every peer in the table, connected or not. */
  peers(): PeerInfo[] {
    return [...this.known.values()].map((p) => this.infoOf(p));
  }

  /** Whether this node proved `peerId`'s address, or it is a configured member's (known-peers.ts). */
  isProven(peerId: string): boolean {
    return this.knownPeers.isProven(peerId);
  }

  /** Whether `peerId` is worth redialing and counting in health() (known-peers.ts). */
  worthKeeping(peerId: string): boolean {
    return this.knownPeers.worthKeeping(peerId);
  }

  /** Whether an address is on the admission allowlist (exempt from per-source limits). */
  isAllowlisted(host: string): boolean {
    return this.admission.isAllowlisted(host);
  }

  /** Dial host:port without the learned-address limits from now on (bootstrap, addPeer, members). */
  trust(host: string, port: number): void {
    this.dialer.trust(host, port);
  }

  /** Admission figures for admissionStats(). */
  stats(): AdmissionStats {
    return {
      ...this.admission.counts(),
      knownPeers: this.knownPeers.size,
      reconnecting: this.reconnector.size + this.memberReconnector.size,
      refused: { ...this.refused },
      dialsRefused: this.dialer.refused(),
    };
  }

  /** Dials this node started to host:port (the per-address dial limiter's count). */
  dialsTo(host: string, port: number): number {
    return this.dialer.attempts(host, port);
  }

  // ---- dialing ------------------------------------------------------------------------------

  /** Dial host:port and wait for the handshake; resolves with the peer id (Dialer.connect). */
  connect(host: string, port: number, kind: DialKind = 'trusted', expectedId?: string): Promise<string> {
    return this.dialer.connect(host, port, kind, expectedId);
  }

  /** Resolves once `peerId` has an open connection, or rejects after timeoutMs. */
  private whenConnected(peerId: string, timeoutMs: number): Promise<void> {
    if (this.known.get(peerId)?.conn) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let set = this.waiting.get(peerId);
      if (!set) this.waiting.set(peerId, (set = new Set()));
      const waiters = set;
      const stopWaiting = () => {
        waiters.delete(onConnect);
        if (waiters.size === 0 && this.waiting.get(peerId) === waiters) this.waiting.delete(peerId);
      };
      const onConnect = () => {
        timer.cancel();
        stopWaiting();
        resolve();
      };
      const timer: TimerHandle = this.clock.setTimeout(() => {
        stopWaiting();
        reject(new P2PError('TIMEOUT', `no connection to ${peerId.slice(0, 12)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(onConnect);
    });
  }

  /** An open link to a contact, dialing it if needed and checking the node there is the one expected. */
  async linkTo(contact: LookupContact, purpose: 'keep' | 'lookup' = 'keep', kind: DialKind = 'learned'): Promise<PeerHandle> {
    const hex = contact.id.toString('hex');
    const known = this.known.get(hex);
    if (known?.handle) {
      if (purpose === 'keep') known.lookupOnly = false;
      return known.handle;
    }
    // With onlyMembers a non-member would be refused after its handshake: do not dial it at all.
    if (this.opts.onlyMembers && !this.admission.isMember(hex)) throw new P2PError('NOT_MEMBER', `${hex.slice(0, 12)} is not a member`);
    const id = await this.connect(contact.host, contact.port, kind, hex);
    if (id !== hex) throw new P2PError('NOT_CONNECTED', `${contact.host}:${contact.port} is node ${id.slice(0, 12)}, not ${hex.slice(0, 12)}`);
    const p = this.known.get(hex);
    if (!p?.handle) throw new P2PError('NOT_CONNECTED', `connection to ${hex.slice(0, 12)} closed`);
    // Only a connection this call opened is lookup-only; one that was kept stays kept.
    if (purpose === 'lookup' && known?.handle === undefined && p.handle.conn.outbound) p.lookupOnly = true;
    else if (purpose === 'keep') p.lookupOnly = false;
    return p.handle;
  }

  /** Whether a contact answers now: its connection heard from within partitionTimeoutMs, else a lookup dial succeeds. */
  async isAlive(contact: LookupContact): Promise<boolean> {
    const p = this.known.get(contact.id.toString('hex'));
    if (p?.conn) return this.clock.now() - p.conn.lastContact < this.opts.partitionTimeoutMs;
    return this.linkTo(contact, 'lookup').then(() => true, () => false);
  }

  /**
   * Dial contacts a discovery found, the most diverse address groups first, until minPeers
   * are connected or no outbound slot is left. A link the lookups opened becomes a kept one.
   */
  async keepFound(contacts: LookupContact[]): Promise<void> {
    for (const c of preferDiverse(contacts, this.admission.outboundGroups())) {
      const hex = c.id.toString('hex');
      if (this.connectedHandles.length >= this.opts.minPeers || !this.admission.outboundAvailable()) break;
      const p = this.known.get(hex);
      if (p?.conn) p.lookupOnly = false;
      else await this.linkTo(c).catch(() => undefined);
    }
  }

  /**
   * Close the connections that were opened only for DHT queries, while the node holds more
   * than minPeers connections (the caller checks that no query is in flight). Without this
   * every lookup would leave a connection to each node it asked, and the gossip topology would
   * drift towards a full mesh. Closed with GOODBYE IDLE: neither side redials, and both forget
   * the connection's peer entry (the routing tables keep the contact), so lookups do not grow
   * peers() or knownPeers.
   */
  trimLookupLinks(): void {
    for (const p of this.known.values()) {
      if (this.connectedHandles.length <= this.opts.minPeers) return;
      if (p.lookupOnly && p.conn) p.conn.close(GoodbyeCode.IDLE, 'lookup done');
    }
  }

  // ---- connections --------------------------------------------------------------------------

  /**
   * A socket was accepted (nothing read yet): refuse it when the pending handshakes are at
   * their cap, in total or from its IP. The socket is destroyed by the transport.
   */
  acceptSocket(socket: Socket): boolean {
    const ip = socket.remoteAddress;
    if (ip === undefined || !this.host.accepting()) return false;
    const verdict = this.admission.openPending(ip);
    if (verdict === 'ok') {
      this.pendingIp.set(socket, ip);
      return true;
    }
    this.refused[verdict]++;
    return false;
  }

  /** Take charge of a connection whose handshake is under way. */
  adopt(conn: Connection): void {
    // An inbound socket holds a pending-handshake slot (taken in acceptSocket) until it opens or closes.
    const ip = this.pendingIp.get(conn.socket);
    let pending = ip !== undefined;
    const release = () => {
      if (pending) this.admission.closePending(ip!);
      pending = false;
    };
    if (!this.host.accepting()) {
      release();
      conn.close(GoodbyeCode.NORMAL, 'shutting down');
      return;
    }
    this.handshaking.add(conn);
    conn.once('open', () => {
      release();
      this.handshaking.delete(conn);
      this.register(conn);
    });
    conn.once('close', (info) => {
      release();
      this.handshaking.delete(conn);
      this.unregister(conn, info);
    });
  }

  private register(conn: Connection): void {
    if (this.parts.sanctions.refuseBanned(conn)) return;
    const id = conn.peerIdHex;
    const existing = this.known.get(id);
    if (existing?.conn) {
      // Keep the connection dialed by the lower id; both ends reach the same verdict.
      const dialer = (c: Connection) => (c.outbound ? this.host.selfId : id);
      const keepNew = dialer(conn) < dialer(existing.conn);
      const loser = keepNew ? existing.conn : conn;
      if (!keepNew) {
        conn.close(GoodbyeCode.DUPLICATE_CONNECTION, 'duplicate connection', new P2PError('DUPLICATE_CONNECTION', 'duplicate connection'));
        return;
      }
      this.detach(existing);
      loser.close(GoodbyeCode.DUPLICATE_CONNECTION, 'duplicate connection', new P2PError('DUPLICATE_CONNECTION', 'duplicate connection'));
    } else {
      // A new peer (not a duplicate replacing its first connection, which keeps its slot).
      const ip = conn.socket.remoteAddress ?? '';
      const verdict = this.admission.admit({ id, ip, outbound: conn.outbound });
      if (!verdict.accept) {
        this.refuse(conn, verdict.reason);
        return;
      }
      if (verdict.evict !== undefined) {
        const victim = this.known.get(verdict.evict);
        this.logs.p2p.debug({ peer: verdict.evict.slice(0, 12), for: id.slice(0, 12) }, 'evicting an inbound peer');
        this.refused.EVICTED++;
        // Closing unregisters it (and frees its slot) at once.
        if (victim?.conn) victim.conn.close(GoodbyeCode.EVICTED, 'evicted to make room', new P2PError('EVICTED', 'evicted to make room'));
        else this.admission.removed(verdict.evict);
      }
      this.admission.added({ id, ip, outbound: conn.outbound });
    }
    const p: KnownPeer = existing ?? { id, host: '', port: 0, conn: undefined, handle: undefined, lookupOnly: false };
    // Where to redial: the address we dialed (proven by this handshake), else the peer's claim.
    const dialed = conn.outbound ? this.dialer.dialedAddress(conn) : undefined;
    const claim = dialed
      ? { ...dialed, proven: true }
      : { host: conn.peerListenPort > 0 ? conn.peerListenHost : conn.socket.remoteAddress ?? '', port: conn.peerListenPort, proven: false };
    // The known-peer table dropped these to stay within its cap (never a connected peer).
    for (const gone of this.knownPeers.connected(id, claim)) if (!this.known.get(gone)?.conn) this.forget(gone);
    const record = this.knownPeers.get(id)!;
    p.host = record.host || (conn.socket.remoteAddress ?? '');
    p.port = record.port;
    p.conn = conn;
    p.lookupOnly = false;
    p.handle = new PeerHandle(conn);
    this.known.set(id, p);
    const recovered = this.monitor.connected(id);
    // IWANT answers: unbudgeted for a peer we chose (dialed, or a member); a known peer coming
    // back gets the serve burst for its catch-up; a new inbound identity gets neither.
    this.parts.sanctions.connected(id, conn.outbound || this.admission.isMember(id));
    // Connected, whoever dialed: stop redialing it (and re-bootstrapping, if we were alone).
    this.reconnector.cancel(id);
    this.memberReconnector.cancel(id);
    this.reconnector.cancel(BOOTSTRAP_KEY);
    this.connectedHandles = [...this.connectedHandles, p.handle];
    conn.on('message', (msg) => {
      const h = p.handle;
      if (h) this.host.message(h, msg);
    });
    // The routing table takes a proven address, or an inbound claim that points at the host
    // the peer connects from (it cannot name a third party's host): a lookup candidate whose
    // dial is then bounded by the dial limits, never handed out until proven (isProven).
    if (record.addressProven) this.host.peerSeen(conn.peerId!, record.host, record.port);
    else if (claim.port > 0 && sameHost(claim.host, conn.socket.remoteAddress ?? '')) this.host.peerSeen(conn.peerId!, claim.host, claim.port);
    this.logs.p2p.debug({ peer: id.slice(0, 12), outbound: conn.outbound }, 'peer connected');
    this.host.emit('peer:connect', this.infoOf(p));
    for (const wake of [...(this.waiting.get(id) ?? [])]) wake();
    if (recovered) this.host.emit('peer:recovered', this.infoOf(p));
    // Catch-up: both ends advertise their whole repair window (IHAVE), each asks (IWANT) for
    // what it lacks, so what either side of a partition broadcast reaches the other.
    this.host.connected(p.handle);
  }

  /** Close a connection the admission refused, before the network ever reports it. */
  private refuse(conn: Connection, reason: AdmissionRefusal): void {
    this.refused[reason]++;
    this.logs.p2p.debug({ peer: conn.peerIdHex.slice(0, 12), ip: conn.socket.remoteAddress, reason }, 'connection refused');
    if (reason === 'NOT_MEMBER') conn.close(GoodbyeCode.NOT_MEMBER, 'not a member', new P2PError('NOT_MEMBER', 'not a member'));
    else conn.close(GoodbyeCode.TOO_MANY_PEERS, reason === 'TOO_MANY_PEERS' ? 'too many peers' : reason.toLowerCase().replace(/_/g, ' '));
  }

  private detach(p: KnownPeer): void {
    if (p.handle) this.connectedHandles = this.connectedHandles.filter((h) => h !== p.handle);
    p.conn = undefined;
    p.handle = undefined;
  }

  private unregister(conn: Connection, info: CloseInfo): void {
    if (info.error && info.error.code !== 'DUPLICATE_CONNECTION') {
      this.logs.transport.debug({ peer: conn.peerIdHex.slice(0, 12) || undefined, remote: remoteOf(conn), code: info.error.code, reason: info.reason }, 'connection failed');
    }
    const p = conn.peerIdHex ? this.known.get(conn.peerIdHex) : undefined;
    if (!p || p.conn !== conn) return;
    this.monitor.contact(p.id, conn.lastContact);
    this.detach(p);
    this.admission.removed(p.id);
    this.knownPeers.disconnected(p.id);
    const partitioned = this.monitor.state(p.id) === 'partitioned';
    const lost = partitioned || isLoss(info);
    this.monitor.disconnected(p.id, !lost);
    this.host.emit('peer:disconnect', this.infoOf(p), info.reason, disconnectDetail(info));
    if (partitioned) this.host.emit('peer:partitioned', this.infoOf(p));
    const member = this.admission.isMember(p.id);
    if (!this.knownPeers.worthKeeping(p.id)) {
      // Connected, proved nothing, left: forgotten at once, never redialed, not in health.
      this.forget(p.id);
    } else if (member && info.byPeer) {
      this.reconnect(p.id); // members are redialed whenever they leave, forever
    } else if (info.code === GoodbyeCode.IDLE && !lost) {
      this.forget(p.id);
    } else if (lost) {
      this.reconnect(p.id);
    }
    if (this.connectedHandles.length === 0) this.rejoin();
  }

  /** The partition monitor found `id` silent for partitionTimeoutMs: close its connection (or report it, if it has none). */
  partitioned(id: string): void {
    const p = this.known.get(id);
    if (!p) return;
    const silentMs = this.clock.now() - (this.monitor.lastContact(id) ?? 0);
    this.logs.health.info({ peer: id.slice(0, 12), remote: p.conn ? remoteOf(p.conn) : `${p.host}:${p.port}`, silentMs }, 'peer partitioned');
    // Closing emits peer:disconnect and peer:partitioned and schedules the reconnection (unregister).
    if (p.conn) p.conn.close(GoodbyeCode.TIMEOUT, `silent for ${silentMs} ms`);
    else this.host.emit('peer:partitioned', this.infoOf(p));
  }

  /** Close the connection to a peer and forget it: any reconnection to it is cancelled. */
  remove(peerId: string): void {
    const p = this.known.get(peerId);
    this.forget(peerId);
    p?.conn?.close(GoodbyeCode.NORMAL, 'removed');
  }

  /** Drop a peer's entry, its health record and any redial of it (the routing table is not touched). */
  private forget(peerId: string): void {
    this.reconnector.cancel(peerId);
    this.memberReconnector.cancel(peerId);
    this.known.delete(peerId);
    this.knownPeers.remove(peerId);
    this.monitor.remove(peerId);
  }

  // ---- redialing ----------------------------------------------------------------------------

  /** Redial a lost peer at its known address with backoff, until it answers or reconnectForMs runs out (members: forever). */
  reconnect(id: string): void {
    const rec = this.knownPeers.get(id);
    if (!rec || rec.port === 0 || !this.host.running()) return;
    const contactId = Buffer.from(id, 'hex');
    const reconnector = this.admission.isMember(id) ? this.memberReconnector : this.reconnector;
    reconnector.schedule(id, async () => {
      const peer = this.knownPeers.get(id);
      if (!this.host.running() || !peer) throw new P2PError('STOPPED', 'stopped or peer removed');
      if (this.known.get(id)?.conn) return;
      // Read the address at each attempt: the peer may have dialed us from a new one.
      await this.linkTo({ id: contactId, host: peer.host, port: peer.port }, 'keep', 'claimed').catch((err: unknown) => {
        this.logs.health.debug({ peer: id.slice(0, 12), address: `${peer.host}:${peer.port}`, err: err instanceof Error ? err.message : String(err) }, 'reconnect attempt failed');
        throw err;
      });
    });
  }

  /** Alone: dial the bootstrap addresses with backoff until one answers, then let the host refill the routing table. */
  rejoin(): void {
    if (!this.host.running() || this.opts.bootstrap.length === 0) return;
    this.reconnector.schedule(BOOTSTRAP_KEY, async () => {
      if (!this.host.running()) throw new P2PError('STOPPED', 'the network is stopped');
      if (this.connectedHandles.length > 0) return;
      const results = await Promise.allSettled(this.opts.bootstrap.map((a) => this.connect(a.host, a.port)));
      if (!results.some((r) => r.status === 'fulfilled')) throw new P2PError('NOT_CONNECTED', 'no bootstrap address answered');
      this.logs.dht.info('rejoined through bootstrap');
      this.host.rejoined();
    });
  }

  // ---- stopping -----------------------------------------------------------------------------

  /** Cancel every redial and re-bootstrap (first step of stop()). */
  cancelRedials(): void {
    this.reconnector.cancelAll();
    this.memberReconnector.cancelAll();
  }

  /** Close every connection, in handshake or open (stop()). */
  closeAll(): void {
    for (const c of this.handshaking) c.close(GoodbyeCode.NORMAL, 'shutting down');
    for (const p of this.known.values()) p.conn?.close(GoodbyeCode.NORMAL, 'shutting down');
  }

  private infoOf(p: KnownPeer): PeerInfo {
    const state = this.monitor.state(p.id) ?? 'disconnected';
    const info: PeerInfo = { id: p.id, host: p.host, port: p.port, state, lastContact: p.conn?.lastContact ?? this.monitor.lastContact(p.id) ?? 0 };
    if (p.conn?.rttMs !== undefined) info.rttMs = p.conn.rttMs;
    return info;
  }
}

/**
 * Whether a closed connection is a loss worth redialing: the link failed (reset, end without
 * GOODBYE: a crash or a network fault) or the peer timed us out (GOODBYE TIMEOUT: it saw a
 * partition). Not when we closed it or the peer said any other GOODBYE: it left on purpose.
 */
function isLoss(info: CloseInfo): boolean {
  if (!info.byPeer) return false;
  return info.goodbye !== true || info.code === GoodbyeCode.TIMEOUT;
}

function remoteOf(conn: Connection): string {
  const a = conn.socket.remoteAddress;
  return a === undefined ? '' : `${a.includes(':') ? `[${a}]` : a}:${conn.socket.remotePort ?? 0}`;
}

function disconnectDetail(info: CloseInfo): DisconnectDetail {
  if (info.error) return { code: info.error.code, byPeer: info.byPeer };
  // The peer went without a GOODBYE (end, reset): the code in CloseInfo is not one it sent.
  const name = info.byPeer && info.goodbye !== true ? undefined : GOODBYE_CODE_NAMES[info.code];
  return { code: (name as keyof typeof GoodbyeCode | undefined) ?? 'CONNECTION_LOST', byPeer: info.byPeer };
}

/** Whether two address literals name one host (IPv4-mapped IPv6 read as IPv4). */
function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => h.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1').toLowerCase();
  return norm(a) === norm(b);
}
