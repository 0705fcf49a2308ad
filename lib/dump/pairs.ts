/**
 * Connection ends and matched frames across the dumps of several nodes: which end of which
 * dump is the other side of which, and which frame one node wrote as sent is the one another
 * wrote as received. Clock alignment (clock-align.ts), the link view (links.ts) and the
 * message trail (follow.ts) all stand on this. Only dump files count: a capture has one
 * clock for every connection and records no node's view.
 *
 * Two ends pair when their addresses mirror each other (local of one is remote of the other).
 * When they do not (a relay or a NAT between the nodes), ends pair by node ids: an end of
 * node X whose peer is Y with an end of Y whose peer is X, in the order they opened. Frames
 * on a pair match when their bodies are equal, in order: the k-th copy of a body sent on one
 * end is the k-th copy of that body received on the other.
 */
import type { DumpEntry, FrameEntry } from './reader.js';

/** One end of one connection, as one node's dump recorded it. */
export interface ConnEnd {
  /** "source#conn": unique across the inputs. */
  key: string;
  node: string;
  source: string;
  conn: number;
  local: string;
  remote: string;
  /** The peer's node id as this end learned it (null when the handshake never finished). */
  peer: string | null;
  out: FrameEntry[];
  in: FrameEntry[];
  /** The other end, when it is in the inputs. */
  other?: ConnEnd;
  /** How the other end was found: mirrored addresses, or node ids only (relay or NAT). */
  pairedBy?: 'address' | 'node ids';
}

/** A frame sent on one end and received on the other. */
export interface MatchedFrame {
  sent: FrameEntry;
  received: FrameEntry;
}

export interface ConnectionMap {
  ends: ConnEnd[];
  /** Per end key: its out frames matched to the other end's in frames, in send order. */
  matched: Map<string, MatchedFrame[]>;
  /** The end a frame entry belongs to. */
  endOf(e: FrameEntry): ConnEnd | undefined;
}

const endKey = (e: FrameEntry) => `${e.source}#${String(e.conn)}`;

/** Ends, their pairing and matched frames over every dump-file frame in `entries`. */
export function mapConnections(entries: readonly DumpEntry[]): ConnectionMap {
  const byKey = new Map<string, ConnEnd>();
  for (const e of entries) {
    if (e.kind !== 'frame' || typeof e.conn !== 'number') continue;
    const key = endKey(e);
    let end = byKey.get(key);
    if (!end) byKey.set(key, (end = { key, node: e.node, source: e.source, conn: e.conn, local: e.local, remote: e.remote, peer: null, out: [], in: [] }));
    end.peer ??= e.peer;
    (e.dir === 'out' ? end.out : end.in).push(e);
  }
  const ends = [...byKey.values()];
  // Pair by mirrored addresses first (one host, or addresses that survive the path).
  const byAddr = new Map<string, ConnEnd[]>();
  for (const end of ends) {
    const k = `${end.local}|${end.remote}`;
    byAddr.set(k, [...(byAddr.get(k) ?? []), end]);
  }
  for (const end of ends) {
    if (end.other) continue;
    const cands = (byAddr.get(`${end.remote}|${end.local}`) ?? []).filter((o) => !o.other && o.source !== end.source);
    // Ports are reused over time: take the candidate whose traffic overlaps this end's in time.
    const o = cands.sort((x, y) => Math.abs(firstT(x) - firstT(end)) - Math.abs(firstT(y) - firstT(end)))[0];
    if (o) link(end, o, 'address');
  }
  // Then by node ids, in order of first frame, for ends whose addresses do not pair.
  const open = ends.filter((x) => !x.other && x.peer).sort((x, y) => firstT(x) - firstT(y));
  for (const end of open) {
    if (end.other) continue;
    const o = open.find((x) => x !== end && !x.other && x.node === end.peer && x.peer === end.node && x.source !== end.source);
    if (o) link(end, o, 'node ids');
  }
  const matched = new Map<string, MatchedFrame[]>();
  for (const end of ends) matched.set(end.key, end.other ? matchFrames(end.out, end.other.in) : []);
  return { ends, matched, endOf: (e) => byKey.get(endKey(e)) };
}

function link(a: ConnEnd, b: ConnEnd, how: 'address' | 'node ids'): void {
  a.other = b;
  b.other = a;
  a.pairedBy = b.pairedBy = how;
}

const firstT = (e: ConnEnd) => Math.min(e.out[0]?.t ?? Infinity, e.in[0]?.t ?? Infinity);

/** The k-th send of a body matched to the k-th receipt of the same body. */
function matchFrames(sent: FrameEntry[], received: FrameEntry[]): MatchedFrame[] {
  const waiting = new Map<string, FrameEntry[]>();
  for (const r of received) {
    const k = r.body.toString('base64');
    const q = waiting.get(k);
    if (q) q.push(r);
    else waiting.set(k, [r]);
  }
  const out: MatchedFrame[] = [];
  for (const s of sent) {
    const q = waiting.get(s.body.toString('base64'));
    const r = q?.shift();
    if (r) out.push({ sent: s, received: r });
  }
  return out;
}
