// js-libp2p gossipsub baseline for aethel-p2p's cluster benchmark: the same workload, driven
// the same way as bench/cluster.ts. libp2p 3.3 with TCP + Noise + Yamux + identify +
// gossipsub 17 defaults; differences from the defaults are listed in the result's
// `deviations` and in docs/PERFORMANCE.md.
//
//   node bench/libp2p/cluster.mjs --edges '[[0,3],...]' [--nodes 20] [--messages 5000]
//        [--size 256] [--window 200] [--signed true|false] [--whitelist-loopback true|false]
//
// bench/run.ts computes the edges with bench/util.ts topology(), so every benchmark links the
// same pairs. Prints one line "BENCH-RESULT {json}" on stdout; progress on stderr.
import diagnostics from 'node:diagnostics_channel';

// Several libp2p 3 dependencies call Promise.withResolvers, which Node 20 lacks.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { createLibp2p } = await import('libp2p');
const { tcp } = await import('@libp2p/tcp');
const { noise } = await import('@chainsafe/libp2p-noise');
const { yamux } = await import('@chainsafe/libp2p-yamux');
const { identify } = await import('@libp2p/identify');
const { gossipsub } = await import('@libp2p/gossipsub');

const flags = new Map();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const eq = a.indexOf('=');
  if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
  else flags.set(a.slice(2), process.argv[++i] ?? 'true');
}
const int = (name, d) => (flags.has(name) ? Number(flags.get(name)) : d);
const N = int('nodes', 20);
const M = int('messages', 5000);
const S = Math.max(8, int('size', 256));
const W = int('window', 200);
const signed = flags.get('signed') !== 'false';
const whitelist = flags.get('whitelist-loopback') === 'true';
const timeoutMs = int('timeout-ms', 180_000);
const edges = JSON.parse(flags.get('edges') ?? '[]');
const TOPIC = 'bench';
const note = (m) => process.stderr.write(m + '\n');

const sockets = [];
const addSocket = (m) => sockets.push(m.socket);
diagnostics.subscribe('net.client.socket', addSocket);
diagnostics.subscribe('net.server.socket', addSocket);
const socketBytes = () => sockets.reduce((t, s) => t + s.bytesWritten, 0);

const baselineRssMb = process.memoryUsage().rss / (1024 * 1024);
const nodes = [];
for (let i = 0; i < N; i++) {
  const scoreParams = whitelist ? { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } : {};
  nodes.push(
    await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Every node is on 127.0.0.1: the default per-host inbound rate limits refuse start-up dials.
      connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 10_000, maxIncomingPendingConnections: 1000 },
      // By default a connection whose 10-second ping misses its adaptive timeout is aborted.
      // Under a saturated event loop (signed mode on a loaded 2-core machine) every ping
      // misses, all links drop about 10 s into the run and the run stalls; ours only closes a
      // peer silent for partitionTimeoutMs (30 s). Keep pinging, do not abort.
      connectionMonitor: { abortConnectionOnPingFailure: false },
      services: {
        identify: identify(),
        pubsub: gossipsub({ globalSignaturePolicy: signed ? 'StrictSign' : 'StrictNoSign', emitSelf: false, scoreParams }),
      },
    }),
  );
}
await Promise.all(edges.map(([a, b]) => nodes[a].dial(nodes[b].getMultiaddrs()[0])));
// Links lost during the run (each counted at both ends): explains a stalled run.
let disconnects = 0;
for (const n of nodes) n.addEventListener('peer:disconnect', () => disconnects++);
for (const n of nodes) n.services.pubsub.subscribe(TOPIC);

// Mesh warm-up: every node has a mesh peer for the topic, then two more 1 s heartbeats.
const waitUntil = async (cond, ms, what) => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
await waitUntil(() => nodes.every((n) => n.services.pubsub.getMeshPeers(TOPIC).length > 0), 30_000, 'mesh');
await new Promise((r) => setTimeout(r, 2000));
const meshDegree = nodes.reduce((t, n) => t + n.services.pubsub.getMeshPeers(TOPIC).length, 0) / N;

const seen = nodes.map(() => new Uint8Array(M));
const remaining = new Int32Array(M).fill(N - 1);
const publishedAt = new Float64Array(M);
const latencies = new Float64Array(M * (N - 1));
let deliveries = 0;
let duplicateDeliveries = 0;
let published = 0;
let completed = 0;
let lastDeliveryAt = 0;
let publishErrors = 0;
let done;
const finished = new Promise((r) => (done = r));

// A publish refused because the node momentarily sees no subscribed peer (a stream reset
// under load) is retried every 100 ms, up to 100 times, as an application would; latency
// still counts from the first attempt, and retries are reported.
let publishRetries = 0;
const publishIdx = (idx, data, attempt) => {
  nodes[idx % N].services.pubsub.publish(TOPIC, data).catch((err) => {
    if (attempt < 100 && /NoPeersSubscribedToTopic/.test(String(err?.message ?? err))) {
      publishRetries++;
      setTimeout(() => publishIdx(idx, data, attempt + 1), 100);
      return;
    }
    publishErrors++;
    note(`publish failed: ${err.message}`);
    done();
  });
};
const publish = () => {
  const idx = published++;
  const data = new Uint8Array(S);
  new DataView(data.buffer).setUint32(0, idx);
  publishedAt[idx] = performance.now();
  publishIdx(idx, data, 0);
};
nodes.forEach((n, i) => {
  n.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic !== TOPIC) return;
    const d = evt.detail.data;
    const idx = new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);
    if (seen[i][idx]) {
      duplicateDeliveries++;
      return;
    }
    seen[i][idx] = 1;
    const now = performance.now();
    latencies[deliveries++] = now - publishedAt[idx];
    lastDeliveryAt = now;
    if (--remaining[idx] === 0) {
      completed++;
      if (published < M) publish();
      else if (completed === M) done();
    }
  });
});

const bytes0 = socketBytes();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < Math.min(W, M); i++) publish();
const timer = setTimeout(() => done(), timeoutMs);
await finished;
clearTimeout(timer);
const cpu = process.cpuUsage(cpu0);
const elapsedS = (lastDeliveryAt - t0) / 1000;
const expected = M * (N - 1);
const lat = latencies.subarray(0, deliveries).sort();
const at = (q) => (lat.length === 0 ? NaN : lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)]);
const result = {
  impl: 'js-libp2p gossipsub',
  versions: { libp2p: '3.3', gossipsub: '17.1' },
  mode: signed ? 'signed' : 'unsigned',
  ok: deliveries === expected && duplicateDeliveries === 0 && publishErrors === 0,
  nodes: N, edges: edges.length, meanDegree: (2 * edges.length) / N, meshDegree, messages: M, size: S, window: W,
  deliveries,
  expected,
  duplicateDeliveries,
  deliveredFraction: deliveries / expected,
  deliveriesPerSec: deliveries / elapsedS,
  elapsedS,
  latencyMs: { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: lat.length ? lat[lat.length - 1] : NaN },
  copiesPerDelivery: null,
  publishRetries,
  disconnects,
  bytesPerDelivery: (socketBytes() - bytes0) / deliveries,
  cpuUsPerDelivery: (cpu.user + cpu.system) / deliveries,
  peakRssMb: process.resourceUsage().maxRSS / 1024,
  baselineRssMb,
  deviations: [
    'connectionManager inbound limits raised (all peers share 127.0.0.1)',
    'connectionMonitor.abortConnectionOnPingFailure: false (a late ping under load would drop every link)',
    ...(whitelist ? ['127.0.0.1 exempt from the IP-colocation score penalty (scoreParams.IPColocationFactorWhitelist)'] : []),
    'emitSelf: false',
  ],
};
note(`libp2p ${result.mode}: ${Math.round(result.deliveriesPerSec).toLocaleString()} deliveries/s, delivered ${(result.deliveredFraction * 100).toFixed(2)}%, p99 ${result.latencyMs.p99.toFixed(0)} ms`);
process.stdout.write('BENCH-RESULT ' + JSON.stringify(result) + '\n');
await Promise.race([Promise.all(nodes.map((n) => n.stop())), new Promise((r) => setTimeout(r, 10_000))]);
process.exit(0);
