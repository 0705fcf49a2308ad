/**
 * P2PNetwork: the facade users hold. The only module that wires the pieces together:
 * transport (connections), gossip engine, direct messages, routing table, backoff,
 * partition monitor, reconnection and the heartbeat. Everything below it is usable and
 * testable on its own. The failure model is in docs/FAILURES.md.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { systemClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import { randomBytes } from 'node:crypto';
import { Dht } from './dht/dht.js';
import type { LookupContact } from './dht/lookup.js';
import { answerRequest, ackOutcome, CallerLimits, checkSendOptions, DirectMessenger, isFinalDirectError } from './direct.js';
import type { SendOptions } from './direct.js';
export type { SendOptions } from './direct.js';
import { traceNetworkEvents } from './dump/network-trace.js';
import { DumpWriter } from './dump/writer.js';
import { InvalidOptionError, P2PError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { GossipEngine } from './gossip/engine.js';
import type { DeliveryInfo, GossipPeer } from './gossip/engine.js';
import { PartitionMonitor } from './health/partition-monitor.js';
import type { HealthSnapshot } from './health/partition-monitor.js';
import { Reconnector } from './health/reconnector.js';
import { Admission, preferDiverse } from './peers/admission.js';
import type { AdmissionRefusal, PendingVerdict } from './peers/admission.js';
import { DialLimiter } from './peers/dial-limiter.js';
import type { DialKind } from './peers/dial-limiter.js';
import { KnownPeers } from './peers/known-peers.js';
import { generateIdentity } from './identity.js';
import type { Identity } from './identity.js';
import { Metrics } from './metrics.js';
import type { PeerSnapshot } from './peers/peer-ledger.js';
import { Sanctions } from './peers/sanctions.js';
import type { MetricsSnapshot } from './metrics.js';
import { formatExposition, metricsFamilies } from './metrics-text.js';
import { parseAddress, resolveOptions } from './options.js';
import type { P2PNetworkOptions, ResolvedOptions } from './options.js';
import { BackoffScheduler, RetryExhaustedError } from './retry/backoff.js';
import { Connection } from './transport/connection.js';
import type { CloseInfo } from './transport/connection.js';
import { TcpTransport } from './transport/tcp.js';
import { KeyLogFile } from './transport/key-log-file.js';
import { generateX25519 } from './noise/handshake.js';
import type { Socket } from 'node:net';
import { packValue, unpackValue } from './wire/codec.js';
import { AckStatus, GOODBYE_CODE_NAMES, GoodbyeCode, LIMITS, MessageType } from './wire/messages.js';
import type { InboundMessage, Message } from './wire/messages.js';

type PendingRefusal = Exclude<PendingVerdict, 'ok'>;

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

export type { HealthSnapshot } from './health/partition-monitor.js';

/** Reconnector key of the re-bootstrap task (never a peer id: those are 64 hex chars). */
const BOOTSTRAP_KEY = 'bootstrap';

/**
 * Handler for a topic: data is the decoded MessagePack value. May return a promise. For a
 * request (request()), the first handler's return value (or what its promise resolves to) is
 * the answer; otherwise the value is ignored.
 */
export type MessageHandler = (data: unknown, info: DeliveryInfo) => unknown;

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

/** A dial that did not end in a connection: payload of 'peer:dial-failed'. */
export interface DialFailure {
  /** 'host:port' as dialed. */
  address: string;
  host: string;
  port: number;
  /** CONNECTION_CLOSED (refused, unreachable, reset), TIMEOUT (no TCP connect in dialTimeoutMs), or the handshake's code (NETWORK_MISMATCH, VERSION_MISMATCH, HANDSHAKE_TIMEOUT, ...). */
  code: ErrorCode;
  /** Plain words: 'connection refused (ECONNREFUSED)', or the handshake's reason. */
  reason: string;
  /** The operating system's error code when there is one ('ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND'). */
  syscallCode?: string;
}

/** What start() resolves with. */
export interface StartResult {
  /** The address bound (as node.address). */
  address: { host: string; port: number };
  /** How the bootstrap dials went: `answered` of `total` completed a handshake. */
  bootstrap: { total: number; answered: number; failures: DialFailure[] };
}

/** Options of sendToPeer. */
export interface P2PNetworkEvents {
  'peer:connect': [peer: PeerInfo];
  /** reason: free text; detail.code: a stable code (DisconnectCode). */
  'peer:disconnect': [peer: PeerInfo, reason: string, detail: DisconnectDetail];
  /** A dial (bootstrap, addPeer, reconnection, DHT lookup, sendToPeer) did not end in a connection. */
  'peer:dial-failed': [failure: DialFailure];
  /** A subscriber's handler threw or rejected (also counted as droppedByReason.handler_error). */
  'handler:error': [topic: string, error: unknown];
  /** A peer not heard from for partitionTimeoutMs (its connection, if any, is closed; reconnection is under way). */
  'peer:partitioned': [peer: PeerInfo];
  /** A peer reported partitioned is connected again (the gossip catch-up follows). */
  'peer:recovered': [peer: PeerInfo];
  /** A peer sent something invalid: its id and a stable reason word. */
  'peer:invalid': [peerId: string, reason: string];
  /**
   * A peer's score reached scoring.banScore: it was disconnected with GOODBYE MISBEHAVIOR
   * and banned (id and address) for banDurationMs. `reason`: the event that crossed the line.
   */
  'peer:banned': [peerId: string, reason: string];
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

/** A connected peer as the engines see it. */
class PeerHandle implements GossipPeer {
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

/**
 * The heartbeat timer firing more than this many heartbeats past its due time means this
 * process's own event loop stalled (not the peers going silent).
 */
export const STALL_HEARTBEATS = 2;

type Lifecycle = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class P2PNetwork extends EventEmitter<P2PNetworkEvents> {
  /** This node's identity. */
  readonly identity: Identity;
  private readonly opts: ResolvedOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  /**
   * Per-component child loggers (each line carries `component` and `node`). The engines take
   * no logger themselves (gossip logs nothing yet); the facade logs on their behalf.
   */
  private readonly logs: { transport: Logger; dht: Logger; health: Logger };
  /** Whether the caller chose the advertised host (else it was derived from listenHost). */
  private readonly advertiseHostGiven: boolean;
  /** Whether the caller passed a logger (else handler failures are reported by a process warning, once). */
  private readonly loggerGiven: boolean;
  private handlerWarningShown = false;
  private readonly counters = new Metrics();
  private readonly transport: TcpTransport;
  private readonly gossip: GossipEngine;
  private readonly direct: DirectMessenger;
  private readonly dht: Dht;
  private readonly retry: BackoffScheduler;
  private readonly monitor: PartitionMonitor;
  private readonly reconnector: Reconnector;
  /** Budgets, scores, per-origin budget and bans, and what to do about them (lib/peers/sanctions.ts). */
  private readonly sanctions: Sanctions;
  /** Redials of members: never give up. */
  private readonly memberReconnector: Reconnector;
  /** Slots, per-source limits, pending handshakes, eviction, members (lib/peers/admission.ts). */
  private readonly admission: Admission;
  /** Who is worth keeping, whose address is proven; capped (lib/peers/known-peers.ts). */
  private readonly knownPeers: KnownPeers;
  /** Per-address dial limits (lib/peers/dial-limiter.ts). */
  private readonly dialLimiter: DialLimiter;
  /** Addresses from the user (bootstrap, addPeer, members): dialed without the learned-address limits. */
  private readonly trustedAddresses = new Set<string>();
  /** Connections refused or evicted by admission, by reason (admissionStats()). */
  private readonly refused: Record<PendingRefusal | AdmissionRefusal | 'EVICTED', number> = {
    too_many_pending: 0, too_many_pending_from_ip: 0, NOT_MEMBER: 0, TOO_MANY_PEERS: 0, TOO_MANY_FROM_IP: 0, TOO_MANY_FROM_GROUP: 0, EVICTED: 0,
  };
  /** The IP each accepted socket holds a pending-handshake slot for (read once, at accept). */
  private readonly pendingIp = new WeakMap<Socket, string>();
  /** The address each outbound connection was dialed at: proven once its handshake shows an id. */
  private readonly dialedAt = new WeakMap<Connection, { host: string; port: number }>();
  /** The wire dump (wireDump option), when one is being written. */
  private readonly dump: DumpWriter | undefined;
  /** The key log (keyLog option), when one is being written. */
  private readonly keyLog: KeyLogFile | undefined;
  private readonly dialing = new Map<string, Promise<string>>();
  private readonly known = new Map<string, KnownPeer>();
  private readonly handshaking = new Set<Connection>();
  private handles: PeerHandle[] = [];
  private readonly subscriptions = new Map<string, Set<MessageHandler>>();
  private heartbeatTimer: TimerHandle | undefined;
  private lifecycle: Lifecycle = 'new';
  private startPromise: Promise<StartResult> | undefined;
  private stopPromise: Promise<void> | undefined;
  private teardownPromise: Promise<void> | undefined;
  private bound: { host: string; port: number } | undefined;

  constructor(options: P2PNetworkOptions = {}) {
    super();
    this.opts = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.identity = options.identity ?? generateIdentity();
    const root = (options.logger ?? pino({ level: 'silent' })).child({ node: this.identity.idHex.slice(0, 12) });
    this.log = root.child({ component: 'p2p' });
    this.logs = {
      transport: root.child({ component: 'transport' }),
      dht: root.child({ component: 'dht' }),
      health: root.child({ component: 'health' }),
    };
    this.loggerGiven = options.logger !== undefined;
    this.advertiseHostGiven = options.advertiseHost !== undefined;
    this.keyLog = this.opts.keyLog === undefined ? undefined : new KeyLogFile(this.opts.keyLog, (err) =>
      this.log.warn({ file: this.opts.keyLog, err: err.message }, 'key log stopped: cannot write'));
    this.dump = this.opts.wireDump === undefined ? undefined : new DumpWriter(this.opts.wireDump, {
      node: this.identity.idHex,
      onError: (err) => this.log.warn({ file: this.opts.wireDump, err: err.message }, 'wire dump stopped: cannot write'),
    });
    this.transport = new TcpTransport(
      {
        identity: this.identity,
        networkId: this.opts.networkId,
        encrypted: this.opts.encryption,
        staticKey: generateX25519(),
        ...(this.keyLog ? { keyLog: this.keyLog.line } : {}),
        advertiseHost: this.opts.advertiseHost,
        advertisePort: this.opts.advertisePort === 0 ? this.opts.listenPort : this.opts.advertisePort,
        maxFrameBytes: this.opts.maxFrameBytes,
        handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
        maxQueueBytes: this.opts.maxQueueBytes,
        clock: this.clock,
        metrics: this.counters,
        tap: this.dump?.frame,
      },
      (conn) => this.adopt(conn),
      (socket) => this.acceptSocket(socket),
    );
    this.sanctions = new Sanctions(this.clock, this.opts.scoring, this.opts.banDurationMs, this.counters, this.log, {
      connectionOf: (id) => this.known.get(id)?.conn,
      onInvalid: (id, reason) => this.emit('peer:invalid', id, reason),
      onBanned: (id, reason) => this.emit('peer:banned', id, reason),
    });
    this.gossip = new GossipEngine(this.identity, this.clock, this.opts, {
      peers: () => this.handles,
      deliver: (topic, payload, info) => this.deliver(topic, payload, info),
      subscribed: (topic) => (this.subscriptions.get(topic)?.size ?? 0) > 0,
      trace: this.dump?.trace,
      endOfTurn: Connection.atEndOfTurn,
      ...this.sanctions.gossipHost(),
    }, this.counters);
    this.direct = new DirectMessenger(this.clock);
    const o = this.opts;
    this.admission = new Admission(this.clock, {
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
    }, { usefulness: (id) => this.usefulness(id), rttMs: (id) => this.known.get(id)?.conn?.rttMs });
    this.knownPeers = new KnownPeers(this.clock, { maxKnownPeers: o.maxKnownPeers, provenAfterMs: o.provenAfterMs }, (id) => this.usefulness(id), (id) => this.admission.isMember(id));
    this.dialLimiter = new DialLimiter(this.clock, { maxUnprovenDials: o.maxUnprovenDials, minRedialIntervalMs: o.minRedialIntervalMs });
    for (const a of o.bootstrap) this.trustedAddresses.add(addressKey(a.host, a.port));
    for (const m of o.members) {
      this.knownPeers.addMember(m.id, m.host, m.port);
      if (m.port > 0) this.trustedAddresses.add(addressKey(m.host, m.port));
    }
    // isProven: the DHT hands out (NODES) only contacts whose address this node proved.
    const dhtHost = {
      linkTo: (c: LookupContact) => this.linkTo(c, 'lookup'),
      isAlive: (c: LookupContact) => this.isAlive(c),
      isConnected: (id: Buffer) => this.known.get(id.toString('hex'))?.conn !== undefined,
      isProven: (id: Buffer) => this.knownPeers.isProven(id.toString('hex')),
    };
    this.dht = new Dht(this.identity.id, this.clock, {
      k: this.opts.k,
      alpha: this.opts.alpha,
      requestTimeoutMs: this.opts.dhtRequestTimeoutMs,
      refreshIntervalMs: this.opts.refreshIntervalMs,
      // Allowlisted addresses (a one-machine testbed) are exempt from the routing table's
      // address-group limits, as they are from admission's.
      groupExempt: (host: string) => this.admission.isAllowlisted(host),
    }, dhtHost, randomBytes);
    this.retry = new BackoffScheduler(this.clock);
    if (this.dump) traceNetworkEvents(this, this.dump);
    this.monitor = new PartitionMonitor(this.clock, { partitionTimeoutMs: this.opts.partitionTimeoutMs });
    this.reconnector = new Reconnector(this.clock, this.retry, { retry: this.opts.retry, reconnectForMs: this.opts.reconnectForMs }, (key, err) =>
      this.logs.health.info({ peer: key.slice(0, 12), err: err instanceof Error ? err.message : String(err) }, 'gave up reconnecting'),
    );
    this.memberReconnector = new Reconnector(this.clock, this.retry, { retry: this.opts.retry, reconnectForMs: Infinity });
  }

  /**
   * Whether this node proved `peerId`'s address (it dialed it and the handshake showed that
   * id), or the address is a configured member's. Only such contacts are handed out.
   */
  isProven(peerId: string): boolean {
    return this.knownPeers.isProven(peerId);
  }

  /**
   * Admission figures: connections by slot kind, pending handshakes, the known-peer table
   * size, reconnect tasks, connections refused (or evicted) by reason, dials refused by the
   * per-address limits by verdict.
   */
  admissionStats(): AdmissionStats {
    return {
      ...this.admission.counts(),
      knownPeers: this.knownPeers.size,
      reconnecting: this.reconnector.size + this.memberReconnector.size,
      refused: { ...this.refused },
      dialsRefused: { ...this.dialLimiter.refused },
    };
  }

  /** Dials this node started to host:port (the per-address dial limiter's count). */
  dialsTo(host: string, port: number): number {
    return this.dialLimiter.attempts(host, port);
  }

  /** Node id: 64 hex chars, SHA-256 of the public key. */
  get id(): string {
    return this.identity.idHex;
  }

  /** The address actually bound; throws NOT_STARTED before start() resolves. */
  get address(): { host: string; port: number } {
    if (!this.bound) throw new P2PError('NOT_STARTED', 'the network is not started');
    return { ...this.bound };
  }

  /**
   * Listen, dial the bootstrap peers, start the heartbeat; resolves with the bound address and
   * how many bootstrap addresses answered. Idempotent; a stopped network cannot restart.
   * Rejects with LISTEN_FAILED (port in use, ...), and with BOOTSTRAP_FAILED when
   * requireBootstrap is set and no bootstrap address answered (the node is then stopped).
   */
  start(): Promise<StartResult> {
    if (this.lifecycle === 'stopping' || this.lifecycle === 'stopped') {
      return Promise.reject(new P2PError('STOPPED', 'a stopped network cannot be started again; create a new one'));
    }
    this.startPromise ??= this.doStart();
    return this.startPromise;
  }

  private async doStart(): Promise<StartResult> {
    this.lifecycle = 'starting';
    this.bound = await this.transport.listen(this.opts.listenHost, this.opts.listenPort);
    this.logs.transport.info({ host: this.bound.host, port: this.bound.port, advertised: `${this.opts.advertiseHost}:${this.opts.advertisePort || this.bound.port}` }, 'listening');
    this.warnIfUnroutable();
    let lastBeat = this.clock.now();
    this.heartbeatTimer = this.clock.setInterval(() => {
      // A timer firing more than STALL_HEARTBEATS beats late means this process was not
      // running (GC pause, SIGSTOP, VM migration): the peers' silence is ours.
      const now = this.clock.now();
      const lateMs = now - lastBeat - this.opts.heartbeatMs;
      lastBeat = now;
      this.heartbeat(lateMs > STALL_HEARTBEATS * this.opts.heartbeatMs ? lateMs : 0);
    }, this.opts.heartbeatMs);
    this.lifecycle = 'running';
    const failures: DialFailure[] = [];
    const members = this.opts.members.filter((m) => m.port > 0);
    const results = await Promise.allSettled(this.opts.bootstrap.map((a) => this.connect(a.host, a.port)));
    await Promise.allSettled(members.map((m) => this.connect(m.host, m.port, 'trusted', m.id)));
    // Members not reached at start are redialed forever.
    for (const m of members) if (!this.known.get(m.id)?.conn) this.reconnect(m.id);
    results.forEach((r, i) => {
      if (r.status === 'rejected') failures.push(dialFailure(this.opts.bootstrap[i]!.host, this.opts.bootstrap[i]!.port, r.reason));
    });
    const bootstrap = { total: results.length, answered: results.length - failures.length, failures };
    if (bootstrap.total > 0 && bootstrap.answered === 0) {
      this.logs.transport.warn(
        { bootstrap: failures.map((f) => ({ address: f.address, code: f.code, reason: f.reason })) },
        this.opts.requireBootstrap ? 'no bootstrap address answered' : 'no bootstrap address answered; redialing them in the background',
      );
      if (this.opts.requireBootstrap) {
        const err = new P2PError('BOOTSTRAP_FAILED', `none of the ${bootstrap.total} bootstrap address(es) answered: ${failures.map((f) => `${f.address} ${f.reason}`).join('; ')}`);
        await this.teardown();
        throw err;
      }
    } else if (bootstrap.total > 0) {
      this.logs.transport.info({ answered: bootstrap.answered, total: bootstrap.total }, 'bootstrap done');
    }
    if (this.handles.length === 0) this.rejoin();
    // Join the DHT: looking up our own id fills the buckets near us and tells others of us.
    await this.dht.join();
    this.trimLookupLinks();
    return { address: { ...this.bound }, bootstrap };
  }

  /**
   * A wildcard advertised host cannot be dialed, and a node listening on every interface
   * that advertises the loopback default hands peers on other machines an address that
   * leads back to themselves.
   */
  private warnIfUnroutable(): void {
    const adv = this.opts.advertiseHost;
    if (isWildcard(adv)) {
      this.logs.transport.warn({ advertiseHost: adv }, 'advertiseHost is a wildcard address that peers cannot dial; set advertiseHost (CLI: --advertise-host) to an address they can reach');
    } else if (isWildcard(this.opts.listenHost) && !this.advertiseHostGiven) {
      this.logs.transport.warn({ listenHost: this.opts.listenHost, advertiseHost: adv }, `listening on every interface but advertising ${adv}: peers on other machines will redial the wrong host; set advertiseHost (CLI: --advertise-host)`);
    }
  }

  /** Close every connection, cancel every retry and timer. Idempotent; the process can exit after it. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    if (this.startPromise) await this.startPromise.catch(() => {});
    await this.teardown();
  }

  /** The work of stop(), once; also run by a start() that fails its requireBootstrap check. */
  private teardown(): Promise<void> {
    this.teardownPromise ??= this.doTeardown();
    return this.teardownPromise;
  }

  private async doTeardown(): Promise<void> {
    this.lifecycle = 'stopping';
    this.sanctions.pacer.clear(); // broadcasts waiting for their turn reject STOPPED
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
    this.reconnector.cancelAll();
    this.memberReconnector.cancelAll();
    this.retry.cancelAll();
    this.direct.clear(new P2PError('STOPPED', 'the network was stopped'));
    this.dht.clear();
    for (const c of this.handshaking) c.close(GoodbyeCode.NORMAL, 'shutting down');
    for (const p of this.known.values()) p.conn?.close(GoodbyeCode.NORMAL, 'shutting down');
    await this.transport.close();
    await this.dump?.close();
    await this.keyLog?.close();
    this.gossip.clear();
    this.lifecycle = 'stopped';
    this.log.info('stopped');
  }

  /** Subscribe to a topic; returns the function that unsubscribes. */
  subscribe(topic: string, handler: MessageHandler): () => void {
    checkTopic(topic);
    if (typeof handler !== 'function') throw P2PError.invalidArgument('handler must be a function');
    let set = this.subscriptions.get(topic);
    if (!set) this.subscriptions.set(topic, (set = new Set()));
    const entry: MessageHandler = (d, i) => handler(d, i); // distinct per call: subscribing twice needs two unsubscribes
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.subscriptions.get(topic) === set) this.subscriptions.delete(topic);
    };
  }

  /**
   * Gossip `data` (any MessagePack value) on `topic` to the whole network. Resolves with the
   * message id (hex). Signed (the default): paced to the per-origin budget peers apply
   * (scoring.originPerSecond after a burst of scoring.originBurst), so a faster caller
   * waits, in call order.
   */
  async broadcast(topic: string, data: unknown): Promise<string> {
    this.assertRunning();
    checkTopic(topic);
    const payload = this.encodeData(data);
    const turn = this.opts.signMessages ? this.sanctions.pacer.acquire() : undefined;
    if (turn) {
      await turn;
      this.assertRunning(); // stopped while it waited
    }
    return this.gossip.publish(topic, payload).toString('hex');
  }

  /**
   * Send `data` to one peer; resolves when its ACK says it was delivered. The peer's `topic`
   * handlers get it with info.direct === true, once. Retries with backoff; rejects with
   * PEER_UNREACHABLE after the last retry (messagesDropped counts it), and with NO_HANDLER,
   * without retrying, when nobody on the peer subscribes to `topic`. `options.timeoutMs`
   * bounds the whole send (TIMEOUT), `options.signal` aborts it (ABORTED); either cancels the
   * retries.
   */
  async sendToPeer(peerId: string, topic: string, data: unknown, options: SendOptions = {}): Promise<void> {
    await this.sendDirect(peerId, topic, data, false, options);
  }

  /**
   * Ask one peer and wait for its answer: the peer's first `topic` handler runs with
   * info.direct === true and the value it returns (or resolves to) comes back here.
   * Rejects with NO_HANDLER when nobody there subscribes to `topic`, HANDLER_FAILED (with
   * the handler's error text) when it throws, PEER_UNREACHABLE after the retries, and
   * TIMEOUT / ABORTED as sendToPeer does. The handler must answer within ackTimeoutMs, or the
   * request is retried (and the retry is answered only if the first call's answer is lost:
   * not run twice).
   */
  async request(peerId: string, topic: string, data: unknown, options: SendOptions = {}): Promise<unknown> {
    const reply = await this.sendDirect(peerId, topic, data, true, options);
    return reply === null ? null : unpackValue(reply);
  }

  private async sendDirect(peerId: string, topic: string, data: unknown, wantReply: boolean, options: SendOptions): Promise<Buffer | null> {
    this.assertRunning();
    if (typeof peerId !== 'string' || !/^[0-9a-f]{64}$/.test(peerId)) throw P2PError.invalidArgument('peerId must be 64 lowercase hex characters');
    if (peerId === this.id) throw P2PError.invalidArgument('cannot send to ourselves');
    checkTopic(topic);
    const { timeoutMs, signal } = checkSendOptions(options);
    const payload = this.encodeData(data);
    if (signal?.aborted) throw P2PError.aborted('sendToPeer', signal.reason);
    const ref = this.direct.newRef();
    const task = this.retry.run(async () => {
      const conn = await this.connectionTo(peerId);
      const acked = this.direct.waitForAck(ref, this.opts.ackTimeoutMs);
      const sentAt = this.clock.now();
      if (!conn.send({ type: MessageType.DIRECT, ref, topic, payload, wantReply })) {
        acked.catch(() => {});
        throw new P2PError('QUEUE_FULL', 'could not queue the message');
      }
      const ack = await acked;
      this.counters.directAckSeconds.observe((this.clock.now() - sentAt) / 1000);
      return ackOutcome(ack, peerId, topic, wantReply);
    }, this.opts.retry, { shouldRetry: (e) => !isFinalDirectError(e) });
    const limits = new CallerLimits(this.clock, timeoutMs, signal, wantReply ? 'request' : 'sendToPeer', peerId);
    try {
      return await limits.race(task.promise);
    } catch (err) {
      if (err instanceof RetryExhaustedError) {
        this.counters.drop('send_failed');
        throw P2PError.peerUnreachable(peerId, err.attempts, err.lastError);
      }
      if (limits.hit(err)) {
        task.cancel();
        this.counters.drop((err as P2PError).code === 'TIMEOUT' ? 'send_timeout' : 'send_aborted');
      }
      throw err;
    } finally {
      limits.dispose();
    }
  }

  /**
   * Run DHT lookups (our own id and a random id) and return the peers found, nearest first
   * for each lookup. Found peers are dialed until minPeers are connected.
   */
  async discoverPeers(): Promise<PeerInfo[]> {
    this.assertRunning();
    const found = new Map<string, LookupContact>();
    for (const target of [this.identity.id, randomBytes(32)]) {
      const r = await this.dht.lookup(target);
      for (const c of r.closest) found.set(c.id.toString('hex'), c);
    }
    for (const c of preferDiverse([...found.values()], this.admission.outboundGroups())) {
      const hex = c.id.toString('hex');
      if (this.handles.length >= this.opts.minPeers || !this.admission.outboundAvailable()) break;
      const p = this.known.get(hex);
      // A link the lookups opened becomes a kept one: it is one of the minPeers now.
      if (p?.conn) p.lookupOnly = false;
      else await this.linkTo(c).catch(() => undefined);
    }
    this.trimLookupLinks();
    return [...found].map(([hex, c]) => {
      const p = this.known.get(hex);
      return p ? this.info(p) : { id: hex, host: c.host, port: c.port, state: 'disconnected' as const, lastContact: 0 };
    });
  }

  /** Statistics of the DHT: table size, rounds of recent lookups, the last lookup's counts. */
  dhtStats(): { tableSize: number; lookupRounds: number[]; lastLookup?: { rounds: number; queried: number; failed: number } } {
    const stats: ReturnType<P2PNetwork['dhtStats']> = { tableSize: this.dht.table.size, lookupRounds: [...this.dht.lookupRounds] };
    if (this.dht.lastLookup) stats.lastLookup = { ...this.dht.lastLookup };
    return stats;
  }

  /** Iterative lookup of `target` (64 hex chars): the k nearest responsive nodes, nearest first. */
  async findClosest(target: string): Promise<Array<{ id: string; host: string; port: number }>> {
    this.assertRunning();
    if (typeof target !== 'string' || !/^[0-9a-f]{64}$/.test(target)) throw P2PError.invalidArgument('target must be 64 lowercase hex characters');
    const r = await this.dht.lookup(Buffer.from(target, 'hex'));
    return r.closest.map((c) => ({ id: c.id.toString('hex'), host: c.host, port: c.port }));
  }

  /** Dial host:port and complete the handshake. Resolves with the peer's info. */
  async addPeer(address: string): Promise<PeerInfo> {
    this.assertRunning();
    let a;
    try {
      a = parseAddress('address', address);
    } catch (err) {
      throw P2PError.invalidArgument((err as InvalidOptionError).message);
    }
    this.trustedAddresses.add(addressKey(a.host, a.port));
    const id = await this.connect(a.host, a.port);
    return this.info(this.known.get(id)!);
  }

  /** Close the connection to a peer and forget it: any reconnection to it is cancelled. */
  async removePeer(peerId: string): Promise<void> {
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

  /** Every peer this node knows, connected or not. */
  peers(): PeerInfo[] {
    return [...this.known.values()].map((p) => this.info(p));
  }

  metrics(): MetricsSnapshot {
    return this.counters.snapshot({ connectedPeers: this.handles.length, seenMessages: this.gossip.seen.size });
  }

  /**
   * The metrics in the Prometheus text exposition format (0.0.4): counters, gauges and
   * histograms named `aethel_p2p_*` (docs/METRICS.md). Serve it with the content type
   * PROMETHEUS_CONTENT_TYPE; append it to a prom-client registry's output to expose both.
   */
  metricsText(): string {
    const health = this.monitor.health();
    const peerRtts: Array<{ id: string; rttMs: number }> = [];
    for (const h of this.handles) if (h.conn.rttMs !== undefined) peerRtts.push({ id: h.idHex, rttMs: h.conn.rttMs });
    return formatExposition(metricsFamilies(this.metrics(), this.counters, {
      knownPeers: health.knownPeers,
      partitionedPeers: health.partitionedPeers,
      reachableFraction: health.reachableFraction,
      peerRtts,
    }));
  }

  /**
   * What this node can reach: a consensus layer stops making progress while it cannot see a
   * quorum (docs/FAILURES.md). With `members` configured, counts over the members (one never
   * connected is unreachable); otherwise over the peers worth keeping (address proven by our
   * dial, connected provenAfterMs, or useful), so identities that proved nothing cannot move
   * it. connectedPeers counts every open connection.
   */
  health(): HealthSnapshot {
    const members = this.opts.members;
    if (members.length > 0) return this.monitor.health({ members: members.map((m) => m.id) });
    return this.monitor.health({ counts: (id) => this.knownPeers.worthKeeping(id) });
  }

  /**
   * Periodic work, called every heartbeatMs by a timer (and directly by tests): detect silent
   * peers (close, report, reconnect), ping the others, gossip repair adverts, cache cleanup.
   * `stalledMs` > 0: the timer found this process stalled that long; the partition check is
   * skipped for this beat and the stall is not counted against any peer.
   */
  heartbeat(stalledMs = 0): void {
    if (this.lifecycle !== 'running') return;
    for (const h of this.handles) this.monitor.contact(h.idHex, h.conn.lastContact);
    if (stalledMs > 0) {
      // The sockets may hold what the peers sent while we were stopped: the stall does not
      // count as their silence, and this beat judges nobody (the next one, after the pending
      // data was read, does).
      this.log.warn({ stalledMs }, 'event loop stalled');
      this.dump?.trace({ event: 'stalled', reason: `event loop stalled for ${stalledMs} ms` });
      this.monitor.resumeAfterStall(stalledMs);
    } else {
      for (const id of this.monitor.check()) this.onPartitioned(id);
    }
    for (const h of this.handles) h.conn.ping();
    this.sanctions.prune();
    this.gossip.heartbeat();
    this.direct.heartbeat();
    void this.dht.refresh();
    this.trimLookupLinks();
  }

  /**
   * Close the connections that were opened only for DHT queries, while the node holds more
   * than minPeers connections and no query is in flight. Without this every lookup would
   * leave a connection to each node it asked, and the gossip topology would drift towards a
   * full mesh. Closed with GOODBYE IDLE: neither side redials, and both forget the
   * connection's peer entry (the routing tables keep the contact), so lookups do not grow
   * peers() or knownPeers.
   */
  private trimLookupLinks(): void {
    if (this.dht.requestsInFlight > 0) return;
    for (const p of this.known.values()) {
      if (this.handles.length <= this.opts.minPeers) return;
      if (p.lookupOnly && p.conn) p.conn.close(GoodbyeCode.IDLE, 'lookup done');
    }
  }

  // ---- connections -------------------------------------------------------------------------

  /**
   * Dial and wait for the handshake; resolves with the peer id. Concurrent dials of one
   * address share one attempt. A 'learned' address (from a peer's HELLO or a NODES reply, or
   * a redial of one) is subject to the per-address dial limits; `expectedId` is the node the
   * caller expects there. Every handshake proves which node lives at the address.
   */
  private connect(host: string, port: number, kind: DialKind = 'trusted', expectedId?: string): Promise<string> {
    const key = `${host}:${port}`;
    let p = this.dialing.get(key);
    if (!p) {
      const verdict = this.dialLimiter.check(host, port, this.trustedAddresses.has(addressKey(host, port)) ? 'trusted' : kind, expectedId);
      if (verdict !== 'ok') {
        return Promise.reject(new P2PError('NOT_CONNECTED', `dial of ${host}:${port} refused: ${verdict}`));
      }
      this.dialLimiter.started(host, port);
      p = this.dial(host, port)
        .then(
          (id) => {
            this.dialLimiter.succeeded(host, port, id);
            // An endpoint proof, also when this dial lost a duplicate race to a live connection.
            this.knownPeers.proveAddress(id, host, port);
            return id;
          },
          (err: unknown) => {
            this.dialLimiter.failed(host, port);
            this.dialFailed(host, port, err);
            throw err;
          },
        )
        .finally(() => this.dialing.delete(key));
      this.dialing.set(key, p);
    }
    return p;
  }

  private async dial(host: string, port: number): Promise<string> {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'starting') throw new P2PError('STOPPED', 'the network is stopped');
    const conn = await this.transport.dial(host, port, this.opts.dialTimeoutMs);
    this.dialedAt.set(conn, { host, port });
    this.adopt(conn);
    return new Promise((resolve, reject) => {
      const onOpen = () => {
        conn.off('close', onClose);
        // A duplicate may have lost to an existing connection: the peer is connected either way.
        resolve(conn.peerIdHex);
      };
      const onClose = (info: CloseInfo) => {
        conn.off('open', onOpen);
        const failed = info.error ?? new P2PError('CONNECTION_CLOSED', `connection to ${host}:${port} closed: ${info.reason}`);
        // Lost a duplicate race (decided here or by the peer): the surviving connection may
        // still be finishing its handshake on this side; the peer is reachable either way.
        if (info.code === GoodbyeCode.DUPLICATE_CONNECTION && conn.peerIdHex) {
          this.whenConnected(conn.peerIdHex, this.opts.handshakeTimeoutMs).then(() => resolve(conn.peerIdHex), () => reject(failed));
        } else {
          reject(failed);
        }
      };
      conn.once('open', onOpen);
      conn.once('close', onClose);
    });
  }

  /** Log, count and emit a failed dial (not one cut short by stop() or a lost duplicate race). */
  private dialFailed(host: string, port: number, err: unknown): void {
    const f = dialFailure(host, port, err);
    if (f.code === 'STOPPED' || f.code === 'DUPLICATE_CONNECTION') return;
    this.counters.dialFailed(f.code);
    // A peer that refused our handshake points at a configuration problem (network id, version): warn.
    const refusedHandshake = f.code !== 'CONNECTION_CLOSED' && f.code !== 'TIMEOUT';
    const fields = { address: f.address, code: f.code, reason: f.reason, ...(f.syscallCode ? { syscallCode: f.syscallCode } : {}) };
    if (refusedHandshake) this.logs.transport.warn(fields, 'dial failed: handshake refused');
    else this.logs.transport.info(fields, 'dial failed');
    this.emit('peer:dial-failed', f);
  }

  /** Resolves once `peerId` has an open connection, or rejects after timeoutMs. */
  private whenConnected(peerId: string, timeoutMs: number): Promise<void> {
    if (this.known.get(peerId)?.conn) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnect = (p: PeerInfo) => {
        if (p.id !== peerId) return;
        timer.cancel();
        this.off('peer:connect', onConnect);
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        this.off('peer:connect', onConnect);
        reject(new P2PError('TIMEOUT', `no connection to ${peerId.slice(0, 12)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('peer:connect', onConnect);
    });
  }

  /** Take charge of a connection whose handshake is under way. */
  private adopt(conn: Connection): void {
    // An inbound socket holds a pending-handshake slot (taken in acceptSocket) until it opens or closes.
    const ip = this.pendingIp.get(conn.socket);
    let pending = ip !== undefined;
    const release = () => {
      if (pending) this.admission.closePending(ip!);
      pending = false;
    };
    if (this.lifecycle !== 'running' && this.lifecycle !== 'starting') {
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

  /**
   * A socket was accepted (nothing read yet): refuse it when the pending handshakes are at
   * their cap, in total or from its IP. The socket is destroyed by the transport.
   */
  private acceptSocket(socket: Socket): boolean {
    const ip = socket.remoteAddress;
    if (ip === undefined || (this.lifecycle !== 'running' && this.lifecycle !== 'starting')) return false;
    const verdict = this.admission.openPending(ip);
    if (verdict === 'ok') {
      this.pendingIp.set(socket, ip);
      return true;
    }
    this.refused[verdict]++;
    return false;
  }

  /** Useful first deliveries of a peer, from the scoring ledger (eviction protection, known-peer keeping). */
  private usefulness(peerId: string): number {
    return this.sanctions.ledger.snapshot(peerId)?.counters.firstDeliveries ?? 0;
  }

  private register(conn: Connection): void {
    if (this.sanctions.refuseBanned(conn)) return;
    const id = conn.peerIdHex;
    const existing = this.known.get(id);
    if (existing?.conn) {
      // Keep the connection dialed by the lower id; both ends reach the same verdict.
      const dialer = (c: Connection) => (c.outbound ? this.id : id);
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
        this.log.debug({ peer: verdict.evict.slice(0, 12), for: id.slice(0, 12) }, 'evicting an inbound peer');
        this.refused.EVICTED++;
        // Closing unregisters it (and frees its slot) at once.
        if (victim?.conn) victim.conn.close(GoodbyeCode.EVICTED, 'evicted to make room', new P2PError('EVICTED', 'evicted to make room'));
        else this.admission.removed(verdict.evict);
      }
      this.admission.added({ id, ip, outbound: conn.outbound });
    }
    const p: KnownPeer = existing ?? { id, host: '', port: 0, conn: undefined, handle: undefined, lookupOnly: false };
    // Where to redial: the address we dialed (proven by this handshake), else the peer's claim.
    const dialed = conn.outbound ? this.dialedAt.get(conn) : undefined;
    const claim = dialed
      ? { ...dialed, proven: true }
      : { host: conn.peerListenPort > 0 ? conn.peerListenHost : conn.socket.remoteAddress ?? '', port: conn.peerListenPort, proven: false };
    for (const gone of this.knownPeers.connected(id, claim)) this.dropKnown(gone);
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
    this.sanctions.connected(id, conn.outbound || this.admission.isMember(id));
    // Connected, whoever dialed: stop redialing it (and re-bootstrapping, if we were alone).
    this.reconnector.cancel(id);
    this.memberReconnector.cancel(id);
    this.reconnector.cancel(BOOTSTRAP_KEY);
    this.handles = [...this.handles, p.handle];
    conn.on('message', (msg) => this.dispatch(p, msg));
    // The routing table takes a proven address, or an inbound claim that points at the host
    // the peer connects from (it cannot name a third party's host): a lookup candidate whose
    // dial is then bounded by the dial limits, never handed out until proven (isProven).
    if (record.addressProven) this.dht.peerSeen(conn.peerId!, record.host, record.port);
    else if (claim.port > 0 && sameHost(claim.host, conn.socket.remoteAddress ?? '')) this.dht.peerSeen(conn.peerId!, claim.host, claim.port);
    this.log.debug({ peer: id.slice(0, 12), outbound: conn.outbound }, 'peer connected');
    this.emit('peer:connect', this.info(p));
    if (recovered) this.emit('peer:recovered', this.info(p));
    // Catch-up: both ends advertise their whole repair window (IHAVE), each asks (IWANT) for
    // what it lacks, so what either side of a partition broadcast reaches the other.
    this.gossip.onPeerConnected(p.handle);
  }

  private detach(p: KnownPeer): void {
    if (p.handle) this.handles = this.handles.filter((h) => h !== p.handle);
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
    this.emit('peer:disconnect', this.info(p), info.reason, disconnectDetail(info));
    if (partitioned) this.emit('peer:partitioned', this.info(p));
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
    if (this.handles.length === 0) this.rejoin();
  }

  /** The monitor found `id` silent for partitionTimeoutMs. */
  private onPartitioned(id: string): void {
    const p = this.known.get(id);
    if (!p) return;
    const silentMs = this.clock.now() - (this.monitor.lastContact(id) ?? 0);
    this.logs.health.info({ peer: id.slice(0, 12), remote: p.conn ? remoteOf(p.conn) : `${p.host}:${p.port}`, silentMs }, 'peer partitioned');
    // Closing emits peer:disconnect and peer:partitioned and schedules the reconnection (unregister).
    if (p.conn) p.conn.close(GoodbyeCode.TIMEOUT, `silent for ${silentMs} ms`);
    else this.emit('peer:partitioned', this.info(p));
  }

  /** Redial a lost peer at its known address with backoff, until it answers or reconnectForMs runs out. */
  private reconnect(id: string): void {
    const rec = this.knownPeers.get(id);
    if (!rec || rec.port === 0 || this.lifecycle !== 'running') return;
    const contactId = Buffer.from(id, 'hex');
    const reconnector = this.admission.isMember(id) ? this.memberReconnector : this.reconnector;
    reconnector.schedule(id, async () => {
      const peer = this.knownPeers.get(id);
      if (this.lifecycle !== 'running' || !peer) throw new P2PError('STOPPED', 'stopped or peer removed');
      if (this.known.get(id)?.conn) return;
      // Read the address at each attempt: the peer may have dialed us from a new one.
      await this.linkTo({ id: contactId, host: peer.host, port: peer.port }, 'keep', 'claimed').catch((err: unknown) => {
        this.logs.health.debug({ peer: id.slice(0, 12), address: `${peer.host}:${peer.port}`, err: err instanceof Error ? err.message : String(err) }, 'reconnect attempt failed');
        throw err;
      });
    });
  }

  /** Alone: dial the bootstrap addresses with backoff until one answers, then look ourselves up to refill the routing table. */
  private rejoin(): void {
    if (this.lifecycle !== 'running' || this.opts.bootstrap.length === 0) return;
    this.reconnector.schedule(BOOTSTRAP_KEY, async () => {
      if (this.lifecycle !== 'running') throw new P2PError('STOPPED', 'the network is stopped');
      if (this.handles.length > 0) return;
      const results = await Promise.allSettled(this.opts.bootstrap.map((a) => this.connect(a.host, a.port)));
      if (!results.some((r) => r.status === 'fulfilled')) throw new P2PError('NOT_CONNECTED', 'no bootstrap address answered');
      this.logs.dht.info('rejoined through bootstrap');
      void this.dht.join();
    });
  }

  /**
   * An open connection to the peer: the current one, else a dial of its known address, else
   * of its routing-table address, else of the address a DHT lookup of its id finds.
   */
  private async connectionTo(peerId: string): Promise<Connection> {
    const p = this.known.get(peerId);
    if (p?.conn) return p.conn;
    const id = Buffer.from(peerId, 'hex');
    const candidates: LookupContact[] = [];
    if (p && p.port > 0) candidates.push({ id, host: p.host, port: p.port });
    const entry = this.dht.table.get(id);
    if (entry) candidates.push(entry);
    for (const c of candidates) {
      const h = await this.linkTo(c).catch(() => undefined);
      if (h) return h.conn;
    }
    const r = await this.dht.lookup(id);
    const hit = r.closest.find((c) => c.id.equals(id));
    if (hit) return (await this.linkTo(hit)).conn;
    throw new P2PError('NOT_CONNECTED', `peer ${peerId.slice(0, 16)} not found`);
  }

  /** An open link to a contact, dialing it if needed and checking the node there is the one expected. */
  private async linkTo(contact: LookupContact, purpose: 'keep' | 'lookup' = 'keep', kind: DialKind = 'learned'): Promise<PeerHandle> {
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

  private async isAlive(contact: LookupContact): Promise<boolean> {
    const p = this.known.get(contact.id.toString('hex'));
    if (p?.conn) return this.clock.now() - p.conn.lastContact < this.opts.partitionTimeoutMs;
    return this.linkTo(contact, 'lookup').then(() => true, () => false);
  }

  // ---- inbound messages --------------------------------------------------------------------

  private dispatch(p: KnownPeer, msg: InboundMessage): void {
    const h = p.handle;
    if (!h) return;
    // Budgets first: a graylisted peer's gossip and requests are ignored, and what exceeds a
    // peer's budget for its type is dropped (and costs it score) before any engine sees it.
    const refused = this.sanctions.gate(p.id, msg);
    if (refused) {
      // A sender over its DIRECT budget is told so (it may retry later) rather than left waiting.
      if (refused === 'rate_limited' && msg.type === MessageType.DIRECT) h.send({ type: MessageType.ACK, ref: msg.ref, status: AckStatus.REFUSED, reply: null });
      return;
    }
    switch (msg.type) {
      case MessageType.GOSSIP: return this.gossip.onGossip(h, msg.body);
      case MessageType.IHAVE: return this.gossip.onIHave(h, msg.ids);
      case MessageType.IWANT: return this.gossip.onIWant(h, msg.ids);
      case MessageType.DIRECT: return this.onDirect(p.id, h, msg);
      case MessageType.ACK: return this.direct.onAck(msg.ref, msg.status, msg.reply);
      case MessageType.FIND_NODE: return this.dht.onFindNode(h, msg);
      case MessageType.NODES:
        if (!this.dht.onNodes(h, msg)) this.sanctions.invalid(p.id, 'unsolicited_nodes');
        return;
      default:
        return;
    }
  }

  /**
   * A DIRECT (sendToPeer or request): acknowledged with what became of it (§4.9). A request
   * is answered with the first handler's value once it settles; a retry of a ref already
   * delivered is answered DUPLICATE and not delivered again.
   */
  private onDirect(from: string, h: PeerHandle, msg: Extract<Message, { type: 8 }>): void {
    const ack = (status: number, reply: Buffer | null = null) => h.send({ type: MessageType.ACK, ref: msg.ref, status, reply });
    const handlers = this.subscriptions.get(msg.topic);
    if (!handlers || handlers.size === 0) {
      this.counters.drop('no_subscriber');
      return void ack(AckStatus.NO_SUBSCRIBER);
    }
    if (!this.direct.accept(h.conn.peerId!, msg.ref)) return void ack(AckStatus.DUPLICATE);
    const info: DeliveryInfo = { id: msg.ref.toString('hex'), topic: msg.topic, from, hops: 1, direct: true };
    if (!msg.wantReply) {
      this.deliver(msg.topic, msg.payload, info);
      return void ack(AckStatus.DELIVERED);
    }
    let data: unknown;
    try {
      data = unpackValue(msg.payload);
    } catch {
      this.sanctions.invalid(from, 'bad_payload');
      return void ack(AckStatus.HANDLER_FAILED, Buffer.from('request payload is not valid MessagePack'));
    }
    this.counters.delivered++;
    answerRequest(handlers.values().next().value!, data, info, ack, (err) => this.handlerFailed(msg.topic, err));
  }

  private deliver(topic: string, payload: Buffer, info: DeliveryInfo): void {
    const handlers = this.subscriptions.get(topic);
    if (!handlers || handlers.size === 0) {
      // Gossip on a topic we do not subscribe to is only relayed; a direct message to one is lost.
      if (info.direct) {
        this.counters.drop('no_subscriber');
        this.log.debug({ topic, peer: info.from.slice(0, 12) }, 'direct message on a topic with no subscriber');
      }
      return;
    }
    let data: unknown;
    try {
      data = unpackValue(payload);
    } catch {
      this.sanctions.invalid(info.from, 'bad_payload');
      return;
    }
    this.counters.delivered++;
    this.counters.topics.delivered(topic, info.direct || info.hops === 0 ? undefined : info.hops);
    for (const handler of handlers) {
      try {
        const r = handler(data, info);
        if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(undefined, (err) => this.handlerFailed(topic, err));
      } catch (err) {
        this.handlerFailed(topic, err);
      }
    }
  }

  private handlerFailed(topic: string, err: unknown): void {
    this.counters.drop('handler_error');
    this.log.warn({ topic, err }, 'subscriber handler threw');
    const heard = this.listenerCount('handler:error') > 0;
    this.emit('handler:error', topic, err);
    // Silent by default, but not about a bug in the caller's own code: without a logger or a
    // 'handler:error' listener the first failure becomes a process warning (stderr, once).
    if (!this.loggerGiven && !heard && !this.handlerWarningShown) {
      this.handlerWarningShown = true;
      const why = err instanceof Error ? err.message : String(err);
      process.emitWarning(
        `a subscriber handler for topic ${JSON.stringify(topic)} threw: ${why}. Later failures are only counted (droppedByReason.handler_error); pass a logger or listen to 'handler:error' to see each one.`,
        { code: 'AETHEL_P2P_HANDLER_ERROR' },
      );
    }
  }

  /** Whether a peer id or an address is banned now (for admission: checked after the handshake). */
  isBanned(peerId: string, host = ''): boolean {
    return this.sanctions.isBanned(peerId, host);
  }

  /** What the ledger knows about a peer: score, verdict and counters; undefined if untracked. */
  peerScore(peerId: string): PeerSnapshot | undefined {
    return this.sanctions.ledger.snapshot(peerId);
  }

  /** Close a connection the admission refused, before the network ever reports it. */
  private refuse(conn: Connection, reason: AdmissionRefusal): void {
    this.refused[reason]++;
    this.log.debug({ peer: conn.peerIdHex.slice(0, 12), ip: conn.socket.remoteAddress, reason }, 'connection refused');
    if (reason === 'NOT_MEMBER') conn.close(GoodbyeCode.NOT_MEMBER, 'not a member', new P2PError('NOT_MEMBER', 'not a member'));
    else conn.close(GoodbyeCode.TOO_MANY_PEERS, reason === 'TOO_MANY_PEERS' ? 'too many peers' : reason.toLowerCase().replace(/_/g, ' '));
  }

  /** The known-peer table dropped `id` to stay within its cap (never a connected peer). */
  private dropKnown(id: string): void {
    if (this.known.get(id)?.conn) return;
    this.reconnector.cancel(id);
    this.known.delete(id);
    this.monitor.remove(id);
  }

  // ---- helpers ------------------------------------------------------------------------------

  private info(p: KnownPeer): PeerInfo {
    const state = this.monitor.state(p.id) ?? 'disconnected';
    const info: PeerInfo = { id: p.id, host: p.host, port: p.port, state, lastContact: p.conn?.lastContact ?? this.monitor.lastContact(p.id) ?? 0 };
    if (p.conn?.rttMs !== undefined) info.rttMs = p.conn.rttMs;
    return info;
  }

  private assertRunning(): void {
    if (this.lifecycle === 'new' || this.lifecycle === 'starting') throw new P2PError('NOT_STARTED', 'call start() first');
    if (this.lifecycle !== 'running') throw new P2PError('STOPPED', 'the network is stopped');
  }

  private encodeData(data: unknown): Buffer {
    let payload: Buffer;
    try {
      payload = packValue(data);
    } catch (err) {
      if (err instanceof P2PError) throw err; // already names the path: "data.a[2]: functions cannot be encoded"
      throw P2PError.invalidArgument(`data cannot be encoded as MessagePack: ${(err as Error).message}`);
    }
    // Leave room for the envelope (ids, signature, seen-by, topic): at most ~1 KiB.
    if (payload.length + 1024 > this.opts.maxFrameBytes) {
      throw P2PError.invalidArgument(`data is ${payload.length} bytes encoded; the limit is maxFrameBytes - 1024 = ${this.opts.maxFrameBytes - 1024}`);
    }
    return payload;
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

/** Host values that mean "every interface": listenable, never dialable. */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '::0' || host === '0:0:0:0:0:0:0:0';
}

function remoteOf(conn: Connection): string {
  const a = conn.socket.remoteAddress;
  return a === undefined ? '' : `${a.includes(':') ? `[${a}]` : a}:${conn.socket.remotePort ?? 0}`;
}

/** Plain words for the socket errors a dial meets. */
const DIAL_PROBLEMS: Readonly<Record<string, string>> = Object.freeze({
  ECONNREFUSED: 'connection refused: nothing listens there',
  ECONNRESET: 'connection reset by the peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  ETIMEDOUT: 'connect timed out',
  EADDRNOTAVAIL: 'address not available',
});

/** A dial's rejection as a DialFailure. */
function dialFailure(host: string, port: number, err: unknown): DialFailure {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const code: ErrorCode = err instanceof P2PError ? err.code : 'CONNECTION_CLOSED';
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const sys = typeof cause?.code === 'string' ? cause.code : undefined;
  const reason = sys ? `${DIAL_PROBLEMS[sys] ?? 'socket error'} (${sys})` : err instanceof Error ? err.message : String(err);
  const f: DialFailure = { address, host, port, code, reason };
  if (sys) f.syscallCode = sys;
  return f;
}

function disconnectDetail(info: CloseInfo): DisconnectDetail {
  if (info.error) return { code: info.error.code, byPeer: info.byPeer };
  // The peer went without a GOODBYE (end, reset): the code in CloseInfo is not one it sent.
  const name = info.byPeer && info.goodbye !== true ? undefined : GOODBYE_CODE_NAMES[info.code];
  return { code: (name as keyof typeof GoodbyeCode | undefined) ?? 'CONNECTION_LOST', byPeer: info.byPeer };
}

function addressKey(host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`;
}

/** Whether two address literals name one host (IPv4-mapped IPv6 read as IPv4). */
function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => h.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1').toLowerCase();
  return norm(a) === norm(b);
}

function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || Buffer.byteLength(topic) > LIMITS.topicBytes) {
    throw P2PError.invalidArgument(`topic must be a string of 1..${LIMITS.topicBytes} UTF-8 bytes`);
  }
}
