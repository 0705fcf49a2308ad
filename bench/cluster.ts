/**
 * Cluster benchmark for our layer: N P2PNetwork nodes in this process over real loopback TCP,
 * linked exactly as bench/util.ts topology() says (each node dials D random others; no
 * bootstrap, so no DHT join adds links), every node subscribed to one topic. M messages of
 * S bytes are broadcast round-robin by the nodes with at most W in flight: a message leaves
 * the window once all N-1 other nodes have delivered it. Node defaults otherwise (fanout 3,
 * TTL 10, repair on, 1 s heartbeat). `--rounds R`: R rounds in which every node publishes one
 * message at once (a PBFT phase), the next round when the last is everywhere.
 *
 *   npx tsx bench/cluster.ts [--nodes 20] [--degree 4] [--messages 5000] [--size 256]
 *                            [--window 200] [--seed 1] [--signed true|false] [--encrypted true|false]
 *                            [--announce true|false] [--rounds R] [--verify-workers N]
 *                            [--push fanout|tree] [--announce-limit N] [--warmup K]
 *
 * --warmup K: K messages (K rounds with --rounds) first, delivered everywhere but not measured
 * (result.warmup gives their latencies), so a fresh process's compiler and each link's round
 * trip are warm. Default 0.
 *
 * --push tree: the nodes' push option (PROTOCOL.md §4.6, "Eager-tree push"), an eager tree
 * pruned by duplicates instead of fanout-3 push. Default fanout.
 *
 * --announce-limit N: the nodes' announceLimit option (PROTOCOL.md §4.6, "Announce at once"):
 * a new message announced at once to at most N random peers it was not pushed to. Default: all.
 *
 * --verify-workers N (signed only): the verifyWorkers option, N threads verifying signatures
 * off the event loop, one pool shared by the N nodes of this process. Default 0. CPU per
 * delivery counts the workers' CPU too (process.cpuUsage is the whole process's); the result
 * also gives the workers' busy time per delivery (verifyPool) and the event loop thread's own
 * CPU per delivery (mainThreadCpuUsPerDelivery, Linux). Tuning the pool (its defaults:
 * VERIFY_POOL_DEFAULTS): --verify-in-flight N, --verify-inline N, --verify-balance N.
 *
 * A run that does not deliver every message to every node within --timeout-ms (default
 * 120000) is reported as failed (ok: false), with what it did deliver.
 */
import { readFileSync } from 'node:fs';
import { acquireVerifyPool, VERIFY_POOL_DEFAULTS, verifyPoolStats } from '../lib/gossip/verify-pool.js';
import { P2PNetwork } from '../lib/network.js';
import { LOOPBACK_ALLOWLIST, waitFor } from '../lib/testnet.js';
import { emitResult, intFlag, note, parseFlags, peakRssMb, topology, trackSocketBytes, deliverIndex, gcSummary, trackGc, WARMUP_BIT, warmupMessages, warmupSummary, workloadFlags, Workload } from './util.js';

const flags = parseFlags(process.argv.slice(2));
const { N, D, M, S, W, seed, roundSize } = workloadFlags(flags);
const signed = flags.get('signed') !== 'false';
const encrypted = flags.get('encrypted') !== 'false';
const announce = flags.get('announce') !== 'false';
const push = flags.get('push') ?? 'fanout';
if (push !== 'fanout' && push !== 'tree') throw new Error(`--push must be fanout or tree, got ${push}`);
const announceLimit = flags.has('announce-limit') ? intFlag(flags, 'announce-limit', 0) : Infinity;
const timeoutMs = intFlag(flags, 'timeout-ms', 120_000);
const verifyWorkers = signed ? intFlag(flags, 'verify-workers', 0) : 0;
// Tuning only: the pool's in-flight bound per worker and requests verified inline per turn
// (defaults: VERIFY_POOL_DEFAULTS), set by holding the pool before the nodes do.
const poolLease = verifyWorkers > 0 && (flags.has('verify-in-flight') || flags.has('verify-inline') || flags.has('verify-balance'))
  ? acquireVerifyPool(verifyWorkers, {
    maxInFlightPerWorker: intFlag(flags, 'verify-in-flight', VERIFY_POOL_DEFAULTS.maxInFlightPerWorker),
    inlinePerTurn: intFlag(flags, 'verify-inline', VERIFY_POOL_DEFAULTS.inlinePerTurn),
    balanceBelow: intFlag(flags, 'verify-balance', VERIFY_POOL_DEFAULTS.balanceBelow),
  }) : undefined;
const TOPIC = 'bench';

/**
 * CPU time of the calling thread so far, us (Linux: /proc/thread-self/stat, in clock ticks of
 * 10 ms; undefined elsewhere). The event loop's own share: on a host with a core to spare for
 * the verification worker, the event loop is what bounds deliveries per second.
 */
function threadCpuUs(): number | undefined {
  try {
    const f = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return undefined;
  }
}

/** Heap and off-heap memory now, MB (peak RSS alone does not say where it went). */
function memoryMb(): Record<string, number> {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / (1024 * 1024));
  return { rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) };
}

/**
 * The highest of each memoryMb() figure while messages flow, MB, sampled every 20 ms (so
 * between turns of the event loop, not inside one). Peak RSS follows what the GC has not
 * reclaimed yet (young generation, promoted garbage, dead ArrayBuffers), which the figures at
 * the end of the run do not show.
 */
function trackMemoryPeaks(): () => Record<string, number> {
  const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.heapTotal = Math.max(peak.heapTotal, m.heapTotal);
    peak.external = Math.max(peak.external, m.external);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    sample();
    return Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / (1024 * 1024))]));
  };
}

const socketBytes = trackSocketBytes();
const baselineRssMb = process.memoryUsage().rss / (1024 * 1024);
const edges = topology(N, D, seed);
// Handshakes per second: both ends of every link, timed with the links' setup below.
let handshakeMs = 0;
const nodes: P2PNetwork[] = [];
for (let i = 0; i < N; i++) {
  const node = new P2PNetwork({ listenHost: '127.0.0.1', listenPort: 0, signMessages: signed, verifyWorkers, encryption: encrypted, announce, announceLimit, push, admissionAllowlist: [...LOOPBACK_ALLOWLIST] });
  nodes.push(node);
  await node.start();
}
const h0 = performance.now();
const hcpu0 = process.cpuUsage();
await Promise.all(edges.map(([a, b]) => nodes[a]!.addPeer(`127.0.0.1:${nodes[b]!.address.port}`)));
handshakeMs = performance.now() - h0;
const hcpu = process.cpuUsage(hcpu0);
const degreeOf = new Array<number>(N).fill(0);
for (const [a, b] of edges) {
  degreeOf[a]!++;
  degreeOf[b]!++;
}
await waitFor(() => nodes.every((n, i) => n.health().connectedPeers === degreeOf[i]), 10_000, 'every link up');

/** Message idx of a workload, from node idx mod N; `bit`: WARMUP_BIT for the warm-up's. */
const publisher = (bit: number, onError: () => void) => (idx: number) => {
  const data = Buffer.alloc(S);
  data.writeUInt32BE(idx + bit, 0);
  nodes[idx % N]!.broadcast(TOPIC, data).catch((err) => {
    note(`broadcast failed: ${(err as Error).message}`);
    onError();
  });
};
const K = warmupMessages(flags, N, roundSize);
const warm = K > 0 ? new Workload(N, K, publisher(WARMUP_BIT, () => warm?.abort()), roundSize) : undefined;
const work = new Workload(N, M, publisher(0, () => work.abort()), roundSize);
nodes.forEach((node, i) => node.subscribe(TOPIC, (data) => void deliverIndex(work, warm, i, (data as Buffer).readUInt32BE(0))));
// Not measured: the compiler and every link's round trip warm up (--warmup).
if (warm) await warm.run(W, timeoutMs);
const pool0 = verifyPoolStats();

const sum = (f: (m: ReturnType<P2PNetwork['metrics']>) => number) => nodes.reduce((t, n) => t + f(n.metrics()), 0);
const gossip0 = sum((m) => m.gossipSent);
const bytes0 = socketBytes();
const cpu0 = process.cpuUsage();
const mainCpu0 = threadCpuUs();
const memoryPeaks = trackMemoryPeaks();
const stopGc = trackGc();
const t0 = performance.now();
await work.run(W, timeoutMs);
const gc = gcSummary(work, stopGc);
const memoryPeakMb = memoryPeaks();
const cpu = process.cpuUsage(cpu0);
const mainCpu1 = threadCpuUs();
const poolEnd = verifyPoolStats();
// The pool's counters over the measured messages (those of the warm-up taken off).
const pool = poolEnd && pool0 && {
  ...poolEnd,
  requests: poolEnd.requests - pool0.requests,
  refused: poolEnd.refused - pool0.refused,
  inline: poolEnd.inline - pool0.inline,
  batches: poolEnd.batches - pool0.batches,
  workerBusyMs: poolEnd.workerBusyMs - pool0.workerBusyMs,
  verifiedHere: poolEnd.verifiedHere - pool0.verifiedHere,
};
const { deliveries, duplicateDeliveries, expected } = work;
const elapsedS = (work.lastDeliveryAt - t0) / 1000;
const snapshots = nodes.map((n) => n.metrics());
const dropped: Record<string, number> = {};
const sentByType: Record<string, number> = {};
for (const m of snapshots) {
  for (const [k, v] of Object.entries(m.droppedByReason)) dropped[k] = (dropped[k] ?? 0) + v;
  for (const [k, v] of Object.entries(m.sentByType)) sentByType[k] = (sentByType[k] ?? 0) + v;
}
const result = {
  impl: 'aethel-p2p',
  mode: `${signed ? 'signed' : 'unsigned'}${encrypted ? '' : ' plaintext'}${verifyWorkers > 0 ? `, ${verifyWorkers} verify worker${verifyWorkers > 1 ? 's' : ''}` : ''}${push === 'tree' ? ', eager tree' : ''}`,
  encrypted,
  verifyWorkers,
  announce,
  announceLimit: Number.isFinite(announceLimit) ? announceLimit : null,
  push,
  ok: work.complete && duplicateDeliveries === 0 && (warm?.complete ?? true),
  warmup: warmupSummary(K, warm),
  nodes: N, degree: D, edges: edges.length, meanDegree: (2 * edges.length) / N, messages: M, size: S, window: W, seed, rounds: roundSize > 0 ? M / N : 0,
  deliveries,
  expected,
  duplicateDeliveries,
  deliveredFraction: deliveries / expected,
  deliveriesPerSec: deliveries / elapsedS,
  elapsedS,
  latencyMs: work.latencyMs(),
  gc,
  copiesPerDelivery: (sum((m) => m.gossipSent) - gossip0) / deliveries,
  bytesPerDelivery: (socketBytes() - bytes0) / deliveries,
  cpuUsPerDelivery: (cpu.user + cpu.system) / deliveries,
  // The event loop's thread alone (the rest: the verification worker, GC and libuv threads).
  mainThreadCpuUsPerDelivery: mainCpu0 !== undefined && mainCpu1 !== undefined ? (mainCpu1 - mainCpu0) / deliveries : null,
  peakRssMb: peakRssMb(),
  // The pool's counters over the measured messages (handshakes verify none through it).
  verifyPool: pool && {
    ...pool,
    // Wall time inside the worker's verification loop: above its CPU when the machine is oversubscribed.
    workerBusyUsPerDelivery: (pool.workerBusyMs * 1000) / deliveries,
    requestsPerBatch: pool.requests / Math.max(1, pool.batches),
  },
  baselineRssMb,
  endMemoryMb: memoryMb(),
  // The highest of each while messages flowed (sampled between event-loop turns).
  memoryPeakMb,
  dropped,
  sentByType,
  // Each link is one handshake, run by both ends in this process: CPU per handshake counts both sides.
  handshakes: edges.length,
  handshakeWallMs: handshakeMs,
  handshakeCpuUsEach: (hcpu.user + hcpu.system) / edges.length,
  handshakesPerCoreSec: edges.length / ((hcpu.user + hcpu.system) / 1e6),
};
await Promise.all(nodes.map((n) => n.stop()));
await poolLease?.release();
note(`aethel-p2p ${result.mode}: ${Math.round(result.deliveriesPerSec).toLocaleString()} deliveries/s, delivered ${(result.deliveredFraction * 100).toFixed(2)}%, p99 ${result.latencyMs.p99.toFixed(0)} ms`);
emitResult(result);
