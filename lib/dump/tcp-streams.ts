/**
 * From captured packets to protocol frames: strip the link layer (Ethernet, BSD loopback,
 * Linux cooked v1/v2, raw IP), parse IPv4/IPv6 and TCP, reassemble each direction of each
 * connection by sequence number (out-of-order segments held until the gap fills,
 * retransmitted and overlapping bytes taken once), then split the byte stream on the 4-byte
 * length prefix. Frames come out as the same entries a wire dump gives, so the dump tools
 * treat both alike.
 *
 * Protocol v2 (docs/PROTOCOL.md §4.1, §4.2): a connection starts with three HANDSHAKE frames
 * in clear (two from the initiator, one from the responder); on an encrypted session each
 * direction then carries records. With the session's key-log line (matched by the
 * initiator's ephemeral key, the first 32 bytes of the first HANDSHAKE) the records are
 * decrypted and their plaintext split into frames as above, and the ends are named by the
 * node ids the line carries; without it each record is one entry marked `sealed` (shown as
 * "encrypted record, N bytes"). Node ids travel encrypted, so without a key log the ends
 * keep their "host:port" names. Plaintext sessions decode as frames throughout.
 */
import { CipherState, TAG_BYTES } from '../noise/cipher-state.js';
import type { SessionKeys } from '../noise/key-log.js';
import { MIN_RECORD_BYTES, RECORD_HEADER_BYTES, REKEY_AFTER_RECORDS } from '../noise/records.js';
import { decodeInitPayload, decodeMessage } from '../wire/codec.js';
import type { InitPayload } from '../wire/codec.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES_LIMIT } from '../wire/frame.js';
import { peekMessageType } from './describe.js';
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
  /** The bytes captured; fewer than `claimed` when the capture cut the packet (snaplen). */
  payload: Buffer;
  /** TCP payload bytes the packet carried, by its IP length. */
  claimed: number;
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
  let tcpClaimed: number; // TCP header and payload bytes the packet carried, by its IP length
  const version = ip[0]! >> 4;
  if (version === 4) {
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip.length < 20 || ip[9] !== 6) return undefined;
    if ((ip.readUInt16BE(6) & 0x3fff) !== 0) return undefined; // fragmented: not on loopback TCP
    src = ip.subarray(12, 16);
    dst = ip.subarray(16, 20);
    tcp = ip.subarray(ihl, Math.min(ip.length, ip.readUInt16BE(2)));
    tcpClaimed = ip.readUInt16BE(2) - ihl;
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
    tcpClaimed = 40 + ip.readUInt16BE(4) - off;
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
    claimed: Math.max(0, tcpClaimed - dataOff),
  };
}

/** Captured bytes of one direction, by stream offset: data, or a range the capture cut off (snaplen). */
interface Piece {
  off: number;
  end: number;
  t: number;
  /** The bytes, for a captured piece; undefined for bytes the packet carried but the capture cut (snaplen). */
  bytes?: Buffer;
  /** The piece starts where its TCP segment started (where a sender's write, and so a frame, often begins). */
  segmentStart: boolean;
}

/**
 * One direction of one TCP connection as the capture saw it: pieces of the byte stream by
 * offset from its first byte, with the bytes a truncating capture (snaplen) cut off and the
 * ranges no packet covered told apart.
 */
export class CapturedStream {
  readonly pieces: Piece[] = [];
  constructor(readonly src: string, readonly dst: string) {}

  /** Offset just past the last byte any packet carried. */
  get length(): number {
    return this.pieces.at(-1)?.end ?? 0;
  }

  /**
   * `n` bytes from `off`: `bytes` when all were captured; else `cut` (a packet carried them,
   * the capture kept fewer), `gap` (no packet carried them) or `end` (past the last packet),
   * for the first byte that is missing, with how many bytes from `off` were captured.
   */
  read(off: number, n: number): { bytes?: Buffer; missing?: 'cut' | 'gap' | 'end'; have: number; t: number } {
    const parts: Buffer[] = [];
    let at = off;
    let t = 0;
    let i = this.pieceAt(off);
    while (at < off + n) {
      const p = this.pieces[i];
      if (!p) return { missing: 'end', have: at - off, t };
      if (p.off > at) return { missing: 'gap', have: at - off, t };
      if (!p.bytes) return { missing: 'cut', have: at - off, t };
      const take = Math.min(p.end, off + n) - at;
      parts.push(p.bytes.subarray(at - p.off, at - p.off + take));
      at += take;
      t = p.t;
      i++;
    }
    return { bytes: parts.length === 1 ? parts[0]! : Buffer.concat(parts), have: n, t };
  }

  /** Index of the piece holding `off`, or of the first piece after it. */
  pieceAt(off: number): number {
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pieces[mid]!.end <= off) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Offset of the first captured piece after `off` that starts a TCP segment (for resynchronising). */
  nextSegmentStart(off: number): number | undefined {
    for (let i = this.pieceAt(off); i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (p.off > off && p.bytes && p.segmentStart) return p.off;
    }
    return undefined;
  }
}

interface SegmentRecord {
  rel: number;
  t: number;
  payload: Buffer;
  claimed: number;
}

const port = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));

/** How a capture is read: which connections, and the key log that opens encrypted sessions. */
export interface CaptureReadOptions {
  /** Keep only connections with this port at one end. */
  onlyPort?: number;
  /** Sessions' keys by initiator ephemeral key (hex), from parseKeyLog. */
  keys?: ReadonlyMap<string, SessionKeys>;
  /** Records per key (the sessions' rekey interval). Default REKEY_AFTER_RECORDS (65536); small values are for tests. */
  rekeyAfterRecords?: number;
}

/**
 * Protocol frames in a capture. `onlyPort` (or options): keep only connections with that
 * port at one end; `keys` decrypts the sessions it has lines for. Bytes a truncating capture
 * cut off make frames that are shown as truncated (type and length kept); bytes no packet
 * carried, and bytes that do not frame, become malformed entries; decoding resumes at the
 * next frame boundary it can find.
 */
export function framesFromPackets(packets: Packet[], source: string, opts: number | CaptureReadOptions = {}): Array<FrameEntry | MalformedEntry> {
  const { onlyPort, keys, rekeyAfterRecords = REKEY_AFTER_RECORDS } = typeof opts === 'number' ? { onlyPort: opts } : opts;
  const out: Array<FrameEntry | MalformedEntry> = [];
  const dirs = new Map<string, { src: string; dst: string; base: number | undefined; segs: SegmentRecord[] }>();
  for (const p of packets) {
    const ip = ipPayload(p.linkType, p.data);
    const s = ip && tcpSegment(p.t, ip);
    if (!s) continue;
    if (onlyPort !== undefined && port(s.src) !== onlyPort && port(s.dst) !== onlyPort) continue;
    const key = `${s.src}>${s.dst}`;
    let d = dirs.get(key);
    if (!d) dirs.set(key, (d = { src: s.src, dst: s.dst, base: undefined, segs: [] }));
    if (s.syn) {
      d.base = (s.seq + 1) >>> 0; // a (re)transmitted SYN restarts the direction's numbering
      d.segs = [];
      continue;
    }
    if (s.claimed === 0) continue;
    d.base ??= s.seq; // joined mid-stream: start at the first data seen
    d.segs.push({ rel: (s.seq - d.base) | 0, t: s.t, payload: s.payload, claimed: s.claimed }); // signed 32-bit distance: wraps correctly
  }
  const streams = new Map<string, CapturedStream>();
  for (const [key, d] of dirs) if (d.segs.length > 0) streams.set(key, assemble(d.src, d.dst, d.segs));
  const done = new Set<string>();
  for (const [key, stream] of streams) {
    if (done.has(key)) continue;
    const backKey = `${stream.dst}>${stream.src}`;
    done.add(key).add(backKey);
    framesOfConnection([stream, streams.get(backKey)].filter((x): x is CapturedStream => x !== undefined), source, out, keys, rekeyAfterRecords);
  }
  return out.sort((a, b) => a.t - b.t);
}

/**
 * The initiator's first HANDSHAKE (Noise message 1) at the start of a direction, whole or as
 * much as the capture kept: its ephemeral key when the first 32 noise bytes were captured,
 * its init payload when it parses. Undefined when the direction does not start so.
 */
function firstHandshake(stream: CapturedStream): { ephemeral?: string; init?: InitPayload } | undefined {
  const head = stream.read(0, FRAME_HEADER_BYTES);
  if (!head.bytes) return undefined;
  const len = head.bytes.readUInt32BE(0);
  if (len > MAX_FRAME_BYTES_LIMIT) return undefined;
  const whole = stream.read(FRAME_HEADER_BYTES, len);
  const body = whole.bytes ?? stream.read(FRAME_HEADER_BYTES, whole.have).bytes ?? EMPTY;
  if (peekMessageType(body) !== 'HANDSHAKE') return undefined;
  if (whole.bytes) {
    try {
      const m = decodeMessage(whole.bytes);
      if (m.type === MessageType.HANDSHAKE && m.noise.length > 32) {
        return { ephemeral: m.noise.subarray(0, 32).toString('hex'), init: decodeInitPayload(m.noise.subarray(32)) };
      }
    } catch {
      // Not message 1 (message 2 starts the responder's direction): no init payload.
    }
    return undefined;
  }
  // Cut by the capture: [HANDSHAKE, bin8/bin16 noise] — the ephemeral key, if it was kept.
  const at = body[2] === 0xc4 ? 4 : body[2] === 0xc5 ? 5 : -1;
  return at > 0 && body.length >= at + 32 ? { ephemeral: body.subarray(at, at + 32).toString('hex') } : {};
}

/**
 * Both directions of one TCP connection (or the one the capture saw). The direction that
 * opens with Noise message 1 is the initiator's; on an encrypted session its first two
 * HANDSHAKE frames and the responder's first one are in clear, records follow.
 */
function framesOfConnection(
  streams: CapturedStream[],
  source: string,
  out: Array<FrameEntry | MalformedEntry>,
  keys: ReadonlyMap<string, SessionKeys> | undefined,
  rekeyAfterRecords: number,
): void {
  let hs: ReturnType<typeof firstHandshake>;
  let initiator: CapturedStream | undefined;
  for (const st of streams) {
    hs = firstHandshake(st);
    if (hs) {
      initiator = st;
      break;
    }
  }
  // A cut message 1 (its init payload lost) is taken as encrypted: the default, and the only
  // mode outside a lab.
  if (!hs || !initiator || hs.init?.encrypted === false) {
    // A plaintext session, or one the capture joined after its handshake: frames throughout.
    for (const st of streams) framesOfStream(st, source, out);
    return;
  }
  const line = hs.ephemeral === undefined ? undefined : keys?.get(hs.ephemeral);
  const mine: Array<FrameEntry | MalformedEntry> = [];
  for (const st of streams) {
    const fromInitiator = st === initiator;
    let handshakes = 0;
    const clearFrames = fromInitiator ? 2 : 1;
    const end = framesOfStream(st, source, mine, {
      until: (body) => peekMessageType(body) === 'HANDSHAKE' && ++handshakes === clearFrames,
    });
    if (end !== undefined) recordsOfStream(st, end, source, mine, line && (fromInitiator ? line.i2r : line.r2i), rekeyAfterRecords);
  }
  if (line?.initiatorId && line.responderId) {
    const name = (addr: string) => (addr === initiator.src ? line.initiatorId! : line.responderId!);
    for (const e of mine) {
      if (e.kind === 'frame') {
        e.node = name(e.local);
        e.peer = name(e.remote);
      } else {
        e.node = e.node === initiator.src ? line.initiatorId : line.responderId;
      }
    }
  }
  out.push(...mine);
}

const EMPTY = Buffer.alloc(0);

/**
 * The records of one direction from offset `from`: with `key` (the direction's key from the
 * key log, before any rekey) decrypted in order, rekeying after every `rekeyAfterRecords`
 * records as the sender did, and their plaintext split into frames; without it one sealed
 * entry per record. A record the capture cut short, or never carried, cannot be opened: its
 * plaintext is a hole in the frame stream (frames across it are shown truncated or
 * malformed) and decryption goes on with the next record's nonce.
 */
function recordsOfStream(stream: CapturedStream, from: number, source: string, out: Array<FrameEntry | MalformedEntry>, key: Buffer | undefined, rekeyAfterRecords: number): void {
  const { src, dst } = stream;
  const bad = (t: number, error: string) => out.push({ kind: 'malformed', t, node: src, source, line: 0, error: `${src} > ${dst}: ${error}` });
  const sealed = (t: number, length: number, captured: Buffer, truncated: boolean): void => {
    out.push({
      kind: 'frame', t, node: src, source, conn: `${src}>${dst}`, dir: 'out', local: src, remote: dst, peer: null, body: Buffer.from(captured), sealed: length,
      ...(truncated ? { truncated: length } : {}),
    });
  };
  const plain = key ? new CapturedStream(src, dst) : undefined;
  let cs = key ? CipherState.fromKey(key) : undefined;
  let pos = from;
  let plainOff = 0;
  for (let index = 0; pos < stream.length; index++) {
    const head = stream.read(pos, RECORD_HEADER_BYTES);
    if (!head.bytes) {
      if (head.missing !== 'end') {
        const why = head.missing === 'cut' ? 'cut off by the capture (snaplen)' : 'never captured';
        bad(head.t || stream.pieces[stream.pieceAt(pos)]?.t || 0, `record header at offset ${pos} ${why}: no record boundary known; rest of this direction skipped`);
      }
      break;
    }
    const length = head.bytes.readUInt16BE(0);
    if (length < MIN_RECORD_BYTES) {
      bad(head.t, `record length ${length} at offset ${pos} is below ${MIN_RECORD_BYTES}: not a record; rest of this direction skipped`);
      break;
    }
    if (cs && index > 0 && index % rekeyAfterRecords === 0) cs.rekey();
    const body = stream.read(pos + RECORD_HEADER_BYTES, length);
    const t = body.t || head.t;
    const plainLength = length - TAG_BYTES;
    if (body.bytes && cs) {
      try {
        const p = cs.decryptWithAd(EMPTY, body.bytes);
        plain!.pieces.push({ off: plainOff, end: plainOff + p.length, t, bytes: Buffer.from(p), segmentStart: true });
      } catch {
        bad(t, `record ${index} (${length} B at offset ${pos}) does not decrypt with the key log's key (a wrong line, or bytes altered)`);
        cs = CipherState.fromKey(cs.key!, index + 1);
      }
    } else if (body.bytes) {
      sealed(t, length, body.bytes, false);
    } else if (cs) {
      // Not all of it captured: it cannot be authenticated; its plaintext is a hole of known size.
      if (body.missing === 'cut') plain!.pieces.push({ off: plainOff, end: plainOff + plainLength, t, segmentStart: false });
      else if (body.missing === 'gap') bad(t, `record ${index} (${length} B at offset ${pos}) not all captured: not decrypted`);
      cs = CipherState.fromKey(cs.key!, index + 1);
    } else if (body.missing === 'gap') {
      bad(t, `record ${index} (${length} B at offset ${pos}): ${length - body.have} byte(s) never captured`);
    } else {
      sealed(t, length, stream.read(pos + RECORD_HEADER_BYTES, body.have).bytes ?? EMPTY, true);
    }
    if (body.missing === 'end') break;
    pos += RECORD_HEADER_BYTES + length;
    plainOff += plainLength;
  }
  if (plain) framesOfStream(plain, source, out);
}

/** Pieces in stream order; retransmitted and overlapping bytes taken once (the longest capture of a range first). */
function assemble(src: string, dst: string, segs: SegmentRecord[]): CapturedStream {
  const stream = new CapturedStream(src, dst);
  const min = Math.min(...segs.map((s) => s.rel));
  const sorted = segs.map((s) => ({ ...s, rel: s.rel - min })).sort((a, b) => a.rel - b.rel || b.payload.length - a.payload.length || a.t - b.t);
  let covered = 0;
  for (const s of sorted) {
    const dataEnd = s.rel + s.payload.length;
    const claimEnd = s.rel + s.claimed;
    if (claimEnd <= covered) continue;
    const segStart = s.rel >= covered;
    if (dataEnd > covered) {
      const from = Math.max(s.rel, covered);
      stream.pieces.push({ off: from, end: dataEnd, t: s.t, bytes: s.payload.subarray(from - s.rel), segmentStart: segStart && from === s.rel });
      covered = dataEnd;
    }
    if (claimEnd > covered) {
      stream.pieces.push({ off: covered, end: claimEnd, t: s.t, segmentStart: false });
      covered = claimEnd;
    }
  }
  return stream;
}

/**
 * Split one direction's byte stream on the 4-byte length prefix into frame entries. Every
 * frame stream is decoded here and only here: recordsOfStream turns an encrypted direction
 * into plaintext first. `until`: stop after the first complete frame it returns true for,
 * and return the offset just past it (the clear handshake before the records); otherwise
 * the whole stream is read and the result is undefined.
 */
export function framesOfStream(
  stream: CapturedStream,
  source: string,
  out: Array<FrameEntry | MalformedEntry>,
  opts: { until?: (body: Buffer) => boolean } = {},
): number | undefined {
  const { src, dst } = stream;
  const frame = (t: number, body: Buffer, truncatedFrom?: number): FrameEntry => ({
    kind: 'frame', t, node: src, source, conn: `${src}>${dst}`, dir: 'out', local: src, remote: dst, peer: null, body,
    ...(truncatedFrom === undefined ? {} : { truncated: truncatedFrom }),
  });
  const bad = (t: number, error: string) => out.push({ kind: 'malformed', t, node: src, source, line: 0, error: `${src} > ${dst}: ${error}` });
  let pos = 0;
  while (pos < stream.length) {
    const head = stream.read(pos, FRAME_HEADER_BYTES);
    if (!head.bytes) {
      if (head.missing === 'end') return undefined; // the capture ended inside a header
      const next = resync(stream, pos);
      const why = head.missing === 'cut' ? 'cut off by the capture (snaplen)' : 'never captured';
      bad(head.t || stream.pieces[stream.pieceAt(pos)]?.t || 0, `bytes from offset ${pos} ${why}: no frame boundary known${next === undefined ? '; rest of this direction skipped' : `; resumed at offset ${next}`}`);
      if (next === undefined) return undefined;
      pos = next;
      continue;
    }
    const len = head.bytes.readUInt32BE(0);
    if (len > MAX_FRAME_BYTES_LIMIT) {
      bad(head.t, `frame length ${len} exceeds ${MAX_FRAME_BYTES_LIMIT}; rest of this direction skipped`);
      return undefined;
    }
    const body = stream.read(pos + FRAME_HEADER_BYTES, len);
    if (body.bytes) {
      out.push(frame(body.t, Buffer.from(body.bytes)));
      if (opts.until?.(body.bytes)) return pos + FRAME_HEADER_BYTES + len;
    } else if (body.missing === 'end') {
      if (body.have === 0 && stream.read(pos, 1).t === 0) return undefined;
      // The capture stopped inside this frame: show what there is, marked.
      const part = stream.read(pos + FRAME_HEADER_BYTES, body.have);
      out.push(frame(part.t || head.t, Buffer.from(part.bytes ?? Buffer.alloc(0)), len));
      return undefined;
    } else if (body.missing === 'cut') {
      const part = stream.read(pos + FRAME_HEADER_BYTES, body.have);
      const prefix = Buffer.from(part.bytes ?? Buffer.alloc(0));
      out.push(frame(part.t || head.t, prefix, len));
      if (opts.until?.(prefix)) return pos + FRAME_HEADER_BYTES + len;
    } else {
      const missing = countMissing(stream, pos + FRAME_HEADER_BYTES, len);
      bad(head.t, `${missing} byte(s) never captured inside a ${len} B frame at offset ${pos}; frame skipped`);
    }
    pos += FRAME_HEADER_BYTES + len;
  }
  return undefined;
}

/** Bytes in [off, off + n) that no packet carried. */
function countMissing(stream: CapturedStream, off: number, n: number): number {
  let covered = 0;
  for (let i = stream.pieceAt(off); i < stream.pieces.length; i++) {
    const p = stream.pieces[i]!;
    if (p.off >= off + n) break;
    covered += Math.min(p.end, off + n) - Math.max(p.off, off);
  }
  return n - covered;
}

/**
 * After bytes with no known frame boundary: the next segment start whose first bytes read as
 * a plausible frame header (a length within the limit followed by a MessagePack array tag and
 * a known message type), or undefined.
 */
function resync(stream: CapturedStream, pos: number): number | undefined {
  for (let at = stream.nextSegmentStart(pos); at !== undefined; at = stream.nextSegmentStart(at)) {
    const r = stream.read(at, FRAME_HEADER_BYTES + 2);
    if (!r.bytes) continue;
    const len = r.bytes.readUInt32BE(0);
    if (len >= 2 && len <= MAX_FRAME_BYTES_LIMIT && peekMessageType(r.bytes.subarray(FRAME_HEADER_BYTES)) !== undefined) return at;
  }
  return undefined;
}
