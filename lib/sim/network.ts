/**
 * A simulated network: N SimNodes over one virtual clock and in-memory transport, a seeded
 * random overlay, the adversary, the delivery recorder, and the run loop. The run loop pops
 * events in (time, insertion) order and lets promise continuations (the DHT's async lookup
 * code) run between events, so async engine code is simulated in virtual time too.
 */
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import type { DeliveryInfo } from '../gossip/engine.js';
import { nodeIdOf } from '../identity.js';
import type { Identity } from '../identity.js';
import { DEFAULTS } from '../options.js';
import { resolveScoringOptions } from '../peers/peer-ledger.js';
import { seededRandom } from '../random.js';
import { Adversary } from './adversary.js';
import { SimNode } from './node.js';
import type { Behaviour, SimContext, SimNodeConfig } from './node.js';
import type { ResolvedSimOptions } from './options.js';
import { DeliveryRecorder } from './recorder.js';
import { SimTransport } from './transport.js';
import { VirtualClock } from './virtual-clock.js';

/** Called now and then during a run with the virtual time reached. */
export type StepObserver = (virtualMs: number) => void;

const drainMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

export class SimNetwork implements SimContext {
  readonly clock = new VirtualClock();
  readonly transport: SimTransport;
  readonly nodes: SimNode[] = [];
  readonly config: SimNodeConfig;
  readonly seed: number;
  readonly recorder: DeliveryRecorder;
  readonly adversary: Adversary;
  /** Seeded stream for scenario choices (origins, targets, schedules). */
  readonly random: () => number;
  /** Bans made by the nodes' ledgers (scoring on): by whom of whom, why, and when (virtual ms) honest nodes made their first and last. */
  readonly bans = { total: 0, honestBannedByHonest: 0, hostileBannedByHonest: 0, byReason: {} as Record<string, number>, firstAt: null as number | null, lastAt: null as number | null };
  /** Async operations (lookups) in flight: while any is, the loop yields after every event. */
  asyncPending = 0;
  private readonly byHost = new Map<string, SimNode>();
  private readonly byId = new Map<string, SimNode>();

  constructor(readonly opts: ResolvedSimOptions, behaviours: readonly Behaviour[]) {
    this.seed = opts.seed;
    this.random = seededRandom(opts.seed ^ 0x3c6ef372);
    this.config = {
      gossip: {
        fanout: opts.fanout,
        push: opts.push,
        announceLimit: opts.announceLimit,
        gossipTtl: opts.gossipTtl,
        seenTtlMs: DEFAULTS.seenTtlMs,
        maxSeenEntries: DEFAULTS.maxSeenEntries,
        signMessages: true,
        deliverOwnMessages: false,
        repair: opts.repair,
        heartbeatMs: DEFAULTS.heartbeatMs,
        messageCacheMs: DEFAULTS.messageCacheMs,
        maxCachedMessages: DEFAULTS.maxCachedMessages,
        maxCachedBytes: DEFAULTS.maxCachedBytes,
      },
      dht: { k: DEFAULTS.k, alpha: DEFAULTS.alpha, requestTimeoutMs: DEFAULTS.dhtRequestTimeoutMs, refreshIntervalMs: DEFAULTS.refreshIntervalMs },
      partitionTimeoutMs: opts.partitionTimeoutMs,
      pingIntervalMs: Math.max(DEFAULTS.heartbeatMs, Math.floor(opts.partitionTimeoutMs / 3)),
      dialTimeoutMs: DEFAULTS.dialTimeoutMs,
      redialMinMs: 1000,
      redialMaxMs: 8000,
      scoring: opts.scoring ? resolveScoringOptions({}) : undefined,
      banDurationMs: DEFAULTS.banDurationMs,
    };
    this.transport = new SimTransport(this.clock, this.nodes, { latencyMs: opts.latencyMs, jitterMs: opts.jitterMs, loss: opts.loss }, opts.seed);
    this.adversary = new Adversary(this.transport, seededRandom(opts.seed ^ 0x1b873593));
    this.recorder = new DeliveryRecorder(opts.nodes, (i) => this.nodes[i]!.honest);
    for (let i = 0; i < opts.nodes; i++) {
      const node = new SimNode(this, i, simIdentity(opts.seed, i), behaviours[i] ?? 'honest');
      this.nodes.push(node);
      this.byHost.set(node.host, node);
      this.byId.set(node.identity.id.toString('latin1'), node);
    }
  }

  nodeAt(host: string): SimNode | undefined {
    return this.byHost.get(host);
  }

  nodeById(key: string): SimNode | undefined {
    return this.byId.get(key);
  }

  onDeliver(node: SimNode, payload: Buffer, info: DeliveryInfo): void {
    node.metrics.delivered++;
    this.recorder.deliver(node.index, payload, info, this.clock.now());
  }

  onBan(node: SimNode, peer: SimNode, reason: string): void {
    const b = this.bans;
    b.total++;
    if (node.honest && peer.honest) b.honestBannedByHonest++;
    else if (node.honest) b.hostileBannedByHonest++;
    b.byReason[reason] = (b.byReason[reason] ?? 0) + 1;
    if (node.honest && b.firstAt === null) b.firstAt = this.clock.now();
    if (node.honest) b.lastAt = this.clock.now();
  }

  adversarySend(node: SimNode, to: SimNode, type: number, body: Buffer): boolean {
    return this.adversary.send(node, to, type, body);
  }

  /**
   * The seeded random overlay: each node dials `degree` distinct random others. Connections
   * are registered at once (time 0) on both ends, as network.ts does after a handshake.
   */
  buildOverlay(degree: number): void {
    const n = this.nodes.length;
    for (const node of this.nodes) {
      let made = 0;
      for (let tries = 0; made < degree && tries < degree * 20; tries++) {
        const j = Math.floor(this.random() * n);
        if (j === node.index || node.overlay.has(j)) continue;
        const peer = this.nodes[j]!;
        node.overlay.add(j);
        peer.overlay.add(node.index);
        node.attach(peer);
        peer.attach(node);
        made++;
      }
    }
    for (const node of this.nodes) node.start(Math.floor(this.random() * this.config.gossip.heartbeatMs));
  }

  /** Track an async operation so the run loop lets its continuations run promptly. */
  track<T>(p: Promise<T>): Promise<T> {
    this.asyncPending++;
    return p.finally(() => {
      this.asyncPending--;
    });
  }

  /**
   * Run events due up to virtual time `until` (ms), or until `done()` holds when given (checked
   * between events). Time then stands at `until` (or where done() held).
   */
  async runUntil(until: number, observe?: StepObserver, done?: () => boolean): Promise<void> {
    let n = 0;
    for (;;) {
      const next = this.clock.peekTime();
      if (next === undefined || next > until) break;
      // Time is about to move on: first the work queued as microtasks in this millisecond
      // runs, as a real node's run before its next read (the gossip engine sends the tick's
      // announcements from one), so it leaves at the virtual time that queued it.
      if (next > this.clock.now()) await null;
      if (!this.clock.step(until)) break;
      n++;
      if (this.asyncPending > 0 || (n & 1023) === 0) {
        await drainMicrotasks();
        if (observe && (n & 4095) === 0) observe(this.clock.now());
      }
      if (done?.()) return;
    }
    await drainMicrotasks();
    if (!done?.()) this.clock.advanceTo(until);
  }
}

/**
 * Node i's identity for a seed: the Ed25519 key whose private seed is SHA-256("aethel-sim",
 * seed, i); the same key identityFromSeed gives, built about ten times faster (a raw key import
 * (JWK) instead of a PKCS#8 decode, which costs ~0.5 ms in OpenSSL 3: 50 s for 100,000 nodes).
 */
export function simIdentity(seed: number, i: number): Identity {
  const privateSeed = createHash('sha256').update(`aethel-sim/${seed}/${i}`).digest();
  // `x` is required to be a string but not read when `d` is given: the public key is derived.
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: privateSeed.toString('base64url'), x: '' }, format: 'jwk' });
  const publicKey = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  const id = nodeIdOf(publicKey);
  return {
    publicKey,
    id,
    idHex: id.toString('hex'),
    sign: (data) => sign(null, data, privateKey),
    exportSeed: () => Buffer.from(privateSeed),
  };
}
