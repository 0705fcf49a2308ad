/**
 * Turns the benchmark results into ratios against the targets (issue 14's, which tighten
 * issue 7's; issue 7's codec targets and issue 11's encryption cost stay) and renders them:
 * a console summary and the generated section of docs/PERFORMANCE.md.
 */
import { fmt } from './util.js';
import type { FrameFigures } from './codec.js';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What every cluster-shaped run reports (ours, the raw flood, libp2p). */
export interface ClusterResult {
  impl: string;
  mode: string;
  ok: boolean;
  error?: string;
  deliveries: number;
  expected: number;
  deliveredFraction: number;
  deliveriesPerSec: number;
  latencyMs: Latency;
  copiesPerDelivery: number | null;
  bytesPerDelivery: number;
  cpuUsPerDelivery: number;
  peakRssMb: number;
  meanDegree?: number;
  meshDegree?: number;
  /** Ours and the raw flood: nodes, and the unmeasured warm-up (--warmup) that ran first. */
  nodes?: number;
  warmup?: { messages: number; deliveredFraction: number | null; latencyMs: Latency | null };
  deviations?: string[];
  forwardTo?: string;
  /** libp2p only: publishes refused for want of a subscribed peer and retried 100 ms later. */
  publishRetries?: number;
  /** Ours only: verification worker threads (option verifyWorkers; 0 or absent: none). */
  verifyWorkers?: number;
  /** Ours with verifyWorkers > 0: the pool's counters over the run (bench/cluster.ts). */
  verifyPool?: { requests: number; refused: number; batches: number; workerBusyUsPerDelivery: number; requestsPerBatch: number };
  /** Ours only: CPU of the event loop's thread alone per delivery, us (null where it cannot be read). */
  mainThreadCpuUsPerDelivery?: number | null;
  /** Ours and the raw flood: collections while the measured messages ran (bench/util.ts gcSummary). */
  gc?: { scavenge: GcKind; other: GcKind; messagesHit: number; latencyMsClear: Latency | null };
  /** Ours only: links set up (one handshake each) and their CPU cost, both ends in one process. */
  handshakes?: number;
  handshakeCpuUsEach?: number;
  handshakesPerCoreSec?: number;
}

interface GcKind {
  count: number;
  ms: number;
  maxMs: number;
}

interface CodecResult {
  frames: FrameFigures[];
  oneByte: Array<{ bodyBytes: number; inputBytes: number; ms: number; nsPerByte: number }>;
  linearity: Array<{ bodyBytes: number; inputGrowth: number; timePerByteGrowth: number }>;
  message: { gossipBodyBytes: number; encodePerSec: number; decodePerSec: number; idHashPerSec: number; signPerSec: number; verifyPerSec: number };
}
interface PairResult {
  pair: Array<{ bodyBytes: number; receiver: string; framesPerSec: number; MBps: number }>;
}
interface SeenResult {
  cap: number;
  ids: number;
  finalEntries: number;
  heapAtCapMb: number;
  heapAt2xCapMb: number;
  heapAtEndMb: number;
  bytesPerEntry: number;
  plateau: boolean;
  addsPerSecBelowCap: number;
  addsPerSecAtCap: number;
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; memoryGb: number; os: string; node: string; loadAverageAtStart: number[]; loadAverageAtEnd?: number[] };
  quick: boolean;
  params: { nodes: number; degree: number; messages: number; size: number; window: number; seed: number };
  commands: Array<{ key: string; command: string }>;
  durationS?: number;
  results: {
    codec?: CodecResult;
    pair?: PairResult;
    floodCorked?: ClusterResult;
    floodCorkedEncrypted?: ClusterResult;
    quietFloodEncrypted?: ClusterResult;
    rounds4FloodEncrypted?: ClusterResult;
    rounds10FloodEncrypted?: ClusterResult;
    floodUncorked?: ClusterResult;
    oursUnsigned?: ClusterResult;
    oursSigned?: ClusterResult;
    /** Signed with one verification worker (verifyWorkers: 1); the same workload as oursSigned. */
    oursSignedPool?: ClusterResult;
    oursUnsignedPlaintext?: ClusterResult;
    oursSignedPlaintext?: ClusterResult;
    libp2pUnsigned?: ClusterResult;
    libp2pSigned?: ClusterResult;
    seenCache?: SeenResult;
    quietFlood?: ClusterResult;
    quietUnsigned?: ClusterResult;
    quietSigned?: ClusterResult;
    quietSignedPool?: ClusterResult;
    rounds4Flood?: ClusterResult;
    rounds4Unsigned?: ClusterResult;
    rounds4Signed?: ClusterResult;
    rounds4SignedPool?: ClusterResult;
    rounds10Flood?: ClusterResult;
    rounds10Unsigned?: ClusterResult;
    rounds10Signed?: ClusterResult;
    rounds10SignedPool?: ClusterResult;
    /** The optional eager-tree push mode (push: 'tree'), the same workloads as their default rows. */
    oursUnsignedTree?: ClusterResult;
    oursSignedTree?: ClusterResult;
    quietUnsignedTree?: ClusterResult;
    rounds10UnsignedTree?: ClusterResult;
  };
  profiles?: Record<string, { file: string; totalMs: number; functions: Array<{ name: string; selfMs: number; selfPct: number }> }>;
}

interface TargetRow {
  target: string;
  figures: string;
  ratio: string;
  required: string;
  verdict: 'met' | 'not met' | 'n/a' | 'info';
}

const ok = (r: ClusterResult | undefined): r is ClusterResult => r !== undefined && r.ok === true;
const pct = (x: number) => `${fmt(100 * x, 1)}%`;
const times = (x: number) => `${fmt(x, 2)}x`;

/** Evaluate each target of issue 7 on the results of one run. */
export function targets(rep: BenchReport): TargetRow[] {
  const r = rep.results;
  const rows: TargetRow[] = [];
  const row = (target: string, figures: string, value: number | undefined, show: (v: number) => string, required: string, pass: (v: number) => boolean) =>
    rows.push({
      target,
      figures,
      ratio: value === undefined || !Number.isFinite(value) ? 'n/a' : show(value),
      required,
      verdict: value === undefined || !Number.isFinite(value) ? 'n/a' : pass(value) ? 'met' : 'not met',
    });
  const dps = (c: ClusterResult) => `${fmt(c.deliveriesPerSec)}/s`;

  const u = r.oursUnsigned;
  const f = r.floodCorked;
  const s = r.oursSigned;
  const ls = r.libp2pSigned;
  const ms = (x: number) => `${fmt(x, 1)} ms`;
  // 1. The consensus tail: ratios to the raw flood of the same shape, in the same run.
  const qf = r.quietFlood;
  const POOL = 'signed, 1 verify worker';
  for (const [mode, q] of [['unsigned', r.quietUnsigned], ['signed', r.quietSigned], [POOL, r.quietSignedPool]] as const) {
    if (mode === POOL && q === undefined) continue; // a run without the pool rows (older reports)
    row(`1a. quiet network, one in flight: p99 vs raw flood (${mode})`, ok(q) && ok(qf) ? `${ms(q.latencyMs.p99)} vs ${ms(qf.latencyMs.p99)}` : 'run failed or skipped',
      ok(q) && ok(qf) ? q.latencyMs.p99 / qf.latencyMs.p99 : undefined, times, '<= 3x', (v) => v <= 3);
    row(`1b. quiet network, one in flight: max (${mode})`, ok(q) ? `${ms(q.latencyMs.max)} (raw flood ${ok(qf) ? ms(qf.latencyMs.max) : 'n/a'})` : 'run failed or skipped',
      ok(q) ? q.latencyMs.max : undefined, ms, '<= 25 ms', (v) => v <= 25);
  }
  for (const n of [4, 10] as const) {
    const rf = r[`rounds${n}Flood`];
    for (const [mode, q] of [['unsigned', r[`rounds${n}Unsigned`]], ['signed', r[`rounds${n}Signed`]], [POOL, r[`rounds${n}SignedPool`]]] as const) {
      if (mode === POOL && q === undefined) continue;
      row(`1c. PBFT rounds, ${n} nodes all publishing: p99 vs raw flood (${mode})`, ok(q) && ok(rf) ? `${ms(q.latencyMs.p99)} vs ${ms(rf.latencyMs.p99)}` : 'run failed or skipped',
        ok(q) && ok(rf) ? q.latencyMs.p99 / rf.latencyMs.p99 : undefined, times, '<= 2x', (v) => v <= 2);
    }
  }
  row('2. unsigned deliveries/s vs raw flood (CPU per delivery: ours vs flood)', ok(u) && ok(f) ? `${dps(u)} vs ${dps(f)} (${fmt(u.cpuUsPerDelivery)} us vs ${fmt(f.cpuUsPerDelivery)} us)` : 'run failed or skipped',
    ok(u) && ok(f) ? u.deliveriesPerSec / f.deliveriesPerSec : undefined, pct, '>= 50% (stretch 70%)', (v) => v >= 0.5);
  row('3a. signed deliveries/s vs gossipsub signed', ok(s) && ok(ls) ? `${dps(s)} vs ${dps(ls)}` : 'run failed or skipped',
    ok(s) && ok(ls) ? s.deliveriesPerSec / ls.deliveriesPerSec : undefined, times, '>= 8x', (v) => v >= 8);
  const sp = r.oursSignedPool;
  if (sp !== undefined) {
    const main = (c: ClusterResult) => (c.mainThreadCpuUsPerDelivery ? `, event loop ${fmt(c.mainThreadCpuUsPerDelivery)} us` : '');
    const cpu = ok(sp) && ok(s) ? ` (CPU per delivery ${fmt(sp.cpuUsPerDelivery)} us${main(sp)}, vs ${fmt(s.cpuUsPerDelivery)} us${main(s)} without)` : '';
    row(`3a. signed deliveries/s vs gossipsub signed (${POOL})`, ok(sp) && ok(ls) ? `${dps(sp)} vs ${dps(ls)}${cpu}` : 'run failed or skipped',
      ok(sp) && ok(ls) ? sp.deliveriesPerSec / ls.deliveriesPerSec : undefined, times, '>= 8x', (v) => v >= 8);
  }
  for (const [mode, ours, theirs] of [['unsigned', u, r.libp2pUnsigned], ['signed', s, ls], [POOL, sp, ls]] as const) {
    if (mode === POOL && ours === undefined) continue;
    row(`3b. p99 latency under load vs gossipsub (${mode})`, ok(ours) && ok(theirs) ? `${fmt(ours.latencyMs.p99)} ms vs ${fmt(theirs.latencyMs.p99)} ms` : 'run failed or skipped',
      ok(ours) && ok(theirs) ? ours.latencyMs.p99 / theirs.latencyMs.p99 : undefined, pct, '<= 10%', (v) => v <= 0.1);
  }
  for (const [mode, ours] of [['unsigned', u], ['signed', s]] as const) {
    row(`4a. copies sent per delivery (${mode})`, ok(ours) ? `${fmt(ours.copiesPerDelivery ?? NaN, 2)}` : 'run failed or skipped',
      ok(ours) ? ours.copiesPerDelivery ?? undefined : undefined, (v) => fmt(v, 2), '<= 3.0', (v) => v <= 3.0);
  }
  for (const [mode, ours, theirs] of [['unsigned', u, r.libp2pUnsigned], ['signed', s, ls]] as const) {
    row(`4b. bytes on the wire per delivery vs gossipsub (${mode})`, ok(ours) && ok(theirs) ? `${fmt(ours.bytesPerDelivery)} B vs ${fmt(theirs.bytesPerDelivery)} B` : 'run failed or skipped',
      ok(ours) && ok(theirs) ? ours.bytesPerDelivery / theirs.bytesPerDelivery : undefined, pct, '<= 50%', (v) => v <= 0.5);
  }
  for (const [mode, ours, theirs] of [['unsigned', u, r.libp2pUnsigned], ['signed', s, ls]] as const) {
    row(`5. peak RSS vs gossipsub (${mode})`, ok(ours) && ok(theirs) ? `${fmt(ours.peakRssMb)} MB vs ${fmt(theirs.peakRssMb)} MB` : 'run failed or skipped',
      ok(ours) && ok(theirs) ? ours.peakRssMb / theirs.peakRssMb : undefined, pct, '<= 33.3%', (v) => v <= 1 / 3);
  }
  // The eager-tree mode is not the default: its figures are shown beside the targets, not judged.
  const info = (target: string, figures: string, ratio: string) => rows.push({ target, figures, ratio, required: "info: push: 'tree', not the default", verdict: 'info' });
  for (const [mode, t, theirs] of [['unsigned', r.oursUnsignedTree, r.libp2pUnsigned], ['signed', r.oursSignedTree, ls]] as const) {
    if (t === undefined) continue;
    info(`4b (tree). bytes on the wire per delivery vs gossipsub (${mode}, eager tree)`, ok(t) && ok(theirs) ? `${fmt(t.bytesPerDelivery)} B vs ${fmt(theirs.bytesPerDelivery)} B; ${fmt(t.copiesPerDelivery ?? NaN, 2)} copies per delivery; ${dps(t)}, ${fmt(t.cpuUsPerDelivery)} us CPU per delivery` : 'run failed or skipped',
      ok(t) && ok(theirs) ? pct(t.bytesPerDelivery / theirs.bytesPerDelivery) : 'n/a');
  }
  const qt = r.quietUnsignedTree;
  if (qt !== undefined) info('1a (tree). quiet network, one in flight: p99 vs raw flood (unsigned, eager tree)', ok(qt) && ok(qf) ? `${ms(qt.latencyMs.p99)} vs ${ms(qf.latencyMs.p99)}; max ${ms(qt.latencyMs.max)}` : 'run failed or skipped', ok(qt) && ok(qf) ? times(qt.latencyMs.p99 / qf.latencyMs.p99) : 'n/a');
  const rt = r.rounds10UnsignedTree;
  const rf10 = r.rounds10Flood;
  if (rt !== undefined) info('1c (tree). PBFT rounds, 10 nodes all publishing: p99 vs raw flood (unsigned, eager tree)', ok(rt) && ok(rf10) ? `${ms(rt.latencyMs.p99)} vs ${ms(rf10.latencyMs.p99)}` : 'run failed or skipped', ok(rt) && ok(rf10) ? times(rt.latencyMs.p99 / rf10.latencyMs.p99) : 'n/a');
  // Against the floor of an encrypted protocol (the flood sealing each tick's frames as one of our records): info, the targets are set against the plaintext flood.
  const encInfo = (target: string, figures: string, ratio: string) => rows.push({ target, figures, ratio, required: 'info: the raw flood encrypted as our links are', verdict: 'info' });
  const qfe = r.quietFloodEncrypted;
  for (const [mode, q] of [['unsigned', r.quietUnsigned], ['signed', r.quietSigned]] as const) {
    if (qfe !== undefined) encInfo(`1a (encrypted floor). quiet network, one in flight: p99 vs encrypted raw flood (${mode})`, ok(q) && ok(qfe) ? `${ms(q.latencyMs.p99)} vs ${ms(qfe.latencyMs.p99)}` : 'run failed or skipped', ok(q) && ok(qfe) ? times(q.latencyMs.p99 / qfe.latencyMs.p99) : 'n/a');
  }
  for (const n of [4, 10] as const) {
    const rfe = r[`rounds${n}FloodEncrypted`];
    const q = r[`rounds${n}Unsigned`];
    if (rfe !== undefined) encInfo(`1c (encrypted floor). PBFT rounds, ${n} nodes all publishing: p99 vs encrypted raw flood (unsigned)`, ok(q) && ok(rfe) ? `${ms(q.latencyMs.p99)} vs ${ms(rfe.latencyMs.p99)}` : 'run failed or skipped', ok(q) && ok(rfe) ? times(q.latencyMs.p99 / rfe.latencyMs.p99) : 'n/a');
  }
  const fe = r.floodCorkedEncrypted;
  if (fe !== undefined) encInfo('2 (encrypted floor). unsigned deliveries/s vs encrypted raw flood (CPU per delivery: ours vs flood)', ok(u) && ok(fe) ? `${dps(u)} vs ${dps(fe)} (${fmt(u.cpuUsPerDelivery)} us vs ${fmt(fe.cpuUsPerDelivery)} us)` : 'run failed or skipped', ok(u) && ok(fe) ? pct(u.deliveriesPerSec / fe.deliveriesPerSec) : 'n/a');
  const dec = r.codec?.frames.find((x) => x.bodyBytes === 65536);
  const pipe = r.pair?.pair.find((x) => x.bodyBytes === 65536 && x.receiver === 'minimal');
  row('I7-6a. FrameDecoder MB/s at 64 KiB (64 KiB chunks) vs raw pipe', dec && pipe ? `${fmt(dec.decode64kMBps)} MB/s vs ${fmt(pipe.MBps)} MB/s` : 'skipped',
    dec && pipe ? dec.decode64kMBps / pipe.MBps : undefined, pct, '>= 80%', (v) => v >= 0.8);
  const piped = r.pair?.pair.find((x) => x.bodyBytes === 65536 && x.receiver === 'FrameDecoder');
  if (piped && pipe) {
    rows.push({
      target: 'I7-6a (info). the same socket pair with FrameDecoder as the receiver vs the minimal receiver (64 KiB)',
      figures: `${fmt(piped.MBps)} MB/s vs ${fmt(pipe.MBps)} MB/s`,
      ratio: pct(piped.MBps / pipe.MBps),
      required: 'info: a 64 KiB body always spans two 64 KiB reads, so it costs one copy the minimal receiver skips',
      verdict: 'info',
    });
  }
  const lin = r.codec?.linearity ?? [];
  const worst = lin.length ? Math.max(...lin.map((l) => l.timePerByteGrowth)) : undefined;
  row('I7-6b. 1-byte chunks: time per byte as the input grows 8x', lin.map((l) => `${fmt(l.bodyBytes)} B bodies: x${fmt(l.timePerByteGrowth, 2)} over x${fmt(l.inputGrowth, 0)} input`).join('; ') || 'skipped',
    worst, (v) => `x${fmt(v, 2)}`, '<= x1.5 (linear)', (v) => v <= 1.5);
  // Issue 11: what encryption costs, from one run (encrypted is the default, so targets above use it).
  for (const [mode, enc, plain, need] of [['signed', s, r.oursSignedPlaintext, 0.9], ['unsigned', u, r.oursUnsignedPlaintext, 0.8]] as const) {
    row(`E. encrypted vs plaintext deliveries/s (${mode})`, ok(enc) && ok(plain) ? `${dps(enc)} vs ${dps(plain)}` : 'run failed or skipped',
      ok(enc) && ok(plain) ? enc.deliveriesPerSec / plain.deliveriesPerSec : undefined, pct, `>= ${pct(need)}`, (v) => v >= need);
  }
  if (ok(s) && s.handshakesPerCoreSec !== undefined) {
    rows.push({
      target: 'E (info). Noise handshakes per second per core (both ends, identity signature and verification included)',
      figures: `${fmt(s.handshakes ?? NaN)} handshakes, ${fmt(s.handshakeCpuUsEach ?? NaN)} us CPU each`,
      ratio: `${fmt(s.handshakesPerCoreSec)}/s`,
      required: 'info',
      verdict: 'info',
    });
  }
  const clusterRuns = [r.floodCorked, r.floodUncorked, fe, qfe, r.rounds4FloodEncrypted, r.rounds10FloodEncrypted, u, s, r.oursUnsignedPlaintext, r.oursSignedPlaintext, r.libp2pUnsigned, ls,
    qf, r.quietUnsigned, r.quietSigned, r.rounds4Flood, r.rounds4Unsigned, r.rounds4Signed, r.rounds10Flood, r.rounds10Unsigned, r.rounds10Signed,
    sp, r.quietSignedPool, r.rounds4SignedPool, r.rounds10SignedPool,
    r.oursUnsignedTree, r.oursSignedTree, r.quietUnsignedTree, r.rounds10UnsignedTree].filter((x) => x !== undefined);
  const allDelivered = clusterRuns.length > 0 && clusterRuns.every((x) => x.ok);
  rows.push({
    target: '7. every run delivers 100%',
    figures: clusterRuns.map((x) => `${x.impl ?? '?'} ${x.mode ?? ''}: ${x.deliveredFraction === undefined ? x.error : pct(x.deliveredFraction)}`).join('; '),
    ratio: allDelivered ? '100%' : 'no',
    required: '100% in every run',
    verdict: clusterRuns.length === 0 ? 'n/a' : allDelivered ? 'met' : 'not met',
  });
  return rows;
}

/** How the latency runs warmed up (bench/cluster.ts --warmup), from their results. */
function warmupNote(quiet: ClusterResult | undefined, rounds: ClusterResult | undefined): string {
  const q = quiet?.warmup?.messages ?? 0;
  const n = rounds?.warmup?.messages ?? 0;
  if (q === 0 && n === 0) return '';
  return ` Every run, ours and the flood's, first delivered ${q} messages (quiet) or ${rounds?.nodes ? n / rounds.nodes : 0} rounds that are not measured, so both measure warm code.`;
}

function clusterTable(runs: Array<[string, ClusterResult | undefined]>): string {
  const lines = [
    '| run | delivered | deliveries/s | p50 ms | p90 ms | p99 ms | max ms | copies/delivery | wire bytes/delivery | CPU us/delivery | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, c] of runs) {
    if (!c) continue;
    if (!c.ok) {
      lines.push(`| ${name} | **FAILED** (${c.deliveredFraction === undefined ? c.error : pct(c.deliveredFraction)}): not a figure | | | | | | | | | |`);
      continue;
    }
    const l = c.latencyMs;
    lines.push(`| ${name} | ${pct(c.deliveredFraction)} | ${fmt(c.deliveriesPerSec)} | ${fmt(l.p50)} | ${fmt(l.p90)} | ${fmt(l.p99)} | ${fmt(l.max)} | ${c.copiesPerDelivery === null ? 'n/a' : fmt(c.copiesPerDelivery, 2)} | ${fmt(c.bytesPerDelivery)} | ${fmt(c.cpuUsPerDelivery)} | ${fmt(c.peakRssMb)} |`);
  }
  return lines.join('\n');
}

/** The console summary and the markdown section for docs/PERFORMANCE.md. */
export function renderMarkdown(rep: BenchReport): { summary: string; section: string } {
  const r = rep.results;
  const p = rep.params;
  const rows = targets(rep);
  const out: string[] = [];
  out.push(`## Results of the last run${rep.quick ? ' (--quick)' : ''}`, '');
  out.push(`- Date: ${rep.date}; duration ${rep.durationS ?? '?'} s`);
  out.push(`- Machine: ${rep.machine.cpu}, ${rep.machine.memoryGb} GB, ${rep.machine.os}, Node ${rep.machine.node}; load average ${rep.machine.loadAverageAtStart.join(' / ')} at start, ${(rep.machine.loadAverageAtEnd ?? []).join(' / ')} at end (shared machine: absolute figures are noisy, ratios are from one run)`);
  out.push(`- Cluster workload: ${p.nodes} nodes, each dialing ${p.degree} random others (seed ${p.seed}; mean degree ${fmt(r.oursUnsigned?.meanDegree ?? r.floodCorked?.meanDegree ?? NaN, 1)}), ${fmt(p.messages)} messages x ${p.size} B published round-robin, at most ${p.window} in flight`);
  const dev = r.libp2pSigned?.deviations ?? r.libp2pUnsigned?.deviations;
  if (dev) out.push(`- js-libp2p settings that differ from its defaults: ${dev.join('; ')}`);
  out.push('', '### Targets (issue 14; I7: issue 7; E: issue 11)', '', '| target | figures (ours vs reference) | ratio | required | verdict |', '|---|---|---|---|---|');
  for (const t of rows) out.push(`| ${t.target} | ${t.figures} | ${t.ratio} | ${t.required} | **${t.verdict}** |`);
  out.push('', '### Cluster', '', clusterTable([
    ['raw flood, corked (floor)', r.floodCorked],
    ['raw flood, corked, encrypted (our record layer)', r.floodCorkedEncrypted],
    ['raw flood, one write per frame', r.floodUncorked],
    ['aethel-p2p unsigned (encrypted)', r.oursUnsigned],
    ['aethel-p2p signed (encrypted)', r.oursSigned],
    ['aethel-p2p signed (encrypted), 1 verify worker', r.oursSignedPool],
    ['aethel-p2p unsigned (encrypted), eager tree', r.oursUnsignedTree],
    ['aethel-p2p signed (encrypted), eager tree', r.oursSignedTree],
    ['aethel-p2p unsigned, plaintext', r.oursUnsignedPlaintext],
    ['aethel-p2p signed, plaintext', r.oursSignedPlaintext],
    ['js-libp2p gossipsub unsigned', r.libp2pUnsigned],
    ['js-libp2p gossipsub signed', r.libp2pSigned],
  ]));
  if (r.quietFlood || r.rounds4Flood || r.rounds10Flood) {
    out.push('', '### The consensus tail (issue 14)', '',
      `Quiet network: the cluster topology above, ${fmt(r.quietFlood?.deliveries !== undefined ? r.quietFlood.expected / (p.nodes - 1) : NaN)} messages one at a time. PBFT rounds: N nodes each dialing 3, every node publishing one message at once, the next round when every node holds every message of the last (encrypted, the default).${warmupNote(r.quietFlood, r.rounds10Flood)}`, '',
      clusterTable([
        ['quiet: raw flood (floor)', r.quietFlood],
        ['quiet: raw flood, encrypted', r.quietFloodEncrypted],
        ['quiet: aethel-p2p unsigned', r.quietUnsigned],
        ['quiet: aethel-p2p signed', r.quietSigned],
        ['quiet: aethel-p2p signed, 1 verify worker', r.quietSignedPool],
        ['quiet: aethel-p2p unsigned, eager tree', r.quietUnsignedTree],
        ['rounds, 4 nodes: raw flood (floor)', r.rounds4Flood],
        ['rounds, 4 nodes: raw flood, encrypted', r.rounds4FloodEncrypted],
        ['rounds, 4 nodes: aethel-p2p unsigned', r.rounds4Unsigned],
        ['rounds, 4 nodes: aethel-p2p signed', r.rounds4Signed],
        ['rounds, 4 nodes: aethel-p2p signed, 1 verify worker', r.rounds4SignedPool],
        ['rounds, 10 nodes: raw flood (floor)', r.rounds10Flood],
        ['rounds, 10 nodes: raw flood, encrypted', r.rounds10FloodEncrypted],
        ['rounds, 10 nodes: aethel-p2p unsigned', r.rounds10Unsigned],
        ['rounds, 10 nodes: aethel-p2p signed', r.rounds10Signed],
        ['rounds, 10 nodes: aethel-p2p signed, 1 verify worker', r.rounds10SignedPool],
        ['rounds, 10 nodes: aethel-p2p unsigned, eager tree', r.rounds10UnsignedTree],
      ]));
  }
  const gcRows: Array<[string, ClusterResult | undefined]> = [
    ['quiet: raw flood', r.quietFlood],
    ['quiet: raw flood, encrypted', r.quietFloodEncrypted],
    ['quiet: aethel-p2p unsigned', r.quietUnsigned],
    ['quiet: aethel-p2p signed', r.quietSigned],
    ['rounds, 10 nodes: raw flood', r.rounds10Flood],
    ['rounds, 10 nodes: aethel-p2p unsigned', r.rounds10Unsigned],
  ];
  if (gcRows.some(([, c]) => c?.gc)) {
    out.push('', 'Garbage collection while the measured messages ran (every node of a run shares one process, so a pause stops them all). "Messages hit": broadcasts (publish to last delivery) that a pause overlapped; the last columns are the latencies of the others.', '',
      '| run | scavenges | mean ms | max ms | other pauses (max ms) | messages hit | p99 ms, not hit | max ms, not hit |', '|---|---|---|---|---|---|---|---|');
    for (const [name, c] of gcRows) {
      const g = c?.gc;
      if (!g) continue;
      out.push(`| ${name} | ${fmt(g.scavenge.count)} | ${fmt(g.scavenge.count > 0 ? g.scavenge.ms / g.scavenge.count : NaN, 1)} | ${fmt(g.scavenge.maxMs, 1)} | ${fmt(g.other.count)} (${fmt(g.other.maxMs, 1)}) | ${fmt(g.messagesHit)} | ${fmt(g.latencyMsClear?.p99 ?? NaN, 1)} | ${fmt(g.latencyMsClear?.max ?? NaN, 1)} |`);
    }
  }
  for (const c of [r.libp2pUnsigned, r.libp2pSigned]) {
    if (c?.publishRetries) out.push('', `js-libp2p ${c.mode}: ${fmt(c.publishRetries)} publishes were refused (NoPeersSubscribedToTopic) and retried after 100 ms; their latency counts from the first attempt.`);
  }
  for (const [name, c] of [['load', r.oursSignedPool], ['quiet', r.quietSignedPool], ['rounds, 4 nodes', r.rounds4SignedPool], ['rounds, 10 nodes', r.rounds10SignedPool]] as const) {
    const v = c?.verifyPool;
    if (!v) continue;
    const main = c?.mainThreadCpuUsPerDelivery ? `; event loop CPU ${fmt(c.mainThreadCpuUsPerDelivery)} us per delivery of ${fmt(c.cpuUsPerDelivery)} us in all` : '';
    out.push('', `Verify worker (${name}): ${fmt(v.requests)} signatures verified by the worker in ${fmt(v.batches)} batches (${fmt(v.requestsPerBatch, 1)} each), ${fmt(v.refused)} on the event loop (worker queue full)${main}.`);
  }
  if (r.floodCorked?.forwardTo) out.push('', `Raw flood: each node forwards each new frame to ${r.floodCorked.forwardTo} except the sender (ours pushes to fanout 3 minus seen-by).`);
  if (r.codec) {
    out.push('', '### Codec', '', '| body | encodeFrame frames/s | encodeFrame MB/s | header only frames/s | decode (64 KiB chunks) frames/s | decode MB/s |', '|---|---|---|---|---|---|');
    for (const f of r.codec.frames) out.push(`| ${fmt(f.bodyBytes)} B | ${fmt(f.encodeFramesPerSec)} | ${fmt(f.encodeMBps)} | ${fmt(f.headerOnlyFramesPerSec)} | ${fmt(f.decode64kFramesPerSec)} | ${fmt(f.decode64kMBps)} |`);
    out.push('', 'Decoding from 1-byte chunks (best of 5 interleaved rounds, each chunk a fresh 1-byte view as a socket read would be):', '', '| body | input bytes | ms | ns per byte |', '|---|---|---|---|');
    for (const o of r.codec.oneByte) out.push(`| ${fmt(o.bodyBytes)} B | ${fmt(o.inputBytes)} | ${fmt(o.ms, 1)} | ${fmt(o.nsPerByte)} |`);
    const m = r.codec.message;
    out.push('', `GOSSIP message (${m.gossipBodyBytes} B body, 256 B data, 4 seen-by entries, signed), per second: encode ${fmt(m.encodePerSec)}, decode+validate ${fmt(m.decodePerSec)}, message-id hash ${fmt(m.idHashPerSec)}, Ed25519 sign ${fmt(m.signPerSec)}, verify ${fmt(m.verifyPerSec)}.`);
  }
  if (r.pair) {
    out.push('', '### Raw socket pair (one process, prebuilt ~256 KiB write batches)', '', '| body | receiver | frames/s | MB/s (bodies) |', '|---|---|---|---|');
    for (const x of r.pair.pair) out.push(`| ${fmt(x.bodyBytes)} B | ${x.receiver} | ${fmt(x.framesPerSec)} | ${fmt(x.MBps)} |`);
  }
  if (r.seenCache) {
    const sc = r.seenCache;
    out.push('', '### Seen-cache under a flood', '',
      `${fmt(sc.ids)} unique ids into a cache capped at ${fmt(sc.cap)} (TTL never reached): ${fmt(sc.finalEntries)} entries at the end; heap +${fmt(sc.heapAtCapMb, 1)} MB when the cap is first reached, +${fmt(sc.heapAt2xCapMb, 1)} MB at 2x cap, +${fmt(sc.heapAtEndMb, 1)} MB at the end (${fmt(sc.bytesPerEntry)} B per entry): ${sc.plateau ? '**plateaus at the cap**' : '**does not plateau**'}. add() throughput: ${fmt(sc.addsPerSecBelowCap)}/s below the cap, ${fmt(sc.addsPerSecAtCap)}/s at the cap (slowest sample).`);
  }
  if (rep.profiles) {
    for (const [mode, prof] of Object.entries(rep.profiles)) {
      out.push('', `### CPU profile, aethel-p2p ${mode} (${prof.file}, ${fmt(prof.totalMs)} ms sampled)`, '', '| self % | self ms | function |', '|---|---|---|');
      for (const h of prof.functions) out.push(`| ${fmt(h.selfPct, 1)} | ${fmt(h.selfMs)} | \`${h.name}\` |`);
    }
  }
  out.push('', '### Commands', '', 'All of the above: `npm run bench` (`npm run bench -- --quick` for a short run). Each figure comes from one child process; ours run compiled, from `npx tsc -p tsconfig.bench.json`:', '');
  for (const c of rep.commands) out.push(`- ${c.key}: \`${c.command.length > 300 ? c.command.replace(/--edges '[^']*'/, "--edges '<topology(nodes, degree, seed) as JSON>'") : c.command}\``);
  const section = out.join('\n');
  const summary = ['Targets:', ...rows.map((t) => `  ${t.verdict.padEnd(7)} ${t.target}: ${t.figures} -> ${t.ratio} (${t.required})`)];
  for (const [mode, prof] of Object.entries(rep.profiles ?? {})) {
    summary.push(`CPU profile, ${mode} (${prof.file}):`, ...prof.functions.map((h) => `  ${fmt(h.selfPct, 1).padStart(5)}%  ${h.name}`));
  }
  return { summary: summary.join('\n'), section };
}
