/**
 * Per-node counters over dumps: frames and bytes each way, repair traffic (IHAVE and IWANT
 * frames and the ids they carry, copies served on IWANT, deliveries by repair), duplicates,
 * rejections and drops by reason, peer events, stalls; and the gaps in which a node wrote
 * nothing at all, the mark of a process that was stopped (a live node with peers writes a
 * PING to each of them every heartbeat).
 */
import { decodeMessage } from '../wire/codec.js';
import { MESSAGE_TYPE_NAMES, MessageType } from '../wire/messages.js';
import { peekMessageType } from './describe.js';
import type { DumpEntry } from './reader.js';

/** A node writing nothing for longer than this is flagged by default, ms (3 heartbeats of 1 s). */
export const DEFAULT_GAP_MS = 3000;

export interface NodeCounts {
  node: string;
  frames: { in: number; out: number };
  bytes: { in: number; out: number };
  /** Frames per message type name, each way. */
  types: Record<string, { in: number; out: number }>;
  /** Message ids carried by IHAVE and IWANT frames, each way. */
  ihaveIds: { in: number; out: number };
  iwantIds: { in: number; out: number };
  /** Copies sent in answer to IWANT (trace "forwarded" via iwant, one per target). */
  servedOnIwant: number;
  delivered: number;
  deliveredByRepair: number;
  duplicates: number;
  rejected: Record<string, number>;
  dropped: Record<string, number>;
  /** Peer events and stalls (trace lines without a message). */
  events: Record<string, number>;
  /** Lines the dump itself lost (loss lines). */
  lostLines: number;
  /** Intervals longer than the gap threshold in which this node's dump has no line. */
  gaps: Array<{ from: number; to: number; ms: number }>;
}

export function countByNode(entries: readonly DumpEntry[], gapMs = DEFAULT_GAP_MS): NodeCounts[] {
  const byNode = new Map<string, NodeCounts>();
  const lastT = new Map<string, number>();
  const get = (node: string): NodeCounts => {
    let c = byNode.get(node);
    if (!c) {
      c = {
        node, frames: { in: 0, out: 0 }, bytes: { in: 0, out: 0 }, types: {}, ihaveIds: { in: 0, out: 0 }, iwantIds: { in: 0, out: 0 },
        servedOnIwant: 0, delivered: 0, deliveredByRepair: 0, duplicates: 0, rejected: {}, dropped: {}, events: {}, lostLines: 0, gaps: [],
      };
      byNode.set(node, c);
    }
    return c;
  };
  for (const e of entries) {
    if (e.kind === 'malformed' && e.line > 0 && e.node === '?') continue;
    const c = get(e.node);
    const prev = lastT.get(e.node);
    if (prev !== undefined && e.t - prev > gapMs * 1000) c.gaps.push({ from: prev, to: e.t, ms: (e.t - prev) / 1000 });
    if (prev === undefined || e.t > prev) lastT.set(e.node, e.t);
    switch (e.kind) {
      case 'frame': {
        c.frames[e.dir]++;
        c.bytes[e.dir] += e.truncated ?? e.body.length;
        let type = `${peekMessageType(e.body) ?? '?'} (truncated)`;
        if (e.truncated === undefined) {
          try {
            const m = decodeMessage(e.body);
            type = MESSAGE_TYPE_NAMES[m.type] ?? String(m.type);
            if (m.type === MessageType.IHAVE) c.ihaveIds[e.dir] += m.ids.length;
            if (m.type === MessageType.IWANT) c.iwantIds[e.dir] += m.ids.length;
          } catch {
            type = 'MALFORMED';
          }
        }
        (c.types[type] ??= { in: 0, out: 0 })[e.dir]++;
        break;
      }
      case 'trace': {
        const r = e.rec;
        if (r.event === 'delivered') {
          c.delivered++;
          if (r.via === 'repair') c.deliveredByRepair++;
        } else if (r.event === 'duplicate') c.duplicates++;
        else if (r.event === 'rejected') c.rejected[r.reason ?? '?'] = (c.rejected[r.reason ?? '?'] ?? 0) + 1;
        else if (r.event === 'dropped') c.dropped[r.reason ?? '?'] = (c.dropped[r.reason ?? '?'] ?? 0) + 1;
        else if (r.event === 'forwarded' && r.via === 'iwant') c.servedOnIwant += r.to?.length ?? 0;
        else if (!r.msg) c.events[r.event] = (c.events[r.event] ?? 0) + 1;
        break;
      }
      case 'loss':
        c.lostLines += e.rec.frames + e.rec.traces;
        break;
      case 'malformed':
        break;
    }
  }
  return [...byNode.values()];
}
