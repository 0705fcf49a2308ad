/**
 * Follow one gossip message across the dumps of several nodes: every frame that carried or
 * named it and every decision a node traced about it, in time order, then a verdict per
 * node that answers "why did node X (not) get message M".
 */
import { describeFrame, SHORT_ID_CHARS } from './describe.js';
import { messageDelays } from './delays.js';
import type { NodeDelivery } from './delays.js';
import { mapConnections } from './pairs.js';
import type { ConnectionMap } from './pairs.js';
import type { DumpEntry, FrameEntry } from './reader.js';

/** What an id prefix given to --msg matches in the inputs. */
export interface IdMatches {
  /** Full message ids starting with the prefix, in order of first appearance. */
  messages: Array<{ id: string; firstT: number; origin?: string; text?: string }>;
  /** Node ids (writers of dumps, peers, ends named in captures) starting with the prefix. */
  nodes: string[];
}

/** Every message id and node id in `entries` that starts with `prefix` (hex). */
export function matchIds(entries: readonly DumpEntry[], prefix: string): IdMatches {
  const p = prefix.toLowerCase();
  const messages = new Map<string, { id: string; firstT: number; origin?: string; text?: string }>();
  const nodes = new Set<string>();
  const node = (x: string | null | undefined) => {
    if (x && /^[0-9a-f]{64}$/.test(x) && x.startsWith(p)) nodes.add(x);
  };
  const msg = (id: string, t: number) => {
    if (!id.startsWith(p)) return undefined;
    let m = messages.get(id);
    if (!m) messages.set(id, (m = { id, firstT: t }));
    return m;
  };
  for (const e of entries) {
    node(e.node);
    if (e.kind === 'frame') {
      node(e.peer);
      const d = describeFrame(e);
      for (const id of d.msgIds) {
        const m = msg(id, e.t);
        if (m && d.type === 'GOSSIP' && !m.text) {
          m.origin = d.fields.originId as string;
          m.text = `topic=${JSON.stringify(d.fields.topic)} payload=${String(d.fields.payload)}`;
        }
      }
    } else if (e.kind === 'trace') {
      node(e.rec.peer);
      for (const t of e.rec.to ?? []) node(t);
      if (e.rec.msg) msg(e.rec.msg, e.t);
    }
  }
  return { messages: [...messages.values()], nodes: [...nodes] };
}

export interface MessageStep {
  t: number;
  node: string;
  /** A sentence: "forwarded to b1c2d3e4, 99aa0011 (ttl 9)", "← a1b2c3d4 GOSSIP ttl=9 hops=1"... */
  text: string;
}

export interface NodeVerdict {
  node: string;
  verdict: 'origin' | 'delivered' | 'duplicate only' | 'rejected' | 'sent to it (capture)' | 'lost in a relay (capture)' | 'advertised, not fetched' | 'never received';
  detail: string;
}

export interface MessageTrail {
  /** Full id (64 hex), or the prefix asked for when nothing in the dumps carries it. */
  id: string;
  steps: MessageStep[];
  nodes: NodeVerdict[];
}

const timeOf = (us: number): string => new Date(Math.floor(us / 1000)).toISOString().slice(11, 19) + '.' + String(Math.floor(us % 1e6)).padStart(6, '0');

const short = (s: string | null | undefined): string => (s ? (s.includes(':') ? s : s.slice(0, SHORT_ID_CHARS)) : '?');

/** "+178.2 ms by repair from 603c1def, hops 3" */
function deliveryText(d: NodeDelivery): string {
  return `+${d.delayMs!.toFixed(1)} ms by ${d.via} from ${short(d.from)}, hops ${d.hops ?? '?'}`;
}

/**
 * The trail of the message whose id starts with `idPrefix` (hex, any length; the first
 * match is followed: resolve an ambiguous prefix with matchIds first). `map` (from
 * mapConnections over the same entries) lets copies sent and never received be marked.
 */
export function followMessage(entries: DumpEntry[], idPrefix: string, map: ConnectionMap = mapConnections(entries)): MessageTrail {
  const prefix = idPrefix.toLowerCase();
  let id: string | undefined;
  const steps: MessageStep[] = [];
  const facts = new Map<string, { origin?: boolean; delivered?: string; duplicate?: number; rejected?: string; gotCopy?: boolean; onWire: FrameEntry[]; advertised?: boolean; lost: string[]; neverArrived: string[]; stalls: string[] }>();
  const relays = capturedRelays(entries);
  const fact = (node: string) => {
    let f = facts.get(node);
    if (!f) facts.set(node, (f = { lost: [], onWire: [], neverArrived: [], stalls: [] }));
    return f;
  };
  // Frames sent on a connection whose other end is in the dumps and that it never received.
  const arrived = new Set<FrameEntry>();
  for (const list of map.matched.values()) for (const m of list) arrived.add(m.sent);
  // Every node that wrote a dump, or that a capture names by id (unnamed endpoints are left out).
  for (const e of entries) if (e.kind !== 'malformed' && /^[0-9a-f]{64}$/.test(e.node)) fact(e.node);
  const matches = (x: string) => (id ? x === id : x.startsWith(prefix));
  for (const e of entries) {
    if (e.kind === 'frame') {
      const d = describeFrame(e);
      const hit = d.msgIds.find(matches);
      if (!hit) continue;
      id ??= hit;
      const arrow = e.dir === 'out' ? `→ ${short(e.peer ?? e.remote)}` : `← ${short(e.peer ?? e.remote)}`;
      // A capture has no node's view, only TCP connections: name the connection.
      const captured = typeof e.conn === 'string';
      const where = captured ? ` [${e.local} > ${e.remote}]` : '';
      let missing = '';
      const end = captured || e.dir === 'in' ? undefined : map.endOf(e);
      if (end?.other && !arrived.has(e)) {
        missing = `  ✗ never received by ${short(end.other.node)}`;
        if (d.type === 'GOSSIP') fact(end.other.node).neverArrived.push(`from ${short(e.node)} at ${timeOf(e.t)}`);
      }
      steps.push({ t: e.t, node: e.node, text: `${arrow} ${d.type === 'GOSSIP' ? d.text.replace(/ payload=.*$/, '') : d.type + ' (names it)'}${where}${missing}` });
      if (d.type === 'GOSSIP' && d.fields.originId === e.node) fact(e.node).origin = true;
      if (captured && d.type === 'GOSSIP') fact(e.peer ?? e.remote).onWire.push(e);
      if (e.dir === 'in' && d.type === 'GOSSIP') fact(e.node).gotCopy = true;
      if (e.dir === 'in' && d.type === 'IHAVE') fact(e.node).advertised = true;
    } else if (e.kind === 'trace') {
      const r = e.rec;
      if (r.msg === undefined) {
        // Peer events matter once the message is in flight: a cut link explains a miss.
        if (id && (r.event === 'disconnect' || r.event === 'partitioned')) {
          fact(e.node).lost.push(`${r.event} ${short(r.peer)}${r.reason ? ` (${r.reason})` : ''}`);
          steps.push({ t: e.t, node: e.node, text: `${r.event} ${short(r.peer)}${r.reason ? `: ${r.reason}` : ''}` });
        } else if (id && r.event === 'stalled') {
          const f = fact(e.node);
          // The process was stopped: what it received late, it received late for that reason.
          if (!f.delivered) f.stalls.push(r.reason ?? 'stalled');
          f.lost.push(r.reason ?? 'stalled');
          steps.push({ t: e.t, node: e.node, text: `STALLED: ${r.reason ?? 'event loop stalled'}` });
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
  const delays = new Map<string, NodeDelivery>();
  if (id) for (const n of messageDelays(entries.filter((e) => e.kind !== 'trace' || e.rec.msg === id || e.rec.msg === undefined)).find((m) => m.id === id)?.nodes ?? []) delays.set(n.node, n);
  const nodes: NodeVerdict[] = [...facts].map(([node, f]) => {
    const lost = f.lost.length > 0 ? `; meanwhile: ${f.lost.join(', ')}` : '';
    const never = f.neverArrived.length > 0 ? `; sent to it and never received: ${f.neverArrived.join(', ')}` : '';
    if (f.origin) return { node, verdict: 'origin', detail: 'published it' };
    const delay = delays.get(node);
    if (f.delivered && delay?.delayMs !== undefined) {
      const stalled = f.stalls.length > 0 ? `; before that this node's ${f.stalls.join(', ')}` : '';
      return { node, verdict: 'delivered', detail: deliveryText(delay) + (f.duplicate ? `, then ${f.duplicate} duplicate(s)` : '') + never + stalled };
    }
    if (f.delivered) return { node, verdict: 'delivered', detail: f.delivered + (f.duplicate ? `, then ${f.duplicate} duplicate(s)` : '') + never };
    if (f.rejected) return { node, verdict: 'rejected', detail: f.rejected };
    if (f.duplicate) return { node, verdict: 'duplicate only', detail: `${f.duplicate} copies counted as duplicates (seen before these dumps began?)` };
    if (f.onWire.length > 0) {
      const chains = relayChains(f.onWire, relays);
      const reached = chains.filter((c) => !relays.has(String(c.at(-1)!.conn)));
      const text = chains.map((c) => {
        const legs = c.map((x) => `${x.local} > ${x.remote}`).join(' → relay → ');
        const last = c.at(-1)!;
        const exit = relays.get(String(last.conn));
        return exit
          ? `${timeOf(c[0]!.t)} ${legs}: went into a relay (which passes this connection on as ${exit.replace('>', ' > ')}) and never came out`
          : `${timeOf(c[0]!.t)} ${legs}${c.length > 1 ? ` (arrived ${timeOf(last.t)})` : ''}`;
      });
      const head = `${chains.length} cop${chains.length === 1 ? 'y' : 'ies'} on the wire towards it: ${text.join('; ')}`;
      if (reached.length === 0) return { node, verdict: 'lost in a relay (capture)', detail: head };
      return { node, verdict: 'sent to it (capture)', detail: `${head} (a capture records no decisions)` };
    }
    if (f.advertised) return { node, verdict: 'advertised, not fetched', detail: `an IHAVE named it but no copy arrived${never}${lost}` };
    return {
      node,
      verdict: 'never received',
      detail: (f.gotCopy ? 'a copy arrived but no decision was traced' : 'no copy and no IHAVE reached it in these dumps') + never + lost,
    };
  });
  return { id: id ?? prefix, steps, nodes };
}

/**
 * Relays seen in captures: a connection whose HANDSHAKE frames (each carries a fresh Noise
 * ephemeral key or ciphertext under it: no two sessions share one) show up again, byte for
 * byte, on another connection later is relayed into it. Returns, per captured connection
 * ("src>dst") that enters a relay, the connection it comes out on.
 */
function capturedRelays(entries: readonly DumpEntry[]): Map<string, string> {
  const firstSeen = new Map<string, string>();
  const next = new Map<string, string>();
  for (const e of entries) {
    if (e.kind !== 'frame' || typeof e.conn !== 'string' || e.truncated !== undefined || e.sealed !== undefined) continue;
    if (describeFrame(e).type !== 'HANDSHAKE') continue;
    const body = e.body.toString('hex');
    const from = firstSeen.get(body);
    if (from === undefined) firstSeen.set(body, e.conn);
    else if (from !== e.conn && !next.has(from)) next.set(from, e.conn);
  }
  return next;
}

/** Copies of one message grouped into chains: a copy entering a relay, then the same bytes coming out of it. */
function relayChains(copies: FrameEntry[], relays: Map<string, string>): FrameEntry[][] {
  const chains: FrameEntry[][] = [];
  for (const c of [...copies].sort((a, b) => a.t - b.t)) {
    const chain = chains.find((ch) => relays.get(String(ch.at(-1)!.conn)) === c.conn && ch.at(-1)!.body.equals(c.body));
    if (chain) chain.push(c);
    else chains.push([c]);
  }
  return chains;
}
