/**
 * The victim of the hostile-peer suite, in its own process so that its memory and event loop
 * are measured alone. Forked by run.ts; commands over IPC (ipc.ts):
 *
 *   start { options, topic, sampleMs }  start a P2PNetwork from lib/index.ts with `options`
 *                                       (JSON: what the case and --victim-options set), and
 *                                       subscribe to the honest topic
 *   stats                                health(), metrics(), peers() by state, DHT and
 *                                       reconnect figures, honest-topic deliveries
 *   peers                                peers() as a list
 *   peerScore { id }                     score and verdict of the victim's ledger, and isBanned()
 *   stop                                 stop the node and exit
 *
 * Every sampleMs it pushes a 'sample' event: RSS, array buffers, heap, and the longest
 * event-loop stall since the previous sample: the longest gap between ticks of a 10 ms
 * interval timer, minus 10 ms (measured directly: monitorEventLoopDelay's max missed a
 * 100 ms busy loop in a quick check on Node 20).
 */
import { P2PNetwork } from '../../lib/index.js';
import type { P2PNetworkOptions } from '../../lib/index.js';
import { serve, wallMs } from './ipc.js';

/** What the victim pushes every sampleMs. */
export interface VictimSample {
  t: number;
  rssMB: number;
  arrayBuffersMB: number;
  heapUsedMB: number;
  /** Longest event-loop delay since the previous sample, ms. */
  stallMs: number;
}

/** The reply to 'stats'. */
export interface VictimStats {
  health: ReturnType<P2PNetwork['health']>;
  metrics: ReturnType<P2PNetwork['metrics']>;
  peersByState: Record<string, number>;
  dhtTableSize: number;
  /** Reconnect tasks pending, when the node exposes them (an internal figure); null otherwise. */
  reconnectTasks: number | null;
  /** Messages on the honest topic handed to the victim's subscriber. */
  honestDelivered: number;
  /** Deliveries of a message id the subscriber had already been given (replays). */
  redelivered: number;
  /** Deliveries of a payload the attacks mark { forged: 1 }: must stay 0. */
  forgedDelivered: number;
}

const MB = 1024 * 1024;
const MAX_TRACKED_IDS = 500_000;

let node: P2PNetwork | undefined;
let sampler: NodeJS.Timeout | undefined;
const delivered = new Set<string>();
let honestDelivered = 0;
let redelivered = 0;
let forgedDelivered = 0;
const TICK_MS = 10;
let lastTick = 0;
let maxGapMs = 0;
let ticker: NodeJS.Timeout | undefined;

const ipc = serve({
  async start(args: { options: P2PNetworkOptions; topic: string; sampleMs: number }) {
    node = new P2PNetwork(args.options);
    node.subscribe(args.topic, (data, info) => {
      honestDelivered++;
      if (typeof data === 'object' && data !== null && (data as { forged?: unknown }).forged === 1) forgedDelivered++;
      if (delivered.has(info.id)) redelivered++;
      else if (delivered.size < MAX_TRACKED_IDS) delivered.add(info.id);
    });
    await node.start();
    lastTick = performance.now();
    ticker = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - lastTick - TICK_MS);
      lastTick = now;
    }, TICK_MS);
    sampler = setInterval(() => {
      const m = process.memoryUsage();
      const sample: VictimSample = {
        t: wallMs(),
        rssMB: m.rss / MB,
        arrayBuffersMB: m.arrayBuffers / MB,
        heapUsedMB: m.heapUsed / MB,
        // A stall still in progress at the sample counts too.
        stallMs: Math.max(0, maxGapMs, performance.now() - lastTick - TICK_MS),
      };
      maxGapMs = 0;
      ipc.emit('sample', sample);
    }, args.sampleMs);
    return { id: node.id, ...node.address };
  },

  stats(): VictimStats {
    if (!node) throw new Error('not started');
    const peersByState: Record<string, number> = {};
    for (const p of node.peers()) peersByState[p.state] = (peersByState[p.state] ?? 0) + 1;
    // Internal, read only when present: the suite must keep working as lib/ changes.
    const reconnector = (node as unknown as { reconnector?: { size?: unknown } }).reconnector;
    return {
      health: node.health(),
      metrics: node.metrics(),
      peersByState,
      dhtTableSize: node.dhtStats().tableSize,
      reconnectTasks: typeof reconnector?.size === 'number' ? reconnector.size : null,
      honestDelivered,
      redelivered,
      forgedDelivered,
    };
  },

  peers() {
    if (!node) throw new Error('not started');
    return node.peers();
  },

  peerScore(args: { id: string }) {
    if (!node) throw new Error('not started');
    const s = node.peerScore(args.id);
    return s ? { score: Math.round(s.score * 100) / 100, verdict: s.verdict, banned: node.isBanned(args.id) } : null;
  },

  async stop() {
    if (sampler) clearInterval(sampler);
    if (ticker) clearInterval(ticker);
    await node?.stop();
  },
});
