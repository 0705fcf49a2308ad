/**
 * `aethel-p2p demo`: N nodes in one process over real TCP on loopback, joined through
 * bootstrap into a sparse random topology; M broadcasts from random nodes; then what
 * happened: delivery fraction, hop histogram, latency percentiles, redundancy, wire bytes.
 */
import { performance } from 'node:perf_hooks';
import { createTestnet } from '../testnet.js';
import type { Testnet } from '../testnet.js';
import type { P2PNetwork } from '../network.js';
import { seededRandom } from '../random.js';
import { parse, intArg, strArg, UsageError } from './args.js';

const HELP = `usage: aethel-p2p demo [options]
Start a local cluster over TCP on 127.0.0.1, broadcast from random nodes, and show how the
messages propagated: delivery, hops, latency, redundancy and bytes on the wire.
  --nodes N        nodes to start (default 30, 2..500)
  --messages M     broadcasts, from random nodes (default 200)
  --size B         payload bytes per message (default 256)
  --degree D       peers each node dials when it joins (default 3)
  --window W       broadcasts in flight at most (default 50)
  --repair on|off  lazy repair (IHAVE/IWANT) (default on)
  --unsigned       turn message signing off
  --seed S         topology and sender seed (default 1)
  --json           print the report as one JSON object
  --help           this text`;

export interface DemoReport {
  nodes: number;
  links: number;
  messages: number;
  size: number;
  repair: boolean;
  signed: boolean;
  expectedDeliveries: number;
  deliveries: number;
  deliveryFraction: number;
  /** deliveries per hop count */
  hops: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** gossip copies sent per delivery */
  redundancy: number;
  bytesOnWire: number;
  bytesPerDelivery: number;
  wallMs: number;
  deliveriesPerSecond: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Run the demo workload on a started testnet and measure it. */
export async function measurePropagation(
  net: Testnet,
  o: { messages: number; size: number; window: number; seed: number; settleMs: number; onProgress?: (done: number, total: number) => void },
): Promise<Omit<DemoReport, 'nodes' | 'links' | 'repair' | 'signed'>> {
  const nodes = net.nodes;
  const random = seededRandom(o.seed + 1);
  // A sender does not deliver to itself: each message is complete at n - 1 deliveries.
  const expectedPer = nodes.length - 1;
  const got = new Array<number>(o.messages).fill(0);
  const latencies: number[] = [];
  const hops: Record<string, number> = {};
  let deliveries = 0;
  let complete = 0;
  let wake: (() => void) | undefined;
  const sentAt = new Array<number>(o.messages).fill(0);
  const offs = nodes.map((node) =>
    node.subscribe('demo', (data, info) => {
      const n = (data as { n: number }).n;
      latencies.push(performance.now() - sentAt[n]!);
      hops[info.hops] = (hops[info.hops] ?? 0) + 1;
      deliveries++;
      if (++got[n]! === expectedPer) complete++;
      wake?.();
    }),
  );
  const before = nodes.map((n) => n.metrics());
  const pad = Buffer.alloc(Math.max(0, o.size - 16), 0x61);
  const t0 = performance.now();
  let lastProgress = 0;
  const progress = () => {
    const now = performance.now();
    if (o.onProgress && now - lastProgress > 100) {
      lastProgress = now;
      o.onProgress(deliveries, o.messages * expectedPer);
    }
  };
  const waitUntil = (cond: () => boolean, ms: number) =>
    new Promise<void>((resolve) => {
      const deadline = setTimeout(done, ms);
      function done() {
        clearTimeout(deadline);
        wake = undefined;
        resolve();
      }
      wake = () => {
        progress();
        if (cond()) done();
      };
      wake();
    });
  for (let i = 0; i < o.messages; i++) {
    await waitUntil(() => i - complete < o.window, o.settleMs);
    sentAt[i] = performance.now();
    const from = nodes[Math.floor(random() * nodes.length)]!;
    await from.broadcast('demo', { n: i, p: pad });
  }
  await waitUntil(() => complete === o.messages, o.settleMs);
  const wallMs = performance.now() - t0;
  o.onProgress?.(deliveries, o.messages * expectedPer);
  offs.forEach((off) => off());
  const after = nodes.map((n) => n.metrics());
  let gossipSent = 0;
  let bytes = 0;
  after.forEach((m, i) => {
    gossipSent += m.gossipSent - before[i]!.gossipSent;
    bytes += m.bytesSent - before[i]!.bytesSent;
  });
  latencies.sort((a, b) => a - b);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    messages: o.messages,
    size: o.size,
    expectedDeliveries: o.messages * expectedPer,
    deliveries,
    deliveryFraction: deliveries / (o.messages * expectedPer),
    hops,
    latencyMs: { p50: r2(percentile(latencies, 50)), p90: r2(percentile(latencies, 90)), p99: r2(percentile(latencies, 99)), max: r2(latencies.at(-1) ?? 0) },
    redundancy: deliveries === 0 ? 0 : r2(gossipSent / deliveries),
    bytesOnWire: bytes,
    bytesPerDelivery: deliveries === 0 ? 0 : Math.round(bytes / deliveries),
    wallMs: Math.round(wallMs),
    deliveriesPerSecond: Math.round(deliveries / (wallMs / 1000)),
  };
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

export async function runDemo(argv: string[]): Promise<number> {
  const v = parse(argv, {
    nodes: { type: 'string' },
    messages: { type: 'string' },
    size: { type: 'string' },
    degree: { type: 'string' },
    window: { type: 'string' },
    repair: { type: 'string' },
    unsigned: { type: 'boolean' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  if (v.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const nodesN = intArg(v, 'nodes', 30, 2, 500);
  const messages = intArg(v, 'messages', 200, 1, 1_000_000);
  const size = intArg(v, 'size', 256, 16, 512 * 1024);
  const degree = intArg(v, 'degree', 3, 1, 50);
  const window = intArg(v, 'window', 50, 1, 100_000);
  const seed = intArg(v, 'seed', 1, 0, 2 ** 31 - 1);
  const repairArg = strArg(v, 'repair') ?? 'on';
  if (repairArg !== 'on' && repairArg !== 'off') throw new UsageError(`--repair must be on or off, got ${JSON.stringify(repairArg)}`);
  const repair = repairArg === 'on';
  const signed = !v.unsigned;
  const tty = process.stderr.isTTY === true;
  const say = (s: string) => {
    if (!v.json) process.stdout.write(s + '\n');
  };
  const status = (s: string) => {
    if (tty) process.stderr.write(`\r\x1b[K${s}`);
  };

  say(`aethel-p2p demo: ${nodesN} nodes on 127.0.0.1, each dialing ${degree}; ${messages} broadcasts of ${size} B; repair ${repairArg}; ${signed ? 'signed' : 'unsigned'}`);
  const net = await createTestnet({
    nodes: nodesN,
    degree,
    seed,
    nodeOptions: { repair, signMessages: signed, heartbeatMs: 200 },
    onStarted: (n) => status(`starting nodes ${bar(n, nodesN)}`),
  });
  try {
    await net.ready(1);
    const links = countLinks(net.nodes);
    status('');
    const r = await measurePropagation(net, {
      messages,
      size,
      window,
      seed,
      settleMs: 10_000,
      onProgress: (d, t) => status(`delivering ${bar(d, t)}`),
    });
    if (tty) process.stderr.write('\r\x1b[K');
    const report: DemoReport = { nodes: nodesN, links, repair, signed, ...r };
    if (v.json) {
      process.stdout.write(JSON.stringify(report) + '\n');
    } else {
      const hopRows = Object.entries(report.hops)
        .map(([h, n]) => `    ${h.padStart(2)} hop${h === '1' ? ' ' : 's'} ${String(n).padStart(7)}  ${'#'.repeat(Math.max(1, Math.round((n / report.deliveries) * 40)))}`)
        .join('\n');
      say(`topology: ${links} links, mean degree ${((2 * links) / nodesN).toFixed(1)}`);
      say(`delivered: ${report.deliveries}/${report.expectedDeliveries} (${(report.deliveryFraction * 100).toFixed(2)}%) in ${report.wallMs} ms, ${report.deliveriesPerSecond} deliveries/s`);
      say(`hops:\n${hopRows}`);
      say(`latency: p50 ${report.latencyMs.p50} ms, p90 ${report.latencyMs.p90} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`);
      say(`redundancy: ${report.redundancy} gossip copies sent per delivery`);
      say(`wire: ${report.bytesOnWire} bytes in all, ${report.bytesPerDelivery} bytes per delivery (framing, pings and repair included)`);
    }
    return report.deliveryFraction === 1 || !repair ? 0 : 1;
  } finally {
    await net.stop();
  }
}

/** Links both ends report connected (a link one end is still closing is not counted). */
function countLinks(nodes: readonly P2PNetwork[]): number {
  const connected = new Map(nodes.map((n) => [n.id, new Set(n.peers().filter((p) => p.state === 'connected').map((p) => p.id))]));
  let links = 0;
  for (const [id, peers] of connected) for (const other of peers) if (id < other && connected.get(other)?.has(id)) links++;
  return links;
}
