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
import { isLoopback } from './peers/address-group.js';
import type { LookupContact } from './dht/lookup.js';
import { DirectMessenger } from './direct.js';
import { traceNetworkEvents } from './dump/network-trace.js';
import { DumpWriter } from './dump/writer.js';
import { InvalidOptionError, P2PError } from './errors.js';
import { GossipEngine } from './gossip/engine.js';
import type { DeliveryInfo, GossipPeer } from './gossip/engine.js';
import { PartitionMonitor } from './health/partition-monitor.js';
import type { HealthSnapshot } from './health/partition-monitor.js';
import { Reconnector } from './health/reconnector.js';
import { generateIdentity } from './identity.js';
import type { Identity } from './identity.js';
import { Metrics } from './metrics.js';
import type { MetricsSnapshot } from './metrics.js';
import { parseAddress, resolveOptions } from './options.js';
import type { P2PNetworkOptions, ResolvedOptions } from './options.js';
import { BackoffScheduler, RetryExhaustedError } from './retry/backoff.js';
import { Connection } from './transport/connection.js';
import type { CloseInfo } from './transport/connection.js';
import { TcpTransport } from './transport/tcp.js';
import { packValue, unpackValue } from './wire/codec.js';
import { GoodbyeCode, LIMITS, MessageType } from './wire/messages.js';
import type { Message } from './wire/messages.js';

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

/** Handler for a topic: data is the decoded MessagePack value. May return a promise. */
export type MessageHandler = (data: unknown, info: DeliveryInfo) => void | Promise<void>;

export interface P2PNetworkEvents {
  'peer:connect': [peer: PeerInfo];
  'peer:disconnect': [peer: PeerInfo, reason: string];
  /** A peer not heard from for partitionTimeoutMs (its connection, if any, is closed; reconnection is under way). */
  'peer:partitioned': [peer: PeerInfo];
  /** A peer reported partitioned is connected again (the gossip catch-up follows). */
  'peer:recovered': [peer: PeerInfo];
  /** A peer sent something invalid: its id and a stable reason word. */
  'peer:invalid': [peerId: string, reason: string];
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
}

type Lifecycle = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class P2PNetwork extends EventEmitter<P2PNetworkEvents> {
  /** This node's identity. */
  readonly identity: Identity;
  private readonly opts: ResolvedOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly counters = new Metrics();
  private readonly transport: TcpTransport;
  private readonly gossip: GossipEngine;
  private readonly direct: DirectMessenger;
  private readonly dht: Dht;
  private readonly retry: BackoffScheduler;
  private readonly monitor: PartitionMonitor;
  private readonly reconnector: Reconnector;
  /** The wire dump (wireDump option), when one is being written. */
  private readonly dump: DumpWriter | undefined;
  private readonly dialing = new Map<string, Promise<string>>();
  private readonly known = new Map<string, KnownPeer>();
  private readonly handshaking = new Set<Connection>();
  private handles: PeerHandle[] = [];
  private readonly subscriptions = new Map<string, Set<MessageHandler>>();
  private heartbeatTimer: TimerHandle | undefined;
  private lifecycle: Lifecycle = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private bound: { host: string; port: number } | undefined;

  constructor(options: P2PNetworkOptions = {}) {
    super();
    this.opts = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.identity = options.identity ?? generateIdentity();
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'p2p', node: this.identity.idHex.slice(0, 12) });
    this.dump = this.opts.wireDump === undefined ? undefined : new DumpWriter(this.opts.wireDump, {
      node: this.identity.idHex,
      onError: (err) => this.log.warn({ file: this.opts.wireDump, err: err.message }, 'wire dump stopped: cannot write'),
    });
    this.transport = new TcpTransport(
      {
        identity: this.identity,
        networkId: this.opts.networkId,
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
    );
    this.gossip = new GossipEngine(this.identity, this.clock, this.opts, {
      peers: () => this.handles,
      deliver: (topic, payload, info) => this.deliver(topic, payload, info),
      invalid: (from, reason) => this.reportInvalid(from.idHex, reason),
      trace: this.dump?.trace,
    }, this.counters);
    this.direct = new DirectMessenger(this.clock);
    this.dht = new Dht(this.identity.id, this.clock, {
      k: this.opts.k,
      alpha: this.opts.alpha,
      requestTimeoutMs: this.opts.dhtRequestTimeoutMs,
      refreshIntervalMs: this.opts.refreshIntervalMs,
      // Loopback contacts are exempt from the routing table's address-group limits (a local
      // testbed is one /24); to be replaced by the admission allowlist's predicate.
      groupExempt: isLoopback,
    }, {
      linkTo: (c) => this.linkTo(c, 'lookup'),
      isAlive: (c) => this.isAlive(c),
      isConnected: (id) => this.known.get(id.toString('hex'))?.conn !== undefined,
    }, randomBytes);
    this.retry = new BackoffScheduler(this.clock);
    if (this.dump) traceNetworkEvents(this, this.dump);
    this.monitor = new PartitionMonitor(this.clock, { partitionTimeoutMs: this.opts.partitionTimeoutMs });
    this.reconnector = new Reconnector(this.clock, this.retry, { retry: this.opts.retry, reconnectForMs: this.opts.reconnectForMs }, (key, err) =>
      this.log.info({ peer: key.slice(0, 12), err: err instanceof Error ? err.message : String(err) }, 'gave up reconnecting'),
    );
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

  /** Listen, dial the bootstrap peers, start the heartbeat. Idempotent; a stopped network cannot restart. */
  start(): Promise<void> {
    if (this.lifecycle === 'stopping' || this.lifecycle === 'stopped') {
      return Promise.reject(new P2PError('STOPPED', 'a stopped network cannot be started again; create a new one'));
    }
    this.startPromise ??= this.doStart();
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    this.lifecycle = 'starting';
    this.bound = await this.transport.listen(this.opts.listenHost, this.opts.listenPort);
    this.log.info({ host: this.bound.host, port: this.bound.port }, 'listening');
    this.heartbeatTimer = this.clock.setInterval(() => this.heartbeat(), this.opts.heartbeatMs);
    this.lifecycle = 'running';
    await Promise.allSettled(this.opts.bootstrap.map((a) => this.connect(a.host, a.port)));
    if (this.handles.length === 0) this.rejoin();
    // Join the DHT: looking up our own id fills the buckets near us and tells others of us.
    await this.dht.join();
    this.trimLookupLinks();
  }

  /** Close every connection, cancel every retry and timer. Idempotent; the process can exit after it. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    if (this.startPromise) await this.startPromise.catch(() => {});
    this.lifecycle = 'stopping';
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
    this.reconnector.cancelAll();
    this.retry.cancelAll();
    this.direct.clear(new P2PError('STOPPED', 'the network was stopped'));
    this.dht.clear();
    for (const c of this.handshaking) c.close(GoodbyeCode.NORMAL, 'shutting down');
    for (const p of this.known.values()) p.conn?.close(GoodbyeCode.NORMAL, 'shutting down');
    await this.transport.close();
    await this.dump?.close();
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

  /** Gossip `data` (any MessagePack value) on `topic` to the whole network. Resolves with the message id (hex). */
  async broadcast(topic: string, data: unknown): Promise<string> {
    this.assertRunning();
    checkTopic(topic);
    const payload = this.encodeData(data);
    return this.gossip.publish(topic, payload).toString('hex');
  }

  /**
   * Send `data` to one peer; resolves when its ACK arrives. The peer's `topic` handlers get it
   * with info.direct === true, once. Retries with backoff; rejects with PEER_UNREACHABLE
   * after the last retry (messagesDropped counts it).
   */
  async sendToPeer(peerId: string, topic: string, data: unknown): Promise<void> {
    this.assertRunning();
    if (typeof peerId !== 'string' || !/^[0-9a-f]{64}$/.test(peerId)) throw P2PError.invalidArgument('peerId must be 64 lowercase hex characters');
    if (peerId === this.id) throw P2PError.invalidArgument('cannot send to ourselves');
    checkTopic(topic);
    const payload = this.encodeData(data);
    const ref = this.direct.newRef();
    const task = this.retry.run(async () => {
      const conn = await this.connectionTo(peerId);
      const acked = this.direct.waitForAck(ref, this.opts.ackTimeoutMs);
      if (!conn.send({ type: MessageType.DIRECT, ref, topic, payload })) {
        acked.catch(() => {});
        throw new P2PError('QUEUE_FULL', 'could not queue the message');
      }
      await acked;
    }, this.opts.retry, { shouldRetry: (e) => !(e instanceof P2PError && e.code === 'STOPPED') });
    try {
      await task.promise;
    } catch (err) {
      if (err instanceof RetryExhaustedError) {
        this.counters.drop('send_failed');
        throw P2PError.peerUnreachable(peerId, err.attempts, err.lastError);
      }
      throw err;
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
    for (const [hex, c] of found) {
      if (this.handles.length >= this.opts.minPeers) break;
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
    this.known.delete(peerId);
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
   * What this node can reach: a consensus layer stops making progress while it cannot see a
   * quorum (docs/FAILURES.md). Counts every peer this node has been connected to and not removed.
   */
  health(): HealthSnapshot {
    return this.monitor.health();
  }

  /**
   * Periodic work, called every heartbeatMs by a timer (and directly by tests): detect silent
   * peers (close, report, reconnect), ping the others, gossip repair adverts, cache cleanup.
   */
  heartbeat(): void {
    if (this.lifecycle !== 'running') return;
    for (const h of this.handles) this.monitor.contact(h.idHex, h.conn.lastContact);
    for (const id of this.monitor.check()) this.onPartitioned(id);
    for (const h of this.handles) h.conn.ping();
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

  /** Dial and wait for the handshake; resolves with the peer id. Concurrent dials of one address share one attempt. */
  private connect(host: string, port: number): Promise<string> {
    const key = `${host}:${port}`;
    let p = this.dialing.get(key);
    if (!p) {
      p = this.dial(host, port).finally(() => this.dialing.delete(key));
      this.dialing.set(key, p);
    }
    return p;
  }

  private async dial(host: string, port: number): Promise<string> {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'starting') throw new P2PError('STOPPED', 'the network is stopped');
    const conn = await this.transport.dial(host, port, this.opts.dialTimeoutMs);
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
    if (this.lifecycle !== 'running' && this.lifecycle !== 'starting') {
      conn.close(GoodbyeCode.NORMAL, 'shutting down');
      return;
    }
    this.handshaking.add(conn);
    conn.once('open', () => {
      this.handshaking.delete(conn);
      this.register(conn);
    });
    conn.once('close', (info) => {
      this.handshaking.delete(conn);
      this.unregister(conn, info);
    });
  }

  private register(conn: Connection): void {
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
    }
    if (this.handles.length >= this.opts.maxPeers) {
      conn.close(GoodbyeCode.TOO_MANY_PEERS, 'too many peers');
      return;
    }
    const p: KnownPeer = existing ?? { id, host: '', port: 0, conn: undefined, handle: undefined, lookupOnly: false };
    if (conn.peerListenPort > 0) {
      p.host = conn.peerListenHost;
      p.port = conn.peerListenPort;
    } else if (!p.host) {
      p.host = conn.socket.remoteAddress ?? '';
    }
    p.conn = conn;
    p.lookupOnly = false;
    p.handle = new PeerHandle(conn);
    this.known.set(id, p);
    const recovered = this.monitor.connected(id);
    // Connected, whoever dialed: stop redialing it (and re-bootstrapping, if we were alone).
    this.reconnector.cancel(id);
    this.reconnector.cancel(BOOTSTRAP_KEY);
    this.handles = [...this.handles, p.handle];
    conn.on('message', (msg) => this.dispatch(p, msg));
    if (conn.peerListenPort > 0) this.dht.peerSeen(conn.peerId!, conn.peerListenHost, conn.peerListenPort);
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
      this.log.debug({ peer: conn.peerIdHex.slice(0, 12), code: info.error.code, reason: info.reason }, 'connection failed');
    }
    const p = conn.peerIdHex ? this.known.get(conn.peerIdHex) : undefined;
    if (!p || p.conn !== conn) return;
    this.monitor.contact(p.id, conn.lastContact);
    this.detach(p);
    const partitioned = this.monitor.state(p.id) === 'partitioned';
    const lost = partitioned || isLoss(info);
    this.monitor.disconnected(p.id, !lost);
    this.emit('peer:disconnect', this.info(p), info.reason);
    if (partitioned) this.emit('peer:partitioned', this.info(p));
    if (info.code === GoodbyeCode.IDLE && !lost) this.forget(p.id);
    if (lost) this.reconnect(p.id);
    if (this.handles.length === 0) this.rejoin();
  }

  /** The monitor found `id` silent for partitionTimeoutMs. */
  private onPartitioned(id: string): void {
    const p = this.known.get(id);
    if (!p) return;
    const silentMs = this.clock.now() - (this.monitor.lastContact(id) ?? 0);
    this.log.info({ peer: id.slice(0, 12), silentMs }, 'peer partitioned');
    // Closing emits peer:disconnect and peer:partitioned and schedules the reconnection (unregister).
    if (p.conn) p.conn.close(GoodbyeCode.TIMEOUT, `silent for ${silentMs} ms`);
    else this.emit('peer:partitioned', this.info(p));
  }

  /** Redial a lost peer at its known address with backoff, until it answers or reconnectForMs runs out. */
  private reconnect(id: string): void {
    const p = this.known.get(id);
    if (!p || p.port === 0 || this.lifecycle !== 'running') return;
    const contactId = Buffer.from(id, 'hex');
    this.reconnector.schedule(id, async () => {
      const peer = this.known.get(id);
      if (this.lifecycle !== 'running' || !peer) throw new P2PError('STOPPED', 'stopped or peer removed');
      if (peer.conn) return;
      // Read the address at each attempt: the peer may have dialed us from a new one.
      await this.linkTo({ id: contactId, host: peer.host, port: peer.port }).catch((err: unknown) => {
        this.log.debug({ peer: id.slice(0, 12), err: err instanceof Error ? err.message : String(err) }, 'reconnect attempt failed');
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
      this.log.info('rejoined through bootstrap');
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
  private async linkTo(contact: LookupContact, purpose: 'keep' | 'lookup' = 'keep'): Promise<PeerHandle> {
    const hex = contact.id.toString('hex');
    const known = this.known.get(hex);
    if (known?.handle) {
      if (purpose === 'keep') known.lookupOnly = false;
      return known.handle;
    }
    const id = await this.connect(contact.host, contact.port);
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

  private dispatch(p: KnownPeer, msg: Message): void {
    const h = p.handle;
    if (!h) return;
    switch (msg.type) {
      case MessageType.GOSSIP: return this.gossip.onGossip(h, msg);
      case MessageType.IHAVE: return this.gossip.onIHave(h, msg.ids);
      case MessageType.IWANT: return this.gossip.onIWant(h, msg.ids);
      case MessageType.DIRECT:
        h.send({ type: MessageType.ACK, ref: msg.ref });
        if (this.direct.accept(h.conn.peerId!, msg.ref)) {
          this.deliver(msg.topic, msg.payload, { id: msg.ref.toString('hex'), topic: msg.topic, from: p.id, hops: 1, direct: true });
        }
        return;
      case MessageType.ACK: return this.direct.onAck(msg.ref);
      case MessageType.FIND_NODE: return this.dht.onFindNode(h, msg);
      case MessageType.NODES: return this.dht.onNodes(h, msg);
      default:
        return;
    }
  }

  private deliver(topic: string, payload: Buffer, info: DeliveryInfo): void {
    const handlers = this.subscriptions.get(topic);
    if (!handlers || handlers.size === 0) return;
    let data: unknown;
    try {
      data = unpackValue(payload);
    } catch {
      this.reportInvalid(info.from, 'bad_payload');
      return;
    }
    this.counters.delivered++;
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
  }

  private reportInvalid(peerId: string, reason: string): void {
    this.counters.invalid(reason);
    this.log.debug({ peer: peerId.slice(0, 12), reason }, 'invalid message');
    this.emit('peer:invalid', peerId, reason);
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

function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || Buffer.byteLength(topic) > LIMITS.topicBytes) {
    throw P2PError.invalidArgument(`topic must be a string of 1..${LIMITS.topicBytes} UTF-8 bytes`);
  }
}
