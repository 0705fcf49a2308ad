/**
 * Every connection in a set of dumps, both ends side by side: when the first and last frame
 * went each way, how many frames one end sent that the other never recorded receiving (and
 * how many of them after the last one it did receive: the moment the link went dead), the
 * intervals in which an end heard nothing, and the ends that do not pair up (the other node
 * kept no dump, the connection never got past the handshake, or the addresses differ
 * because a relay or a NAT sits between the nodes).
 */
import { describeFrame } from './describe.js';
import type { ConnEnd, ConnectionMap } from './pairs.js';
import type { FrameEntry } from './reader.js';

/** An end hearing nothing for longer than this is listed as silent by default, ms (3 missed 1 s heartbeats). */
export const DEFAULT_SILENCE_MS = 3000;

/** One direction of one connection, from the sending end to the receiving end. */
export interface LinkDirection {
  from: string;
  to: string | null;
  sent: number;
  received: number | null;
  firstSent?: number;
  lastSent?: number;
  firstReceived?: number;
  lastReceived?: number;
  /** Frames sent that the other end never recorded receiving (null: the other end is not in the inputs). */
  lost: number | null;
  /** Of those, frames sent after the last frame that did arrive: the link was dead from then on. */
  sentAfterLastReceived: number | null;
  /** Send time of the first frame that never arrived, µs. */
  firstLostAt?: number;
  /**
   * True when the frames that never arrived are GOODBYEs sent while the other end was closing
   * too (its last frame was its own GOODBYE): both ends closing at once, nothing lost.
   */
  lostOnlyAtClose?: boolean;
}

export interface Silence {
  /** The node that heard nothing, and from whom. */
  node: string;
  peer: string | null;
  from: number;
  to: number;
  ms: number;
  /** True when the silence ran until the end of the end's frames (the link was closed or the dump ended). */
  untilEnd: boolean;
}

export interface LinkView {
  /** The end with the earlier first frame, then its other end (when found). */
  a: EndSummary;
  b?: EndSummary;
  pairedBy?: 'address' | 'node ids';
  /** Why b is missing or why the addresses do not mirror. */
  note?: string;
  directions: LinkDirection[];
  silences: Silence[];
}

export interface EndSummary {
  node: string;
  conn: number;
  local: string;
  remote: string;
  peer: string | null;
  source: string;
}

export function linkViews(map: ConnectionMap, silenceMs = DEFAULT_SILENCE_MS): LinkView[] {
  const done = new Set<ConnEnd>();
  const dumpNodes = new Set(map.ends.map((e) => e.node));
  const views: LinkView[] = [];
  const ordered = [...map.ends].sort((x, y) => first(x) - first(y));
  for (const end of ordered) {
    if (done.has(end)) continue;
    done.add(end);
    const other = end.other;
    if (other) done.add(other);
    const view: LinkView = { a: summary(end), directions: [], silences: [] };
    if (other) {
      view.b = summary(other);
      view.pairedBy = end.pairedBy;
      if (end.pairedBy === 'node ids') {
        view.note = `addresses do not pair (${end.local} > ${end.remote} here, ${other.remote} > ${other.local} there): a relay or NAT between them`;
      }
      view.directions.push(direction(end, other, map), direction(other, end, map));
    } else {
      view.note = !end.peer
        ? `the handshake never finished; ${end.out.length} frame(s) out, ${end.in.length} in`
        : dumpNodes.has(end.peer)
          ? `${end.peer.slice(0, 8)} kept a dump but has no end for ${end.remote} > ${end.local}, nor any unpaired end with this node`
          : `no dump of ${end.peer.slice(0, 8)} in the inputs`;
      view.directions.push(direction(end, undefined, map));
      if (end.in.length > 0) view.directions.push(oneSided(end));
    }
    for (const e of other ? [end, other] : [end]) view.silences.push(...silences(e, silenceMs));
    views.push(view);
  }
  return views;
}

const first = (e: ConnEnd) => Math.min(e.out[0]?.t ?? Infinity, e.in[0]?.t ?? Infinity);

function summary(e: ConnEnd): EndSummary {
  return { node: e.node, conn: e.conn, local: e.local, remote: e.remote, peer: e.peer, source: e.source };
}

function direction(from: ConnEnd, to: ConnEnd | undefined, map: ConnectionMap): LinkDirection {
  const d: LinkDirection = {
    from: from.node, to: to?.node ?? from.peer, sent: from.out.length, received: to ? to.in.length : null,
    firstSent: from.out[0]?.t, lastSent: from.out.at(-1)?.t, firstReceived: to?.in[0]?.t, lastReceived: to?.in.at(-1)?.t,
    lost: null, sentAfterLastReceived: null,
  };
  if (to) {
    const matched = map.matched.get(from.key) ?? [];
    const arrived = new Set<FrameEntry>(matched.map((m) => m.sent));
    const lost = from.out.filter((f) => !arrived.has(f));
    d.lost = lost.length;
    d.firstLostAt = lost[0]?.t;
    const lastArrivedSend = matched.at(-1)?.sent.t ?? -Infinity;
    d.sentAfterLastReceived = from.out.filter((f) => f.t > lastArrivedSend).length;
    const lastOfOther = to.out.at(-1);
    if (lost.length > 0 && lost.every((f) => describeFrame(f).type === 'GOODBYE') && lastOfOther && describeFrame(lastOfOther).type === 'GOODBYE') {
      d.lostOnlyAtClose = true;
    }
  }
  return d;
}

/** Frames an end received whose sender kept no dump. */
function oneSided(end: ConnEnd): LinkDirection {
  return {
    from: end.peer ?? end.remote, to: end.node, sent: 0, received: end.in.length,
    firstReceived: end.in[0]?.t, lastReceived: end.in.at(-1)?.t, lost: null, sentAfterLastReceived: null,
  };
}

/** Intervals longer than silenceMs in which `end` received nothing, while the connection lasted. */
function silences(end: ConnEnd, silenceMs: number): Silence[] {
  const out: Silence[] = [];
  const lastAny = Math.max(end.out.at(-1)?.t ?? -Infinity, end.in.at(-1)?.t ?? -Infinity);
  let prev = first(end);
  if (!Number.isFinite(prev)) return out;
  for (const f of end.in) {
    if (f.t - prev > silenceMs * 1000) out.push({ node: end.node, peer: end.peer, from: prev, to: f.t, ms: (f.t - prev) / 1000, untilEnd: false });
    prev = Math.max(prev, f.t);
  }
  if (lastAny - prev > silenceMs * 1000) out.push({ node: end.node, peer: end.peer, from: prev, to: lastAny, ms: (lastAny - prev) / 1000, untilEnd: true });
  return out;
}
