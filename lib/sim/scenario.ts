/**
 * One simulation run, start to finish: build the network, join every node to the DHT, publish
 * messages under the chosen faults and adversaries, let repair settle, measure DHT lookups
 * against the true k closest, and summarise. The same options give the same result object,
 * event for event (wallMs and the memory figures aside: those are measured, not simulated).
 */
import { setNodeIdMemo, setVerificationMemo } from '../identity.js';
import { seededRandom } from '../random.js';
import { packValue } from '../wire/codec.js';
import { MessageType } from '../wire/messages.js';
import { ATTACK_TICK_MS } from './adversary.js';
import type { Adversary } from './adversary.js';
import { SimNetwork } from './network.js';
import type { Behaviour } from './node.js';
import { resolveSimOptions } from './options.js';
import type { ResolvedSimOptions, SimOptions } from './options.js';
import { measureLookups } from './lookups.js';
import type { LookupStats } from './lookups.js';
import { round } from './recorder.js';

export type { SimOptions } from './options.js';

/** Topic every simulated message is published on. */
export const SIM_TOPIC = 'sim';

export interface SimResult {
  nodes: number;
  messages: number;
  fanout: number;
  /** How messages were pushed: 'fanout' or 'tree' (the push option). */
  push: 'fanout' | 'tree';
  /** The most peers a node announced a new message to at once (the announceLimit option); null: every one (Infinity). */
  announceLimit: number | null;
  degree: number;
  repair: boolean;
  loss: number;
  /** How signatures were checked: 'once' per distinct signed message per run (memo), or 'every' copy at every node. */
  verify: 'once' | 'every';
  byzantine: { fraction: number; behaviour: string; count: number };
  /**
   * What the byzantine nodes did, when there are any: their frames corrupted, withheld or
   * added (by kind, non-zero counts only), their flood rate per node and its duration (0 for
   * models without a timer), and the bytes they sent and received (frame headers included):
   * received / sent is what honest nodes spent per byte of attack (the amplification).
   */
  attack: {
    behaviour: string;
    ratePerSec: number;
    durationMs: number;
    counts: Partial<Adversary['counts']>;
    bytesSent: number;
    bytesReceived: number;
    amplification: number | null;
  } | null;
  /** First deliveries / (messages x (nodes - 1)). */
  deliveryFraction: number;
  /** First deliveries at honest nodes / (messages x (honest nodes - 1)). */
  honestDeliveryFraction: number;
  /** Messages every honest node (origin aside) delivered. */
  fullyDelivered: number;
  /** Deliveries whose id or content matches no published message: must be 0. */
  forgedDelivered: number;
  /** A node delivering the same message twice: must be 0. */
  duplicateDeliveries: number;
  hops: { mean: number; p99: number; max: number };
  /** Longest time from publication to the last honest node's delivery, virtual ms; null unless every message reached every honest node. */
  timeToFullDeliveryMs: number | null;
  /** Delay of first deliveries from publication, virtual ms, whole (floored): median, 99th percentile, max; null before any. */
  deliveryDelayMs: { p50: number; p99: number; max: number } | null;
  /** GOSSIP, IHAVE and IWANT frames sent (every node, hostile ones included) / first deliveries. */
  framesPerDelivery: { gossip: number; ihave: number; iwant: number };
  /** GOSSIP frames sent / (nodes x messages): copies sent per node per message. */
  redundancy: number;
  /** Bytes of GOSSIP, IHAVE and IWANT frames (headers included) / first deliveries. */
  bytesPerDelivery: number;
  /** Messages rejected by honest engines, by reason (bad_signature, id_mismatch, ...). */
  rejected: Record<string, number>;
  /**
   * Per-peer accounting (scoring on; null when off): messages honest nodes dropped before
   * their engines saw them, by reason (rate_limited, graylisted, verify_budget, serve_budget,
   * iwant_refused), and the bans: made in all, of honest peers by honest nodes (must be 0),
   * of hostile peers by honest nodes, by reason, and the virtual ms of honest nodes' first and
   * last ban after the first publication.
   */
  scoring: {
    dropped: Record<string, number>;
    bans: number;
    honestBanned: number;
    hostileBanned: number;
    banReasons: Record<string, number>;
    firstBanMs: number | null;
    lastBanMs: number | null;
    /** Open links of honest nodes to peers they banned, at the end: must be 0 (a ban closes the link, which is not redialed). */
    linksToBanned: number;
  } | null;
  lookupRounds: { mean: number; max: number };
  /** Mean fraction of the true k closest (among live nodes) that sampled lookups found. */
  lookupAccuracy: number;
  lookups: number;
  /** Rounds of the join lookups (each node looking up its own id). */
  joinRounds: { mean: number; max: number };
  /**
   * The partition, and what the nodes' PartitionMonitors saw: peers reported partitioned,
   * and reconnections to such peers after the heal (each counted at both ends).
   */
  partition: { groups: number; startMs: number; healMs: number; partitionedReports: number; recoveries: number } | null;
  churned: number;
  peakRssMb: number;
  /** Heap growth from before the network was built to the end of the run, per node, KiB. */
  memoryPerNodeKb: number;
  wallMs: number;
  /** Virtual time simulated, ms. */
  virtualMs: number;
  /** Clock events executed. */
  events: number;
  /** SHA-256 over every delivery (time, node, id, hops) in order. */
  trace: string;
  seed: number;
}

export interface SimProgress {
  (phase: 'build' | 'join' | 'gossip' | 'lookups' | 'done', fraction: number): void;
}

/** Run one simulation. Throws InvalidOptionError for bad options. */
export async function runSimulation(options: SimOptions, progress?: SimProgress): Promise<SimResult> {
  const opts = resolveSimOptions(options);
  if (opts.verify === 'once') setVerificationMemo(VERIFY_MEMO_ENTRIES);
  // Every origin is a simulated node: one SHA-256 per key serves every engine (pure: changes nothing simulated).
  setNodeIdMemo(opts.nodes + 1);
  try {
    return await run(opts, progress);
  } finally {
    setVerificationMemo(0);
    setNodeIdMemo(0);
  }
}

/**
 * Verification results kept (verify 'once'): each entry is one distinct (key, id, signature)
 * triple, about 300 bytes; far more than the messages of any run, forgeries included.
 */
const VERIFY_MEMO_ENTRIES = 1_000_000;

async function run(opts: ResolvedSimOptions, progress: SimProgress | undefined): Promise<SimResult> {
  const wallStart = performance.now();
  let peakRss = process.memoryUsage().rss;
  const sampleRss = () => {
    const rss = process.memoryUsage().rss;
    if (rss > peakRss) peakRss = rss;
  };
  const heapBefore = heapUsed();
  progress?.('build', 0);

  const net = new SimNetwork(opts, chooseBehaviours(opts));
  net.buildOverlay(opts.degree);
  sampleRss();
  progress?.('build', 1);

  // Join: every node looks up its own id, at a seeded time in the first second.
  const joinRounds: number[] = [];
  if (opts.join) {
    let started = 0;
    for (const node of net.nodes) {
      net.clock.at(Math.floor(net.random() * 1000), () => {
        started++;
        void net.track(node.dht.lookup(node.identity.id).then((r) => joinRounds.push(r.rounds), () => undefined));
      });
    }
    await net.runUntil(3_600_000, (t) => {
      sampleRss();
      progress?.('join', Math.min(1, t / 5000));
    }, () => started === net.nodes.length && net.asyncPending === 0);
  }

  // Gossip: publications, faults, then settle.
  const t0 = net.clock.now() + 1000;
  const honest = net.nodes.filter((n) => n.honest);
  const origins: number[] = [];
  for (let m = 0; m < opts.messages; m++) origins.push(honest[Math.floor(net.random() * honest.length)]!.index);
  const pad = Buffer.alloc(opts.payloadBytes);
  for (let m = 0; m < opts.messages; m++) {
    net.clock.at(t0 + m * opts.intervalMs, () => {
      const origin = net.nodes[origins[m]!]!;
      if (!origin.up) return;
      pad.fill(m & 0xff);
      const payload = packValue({ m, pad });
      const id = origin.gossip.publish(SIM_TOPIC, payload);
      net.recorder.publish(id.toString('hex'), payload, origin.index, net.clock.now());
    });
  }
  let end = t0 + Math.max(0, opts.messages - 1) * opts.intervalMs + opts.settleMs;
  const p = opts.partition;
  if (p) {
    const groups = new Int32Array(opts.nodes);
    for (let i = 0; i < opts.nodes; i++) groups[i] = Math.floor(net.random() * p.groups);
    net.clock.at(t0 + p.startMs, () => net.transport.partition(groups));
    net.clock.at(t0 + p.healMs, () => net.transport.heal());
    end = Math.max(end, t0 + p.healMs + opts.settleMs);
  }
  end = Math.max(end, scheduleFloods(net, opts, t0));
  const churned = scheduleChurn(net, opts, t0, origins, end);
  const gossipStart = net.clock.now();
  await net.runUntil(end, (t) => {
    sampleRss();
    progress?.('gossip', (t - gossipStart) / (end - gossipStart));
  });
  sampleRss();

  // Lookups: random targets from random live honest nodes, checked against the true k closest.
  const lookup = await measureLookups(net, opts, (f) => {
    sampleRss();
    progress?.('lookups', f);
  });
  sampleRss();
  const memoryPerNodeKb = round(Math.max(0, heapUsed() - heapBefore) / opts.nodes / 1024, 1);
  progress?.('done', 1);
  return summarise(net, opts, {
    t0,
    joinRounds,
    lookup,
    churned,
    peakRssMb: round(peakRss / 1048576, 1),
    memoryPerNodeKb,
    wallMs: Math.round(performance.now() - wallStart),
  });
}

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/** Byzantine nodes: a seeded random choice of floor(fraction x nodes). */
function chooseBehaviours(opts: ResolvedSimOptions): Behaviour[] {
  const out: Behaviour[] = new Array<Behaviour>(opts.nodes).fill('honest');
  const count = Math.floor(opts.byzantine * opts.nodes);
  const order = Array.from({ length: opts.nodes }, (_, i) => i);
  const random = seededRandom((opts.seed ^ 0x68e31da4) >>> 0);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (order.length - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
    out[order[i]!] = opts.behaviour;
  }
  return out;
}

/**
 * Flooding nodes: from t0, every ATTACK_TICK_MS for attackMs, each sends what its rate allows
 * (Adversary.tick). Returns when the floods end (t0 when there are none).
 */
function scheduleFloods(net: SimNetwork, opts: ResolvedSimOptions, t0: number): number {
  if (opts.byzantine === 0 || opts.attackRate === 0 || opts.attackMs === 0) return t0;
  const flooders = net.nodes.filter((n) => !n.honest);
  const stopAt = t0 + opts.attackMs;
  net.clock.at(t0, () => {
    const timers = flooders.map((node) => net.clock.setInterval(() => net.adversary.tick(node, net.nodes, opts.attackRate, opts.gossipTtl), ATTACK_TICK_MS));
    // +1: the tick due at stopAt still runs, so a flood sends attackMs / ATTACK_TICK_MS ticks.
    net.clock.at(stopAt + 1, () => {
      for (const t of timers) t.cancel();
    });
  });
  return stopAt;
}

/** Churn: a seeded choice of honest non-origin nodes crash at a random time and restart after downtimeMs. */
function scheduleChurn(net: SimNetwork, opts: ResolvedSimOptions, t0: number, origins: number[], end: number): number {
  if (opts.churn === 0) return 0;
  const originSet = new Set(origins);
  const eligible = net.nodes.filter((n) => n.honest && !originSet.has(n.index));
  const count = Math.min(eligible.length, Math.floor(opts.churn * opts.nodes));
  const window = Math.max(1, end - t0 - opts.settleMs);
  for (let i = 0; i < count; i++) {
    const node = eligible.splice(Math.floor(net.random() * eligible.length), 1)[0]!;
    const at = t0 + Math.floor(net.random() * window);
    net.clock.at(at, () => node.crash());
    net.clock.at(at + opts.downtimeMs, () => {
      node.restart(Math.floor(net.random() * net.config.gossip.heartbeatMs));
      void net.track(node.dht.lookup(node.identity.id).catch(() => undefined));
    });
  }
  return count;
}

/** Drop reasons of the per-peer accounting, reported under `scoring`. */
const SCORING_DROPS = ['rate_limited', 'graylisted', 'verify_budget', 'serve_budget', 'iwant_refused'] as const;

function meanMax(xs: number[]): { mean: number; max: number } {
  if (xs.length === 0) return { mean: 0, max: 0 };
  let sum = 0;
  let max = 0;
  for (const x of xs) {
    sum += x;
    if (x > max) max = x;
  }
  return { mean: round(sum / xs.length, 3), max };
}

function summarise(
  net: SimNetwork,
  opts: ResolvedSimOptions,
  m: { t0: number; joinRounds: number[]; lookup: LookupStats; churned: number; peakRssMb: number; memoryPerNodeKb: number; wallMs: number },
): SimResult {
  const rec = net.recorder;
  const n = opts.nodes;
  const honestCount = net.nodes.filter((x) => x.honest).length;
  const published = rec.published.length;
  let fully = 0;
  let longest = 0;
  for (const p of rec.published) {
    if (p.honestDeliveries >= honestCount - 1) {
      fully++;
      longest = Math.max(longest, p.lastAt - p.at);
    }
  }
  const stats = net.transport.stats;
  const perDelivery = (frames: number) => (rec.deliveries === 0 ? 0 : round(frames / rec.deliveries, 3));
  const gossipBytes = stats.bytesByType[MessageType.GOSSIP]! + stats.bytesByType[MessageType.IHAVE]! + stats.bytesByType[MessageType.IWANT]!;
  const rejected: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  for (const node of net.nodes) {
    if (!node.honest) continue;
    const snap = node.metrics.snapshot({ connectedPeers: 0, seenMessages: 0 });
    for (const [reason, count] of Object.entries(snap.invalidByReason)) rejected[reason] = (rejected[reason] ?? 0) + count;
    for (const reason of SCORING_DROPS) {
      const count = snap.droppedByReason[reason] ?? 0;
      if (count > 0) dropped[reason] = (dropped[reason] ?? 0) + count;
    }
  }
  const b = net.bans;
  const scoring: SimResult['scoring'] = !opts.scoring ? null : {
    dropped,
    bans: b.total,
    honestBanned: b.honestBannedByHonest,
    hostileBanned: b.hostileBannedByHonest,
    banReasons: { ...b.byReason },
    firstBanMs: b.firstAt === null ? null : b.firstAt - m.t0,
    lastBanMs: b.lastAt === null ? null : b.lastAt - m.t0,
    linksToBanned: net.nodes.reduce((sum, node) => sum + (node.honest ? node.linksToBanned() : 0), 0),
  };
  let partitionedReports = 0;
  let recoveries = 0;
  for (const node of net.nodes) {
    partitionedReports += node.partitionReports;
    recoveries += node.recoveries;
  }
  const accuracy = m.lookup.accuracy;
  let attack: SimResult['attack'] = null;
  if (honestCount < n) {
    let bytesSent = 0;
    let bytesReceived = 0;
    for (const node of net.nodes) {
      if (node.honest) continue;
      const snap = node.metrics.snapshot({ connectedPeers: 0, seenMessages: 0 });
      bytesSent += snap.bytesSent;
      bytesReceived += snap.bytesReceived;
    }
    const counts: Partial<Adversary['counts']> = {};
    for (const [kind, count] of Object.entries(net.adversary.counts)) if (count > 0) counts[kind as keyof Adversary['counts']] = count;
    const timed = opts.attackRate > 0 && opts.attackMs > 0 && ['findnode-flood', 'forged-flood', 'unique-flood'].includes(opts.behaviour);
    attack = {
      behaviour: opts.behaviour,
      ratePerSec: timed ? opts.attackRate : 0,
      durationMs: timed ? opts.attackMs : 0,
      counts,
      bytesSent,
      bytesReceived,
      amplification: bytesSent === 0 ? null : round(bytesReceived / bytesSent, 3),
    };
  }
  return {
    nodes: n,
    messages: published,
    fanout: opts.fanout,
    push: opts.push,
    announceLimit: Number.isFinite(opts.announceLimit) ? opts.announceLimit : null,
    degree: opts.degree,
    repair: opts.repair,
    loss: opts.loss,
    verify: opts.verify,
    byzantine: { fraction: opts.byzantine, behaviour: opts.byzantine > 0 ? opts.behaviour : 'none', count: n - honestCount },
    attack,
    deliveryFraction: published === 0 ? 1 : round(rec.deliveries / (published * (n - 1)), 6),
    honestDeliveryFraction: published === 0 ? 1 : round(rec.honestDeliveries / (published * Math.max(1, honestCount - 1)), 6),
    fullyDelivered: fully,
    forgedDelivered: rec.forgedDelivered,
    duplicateDeliveries: rec.duplicateDeliveries,
    hops: rec.hopStats(),
    timeToFullDeliveryMs: published > 0 && fully === published ? longest : null,
    deliveryDelayMs: rec.delayStats(),
    framesPerDelivery: {
      gossip: perDelivery(stats.framesByType[MessageType.GOSSIP]!),
      ihave: perDelivery(stats.framesByType[MessageType.IHAVE]!),
      iwant: perDelivery(stats.framesByType[MessageType.IWANT]!),
    },
    redundancy: published === 0 ? 0 : round(stats.framesByType[MessageType.GOSSIP]! / (n * published), 3),
    bytesPerDelivery: rec.deliveries === 0 ? 0 : round(gossipBytes / rec.deliveries, 1),
    rejected,
    scoring,
    lookupRounds: meanMax(m.lookup.rounds),
    lookupAccuracy: accuracy.length === 0 ? 0 : round(accuracy.reduce((a, b) => a + b, 0) / accuracy.length, 4),
    lookups: accuracy.length,
    joinRounds: meanMax(m.joinRounds),
    partition: opts.partition ? { ...opts.partition, partitionedReports, recoveries } : null,
    churned: m.churned,
    peakRssMb: m.peakRssMb,
    memoryPerNodeKb: m.memoryPerNodeKb,
    wallMs: m.wallMs,
    virtualMs: net.clock.now(),
    events: net.clock.executed,
    trace: rec.traceDigest(),
    seed: opts.seed,
  };
}
