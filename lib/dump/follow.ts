/**
 * Follow one gossip message across the dumps of several nodes: every frame that carried or
 * named it and every decision a node traced about it, in time order, then a verdict per
 * node that answers "why did node X (not) get message M".
 */
import { describeBody, SHORT_ID_CHARS } from './describe.js';
import type { DumpEntry } from './reader.js';

export interface MessageStep {
  t: number;
  node: string;
  /** A sentence: "forwarded to b1c2d3e4, 99aa0011 (ttl 9)", "← a1b2c3d4 GOSSIP ttl=9 hops=1"... */
  text: string;
}

export interface NodeVerdict {
  node: string;
  verdict: 'origin' | 'delivered' | 'duplicate only' | 'rejected' | 'sent to it (capture)' | 'advertised, not fetched' | 'never received';
  detail: string;
}

export interface MessageTrail {
  /** Full id (64 hex), or the prefix asked for when nothing in the dumps carries it. */
  id: string;
  steps: MessageStep[];
  nodes: NodeVerdict[];
}

const short = (s: string | null | undefined): string => (s ? (s.includes(':') ? s : s.slice(0, SHORT_ID_CHARS)) : '?');

/** The trail of the message whose id starts with `idPrefix` (hex, any length). */
export function followMessage(entries: DumpEntry[], idPrefix: string): MessageTrail {
  const prefix = idPrefix.toLowerCase();
  let id: string | undefined;
  const steps: MessageStep[] = [];
  const facts = new Map<string, { origin?: boolean; delivered?: string; duplicate?: number; rejected?: string; gotCopy?: boolean; onWire?: string; advertised?: boolean; lost: string[] }>();
  const fact = (node: string) => {
    let f = facts.get(node);
    if (!f) facts.set(node, (f = { lost: [] }));
    return f;
  };
  // Every node that wrote a dump, or that a capture names by id (unnamed endpoints are left out).
  for (const e of entries) if (e.kind !== 'malformed' && /^[0-9a-f]{64}$/.test(e.node)) fact(e.node);
  const matches = (x: string) => (id ? x === id : x.startsWith(prefix));
  for (const e of entries) {
    if (e.kind === 'frame') {
      const d = describeBody(e.body);
      const hit = d.msgIds.find(matches);
      if (!hit) continue;
      id ??= hit;
      const arrow = e.dir === 'out' ? `→ ${short(e.peer ?? e.remote)}` : `← ${short(e.peer ?? e.remote)}`;
      // A capture has no node's view, only TCP connections: name the connection.
      const captured = typeof e.conn === 'string';
      const where = captured ? ` [${e.local} > ${e.remote}]` : '';
      steps.push({ t: e.t, node: e.node, text: `${arrow} ${d.type === 'GOSSIP' ? d.text.replace(/ payload=.*$/, '') : d.type + ' (names it)'}${where}` });
      if (d.type === 'GOSSIP' && d.fields.originId === e.node) fact(e.node).origin = true;
      if (captured && d.type === 'GOSSIP') fact(e.peer ?? e.remote).onWire ??= `a copy was sent to it on ${e.local} > ${e.remote} (a capture records no decisions)`;
      if (e.dir === 'in' && d.type === 'GOSSIP') fact(e.node).gotCopy = true;
      if (e.dir === 'in' && d.type === 'IHAVE') fact(e.node).advertised = true;
    } else if (e.kind === 'trace') {
      const r = e.rec;
      if (r.msg === undefined) {
        // Peer events matter once the message is in flight: a cut link explains a miss.
        if (id && (r.event === 'disconnect' || r.event === 'partitioned')) {
          fact(e.node).lost.push(`${r.event} ${short(r.peer)}${r.reason ? ` (${r.reason})` : ''}`);
          steps.push({ t: e.t, node: e.node, text: `${r.event} ${short(r.peer)}${r.reason ? `: ${r.reason}` : ''}` });
        }
        continue;
      }
      if (!matches(r.msg)) continue;
      id ??= r.msg;
      const f = fact(e.node);
      let text: string;
      switch (r.event) {
        case 'forwarded':
          if (!r.peer && r.via === 'push') f.origin = true;
          text = `${r.via === 'iwant' ? 'served on IWANT' : r.peer ? `forwarded (from ${short(r.peer)})` : 'published'} to ${r.to?.length ? r.to.map(short).join(', ') : 'nobody (no eligible peer)'} ttl ${r.ttl}`;
          break;
        case 'delivered':
          f.delivered ??= `from ${short(r.peer)}, hops ${r.hops}`;
          text = `delivered (from ${short(r.peer)}, hops ${r.hops})`;
          break;
        case 'duplicate':
          f.duplicate = (f.duplicate ?? 0) + 1;
          text = `duplicate from ${short(r.peer)}`;
          break;
        case 'rejected':
          f.rejected ??= `${r.reason} (copy from ${short(r.peer)})`;
          text = `rejected ${r.reason} (from ${short(r.peer)})`;
          break;
        case 'dropped':
          text = `dropped: ${r.reason}${r.peer ? ` (to ${short(r.peer)})` : ''}`;
          break;
        default:
          text = r.event;
      }
      steps.push({ t: e.t, node: e.node, text });
    }
  }
  const nodes: NodeVerdict[] = [...facts].map(([node, f]) => {
    const lost = f.lost.length > 0 ? `; meanwhile: ${f.lost.join(', ')}` : '';
    if (f.origin) return { node, verdict: 'origin', detail: 'published it' };
    if (f.delivered) return { node, verdict: 'delivered', detail: f.delivered + (f.duplicate ? `, then ${f.duplicate} duplicate(s)` : '') };
    if (f.rejected) return { node, verdict: 'rejected', detail: f.rejected };
    if (f.duplicate) return { node, verdict: 'duplicate only', detail: `${f.duplicate} copies counted as duplicates (seen before these dumps began?)` };
    if (f.onWire) return { node, verdict: 'sent to it (capture)', detail: f.onWire };
    if (f.advertised) return { node, verdict: 'advertised, not fetched', detail: `an IHAVE named it but no copy arrived${lost}` };
    return {
      node,
      verdict: 'never received',
      detail: (f.gotCopy ? 'a copy arrived but no decision was traced' : 'no copy and no IHAVE reached it in these dumps') + lost,
    };
  });
  return { id: id ?? prefix, steps, nodes };
}
