/**
 * The Prometheus text exposition format (version 0.0.4) for one node's metrics.
 * P2PNetwork.metricsText() calls metricsFamilies() with its counters and live gauges, then
 * formatExposition(); both are pure, so specs check the format line by line. Names, types and
 * labels are listed in docs/METRICS.md.
 */
import { MAX_TOPIC_LABELS, OTHER_TOPIC } from './metrics.js';
import type { Histogram, Metrics, MetricsSnapshot } from './metrics.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Sample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface HistogramSample {
  labels?: Readonly<Record<string, string>>;
  histogram: Histogram;
}

/** One metric name with its HELP and TYPE lines and its series. */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples?: Sample[];
  histograms?: HistogramSample[];
}

/** The MIME type to serve metricsText() with. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Peers with an RTT series of their own (the slowest first); the rest are in the max/count gauges only. */
export const MAX_PEER_LABELS = 64;

/** Live values the counters do not hold. */
export interface LiveGauges {
  knownPeers: number;
  partitionedPeers: number;
  reachableFraction: number;
  /** Last PING round trip of each connected peer that has one: id (hex) and ms. */
  peerRtts: Array<{ id: string; rttMs: number }>;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/** Render families as exposition text: HELP, TYPE, then the series; one trailing newline. */
export function formatExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples ?? []) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    for (const h of f.histograms ?? []) {
      const cumulative = h.histogram.cumulative();
      h.histogram.bounds.forEach((b, i) => out.push(`${f.name}_bucket${formatLabels(h.labels, ['le', formatValue(b)])} ${cumulative[i]}`));
      out.push(`${f.name}_bucket${formatLabels(h.labels, ['le', '+Inf'])} ${h.histogram.count}`);
      out.push(`${f.name}_sum${formatLabels(h.labels)} ${formatValue(h.histogram.sum)}`);
      out.push(`${f.name}_count${formatLabels(h.labels)} ${h.histogram.count}`);
    }
  }
  return out.join('\n') + '\n';
}

function byLabel(name: string, record: Record<string, number>): Sample[] {
  return Object.entries(record).map(([k, value]) => ({ labels: { [name]: k }, value }));
}

/** Every family of one node, named `${prefix}_...` (prefix default 'aethel_p2p'). */
export function metricsFamilies(s: MetricsSnapshot, m: Metrics, live: LiveGauges, prefix = 'aethel_p2p'): MetricFamily[] {
  const n = (suffix: string) => `${prefix}_${suffix}`;
  const topics = m.topics.entries();
  const rtts = [...live.peerRtts].sort((a, b) => b.rttMs - a.rttMs);
  return [
    { name: n('messages_sent_total'), help: 'Protocol messages written to peers, by message type.', type: 'counter', samples: byLabel('type', s.sentByType) },
    { name: n('messages_received_total'), help: 'Valid protocol messages received from peers, by message type.', type: 'counter', samples: byLabel('type', s.receivedByType) },
    { name: n('messages_dropped_total'), help: 'Messages not sent or not processed, by reason (docs/API.md, drop reasons).', type: 'counter', samples: byLabel('reason', s.droppedByReason) },
    { name: n('invalid_total'), help: 'Messages and connections rejected because of what a peer sent, by reason.', type: 'counter', samples: byLabel('reason', s.invalidByReason) },
    { name: n('dial_failures_total'), help: 'Dials that did not end in a connection, by error code.', type: 'counter', samples: byLabel('code', s.dialFailuresByCode) },
    { name: n('bytes_sent_total'), help: 'Bytes written to sockets, frame headers included.', type: 'counter', samples: [{ value: s.bytesSent }] },
    { name: n('bytes_received_total'), help: 'Bytes read from sockets, frame headers included.', type: 'counter', samples: [{ value: s.bytesReceived }] },
    { name: n('gossip_sent_total'), help: 'Gossip copies sent to peers (origin sends, forwards, repair replies).', type: 'counter', samples: [{ value: s.gossipSent }] },
    { name: n('duplicates_received_total'), help: 'Gossip copies received for a message already seen.', type: 'counter', samples: [{ value: s.duplicatesReceived }] },
    {
      name: n('delivered_total'),
      help: `Gossip and direct messages handed to local subscribers, by topic (the first ${MAX_TOPIC_LABELS} topics delivered keep a label; later ones are "${OTHER_TOPIC}").`,
      type: 'counter',
      samples: topics.map(([topic, delivered]) => ({ labels: { topic }, value: delivered })),
    },
    {
      name: n('delivery_hops'),
      help: 'Hops travelled by each gossip message delivered here from the network, by topic.',
      type: 'histogram',
      histograms: topics.map(([topic, , hops]) => ({ labels: { topic }, histogram: hops })),
    },
    { name: n('direct_ack_seconds'), help: 'sendToPeer: seconds from writing the DIRECT to its ACK (the acknowledged attempt).', type: 'histogram', histograms: [{ histogram: m.directAckSeconds }] },
    { name: n('connected_peers'), help: 'Peers with an open connection.', type: 'gauge', samples: [{ value: s.connectedPeers }] },
    { name: n('known_peers'), help: 'Peers this node has been connected to and not removed.', type: 'gauge', samples: [{ value: live.knownPeers }] },
    { name: n('partitioned_peers'), help: 'Known peers silent for partitionTimeoutMs.', type: 'gauge', samples: [{ value: live.partitionedPeers }] },
    { name: n('reachable_fraction'), help: 'connected_peers / known_peers (0 when no peer is known).', type: 'gauge', samples: [{ value: live.reachableFraction }] },
    { name: n('seen_messages'), help: 'Entries in the gossip seen-cache.', type: 'gauge', samples: [{ value: s.seenMessages }] },
    {
      name: n('peer_last_rtt_seconds'),
      help: `Last PING round trip of each connected peer, seconds (the ${MAX_PEER_LABELS} slowest; peer = first 12 hex chars of its id).`,
      type: 'gauge',
      samples: rtts.slice(0, MAX_PEER_LABELS).map((p) => ({ labels: { peer: p.id.slice(0, 12) }, value: p.rttMs / 1000 })),
    },
    // Fed by Metrics.observeRtt() once the connection reports each PONG; absent until then.
    ...(m.peerRttSeconds.count > 0
      ? [{ name: n('peer_rtt_seconds'), help: 'PING to PONG round trips, seconds, every peer.', type: 'histogram' as const, histograms: [{ histogram: m.peerRttSeconds }] }]
      : []),
  ];
}
