/**
 * Simulation options: every field with its unit, defaults in one frozen object, resolved
 * with `??` and validated with InvalidOptionError naming the field.
 */
import { InvalidOptionError } from '../errors.js';
import { announceLimit, DEFAULTS } from '../options.js';
import { LIMITS } from '../wire/messages.js';
import { ADVERSARY_BEHAVIOURS, ATTACK_RATES } from './adversary.js';
import type { Behaviour } from './node.js';

export interface PartitionPlan {
  /** Groups the nodes are split into (seeded random assignment), >= 2. */
  groups: number;
  /** When the split starts, ms after the first publication. */
  startMs: number;
  /** When it heals, ms after the first publication. */
  healMs: number;
}

export interface SimOptions {
  /** Nodes in the network, 2..100000. */
  nodes: number;
  /** Messages published, each by a random honest node. Default 10. */
  messages?: number;
  /** Gossip fanout (peers pushed to per hop). Default 3. */
  fanout?: number;
  /**
   * How a new message is pushed (the network's `push` option, PROTOCOL.md §4.6, "Eager-tree
   * push"): 'fanout' to `fanout` random peers per hop, 'tree' along an eager tree pruned by
   * duplicates. 'tree' needs repair. Default 'fanout'.
   */
  push?: 'fanout' | 'tree';
  /**
   * The most peers each node announces a new message to at once (the network's
   * `announceLimit` option, PROTOCOL.md §4.6): a positive integer, or Infinity (every peer it
   * did not push to). Default Infinity.
   */
  announceLimit?: number;
  /** Overlay: each node dials this many random others, so the mean degree is about twice it. Default 8. */
  degree?: number;
  /** Probability that a frame is lost, 0..1. Default 0. */
  loss?: number;
  /** Lazy repair (IHAVE/IWANT). Default true. */
  repair?: boolean;
  /** Fraction of nodes that are byzantine, 0..0.9. Default 0. */
  byzantine?: number;
  /** What byzantine nodes do (lib/sim/adversary.ts). Default 'drop'. */
  behaviour?: Exclude<Behaviour, 'honest'>;
  /**
   * Sends per second of each flooding node (findnode-flood, forged-flood, unique-flood),
   * 0..100000. Default by behaviour: FIND_NODE 100, forged GOSSIP 100, signed unique messages 1
   * (each of which every honest node verifies, caches and forwards).
   */
  attackRate?: number;
  /** How long the floods run, from the first publication, virtual ms. Default 5000. */
  attackMs?: number;
  /** Split the network for a while. Default none. */
  partition?: PartitionPlan;
  /** Fraction of honest non-origin nodes that crash once during the gossip phase and restart, 0..0.9. Default 0. */
  churn?: number;
  /** How long a churned node stays down, ms. Default 20000. */
  downtimeMs?: number;
  /** One-way latency of every link, ms. Default 20. */
  latencyMs?: number;
  /** Extra one-way latency per link, uniform in [0, jitterMs), fixed per link, ms. Default 30. */
  jitterMs?: number;
  /** Hops a message may travel. Default 10 (the network default). */
  gossipTtl?: number;
  /** Application payload per message, bytes (before MessagePack framing). Default 64. */
  payloadBytes?: number;
  /** Virtual time between publications, ms. Default 20. */
  intervalMs?: number;
  /** Virtual time simulated after the last publication (and after a heal), ms. Default 15000. */
  settleMs?: number;
  /** Every node joins the DHT (a lookup of its own id) before gossip starts. Default true. */
  join?: boolean;
  /** Sampled DHT lookups of random targets, measured for rounds and accuracy. Default 100 (capped at nodes). */
  lookups?: number;
  /** A link silent this long is closed, ms. Default the network's partitionTimeoutMs (30000). */
  partitionTimeoutMs?: number;
  /**
   * Per-peer accounting in every node, as lib/network.ts does it (lib/peers/peer-ledger.ts with
   * its defaults): budgets charged before the engines see a message, scores, graylisting, and
   * bans that close the link and are not redialed. Default true.
   */
  scoring?: boolean;
  /**
   * 'once': each distinct (key, id, signature) is verified for real once per run and repeats
   * are answered from a memo of that result (the same answer, without the CPU: the simulator
   * has no CPU model). 'every': every node verifies every copy it checks, as on real hosts,
   * so wall time counts one Ed25519 verification per message per node. Default 'once'.
   */
  verify?: 'once' | 'every';
  /** Seed of every random choice. Default 1. */
  seed?: number;
}

export type ResolvedSimOptions = Required<Omit<SimOptions, 'partition'>> & { partition: PartitionPlan | undefined };

/** Default attackRate of a behaviour that floods on a timer; 0 for the others. */
export function defaultAttackRate(behaviour: Exclude<Behaviour, 'honest'>): number {
  return ATTACK_RATES[behaviour] ?? 0;
}

export const SIM_DEFAULTS = Object.freeze({
  messages: 10,
  fanout: DEFAULTS.fanout,
  push: DEFAULTS.push,
  announceLimit: DEFAULTS.announceLimit,
  degree: 8,
  loss: 0,
  repair: true,
  byzantine: 0,
  behaviour: 'drop' as const,
  attackMs: 5000,
  churn: 0,
  downtimeMs: 20_000,
  latencyMs: 20,
  jitterMs: 30,
  gossipTtl: DEFAULTS.gossipTtl,
  payloadBytes: 64,
  intervalMs: 20,
  settleMs: 15_000,
  join: true,
  lookups: 100,
  partitionTimeoutMs: DEFAULTS.partitionTimeoutMs,
  verify: 'once' as const,
  scoring: true,
  seed: 1,
});

const BEHAVIOURS: readonly string[] = ADVERSARY_BEHAVIOURS;

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(field, `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function fraction(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new InvalidOptionError(field, `expected a number from 0 to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Apply defaults and validate; throws InvalidOptionError naming the first bad field. */
export function resolveSimOptions(o: SimOptions): ResolvedSimOptions {
  const d = SIM_DEFAULTS;
  const nodes = int('nodes', o.nodes, 2, 100_000);
  const behaviour = o.behaviour ?? d.behaviour;
  if (!BEHAVIOURS.includes(behaviour)) throw new InvalidOptionError('behaviour', `expected one of ${BEHAVIOURS.join(', ')}, got ${String(behaviour)}`);
  const repair = o.repair ?? d.repair;
  const join = o.join ?? d.join;
  if (typeof repair !== 'boolean') throw new InvalidOptionError('repair', 'expected a boolean');
  const push = o.push ?? d.push;
  if (push !== 'fanout' && push !== 'tree') throw new InvalidOptionError('push', `expected 'fanout' or 'tree', got ${String(push)}`);
  if (push === 'tree' && !repair) throw new InvalidOptionError('push', "'tree' needs repair: true");
  if (typeof join !== 'boolean') throw new InvalidOptionError('join', 'expected a boolean');
  const scoring = o.scoring ?? d.scoring;
  if (typeof scoring !== 'boolean') throw new InvalidOptionError('scoring', 'expected a boolean');
  const verify = o.verify ?? d.verify;
  if (verify !== 'once' && verify !== 'every') throw new InvalidOptionError('verify', `expected once or every, got ${String(verify)}`);
  let partition: PartitionPlan | undefined;
  if (o.partition !== undefined) {
    const p = o.partition;
    partition = {
      groups: int('partition.groups', p.groups, 2, nodes),
      startMs: int('partition.startMs', p.startMs, 0, 86_400_000),
      healMs: int('partition.healMs', p.healMs, 0, 86_400_000),
    };
    if (partition.healMs <= partition.startMs) throw new InvalidOptionError('partition.healMs', 'must be after partition.startMs');
  }
  return {
    nodes,
    messages: int('messages', o.messages ?? d.messages, 0, 1_000_000),
    fanout: int('fanout', o.fanout ?? d.fanout, 1, 64),
    push,
    announceLimit: announceLimit(o.announceLimit ?? d.announceLimit),
    degree: int('degree', o.degree ?? d.degree, 1, Math.min(1000, nodes - 1)),
    loss: fraction('loss', o.loss ?? d.loss, 1),
    repair,
    byzantine: fraction('byzantine', o.byzantine ?? d.byzantine, 0.9),
    behaviour,
    attackRate: fraction('attackRate', o.attackRate ?? defaultAttackRate(behaviour), 100_000),
    attackMs: int('attackMs', o.attackMs ?? d.attackMs, 0, 86_400_000),
    partition,
    churn: fraction('churn', o.churn ?? d.churn, 0.9),
    downtimeMs: int('downtimeMs', o.downtimeMs ?? d.downtimeMs, 1, 86_400_000),
    latencyMs: int('latencyMs', o.latencyMs ?? d.latencyMs, 0, 60_000),
    jitterMs: int('jitterMs', o.jitterMs ?? d.jitterMs, 0, 60_000),
    gossipTtl: int('gossipTtl', o.gossipTtl ?? d.gossipTtl, 1, LIMITS.maxTtl),
    payloadBytes: int('payloadBytes', o.payloadBytes ?? d.payloadBytes, 0, 512 * 1024),
    intervalMs: int('intervalMs', o.intervalMs ?? d.intervalMs, 0, 3_600_000),
    settleMs: int('settleMs', o.settleMs ?? d.settleMs, 0, 86_400_000),
    join,
    lookups: int('lookups', Math.min(o.lookups ?? d.lookups, nodes), 0, 100_000),
    partitionTimeoutMs: int('partitionTimeoutMs', o.partitionTimeoutMs ?? d.partitionTimeoutMs, 1, 86_400_000),
    verify,
    scoring,
    seed: int('seed', o.seed ?? d.seed, 0, 0xffffffff),
  };
}
