/**
 * Propagation delays from wire dumps: for every gossip message, when each node got it
 * relative to its publication, by push or by repair (IWANT), from which peer, after how many
 * hops; then a summary per node and overall (p50, p99, max) and the late deliveries. Times
 * should be clock-aligned first (clock-align.ts).
 *
 * Publication time: the origin's own "forwarded" line without a sender (it published), else
 * the origin's first GOSSIP frame out, else (the origin kept no dump) the first copy seen
 * anywhere, marked as estimated.
 */
import { nodeIdOf } from '../identity.js';
import { decodeMessage } from '../wire/codec.js';
import { MessageType } from '../wire/messages.js';
import type { DumpEntry } from './reader.js';

/** A delivery later than this after publication is listed as late by default, ms. */
export const DEFAULT_LATE_MS = 100;

/** One node's copy of one message. */
export interface NodeDelivery {
  node: string;
  /** When it was delivered (µs since the epoch); absent when the node never got it. */
  t?: number;
  /** Delay from publication, ms. */
  delayMs?: number;
  /** origin: the node published it; push or repair: how the first copy came. */
  via?: 'origin' | 'push' | 'repair';
  /** Node id of the peer that sent the first copy. */
  from?: string;
  /** Links the copy had crossed when it arrived. */
  hops?: number;
}

export interface MessageDelays {
  id: string;
  /** Origin node id, when a copy of the message was decoded. */
  origin?: string;
  topic?: string;
  /** µs since the epoch. */
  publishedAt: number;
  /** True when the origin kept no dump: publishedAt is the first copy seen. */
  publishEstimated: boolean;
  /** One row per node that wrote a dump, in input order. */
  nodes: NodeDelivery[];
}

export interface DelayStats {
  node: string;
  /** Deliveries counted (origin excluded) and nodes/messages that never got it. */
  delivered: number;
  missing: number;
  repaired: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface DelaySummary {
  lateMs: number;
  perNode: DelayStats[];
  overall: DelayStats;
  /** Deliveries later than lateMs, slowest first. */
  late: Array<NodeDelivery & { id: string }>;
}

interface Facts {
  origin?: string;
  topic?: string;
  published?: number;
  originFirstOut?: number;
  firstSeen?: number;
  delivered: Map<string, NodeDelivery>;
  firstIn: Map<string, NodeDelivery>;
  /** Per node: when it first asked for the message by IWANT. */
  asked: Map<string, number>;
}

/** Delays per message and node over dump (and capture) entries, in the order messages first appear. */
export function messageDelays(entries: readonly DumpEntry[]): MessageDelays[] {
  const nodes: string[] = [];
  const seenNode = new Set<string>();
  const msgs = new Map<string, Facts>();
  const facts = (id: string) => {
    let f = msgs.get(id);
    if (!f) msgs.set(id, (f = { delivered: new Map(), firstIn: new Map(), asked: new Map() }));
    return f;
  };
  for (const e of entries) {
    if ((e.kind === 'trace' || (e.kind === 'frame' && typeof e.conn === 'number')) && !seenNode.has(e.node)) {
      seenNode.add(e.node);
      nodes.push(e.node);
    }
    if (e.kind === 'trace') {
      const r = e.rec;
      if (!r.msg) continue;
      const f = facts(r.msg);
      if (r.event === 'forwarded' && !r.peer && r.via === 'push') {
        f.published ??= e.t;
        f.origin ??= e.node;
      } else if (r.event === 'delivered' && !f.delivered.has(e.node)) {
        const via = r.via === 'repair' || r.via === 'push' ? r.via : undefined;
        f.delivered.set(e.node, { node: e.node, t: e.t, via, from: r.peer, hops: r.hops });
      }
      continue;
    }
    if (e.kind !== 'frame') continue;
    let m;
    try {
      m = decodeMessage(e.body);
    } catch {
      continue;
    }
    if (m.type === MessageType.GOSSIP) {
      const id = m.id.toString('hex');
      const f = facts(id);
      f.origin ??= nodeIdOf(m.origin).toString('hex');
      f.topic ??= m.topic;
      f.firstSeen ??= e.t;
      if (e.dir === 'out' && e.node === f.origin) f.originFirstOut ??= e.t;
      const receiver = e.dir === 'in' ? e.node : e.peer;
      if (receiver && !f.firstIn.has(receiver) && (e.dir === 'in' || typeof e.conn === 'string')) {
        f.firstIn.set(receiver, { node: receiver, t: e.t, from: e.dir === 'in' ? e.peer ?? undefined : e.node, hops: m.hops });
      }
    } else if (m.type === MessageType.IWANT && e.dir === 'out') {
      for (const raw of m.ids) {
        const f = facts(raw.toString('hex'));
        if (!f.asked.has(e.node)) f.asked.set(e.node, e.t);
      }
    }
  }
  const out: MessageDelays[] = [];
  for (const [id, f] of msgs) {
    const publishedAt = f.published ?? f.originFirstOut ?? f.firstSeen;
    if (publishedAt === undefined) continue; // only named by IHAVE/IWANT: no copy in the inputs
    const row: MessageDelays = { id, origin: f.origin, topic: f.topic, publishedAt, publishEstimated: f.published === undefined && f.originFirstOut === undefined, nodes: [] };
    for (const node of nodes) {
      if (node === f.origin) {
        row.nodes.push({ node, t: publishedAt, delayMs: 0, via: 'origin' });
        continue;
      }
      const d = f.delivered.get(node) ?? f.firstIn.get(node);
      if (!d || d.t === undefined) {
        row.nodes.push({ node });
        continue;
      }
      // Dumps from before the 'via' field: a copy that came after this node asked for it by IWANT is a repair.
      const asked = f.asked.get(node);
      const via = d.via ?? (asked !== undefined && asked <= d.t ? 'repair' : 'push');
      row.nodes.push({ ...d, via, delayMs: (d.t - publishedAt) / 1000 });
    }
    out.push(row);
  }
  return out;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function stats(node: string, rows: NodeDelivery[]): DelayStats {
  const got = rows.filter((r) => r.delayMs !== undefined && r.via !== 'origin');
  const sorted = got.map((r) => r.delayMs!).sort((a, b) => a - b);
  return {
    node,
    delivered: got.length,
    missing: rows.filter((r) => r.t === undefined).length,
    repaired: got.filter((r) => r.via === 'repair').length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? null,
  };
}

/** p50/p99/max per node and overall, and every delivery later than lateMs. */
export function summarizeDelays(list: readonly MessageDelays[], lateMs = DEFAULT_LATE_MS): DelaySummary {
  const byNode = new Map<string, NodeDelivery[]>();
  const all: NodeDelivery[] = [];
  const late: Array<NodeDelivery & { id: string }> = [];
  for (const m of list) {
    for (const n of m.nodes) {
      byNode.set(n.node, [...(byNode.get(n.node) ?? []), n]);
      all.push(n);
      if (n.delayMs !== undefined && n.delayMs > lateMs) late.push({ id: m.id, ...n });
    }
  }
  late.sort((a, b) => b.delayMs! - a.delayMs!);
  return { lateMs, perNode: [...byNode].map(([node, rows]) => stats(node, rows)), overall: stats('all', all), late };
}
