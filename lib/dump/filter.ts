/**
 * Which dump entries to show: a time range, message types and decision events to keep or
 * hide, and one node's traffic. Frames and decisions are filtered together:
 *   - a frame is kept when its type is in `types` (if any is given) and not in `exclude`;
 *   - a trace line is kept, when `types` is given, if it names the line's event, or
 *     "decisions" (every trace line), or GOSSIP, IHAVE or IWANT and the line is a decision
 *     about a gossip message (it has a message id); and never when `exclude` names its event
 *     or "decisions";
 *   - malformed lines are kept unless `types` is given without MALFORMED; loss lines always
 *     (they say the dump itself is incomplete).
 * `peer` keeps what involves one node, including that node's own frames on a connection
 * before the handshake told it who the peer was (the connection's later frames do).
 */
import { describeFrame } from './describe.js';
import type { DumpEntry, FrameEntry } from './reader.js';
import type { TraceEventName } from './records.js';

/** Trace event names, as --type and --exclude-type accept them. */
export const TRACE_EVENTS: readonly TraceEventName[] = [
  'delivered', 'duplicate', 'rejected', 'dropped', 'forwarded', 'connect', 'disconnect', 'partitioned', 'recovered', 'invalid', 'stalled',
];

/** Message types whose frames come with the decisions about the gossip messages they carry. */
const GOSSIP_TYPES = ['GOSSIP', 'IHAVE', 'IWANT'];

export interface EntryFilter {
  /** Keep entries at or after / before this time, µs since the epoch. */
  since?: number;
  until?: number;
  /** Message type names (GOSSIP, MALFORMED...) and trace event names to keep. */
  types?: ReadonlySet<string>;
  /** The same, to hide; "decisions" hides every trace line. */
  exclude?: ReadonlySet<string>;
  /** Node id prefix (hex) or host:port. */
  peer?: string;
}

export function filterEntries(entries: readonly DumpEntry[], f: EntryFilter): DumpEntry[] {
  const typeNames = f.types && [...f.types].filter((t) => !TRACE_EVENTS.includes(t as TraceEventName) && t !== 'decisions');
  const eventNames = f.types && [...f.types].filter((t) => TRACE_EVENTS.includes(t as TraceEventName) || t === 'decisions');
  const connPeer = f.peer ? peerOfConnection(entries) : undefined;
  return entries.filter((e) => {
    if (f.since !== undefined && e.t < f.since) return false;
    if (f.until !== undefined && e.t >= f.until) return false;
    if (f.peer && !involves(e, f.peer, connPeer!)) return false;
    switch (e.kind) {
      case 'frame': {
        const type = describeFrame(e).type;
        if (typeNames && typeNames.length > 0 && !typeNames.includes(type)) return false;
        if (typeNames && typeNames.length === 0 && eventNames!.length > 0) return false;
        return !f.exclude?.has(type);
      }
      case 'trace':
        if (f.exclude?.has(e.rec.event) || f.exclude?.has('decisions')) return false;
        if (!f.types) return true;
        return eventNames!.includes(e.rec.event) || f.types.has('decisions') || (e.rec.msg !== undefined && GOSSIP_TYPES.some((t) => f.types!.has(t)));
      case 'malformed':
        if (f.exclude?.has('MALFORMED')) return false;
        return !f.types || f.types.has('MALFORMED');
      case 'loss':
        return true;
    }
  });
}

/** Per "source#conn": the peer id the connection's frames name once its handshake is done. */
function peerOfConnection(entries: readonly DumpEntry[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of entries) if (e.kind === 'frame' && e.peer) m.set(`${e.source}#${String(e.conn)}`, e.peer);
  return m;
}

function involves(e: DumpEntry, who: string, connPeer: Map<string, string>): boolean {
  const m = (s: string | null | undefined) => !!s && (s.includes(':') ? s === who : s.startsWith(who));
  if (m(e.node)) return true;
  if (e.kind === 'frame') return m(e.peer ?? connPeer.get(`${e.source}#${String(e.conn)}`)) || frameAt(e, who);
  if (e.kind === 'trace') return m(e.rec.peer) || (e.rec.to ?? []).some(m);
  return false;
}

const frameAt = (e: FrameEntry, who: string) => e.remote === who || e.local === who;

/**
 * A time given on the command line, µs since the epoch: an ISO 8601 date-time
 * ("2026-12-03T16:19:39.28Z"), a UTC time of day ("16:19:39.283988", on the day of `firstUs`),
 * or an offset from the first entry ("+1.5s", "+250ms", "+800us"). Undefined when unreadable.
 */
export function parseTimeArg(s: string, firstUs: number): number | undefined {
  const rel = /^\+(\d+(?:\.\d+)?)(s|ms|us)$/.exec(s);
  if (rel) return Math.round(firstUs + Number(rel[1]) * { s: 1e6, ms: 1e3, us: 1 }[rel[2] as 's' | 'ms' | 'us']);
  const tod = /^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(s);
  if (tod) {
    const day = Math.floor(firstUs / 86_400e6) * 86_400e6;
    return day + ((Number(tod[1]) * 60 + Number(tod[2])) * 60 + Number(tod[3])) * 1e6 + Number((tod[4] ?? '').padEnd(6, '0'));
  }
  const iso = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (iso) {
    const ms = Date.parse(iso[1]! + iso[3]!);
    if (Number.isNaN(ms)) return undefined;
    return ms * 1000 + Number((iso[2] ?? '').padEnd(6, '0'));
  }
  return undefined;
}
