/**
 * Small helpers shared by the benchmarks: command-line flags, timing loops, percentiles,
 * the seeded topology every cluster benchmark uses, and the child-process result protocol.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import { seededRandom } from '../lib/random.js';

/** Parse `--name value` / `--name=value` / `--flag` into a map. */
export function parseFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) flags.set(a.slice(2), argv[++i]!);
    else flags.set(a.slice(2), 'true');
  }
  return flags;
}

/** An integer flag with a default; throws naming the flag when it is not a positive integer. */
export function intFlag(flags: Map<string, string>, name: string, dflt: number): number {
  const v = flags.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * The cluster workload's flags, with the defaults of issue 7 (N=20, D=4, M=5000, S=256, W=200).
 * `--rounds R` instead publishes in rounds, as a PBFT phase does: every node publishes one
 * message at once, and the next round starts when every node holds every message of this one
 * (M = R x N; the window is not used).
 */
export function workloadFlags(flags: Map<string, string>): { N: number; D: number; M: number; S: number; W: number; seed: number; roundSize: number } {
  const N = intFlag(flags, 'nodes', 20);
  const rounds = intFlag(flags, 'rounds', 0);
  return {
    N,
    D: intFlag(flags, 'degree', 4),
    M: rounds > 0 ? rounds * N : intFlag(flags, 'messages', 5000),
    S: Math.max(8, intFlag(flags, 'size', 256)),
    W: intFlag(flags, 'window', 200),
    seed: intFlag(flags, 'seed', 1),
    roundSize: rounds > 0 ? N : 0,
  };
}

/**
 * Run `fn` (which does `opsPerCall` operations) repeatedly for at least `minMs` and return
 * operations per second. One untimed warm-up call first so the JIT has compiled it.
 */
export function opsPerSecond(fn: () => void, opsPerCall: number, minMs: number): number {
  fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < minMs) {
    fn();
    calls++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (calls * opsPerCall) / (elapsedMs / 1000);
}

/** Milliseconds `fn` takes, best of `repeats` runs (the least disturbed by other load). */
export function bestMs(fn: () => void, repeats: number): number {
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return best;
}

/** Percentiles of `values` (sorted in place), nearest-rank. */
export function percentiles(values: Float64Array): { p50: number; p90: number; p99: number; max: number } {
  values.sort();
  const at = (q: number) => (values.length === 0 ? NaN : values[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)]!);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: values.length === 0 ? NaN : values[values.length - 1]! };
}

/**
 * The cluster topology: each of n nodes dials d distinct random others (seeded). Returns the
 * dials as [from, to] pairs, a pair dialed from both ends kept once, so every benchmark
 * (ours, the raw flood, libp2p) links exactly the same pairs.
 */
export function topology(n: number, d: number, seed: number): Array<[number, number]> {
  const random = seededRandom(seed);
  const seen = new Set<string>();
  const edges: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const picked = new Set<number>();
    while (picked.size < Math.min(d, n - 1)) {
      const j = Math.floor(random() * n);
      if (j !== i) picked.add(j);
    }
    for (const j of picked) {
      const key = i < j ? `${i}-${j}` : `${j}-${i}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push([i, j]);
    }
  }
  return edges;
}

/** Neighbour lists of a topology. */
export function neighbours(n: number, edges: Array<[number, number]>): number[][] {
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) {
    adj[a]!.push(b);
    adj[b]!.push(a);
  }
  return adj;
}

/** Prefix of the one stdout line a benchmark child uses for its JSON result. */
export const RESULT_PREFIX = 'BENCH-RESULT ';

/** Print the child's result for bench/run.ts to pick up. */
export function emitResult(result: unknown): void {
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + '\n');
}

/** Progress and notes go to stderr, so stdout carries only the result line. */
export function note(msg: string): void {
  process.stderr.write(msg + '\n');
}

/** Peak resident set size of this process so far, MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : String(n);

/**
 * Counts bytes written by every TCP socket this process opens from now on (client and server
 * side), through node's diagnostics channels, so every cluster benchmark measures "bytes on
 * the wire" the same way: TCP payload bytes, frame headers and handshakes included.
 */
export function trackSocketBytes(): () => number {
  const sockets: Socket[] = [];
  const add = (m: unknown) => sockets.push((m as { socket: Socket }).socket);
  diagnostics.subscribe('net.client.socket', add);
  diagnostics.subscribe('net.server.socket', add);
  return () => {
    let total = 0;
    for (const s of sockets) total += s.bytesWritten;
    return total;
  };
}

/**
 * Set in the message index a warm-up message carries (`--warmup K`): its deliveries go to the
 * warm-up workload, never to the measured one, even when a copy arrives after the switch.
 */
export const WARMUP_BIT = 0x8000_0000;

/**
 * Messages to run before the measured ones (`--warmup K`: K messages, or K rounds with
 * `--rounds`), delivered everywhere but not measured, so that a freshly started process's
 * compiler and every link's round trip are warm. 0 (the default): none.
 */
export function warmupMessages(flags: Map<string, string>, N: number, roundSize: number): number {
  const k = intFlag(flags, 'warmup', 0);
  return roundSize > 0 ? k * N : k;
}

/** Hand a delivery of wire index `v` to the warm-up workload (WARMUP_BIT set) or the measured one; false for a duplicate. */
export function deliverIndex(work: Workload, warm: Workload | undefined, node: number, v: number): boolean {
  return v >= WARMUP_BIT ? warm?.deliver(node, v - WARMUP_BIT) === true : work.deliver(node, v);
}

/** result.warmup: how many warm-up messages ran, what share was delivered, and their latencies. */
export function warmupSummary(messages: number, warm: Workload | undefined): { messages: number; deliveredFraction: number | null; latencyMs: ReturnType<Workload['latencyMs']> | null } {
  return { messages, deliveredFraction: warm ? warm.deliveries / warm.expected : null, latencyMs: warm && warm.deliveries > 0 ? warm.latencyMs() : null };
}

/**
 * The workload every cluster benchmark drives: M messages published round-robin with at most
 * W in flight, a message leaving the window once all N - 1 other nodes delivered it. Keeps
 * the per-node seen flags, latencies and counts; `publishOne(idx)` sends message idx.
 */
export class Workload {
  deliveries = 0;
  duplicateDeliveries = 0;
  lastDeliveryAt = 0;
  private readonly seen: Uint8Array[];
  private readonly remaining: Int32Array;
  private readonly publishedAt: Float64Array;
  /** When message idx reached its last node (0 until then). */
  private readonly completedAt: Float64Array;
  private readonly latencies: Float64Array;
  /** The message each latency belongs to. */
  private readonly latencyOf: Int32Array;
  private published = 0;
  private completed = 0;
  private done!: () => void;
  private readonly finished = new Promise<void>((r) => (this.done = r));

  /**
   * roundSize > 0: publish in rounds of that many messages (message i from node i mod nodes),
   * the next round once every message of this one is complete; 0: a sliding window.
   */
  constructor(readonly nodes: number, readonly messages: number, private readonly publishOne: (idx: number) => void, private readonly roundSize = 0) {
    this.seen = Array.from({ length: nodes }, () => new Uint8Array(messages));
    this.remaining = new Int32Array(messages).fill(nodes - 1);
    this.publishedAt = new Float64Array(messages);
    this.completedAt = new Float64Array(messages);
    this.latencies = new Float64Array(messages * (nodes - 1));
    this.latencyOf = new Int32Array(messages * (nodes - 1));
  }

  /** Deliveries a complete run makes. */
  get expected(): number {
    return this.messages * (this.nodes - 1);
  }

  /** Every message delivered to every other node. */
  get complete(): boolean {
    return this.deliveries === this.expected;
  }

  /** Publish the first `window` messages (or the first round); resolves when all are delivered, or after timeoutMs. */
  async run(window: number, timeoutMs: number): Promise<void> {
    this.publishUpTo(this.roundSize > 0 ? this.roundSize : window);
    const timer = setTimeout(this.done, timeoutMs);
    await this.finished;
    clearTimeout(timer);
  }

  /** End the run now (a failure the caller reports). */
  abort(): void {
    this.done();
  }

  /** Mark message idx as held by its origin (which does not deliver it to itself). */
  markOrigin(node: number, idx: number): void {
    this.seen[node]![idx] = 1;
  }

  /** Node `node` got message `idx`: false for a duplicate. The next message goes out when one completes. */
  deliver(node: number, idx: number): boolean {
    const s = this.seen[node]!;
    if (s[idx]) {
      this.duplicateDeliveries++;
      return false;
    }
    s[idx] = 1;
    const now = performance.now();
    this.latencyOf[this.deliveries] = idx;
    this.latencies[this.deliveries++] = now - this.publishedAt[idx]!;
    this.lastDeliveryAt = now;
    if (--this.remaining[idx]! === 0) {
      this.completedAt[idx] = now;
      this.completed++;
      if (this.completed === this.messages) this.done();
      else if (this.roundSize === 0) this.publishUpTo(1);
      else if (this.completed === this.published) this.publishUpTo(this.roundSize);
    }
    return true;
  }

  latencyMs(): { p50: number; p90: number; p99: number; max: number } {
    return percentiles(this.latencies.slice(0, this.deliveries));
  }

  /**
   * The latencies of the messages whose broadcast (publish to last delivery) overlapped none
   * of `pauses`, and how many messages did overlap one (a message not completed counts as hit).
   */
  latencyMsClearOf(pauses: readonly GcPause[]): { messagesHit: number; latencyMs: ReturnType<Workload['latencyMs']> } {
    const hit = new Uint8Array(this.messages);
    let messagesHit = 0;
    for (let m = 0; m < this.published; m++) {
      const from = this.publishedAt[m]!;
      const to = this.completedAt[m]! || Infinity;
      if (pauses.some((p) => p.start < to && p.end > from)) {
        hit[m] = 1;
        messagesHit++;
      }
    }
    const kept: number[] = [];
    for (let i = 0; i < this.deliveries; i++) if (!hit[this.latencyOf[i]!]) kept.push(this.latencies[i]!);
    return { messagesHit, latencyMs: percentiles(Float64Array.from(kept)) };
  }

  private publishUpTo(n: number): void {
    for (let i = 0; i < n && this.published < this.messages; i++) {
      const idx = this.published++;
      this.publishedAt[idx] = performance.now();
      this.publishOne(idx);
    }
  }
}

/** One garbage-collection pause, performance.now() milliseconds. */
export interface GcPause {
  start: number;
  end: number;
}

/** Pauses of one kind of collection: how many, their total and longest, ms. */
export interface GcKind {
  count: number;
  ms: number;
  maxMs: number;
}

/**
 * Watch the garbage collector from now on (a PerformanceObserver of 'gc' entries). stop()
 * returns the pauses seen since, split into scavenges (young generation) and the rest (full
 * mark-compact, incremental marking steps, weak callbacks). In a process running every node
 * of a cluster, a pause stops every node at once: what one-in-flight latencies are made of
 * beyond the work itself.
 */
export function trackGc(): () => { scavenge: GcKind; other: GcKind; pauses: GcPause[] } {
  const pauses: GcPause[] = [];
  const scavenge: GcKind = { count: 0, ms: 0, maxMs: 0 };
  const other: GcKind = { count: 0, ms: 0, maxMs: 0 };
  const take = (entries: readonly PerformanceEntry[]) => {
    for (const e of entries) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      const k = kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? scavenge : other;
      k.count++;
      k.ms += e.duration;
      k.maxMs = Math.max(k.maxMs, e.duration);
      pauses.push({ start: e.startTime, end: e.startTime + e.duration });
    }
  };
  const observer = new PerformanceObserver((list) => take(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    take(observer.takeRecords());
    observer.disconnect();
    return { scavenge, other, pauses };
  };
}

/**
 * result.gc: the collections during a measured run and, for runs with one message (or one
 * round) in flight, the latencies of the messages no pause overlapped: how much of the tail
 * is the collector. Under load every message overlaps one, so those figures are null.
 */
export function gcSummary(work: Workload, stopGc: ReturnType<typeof trackGc>): { scavenge: GcKind; other: GcKind; messagesHit: number; latencyMsClear: ReturnType<Workload['latencyMs']> | null } {
  const { scavenge, other, pauses } = stopGc();
  const round = (k: GcKind): GcKind => ({ count: k.count, ms: Math.round(k.ms * 10) / 10, maxMs: Math.round(k.maxMs * 10) / 10 });
  const clear = work.latencyMsClearOf(pauses);
  return { scavenge: round(scavenge), other: round(other), messagesHit: clear.messagesHit, latencyMsClear: clear.messagesHit < work.messages ? clear.latencyMs : null };
}
