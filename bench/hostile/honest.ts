/**
 * The honest peers of the hostile-peer suite, all in one process so that publish and
 * delivery times come from one clock. Forked by run.ts; commands over IPC (ipc.ts):
 *
 *   start { count, topic, options }  start `count` P2PNetworks, peer i on honestHost(i):0
 *   trickle { intervalMs, publishers } each publisher broadcasts on the topic every intervalMs
 *                                    (a payload of about 256 bytes)
 *                                    (staggered); the victim dials all of them, and they know
 *                                    no one else, so every message crosses the victim
 *   untrickle                        stop publishing
 *   windows { windows }              delivery ratio and latency of the messages published in
 *                                    each [from, to) window (wall ms), counted at query time
 *   restart { index, victim }        stop peer `index`, start it again with the same identity
 *                                    and address, dial the victim; time to connect and to the
 *                                    first honest message
 *   reconnect { victim }             peers left without a connection dial the victim again
 *   newcomer { victim, timeoutMs }   a new node dials the victim: connected within timeoutMs?
 *   join { victim, settleMs }        a new node joins through the victim (addPeer, then
 *                                    discoverPeers()): its routing table and connections
 *   replays                          deliveries of an id a peer had already delivered, of a
 *                                    peer's own messages handed back to it, and of payloads
 *                                    the attacks mark { forged: 1 } (never valid)
 *   metrics                          per peer: metrics() drop/invalid counts, bans, connected
 *                                    peers, and the victim's score as that peer's ledger sees it
 *   stop
 */
import { P2PNetwork, generateIdentity } from '../../lib/index.js';
import type { Identity, P2PNetworkOptions, DeliveryInfo } from '../../lib/index.js';
import { JOINER_HOST, NEWCOMER_HOST, fromAddress, honestHost } from './addresses.js';
import { serve, wallMs } from './ipc.js';

/** Delivery figures for one window of published messages. */
export interface WindowStats {
  name: string;
  published: number;
  /** (message, receiver) pairs expected: every honest peer running at publish time but the publisher. */
  expected: number;
  delivered: number;
  deliveryRatio: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** A contact or connection of the joining node. */
export interface JoinContact {
  id: string;
  host: string;
  port: number;
}

interface Published {
  t: number;
  expect: number[];
  got: Map<number, number>;
}

interface Peer {
  index: number;
  identity: Identity;
  host: string;
  port: number;
  node: P2PNetwork | undefined;
  seenIds: Set<string>;
}

const MAX_TRACKED = 200_000;
/** Filler so an honest payload is about 256 bytes, the cluster benchmark's message size. */
const PADDING = 'x'.repeat(220);
let topic = 'hostile/honest';
let baseOptions: P2PNetworkOptions = {};
const peers: Peer[] = [];
const published = new Map<string, Published>();
const timers: NodeJS.Timeout[] = [];
let redelivered = 0;
let ownReturned = 0;
let forgedDelivered = 0;
let firstMessageWaiter: ((index: number) => void) | undefined;

function isHonestPayload(d: unknown): d is { hb: number; p: number; n: number } {
  return typeof d === 'object' && d !== null && (d as { hb?: unknown }).hb === 1 && typeof (d as { p?: unknown }).p === 'number';
}

function onDelivery(peer: Peer, data: unknown, info: DeliveryInfo): void {
  if (peer.seenIds.has(info.id)) redelivered++;
  else if (peer.seenIds.size < MAX_TRACKED) peer.seenIds.add(info.id);
  if (info.from === peer.identity.idHex) ownReturned++;
  if (typeof data === 'object' && data !== null && (data as { forged?: unknown }).forged === 1) forgedDelivered++;
  if (!isHonestPayload(data)) return;
  const rec = published.get(`${data.p}:${data.n}`);
  if (rec && !rec.got.has(peer.index)) rec.got.set(peer.index, wallMs() - rec.t);
  firstMessageWaiter?.(peer.index);
}

async function startPeer(peer: Peer): Promise<void> {
  const node = new P2PNetwork({ ...baseOptions, identity: peer.identity, listenHost: peer.host, listenPort: peer.port });
  node.subscribe(topic, (data, info) => onDelivery(peer, data, info));
  await node.start();
  peer.port = node.address.port;
  peer.node = node;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function addr(a: { host: string; port: number }): string {
  return `${a.host}:${a.port}`;
}

serve({
  async start(args: { count: number; topic: string; options: P2PNetworkOptions }) {
    topic = args.topic;
    baseOptions = args.options;
    for (let i = 0; i < args.count; i++) {
      const peer: Peer = { index: i, identity: generateIdentity(), host: honestHost(i), port: 0, node: undefined, seenIds: new Set() };
      await startPeer(peer);
      peers.push(peer);
    }
    return peers.map((p) => ({ id: p.identity.idHex, host: p.host, port: p.port }));
  },

  trickle(args: { intervalMs: number; publishers: number[] }) {
    let n = 0;
    args.publishers.forEach((pi, k) => {
      const start = setTimeout(() => {
        timers.push(setInterval(() => {
          const peer = peers[pi];
          if (!peer?.node) return;
          const seq = n++;
          const expect = peers.filter((p) => p.node && p !== peer).map((p) => p.index);
          published.set(`${pi}:${seq}`, { t: wallMs(), expect, got: new Map() });
          peer.node.broadcast(topic, { hb: 1, p: pi, n: seq, pad: PADDING }).catch(() => {});
        }, args.intervalMs));
      }, (k * args.intervalMs) / args.publishers.length);
      timers.push(start);
    });
  },

  untrickle() {
    for (const t of timers.splice(0)) clearInterval(t);
  },

  windows(args: { windows: Array<{ name: string; from: number; to: number }> }): WindowStats[] {
    return args.windows.map((w) => {
      let count = 0;
      let expected = 0;
      const lat: number[] = [];
      for (const rec of published.values()) {
        if (rec.t < w.from || rec.t >= w.to) continue;
        count++;
        expected += rec.expect.length;
        for (const r of rec.expect) {
          const l = rec.got.get(r);
          if (l !== undefined) lat.push(l);
        }
      }
      lat.sort((a, b) => a - b);
      return {
        name: w.name,
        published: count,
        expected,
        delivered: lat.length,
        deliveryRatio: expected === 0 ? NaN : lat.length / expected,
        p50Ms: percentile(lat, 0.5),
        p95Ms: percentile(lat, 0.95),
        maxMs: lat.length ? lat[lat.length - 1]! : NaN,
      };
    });
  },

  async restart(args: { index: number; victim: { host: string; port: number }; timeoutMs: number }) {
    const peer = peers[args.index];
    if (!peer?.node) throw new Error(`no honest peer ${args.index}`);
    const old = peer.node;
    peer.node = undefined;
    await old.stop();
    await startPeer(peer);
    const t0 = wallMs();
    const first = new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), args.timeoutMs);
      firstMessageWaiter = (i) => {
        if (i !== peer.index) return;
        clearTimeout(timer);
        firstMessageWaiter = undefined;
        resolve(wallMs() - t0);
      };
    });
    let connectMs: number | null = null;
    let error: string | undefined;
    try {
      await fromAddress(peer.host, () => peer.node!.addPeer(addr(args.victim)));
      connectMs = wallMs() - t0;
    } catch (err) {
      error = (err as Error).message;
    }
    const firstMessageMs = await first;
    return { connectMs, firstMessageMs, error };
  },

  /** Dial the victim again from every honest peer that has no connection left (an attack may have cost it its slot). */
  async reconnect(args: { victim: { host: string; port: number } }) {
    let redialed = 0;
    for (const p of peers) {
      if (!p.node || p.node.peers().some((x) => x.state === 'connected')) continue;
      redialed++;
      await fromAddress(p.host, () => p.node!.addPeer(addr(args.victim))).catch(() => {});
    }
    return { redialed };
  },

  async newcomer(args: { victim: { host: string; port: number }; timeoutMs: number }) {
    const node = new P2PNetwork({ ...baseOptions, listenHost: NEWCOMER_HOST });
    await node.start();
    const t0 = wallMs();
    try {
      const ok = await Promise.race([
        fromAddress(NEWCOMER_HOST, () => node.addPeer(addr(args.victim))).then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), args.timeoutMs)),
      ]);
      const connectMs = wallMs() - t0;
      // A handshake that completes is not a slot: a full node closes right after (TOO_MANY_PEERS).
      if (ok) await new Promise((r) => setTimeout(r, 1000));
      const stillOpen = ok && node.peers().some((p) => p.state === 'connected');
      const error = !ok ? `not connected within ${args.timeoutMs} ms` : stillOpen ? undefined : 'closed by the victim right after the handshake';
      return { connected: stillOpen, connectMs: stillOpen ? connectMs : null, error };
    } catch (err) {
      return { connected: false, connectMs: null, error: (err as Error).message };
    } finally {
      await node.stop();
    }
  },

  async join(args: { victim: { host: string; port: number }; settleMs: number }) {
    const node = new P2PNetwork({ ...baseOptions, listenHost: JOINER_HOST });
    await node.start();
    let error: string | undefined;
    try {
      await fromAddress(JOINER_HOST, () => node.addPeer(addr(args.victim)));
      await node.discoverPeers();
    } catch (err) {
      error = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, args.settleMs));
    // The routing table is internal: read it when present, else fall back to a lookup's result.
    const table = (node as unknown as { dht?: { table?: { all?: () => Array<{ id: Buffer; host: string; port: number }> } } }).dht?.table;
    let contacts: JoinContact[];
    let source: 'routing-table' | 'lookup';
    if (typeof table?.all === 'function') {
      contacts = table.all().map((c) => ({ id: c.id.toString('hex'), host: c.host, port: c.port }));
      source = 'routing-table';
    } else {
      contacts = await node.findClosest(node.id).catch(() => []);
      source = 'lookup';
    }
    const connections = node.peers().filter((p) => p.state === 'connected').map((p) => ({ id: p.id, host: p.host, port: p.port }));
    await node.stop();
    return { id: node.id, contacts, source, connections, error };
  },

  replays() {
    return { redelivered, ownReturned, forgedDelivered };
  },

  metrics(args: { victimId?: string } = {}) {
    return peers.map((p) => {
      const m = p.node?.metrics();
      const v = args.victimId ? p.node?.peerScore(args.victimId) : undefined;
      return {
        index: p.index,
        running: p.node !== undefined,
        connected: p.node?.peers().filter((x) => x.state === 'connected').length ?? 0,
        droppedByReason: m?.droppedByReason ?? {},
        invalidByReason: m?.invalidByReason ?? {},
        peersBanned: m?.peersBanned ?? 0,
        victimScore: v ? { score: Math.round(v.score * 100) / 100, verdict: v.verdict, rateLimited: v.counters.rateLimited, ignored: v.counters.ignored } : null,
      };
    });
  },

  async stop() {
    for (const t of timers.splice(0)) clearInterval(t);
    await Promise.all(peers.map((p) => p.node?.stop()));
  },
});
