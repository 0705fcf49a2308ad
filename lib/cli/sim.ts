/**
 * `aethel-p2p sim`: the deterministic simulator. Runs the real gossip and DHT engines for N
 * nodes over an in-memory transport and a virtual clock, and reports delivery, hops,
 * redundancy, bytes, DHT lookup rounds and accuracy, memory and time.
 */
import { InvalidOptionError } from '../errors.js';
import { DEFAULTS } from '../options.js';
import { ADVERSARY_BEHAVIOURS } from '../sim/adversary.js';
import { runSimulation } from '../sim/scenario.js';
import type { SimOptions, SimResult } from '../sim/scenario.js';
import { parse, intArg, strArg, UsageError } from './args.js';

type Behaviour = NonNullable<SimOptions['behaviour']>;
const BEHAVIOURS: readonly Behaviour[] = ADVERSARY_BEHAVIOURS;

const HELP = `usage: aethel-p2p sim --nodes N [options]
Simulate N nodes running the real gossip and Kademlia engines over an in-memory transport
and a virtual clock. The same seed gives the same result, event for event.
  --nodes N              nodes (2..100000; required)
  --messages M           messages published by random honest nodes (default 10)
  --fanout F             gossip fanout (default 3)
  --push fanout|tree     how messages are pushed: fanout random peers per hop, or an eager
                         tree pruned by duplicates (default fanout)
  --announce-limit N     announce each new message at once to at most N random peers it
                         did not push to; the heartbeat tells the rest (default: all)
  --degree D             overlay: each node dials D random others (default 8)
  --loss P               probability a frame is lost, 0..1 (default 0)
  --repair on|off        lazy repair, IHAVE/IWANT (default on)
  --byzantine FRACTION   fraction of byzantine nodes, 0..0.9 (default 0)
  --behaviour B          what they do (default drop): drop (silent: forward and advertise
                         nothing), withhold (advertise IHAVE, never send GOSSIP), tamper,
                         flood (3 copies to the target, 1 to every other peer),
                         iwant-drain (silent; asks every peer 32 times for every id it
                         learns), findnode-flood (FIND_NODE of random targets),
                         forged-flood (unique GOSSIP with random signatures),
                         unique-flood (validly signed unique messages, network TTL)
  --attack-rate R        sends per second per flooding node (default: findnode-flood 100,
                         forged-flood 100, unique-flood 1)
  --attack-ms MS         how long the floods run from the first message (default 5000)
  --partition G:S:H      split into G groups S ms after the first message, heal at H ms
  --churn FRACTION       nodes that crash once and restart after --downtime ms (default 0)
  --downtime MS          (default 20000)
  --latency MS           one-way link latency (default 20)
  --jitter MS            extra per-link latency, seeded, uniform in [0, MS) (default 30)
  --ttl T                gossip TTL, hops (default 10)
  --size B               payload bytes per message (default 64)
  --interval MS          virtual time between messages (default 20)
  --settle MS            virtual time simulated after the last message or heal (default 15000)
  --lookups L            sampled DHT lookups measured for rounds and accuracy (default 100)
  --join on|off          every node joins the DHT by looking up its own id (default on)
  --partition-timeout MS a silent link is closed after this long (default 30000)
  --scoring on|off       per-peer budgets, scores, graylist and bans in every node, as
                         the network does (default on)
  --verify once|every    once: each distinct signed message is verified for real once per
                         run and repeats answered from a memo (no CPU model: same result,
                         less wall time); every: each node verifies each copy (default once)
  --seed S               seed of every random choice (default 1)
  --json                 print the result as one JSON object on stdout
  --help                 this text`;

function onOff(values: Record<string, unknown>, name: string): boolean | undefined {
  const v = strArg(values, name);
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new UsageError(`--${name} must be on or off, got ${JSON.stringify(v)}`);
  return v === 'on';
}

function numArg(values: Record<string, unknown>, name: string, max: number): number | undefined {
  const raw = strArg(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || !(n >= 0 && n <= max)) throw new UsageError(`--${name} must be a number from 0 to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function partitionArg(values: Record<string, unknown>): SimOptions['partition'] {
  const raw = strArg(values, 'partition');
  if (raw === undefined) return undefined;
  const m = /^(\d+):(\d+):(\d+)$/.exec(raw);
  if (!m) throw new UsageError(`--partition must be GROUPS:START_MS:HEAL_MS, got ${JSON.stringify(raw)}`);
  return { groups: Number(m[1]), startMs: Number(m[2]), healMs: Number(m[3]) };
}

/** Parse the command line into simulation options; throws UsageError. */
export function parseSimArgs(argv: string[]): { options: SimOptions; json: boolean; help: boolean } {
  const str = { type: 'string' } as const;
  const v = parse(argv, {
    nodes: str, messages: str, fanout: str, push: str, 'announce-limit': str, degree: str, loss: str, repair: str, byzantine: str, behaviour: str,
    'attack-rate': str, 'attack-ms': str,
    partition: str, churn: str, downtime: str, latency: str, jitter: str, ttl: str, size: str, interval: str,
    settle: str, lookups: str, join: str, 'partition-timeout': str, verify: str, scoring: str, seed: str,
    json: { type: 'boolean' }, help: { type: 'boolean' },
  });
  if (v.help) return { options: { nodes: 2 }, json: false, help: true };
  if (v.nodes === undefined) throw new UsageError('--nodes is required');
  const behaviour = strArg(v, 'behaviour');
  if (behaviour !== undefined && !BEHAVIOURS.includes(behaviour as Behaviour)) {
    throw new UsageError(`--behaviour must be one of ${BEHAVIOURS.join(', ')}, got ${JSON.stringify(behaviour)}`);
  }
  const push = strArg(v, 'push');
  if (push !== undefined && push !== 'fanout' && push !== 'tree') throw new UsageError(`--push must be fanout or tree, got ${JSON.stringify(push)}`);
  const verify = strArg(v, 'verify');
  if (verify !== undefined && verify !== 'once' && verify !== 'every') throw new UsageError(`--verify must be once or every, got ${JSON.stringify(verify)}`);
  const options: SimOptions = {
    nodes: intArg(v, 'nodes', 0, 2, 100_000),
    messages: intArg(v, 'messages', 10, 0, 1_000_000),
    fanout: intArg(v, 'fanout', 3, 1, 64),
    push: push ?? 'fanout',
    announceLimit: v['announce-limit'] === undefined ? Infinity : intArg(v, 'announce-limit', 0, 1, 1_000_000),
    degree: intArg(v, 'degree', 8, 1, 1000),
    loss: numArg(v, 'loss', 1) ?? 0,
    repair: onOff(v, 'repair') ?? true,
    byzantine: numArg(v, 'byzantine', 0.9) ?? 0,
    behaviour: (behaviour as Behaviour | undefined) ?? 'drop',
    attackRate: numArg(v, 'attack-rate', 100_000),
    attackMs: intArg(v, 'attack-ms', 5000, 0, 86_400_000),
    partition: partitionArg(v),
    churn: numArg(v, 'churn', 0.9) ?? 0,
    downtimeMs: intArg(v, 'downtime', 20_000, 1, 86_400_000),
    latencyMs: intArg(v, 'latency', 20, 0, 60_000),
    jitterMs: intArg(v, 'jitter', 30, 0, 60_000),
    gossipTtl: intArg(v, 'ttl', 10, 1, 32),
    payloadBytes: intArg(v, 'size', 64, 0, 512 * 1024),
    intervalMs: intArg(v, 'interval', 20, 0, 3_600_000),
    settleMs: intArg(v, 'settle', 15_000, 0, 86_400_000),
    lookups: intArg(v, 'lookups', 100, 0, 100_000),
    join: onOff(v, 'join') ?? true,
    partitionTimeoutMs: intArg(v, 'partition-timeout', 30_000, 1, 86_400_000),
    verify: verify ?? 'once',
    scoring: onOff(v, 'scoring') ?? true,
    seed: intArg(v, 'seed', 1, 0, 0xffffffff),
  };
  return { options, json: v.json === true, help: false };
}

/** The human-readable report. */
export function formatSimResult(r: SimResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const lines = [
    `nodes ${r.nodes}, messages ${r.messages}, fanout ${r.fanout}${r.push === 'tree' ? ' (eager tree)' : ''}${r.announceLimit !== null ? `, announce limit ${r.announceLimit}` : ''}, degree ${r.degree}, repair ${r.repair ? 'on' : 'off'}, loss ${r.loss}, seed ${r.seed}`,
    `byzantine        ${r.byzantine.count} (${r.byzantine.behaviour})`,
    ...(r.attack ? [`attack           ${r.attack.ratePerSec > 0 ? `${r.attack.ratePerSec}/s per node for ${r.attack.durationMs} ms; ` : ''}${JSON.stringify(r.attack.counts)}; attackers sent ${r.attack.bytesSent} B, received ${r.attack.bytesReceived} B (x${r.attack.amplification ?? '-'})`] : []),
    `delivery         ${pct(r.deliveryFraction)} overall, ${pct(r.honestDeliveryFraction)} to honest nodes; ${r.fullyDelivered}/${r.messages} messages reached every honest node`,
    `forged delivered ${r.forgedDelivered}   rejected ${JSON.stringify(r.rejected)}`,
    ...(r.scoring ? [`scoring          ${r.scoring.bans} bans (${r.scoring.honestBanned} of honest peers by honest nodes, ${r.scoring.hostileBanned} of hostile ones${r.scoring.firstBanMs === null ? '' : `, first at ${r.scoring.firstBanMs} ms, last at ${r.scoring.lastBanMs} ms`}); dropped by honest nodes ${JSON.stringify(r.scoring.dropped)}`] : []),
    `hops             mean ${r.hops.mean}, p99 ${r.hops.p99}, max ${r.hops.max}`,
    `full delivery    ${r.timeToFullDeliveryMs === null ? 'not reached' : `${r.timeToFullDeliveryMs} virtual ms (slowest message)`}`,
    `delay            ${r.deliveryDelayMs === null ? 'no deliveries' : `p50 ${r.deliveryDelayMs.p50}, p99 ${r.deliveryDelayMs.p99}, max ${r.deliveryDelayMs.max} virtual ms from publication`}`,
    `frames/delivery  GOSSIP ${r.framesPerDelivery.gossip}, IHAVE ${r.framesPerDelivery.ihave}, IWANT ${r.framesPerDelivery.iwant}`,
    `redundancy       ${r.redundancy} GOSSIP copies sent per node per message`,
    `bytes/delivery   ${r.bytesPerDelivery} (GOSSIP + IHAVE + IWANT frames, headers included)`,
    `DHT lookups      ${r.lookups} sampled: rounds mean ${r.lookupRounds.mean}, max ${r.lookupRounds.max}; accuracy ${pct(r.lookupAccuracy)} of the true ${DEFAULTS.k} closest; join rounds mean ${r.joinRounds.mean}`,
  ];
  if (r.partition) lines.push(`partition        ${r.partition.groups} groups from ${r.partition.startMs} to ${r.partition.healMs} ms; ${r.partition.partitionedReports} peers reported partitioned, ${r.partition.recoveries} recovered after the heal`);
  if (r.churned > 0) lines.push(`churn            ${r.churned} nodes crashed and restarted`);
  lines.push(`memory           peak RSS ${r.peakRssMb} MB, heap ${r.memoryPerNodeKb} KiB per node`);
  lines.push(`time             ${(r.wallMs / 1000).toFixed(1)} s wall, ${(r.virtualMs / 1000).toFixed(1)} s virtual, ${r.events} events`);
  return lines.join('\n');
}

/** On a terminal: one bar on stderr, redrawn at most every 100 ms. */
function progressBar(): (phase: string, fraction: number) => void {
  let last = 0;
  return (phase, fraction) => {
    const now = Date.now();
    if (now - last < 100 && fraction < 1) return;
    last = now;
    const f = Math.max(0, Math.min(1, fraction));
    const width = 30;
    const full = Math.round(f * width);
    process.stderr.write(`\r\x1b[K[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${phase} ${Math.round(100 * f)}%`);
  };
}

/** Wall time between two progress lines when stderr is not a terminal (a log file, CI), ms. */
export const PROGRESS_LINE_MS = 10_000;

/**
 * Without a terminal (CI, a pipe, a log file): plain lines on stderr, so a run of minutes is
 * visibly alive while stdout keeps only the result. A line at each new phase and at most one
 * per PROGRESS_LINE_MS within a phase.
 */
export function progressLines(now: () => number, write: (line: string) => void = (l) => void process.stderr.write(l)): (phase: string, fraction: number) => void {
  const start = now();
  let lastPhase = '';
  let last = -Infinity;
  return (phase, fraction) => {
    const t = now();
    if (phase === lastPhase && t - last < PROGRESS_LINE_MS) return;
    if (phase === 'done') return;
    lastPhase = phase;
    last = t;
    const pct = Math.round(100 * Math.max(0, Math.min(1, fraction)));
    write(`sim: ${phase} ${pct}% (${((t - start) / 1000).toFixed(0)} s)\n`);
  };
}

export async function runSim(argv: string[]): Promise<number> {
  const { options, json, help } = parseSimArgs(argv);
  if (help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const tty = process.stderr.isTTY === true;
  const progress = tty ? progressBar() : progressLines(Date.now);
  let result: SimResult;
  try {
    result = await runSimulation(options, progress);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(err.message);
    throw err;
  } finally {
    if (tty) process.stderr.write('\r\x1b[K');
  }
  process.stdout.write((json ? JSON.stringify(result) : formatSimResult(result)) + '\n');
  return 0;
}
