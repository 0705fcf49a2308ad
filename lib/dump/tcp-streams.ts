/**
 * From captured packets to protocol frames: strip the link layer (Ethernet, BSD loopback,
 * Linux cooked v1/v2, raw IP), parse IPv4/IPv6 and TCP, reassemble each direction of each
 * connection by sequence number (out-of-order segments held until the gap fills,
 * retransmitted and overlapping bytes taken once), then split the byte stream on the 4-byte
 * length prefix. Frames come out as the same entries a wire dump gives, so the dump tools
 * treat both alike. Nodes are named by node id once a HELLO on the stream reveals it.
 */
import { nodeIdOf } from '../identity.js';
import { decodeMessage } from '../wire/codec.js';
import { FrameDecoder, MAX_FRAME_BYTES_LIMIT } from '../wire/frame.js';
import { MessageType } from '../wire/messages.js';
import { LinkType } from './pcap.js';
import type { Packet } from './pcap.js';
import type { FrameEntry, MalformedEntry } from './reader.js';

interface Segment {
  t: number;
  src: string;
  dst: string;
  seq: number;
  syn: boolean;
  payload: Buffer;
}

/** The IP packet inside a link-layer frame, or undefined for anything else (ARP...). */
export function ipPayload(linkType: number, d: Buffer): Buffer | undefined {
  let ethertype: number;
  let off: number;
  switch (linkType) {
    case LinkType.ETHERNET:
      if (d.length < 14) return undefined;
      ethertype = d.readUInt16BE(12);
      off = 14;
      while ((ethertype === 0x8100 || ethertype === 0x88a8) && d.length >= off + 4) {
        ethertype = d.readUInt16BE(off + 2);
        off += 4;
      }
      break;
    case LinkType.NULL: {
      if (d.length < 4) return undefined;
      // Family in the capturing host's byte order: 2 is IPv4, 24/28/30 are IPv6 on the BSDs.
      const fam = d.readUInt32LE(0) > 0xffff ? d.readUInt32BE(0) : d.readUInt32LE(0);
      return fam === 2 || fam === 24 || fam === 28 || fam === 30 ? d.subarray(4) : undefined;
    }
    case LinkType.LINUX_SLL:
      if (d.length < 16) return undefined;
      ethertype = d.readUInt16BE(14);
      off = 16;
      break;
    case LinkType.LINUX_SLL2:
      if (d.length < 20) return undefined;
      ethertype = d.readUInt16BE(0);
      off = 20;
      break;
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6:
      return d;
    default:
      return undefined;
  }
  return ethertype === 0x0800 || ethertype === 0x86dd ? d.subarray(off) : undefined;
}

function ipAddr(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]`;
}

/** The TCP segment in an IP packet, or undefined (not TCP, a fragment, truncated). */
export function tcpSegment(t: number, ip: Buffer): Segment | undefined {
  if (ip.length < 1) return undefined;
  let src: Buffer, dst: Buffer, tcp: Buffer;
  const version = ip[0]! >> 4;
  if (version === 4) {
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip.length < 20 || ip[9] !== 6) return undefined;
    if ((ip.readUInt16BE(6) & 0x3fff) !== 0) return undefined; // fragmented: not on loopback TCP
    src = ip.subarray(12, 16);
    dst = ip.subarray(16, 20);
    tcp = ip.subarray(ihl, Math.min(ip.length, ip.readUInt16BE(2)));
  } else if (version === 6) {
    if (ip.length < 40) return undefined;
    let next = ip[6]!;
    let off = 40;
    // Skip hop-by-hop, routing and destination-options headers.
    while ((next === 0 || next === 43 || next === 60) && ip.length >= off + 8) {
      next = ip[off]!;
      off += (ip[off + 1]! + 1) * 8;
    }
    if (next !== 6) return undefined;
    src = ip.subarray(8, 24);
    dst = ip.subarray(24, 40);
    tcp = ip.subarray(off, Math.min(ip.length, 40 + ip.readUInt16BE(4)));
  } else {
    return undefined;
  }
  if (tcp.length < 20) return undefined;
  const dataOff = (tcp[12]! >> 4) * 4;
  const flags = tcp[13]!;
  return {
    t,
    src: `${ipAddr(src)}:${tcp.readUInt16BE(0)}`,
    dst: `${ipAddr(dst)}:${tcp.readUInt16BE(2)}`,
    seq: tcp.readUInt32BE(4),
    syn: (flags & 0x02) !== 0,
    payload: tcp.subarray(Math.min(dataOff, tcp.length)),
  };
}

/** One direction of one TCP connection being put back in order. */
class Direction {
  /** Sequence number of the next byte expected; undefined until SYN or the first data. */
  next: number | undefined;
  held = new Map<number, Segment>();
  readonly decoder = new FrameDecoder(MAX_FRAME_BYTES_LIMIT);
  failed = false;
  constructor(readonly src: string, readonly dst: string) {}
}

/** Segments held behind a gap per direction before the direction is given up (bounds memory). */
const MAX_HELD_SEGMENTS = 65_536;

const port = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));

/**
 * Protocol frames in a capture. `onlyPort`: keep only connections with that port at one
 * end. Gaps that never fill and bytes that do not frame become malformed entries.
 */
export function framesFromPackets(packets: Packet[], source: string, onlyPort?: number): Array<FrameEntry | MalformedEntry> {
  const out: Array<FrameEntry | MalformedEntry> = [];
  const dirs = new Map<string, Direction>();
  const emit = (d: Direction, t: number, bytes: Buffer) => {
    if (d.failed) return;
    try {
      d.decoder.push(bytes, (body) => {
        out.push({ kind: 'frame', t, node: d.src, source, conn: `${d.src}>${d.dst}`, dir: 'out', local: d.src, remote: d.dst, peer: null, body: Buffer.from(body) });
      });
    } catch (err) {
      d.failed = true;
      out.push({ kind: 'malformed', t, node: d.src, source, line: 0, error: `${d.src} > ${d.dst}: ${(err as Error).message}; rest of this direction skipped` });
    }
  };
  for (const p of packets) {
    const ip = ipPayload(p.linkType, p.data);
    const s = ip && tcpSegment(p.t, ip);
    if (!s) continue;
    if (onlyPort !== undefined && port(s.src) !== onlyPort && port(s.dst) !== onlyPort) continue;
    const key = `${s.src}>${s.dst}`;
    let d = dirs.get(key);
    if (!d) dirs.set(key, (d = new Direction(s.src, s.dst)));
    if (s.syn) {
      d.next = (s.seq + 1) >>> 0; // a (re)transmitted SYN restarts the direction's numbering
      continue;
    }
    if (s.payload.length === 0) continue;
    if (d.failed) continue;
    d.next ??= s.seq; // joined mid-stream: start at the first data seen
    const same = d.held.get(s.seq);
    if (!same || same.payload.length < s.payload.length) d.held.set(s.seq, s); // keep the longer retransmission
    // A segment past a gap cannot make progress: hold it without rescanning the others.
    if (((s.seq - d.next) | 0) <= 0) drain(d, emit);
    else if (d.held.size > MAX_HELD_SEGMENTS) {
      d.failed = true;
      d.held.clear();
      out.push({ kind: 'malformed', t: s.t, node: d.src, source, line: 0, error: `${d.src} > ${d.dst}: more than ${MAX_HELD_SEGMENTS} segments wait behind a gap that never filled; rest of this direction skipped` });
    }
  }
  for (const d of dirs.values()) {
    if (d.held.size > 0 && !d.failed) {
      const first = Math.min(...[...d.held.keys()].map((k) => (k - d.next!) >>> 0));
      out.push({ kind: 'malformed', t: [...d.held.values()][0]!.t, node: d.src, source, line: 0, error: `${d.src} > ${d.dst}: ${first} byte(s) never captured; ${d.held.size} later segment(s) not decoded` });
    }
  }
  nameNodes(out);
  return out.sort((a, b) => a.t - b.t);
}

/** Feed every held segment that is now contiguous; drop bytes already delivered. */
function drain(d: Direction, emit: (d: Direction, t: number, bytes: Buffer) => void): void {
  for (let progress = true; progress; ) {
    progress = false;
    for (const [seq, s] of d.held) {
      const ahead = (seq - d.next!) | 0; // signed 32-bit distance: wraps correctly
      if (ahead > 0) continue; // a gap before it: keep waiting
      d.held.delete(seq);
      const skip = -ahead;
      if (skip < s.payload.length) {
        emit(d, s.t, s.payload.subarray(skip));
        d.next = (d.next! + s.payload.length - skip) >>> 0;
      }
      progress = true;
    }
  }
}

/**
 * Name endpoints: "host:port" until a node id is known for it. Node ids travel encrypted in
 * the handshake (§4.1), so a capture alone does not reveal them.
 */
function nameNodes(entries: Array<FrameEntry | MalformedEntry>): void {
  const ids = new Map<string, string>();
  for (const e of entries) {
    if (e.kind !== 'frame') continue;
    e.node = ids.get(e.local) ?? e.local;
    e.peer = ids.get(e.remote) ?? null;
  }
}
