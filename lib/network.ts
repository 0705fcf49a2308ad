/**
 * P2PNetwork: the facade users hold. It builds the pieces and wires them together: transport
 * (connections), the peer registry (dials, admission, redials: lib/peers/peer-registry.ts),
 * sanctions, gossip engine, subscriptions and direct messages, routing table, backoff,
 * partition monitor and the heartbeat. Everything below it is usable and testable on its
 * own. The failure model is in docs/FAILURES.md.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { systemClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import { randomBytes } from 'node:crypto';
import { Dht } from './dht/dht.js';
import type { LookupContact } from './dht/lookup.js';
import { ackOutcome, CallerLimits, checkSendOptions, DirectMessenger, isFinalDirectError } from './direct.js';
import type { SendOptions } from './direct.js';
export type { SendOptions } from './direct.js';
import { traceNetworkEvents } from './dump/network-trace.js';
import { DumpWriter } from './dump/writer.js';
import { InvalidOptionError, P2PError } from './errors.js';
import { GossipEngine } from './gossip/engine.js';
import { acquireVerifyPool } from './gossip/verify-pool.js';
import type { VerifyPoolLease } from './gossip/verify-pool.js';
import { PartitionMonitor } from './health/partition-monitor.js';
import type { HealthSnapshot } from './health/partition-monitor.js';
import { generateIdentity } from './identity.js';
import type { Identity } from './identity.js';
import { Metrics } from './metrics.js';
import { dialFailure } from './peers/dialer.js';
import type { DialFailure } from './peers/dialer.js';
import type { PeerSnapshot } from './peers/peer-ledger.js';
import { PeerRegistry } from './peers/peer-registry.js';
import type { AdmissionStats, DisconnectDetail, PeerEvents, PeerHandle, PeerInfo } from './peers/peer-registry.js';
import { Sanctions } from './peers/sanctions.js';
import type { MetricsSnapshot } from './metrics.js';
import { formatExposition, metricsFamilies } from './metrics-text.js';
import { parseAddress, resolveOptions } from './options.js';
import type { P2PNetworkOptions, ResolvedOptions } from './options.js';
import { BackoffScheduler, RetryExhaustedError } from './retry/backoff.js';
import { Connection } from './transport/connection.js';
import { TcpTransport } from './transport/tcp.js';
import { KeyLogFile } from './transport/key-log-file.js';
import { generateX25519 } from './noise/handshake.js';
import { Subscriptions } from './subscriptions.js';
import type { DirectMessage, MessageHandler } from './subscriptions.js';
import { packValue, unpackValue } from './wire/codec.js';
import { AckStatus, LIMITS, MessageType } from './wire/messages.js';
import type { InboundMessage } from './wire/messages.js';

export type { DialFailure } from './peers/dialer.js';
export type { MessageHandler } from './subscriptions.js';
export type { AdmissionStats, DisconnectCode, DisconnectDetail, PeerInfo, PeerState } from './peers/peer-registry.js';
export type { HealthSnapshot } from './health/partition-monitor.js';

/** What start() resolves with. */
export interface StartResult {
  /** The address bound (as node.address). */
  address: { host: string; port: number };
  /** How the bootstrap dials went: `answered` of `total` completed a handshake. */
  bootstrap: { total: number; answered: number; failures: DialFailure[] };
}

/** The events a P2PNetwork emits (the peer events are raised by its peer registry). */
export interface P2PNetworkEvents extends PeerEvents {
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
  /** Budgets, scores, per-origin budget and bans, and what to do about them (lib/peers/sanctions.ts). */
  private readonly sanctions: Sanctions;
  /** The peer table: dials, admission, duplicates, redials (lib/peers/peer-registry.ts). */
  private readonly registry: PeerRegistry;
  /** The wire dump (wireDump option), when one is being written. */
  private readonly dump: DumpWriter | undefined;
  /** The key log (keyLog option), when one is being written. */
  private readonly keyLog: KeyLogFile | undefined;
  /** Topic handlers and local delivery (lib/subscriptions.ts). */
  private readonly subscriptions: Subscriptions;
  private heartbeatTimer: TimerHandle | undefined;
  /** The process's signature verification pool, held from start to stop when verifyWorkers > 0 (signed mode). */
  private verifyLease: VerifyPoolLease | undefined;
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
      (conn) => this.registry.adopt(conn),
      (socket) => this.registry.acceptSocket(socket),
    );
    this.sanctions = new Sanctions(this.clock, this.opts.scoring, this.opts.banDurationMs, this.counters, this.log, {
      connectionOf: (id) => this.registry.connectionOf(id),
      onInvalid: (id, reason) => this.emit('peer:invalid', id, reason),
      onBanned: (id, reason) => this.emit('peer:banned', id, reason),
    });
    this.subscriptions = new Subscriptions(this.counters, this.log, {
      invalid: (id, reason) => this.sanctions.invalid(id, reason),
      failed: (topic, err) => this.handlerFailed(topic, err),
    });
    this.gossip = new GossipEngine(this.identity, this.clock, this.opts, {
      peers: () => this.registry.handles,
      deliver: (topic, payload, info) => this.subscriptions.deliver(topic, payload, info),
      subscribed: (topic) => this.subscriptions.has(topic),
      trace: this.dump?.trace,
      endOfTurn: Connection.atEndOfTurn,
      // Only while a pool is held (verifyWorkers, from start to stop); a verdict that comes after stop is dropped.
      ...(this.opts.verifyWorkers > 0 && this.opts.signMessages ? {
        verifyAsync: (origin: Buffer, id: Buffer, sig: Buffer, done: (valid: boolean) => void) =>
          this.verifyLease?.pool.verify(origin, id, sig, (valid) => void (this.verifyLease && done(valid))) ?? false,
      } : {}),
      ...this.sanctions.gossipHost(),
    }, this.counters);
    this.direct = new DirectMessenger(this.clock);
    this.retry = new BackoffScheduler(this.clock);
    this.monitor = new PartitionMonitor(this.clock, { partitionTimeoutMs: this.opts.partitionTimeoutMs });
    this.registry = new PeerRegistry(this.clock, this.opts, {
      monitor: this.monitor,
      retry: this.retry,
      sanctions: this.sanctions,
      usefulness: (id) => this.sanctions.ledger.snapshot(id)?.counters.firstDeliveries ?? 0,
      metrics: this.counters,
      logs: { p2p: this.log, ...this.logs },
    }, {
      selfId: this.identity.idHex,
      accepting: () => this.lifecycle === 'running' || this.lifecycle === 'starting',
      running: () => this.lifecycle === 'running',
      dial: (host, port, timeoutMs) => this.transport.dial(host, port, timeoutMs),
      message: (peer, msg) => this.dispatch(peer, msg),
      connected: (peer) => this.gossip.onPeerConnected(peer),
      peerSeen: (id, host, port) => this.dht.peerSeen(id, host, port),
      rejoined: () => void this.dht.join(),
      emit: (event, ...args) => this.emit<keyof PeerEvents>(event, ...args),
    });
    // isProven: the DHT hands out (NODES) only contacts whose address this node proved.
    const dhtHost = {
      linkTo: (c: LookupContact) => this.registry.linkTo(c, 'lookup'),
      isAlive: (c: LookupContact) => this.registry.isAlive(c),
      isConnected: (id: Buffer) => this.registry.connectionOf(id.toString('hex')) !== undefined,
      isProven: (id: Buffer) => this.registry.isProven(id.toString('hex')),
    };
    this.dht = new Dht(this.identity.id, this.clock, {
      k: this.opts.k,
      alpha: this.opts.alpha,
      requestTimeoutMs: this.opts.dhtRequestTimeoutMs,
      refreshIntervalMs: this.opts.refreshIntervalMs,
      // Allowlisted addresses (a one-machine testbed) are exempt from the routing table's
      // address-group limits, as they are from admission's.
      groupExempt: (host: string) => this.registry.isAllowlisted(host),
    }, dhtHost, randomBytes);
    if (this.dump) traceNetworkEvents(this, this.dump);
  }

  /**
   * Whether this node proved `peerId`'s address (it dialed it and the handshake showed that
   * id), or the address is a configured member's. Only such contacts are handed out.
   */
  isProven(peerId: string): boolean {
    return this.registry.isProven(peerId);
  }

  /**
   * Admission figures: connections by slot kind, pending handshakes, the known-peer table
   * size, reconnect tasks, connections refused (or evicted) by reason, dials refused by the
   * per-address limits by verdict.
   */
  admissionStats(): AdmissionStats {
    return this.registry.stats();
  }

  /** Dials this node started to host:port (the per-address dial limiter's count). */
  dialsTo(host: string, port: number): number {
    return this.registry.dialsTo(host, port);
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
    if (this.opts.verifyWorkers > 0 && this.opts.signMessages) this.verifyLease = acquireVerifyPool(this.opts.verifyWorkers);
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
    const results = await Promise.allSettled(this.opts.bootstrap.map((a) => this.registry.connect(a.host, a.port)));
    await Promise.allSettled(members.map((m) => this.registry.connect(m.host, m.port, 'trusted', m.id)));
    // Members not reached at start are redialed forever.
    for (const m of members) if (!this.registry.connectionOf(m.id)) this.registry.reconnect(m.id);
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
    if (this.registry.handles.length === 0) this.registry.rejoin();
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
    const lease = this.verifyLease;
    this.verifyLease = undefined; // verdicts still to come are dropped
    this.sanctions.pacer.clear(); // broadcasts waiting for their turn reject STOPPED
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
    this.registry.cancelRedials();
    this.retry.cancelAll();
    this.direct.clear(new P2PError('STOPPED', 'the network was stopped'));
    this.dht.clear();
    this.registry.closeAll();
    await this.transport.close();
    await this.dump?.close();
    await this.keyLog?.close();
    this.gossip.clear();
    await lease?.release();
    this.lifecycle = 'stopped';
    this.log.info('stopped');
  }

  /** Subscribe to a topic; returns the function that unsubscribes. */
  subscribe(topic: string, handler: MessageHandler): () => void {
    checkTopic(topic);
    if (typeof handler !== 'function') throw P2PError.invalidArgument('handler must be a function');
    return this.subscriptions.add(topic, handler);
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
    await this.registry.keepFound([...found.values()]);
    this.trimLookupLinks();
    return [...found].map(([hex, c]) => {
      return this.registry.info(hex) ?? { id: hex, host: c.host, port: c.port, state: 'disconnected' as const, lastContact: 0 };
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
    this.registry.trust(a.host, a.port);
    const id = await this.registry.connect(a.host, a.port);
    return this.registry.info(id)!;
  }

  /** Close the connection to a peer and forget it: any reconnection to it is cancelled. */
  async removePeer(peerId: string): Promise<void> {
    this.registry.remove(peerId);
  }

  /** Every peer this node knows, connected or not. */
  peers(): PeerInfo[] {
    return this.registry.peers();
  }

  metrics(): MetricsSnapshot {
    return this.counters.snapshot({ connectedPeers: this.registry.handles.length, seenMessages: this.gossip.seen.size });
  }

  /**
   * The metrics in the Prometheus text exposition format (0.0.4): counters, gauges and
   * histograms named `aethel_p2p_*` (docs/METRICS.md). Serve it with the content type
   * PROMETHEUS_CONTENT_TYPE; append it to a prom-client registry's output to expose both.
   */
  metricsText(): string {
    const health = this.monitor.health();
    const peerRtts: Array<{ id: string; rttMs: number }> = [];
    for (const h of this.registry.handles) if (h.conn.rttMs !== undefined) peerRtts.push({ id: h.idHex, rttMs: h.conn.rttMs });
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
    return this.monitor.health({ counts: (id) => this.registry.worthKeeping(id) });
  }

  /**
   * Periodic work, called every heartbeatMs by a timer (and directly by tests): detect silent
   * peers (close, report, reconnect), ping the others, gossip repair adverts, cache cleanup.
   * `stalledMs` > 0: the timer found this process stalled that long; the partition check is
   * skipped for this beat and the stall is not counted against any peer.
   */
  heartbeat(stalledMs = 0): void {
    if (this.lifecycle !== 'running') return;
    for (const h of this.registry.handles) this.monitor.contact(h.idHex, h.conn.lastContact);
    if (stalledMs > 0) {
      // The sockets may hold what the peers sent while we were stopped: the stall does not
      // count as their silence, and this beat judges nobody (the next one, after the pending
      // data was read, does).
      this.log.warn({ stalledMs }, 'event loop stalled');
      this.dump?.trace({ event: 'stalled', reason: `event loop stalled for ${stalledMs} ms` });
      this.monitor.resumeAfterStall(stalledMs);
    } else {
      for (const id of this.monitor.check()) this.registry.partitioned(id);
    }
    for (const h of this.registry.handles) h.conn.ping();
    this.sanctions.prune();
    this.gossip.heartbeat();
    this.direct.heartbeat();
    void this.dht.refresh();
    this.trimLookupLinks();
  }

  /** Close the links DHT lookups opened (down to minPeers) once no DHT query is in flight (PeerRegistry.trimLookupLinks). */
  private trimLookupLinks(): void {
    if (this.dht.requestsInFlight === 0) this.registry.trimLookupLinks();
  }

  /**
   * An open connection to the peer: the current one, else a dial of its known address, else
   * of its routing-table address, else of the address a DHT lookup of its id finds.
   */
  private async connectionTo(peerId: string): Promise<Connection> {
    const open = this.registry.connectionOf(peerId);
    if (open) return open;
    const a = this.registry.addressOf(peerId);
    const id = Buffer.from(peerId, 'hex');
    const candidates: LookupContact[] = [];
    if (a && a.port > 0) candidates.push({ id, host: a.host, port: a.port });
    const entry = this.dht.table.get(id);
    if (entry) candidates.push(entry);
    for (const c of candidates) {
      const h = await this.registry.linkTo(c).catch(() => undefined);
      if (h) return h.conn;
    }
    const r = await this.dht.lookup(id);
    const hit = r.closest.find((c) => c.id.equals(id));
    if (hit) return (await this.registry.linkTo(hit)).conn;
    throw new P2PError('NOT_CONNECTED', `peer ${peerId.slice(0, 16)} not found`);
  }

  // ---- inbound messages --------------------------------------------------------------------

  private dispatch(h: PeerHandle, msg: InboundMessage): void {
    // Budgets first: a graylisted peer's gossip and requests are ignored, and what exceeds a
    // peer's budget for its type is dropped (and costs it score) before any engine sees it.
    const refused = this.sanctions.gate(h.idHex, msg);
    if (refused) {
      // A sender over its DIRECT budget is told so (it may retry later) rather than left waiting.
      if (refused === 'rate_limited' && msg.type === MessageType.DIRECT) h.send({ type: MessageType.ACK, ref: msg.ref, status: AckStatus.REFUSED, reply: null });
      return;
    }
    switch (msg.type) {
      case MessageType.GOSSIP: return this.gossip.onGossip(h, msg.body);
      case MessageType.IHAVE: return this.gossip.onIHave(h, msg.ids);
      case MessageType.IWANT: return this.gossip.onIWant(h, msg.ids);
      case MessageType.DIRECT: return this.onDirect(h, msg);
      case MessageType.ACK: return this.direct.onAck(msg.ref, msg.status, msg.reply);
      case MessageType.FIND_NODE: return this.dht.onFindNode(h, msg);
      case MessageType.NODES:
        if (!this.dht.onNodes(h, msg)) this.sanctions.invalid(h.idHex, 'unsolicited_nodes');
        return;
      default:
        return;
    }
  }

  /** A DIRECT (sendToPeer or request): to the subscribers (lib/subscriptions.ts), acknowledged to the sender. */
  private onDirect(h: PeerHandle, msg: DirectMessage): void {
    const ack = (status: number, reply: Buffer | null = null) => void h.send({ type: MessageType.ACK, ref: msg.ref, status, reply });
    this.subscriptions.direct(h.idHex, msg, () => this.direct.accept(h.conn.peerId!, msg.ref), ack);
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

  // ---- helpers ------------------------------------------------------------------------------

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

/** Host values that mean "every interface": listenable, never dialable. */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '::0' || host === '0:0:0:0:0:0:0:0';
}

function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || Buffer.byteLength(topic) > LIMITS.topicBytes) {
    throw P2PError.invalidArgument(`topic must be a string of 1..${LIMITS.topicBytes} UTF-8 bytes`);
  }
}
