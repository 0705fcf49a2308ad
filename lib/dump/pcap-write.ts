/**
 * A decrypted capture for Wireshark: `aethel-p2p dump --pcap CAPTURE --keylog FILE
 * --write-pcap OUT`. The frames framesFromPackets read (decrypted where the key log had the
 * session) are written back as a classic pcap (raw IPv4, LINKTYPE_RAW, microseconds), one
 * TCP segment per frame at the frame's time, each connection opened by a SYN each way, so the
 * Lua dissector (docs/wireshark/aethel.lua) reads them like a plaintext session. To make it
 * do so, the `encrypted` flag of a decrypted session's first HANDSHAKE (the last byte of its
 * init payload) is rewritten to false: the written capture is not the wire, it is the
 * wire as the nodes read it. Sessions left encrypted are written as their records. Bytes a
 * truncating capture cut stay cut (the packet's original length is kept). Malformed entries
 * have no bytes to write; connections between IPv6 addresses are left out (and counted).
 *
 * Pure: entries in, file bytes out. The CLI calls decryptedPcap() and writes the result.
 */
import { LinkType } from './pcap.js';
import { describeFrame, SEALED_TYPE } from './describe.js';
import type { DumpEntry, FrameEntry } from './reader.js';

/** What writing a decrypted capture did. */
export interface DecryptedPcap {
  /** The classic pcap file. */
  bytes: Buffer;
  packets: number;
  /** Connections whose records were decrypted (flag rewritten), left encrypted, or in clear. */
  decrypted: number;
  encrypted: number;
  plaintext: number;
  /** Connections whose handshake never finished (fewer than three HANDSHAKE frames, no record): all in clear. */
  unfinished: number;
  /** Connections not written: not IPv4. */
  skipped: number;
}

const MSGPACK_TRUE = 0xc3;
const MSGPACK_FALSE = 0xc2;
const IP_HEADER_BYTES = 20;
const TCP_HEADER_BYTES = 20;
const PCAP_SNAPLEN = 262144;

function ipv4(addr: string): { ip: number[]; port: number } | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+):(\d+)$/.exec(addr);
  return m ? { ip: [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])], port: Number(m[5]) } : undefined;
}

/** An IPv4 packet holding one TCP segment: `payload` as captured, `claimed` bytes as sent. */
function segment(src: { ip: number[]; port: number }, dst: { ip: number[]; port: number }, seq: number, ack: number, flags: number, payload: Buffer, claimed: number): { data: Buffer; origLen: number } {
  const head = Buffer.alloc(IP_HEADER_BYTES + TCP_HEADER_BYTES);
  head[0] = 0x45;
  head.writeUInt16BE(IP_HEADER_BYTES + TCP_HEADER_BYTES + claimed, 2);
  head[8] = 64;
  head[9] = 6;
  Buffer.from(src.ip).copy(head, 12);
  Buffer.from(dst.ip).copy(head, 16);
  let sum = 0;
  for (let i = 0; i < IP_HEADER_BYTES; i += 2) sum += head.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  head.writeUInt16BE(~sum & 0xffff, 10);
  head.writeUInt16BE(src.port, 20);
  head.writeUInt16BE(dst.port, 22);
  head.writeUInt32BE(seq >>> 0, 24);
  head.writeUInt32BE(ack >>> 0, 28);
  head[32] = (TCP_HEADER_BYTES / 4) << 4;
  head[33] = flags;
  head.writeUInt16BE(65535, 34);
  return { data: Buffer.concat([head, payload]), origLen: IP_HEADER_BYTES + TCP_HEADER_BYTES + claimed };
}

const SYN = 0x02;
const ACK_PSH = 0x18;

/** The wire bytes of one entry (captured part) and how many it stood for. */
function wireBytes(e: FrameEntry, flip: boolean): { bytes: Buffer; claimed: number } {
  if (e.sealed !== undefined) {
    const head = Buffer.alloc(2);
    head.writeUInt16BE(e.sealed, 0);
    return { bytes: Buffer.concat([head, e.body]), claimed: 2 + e.sealed };
  }
  const length = e.truncated ?? e.body.length;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(length, 0);
  const body = Buffer.from(e.body);
  if (flip && body.length === length && body[body.length - 1] === MSGPACK_TRUE) body[body.length - 1] = MSGPACK_FALSE;
  return { bytes: Buffer.concat([head, body]), claimed: 4 + length };
}

/**
 * The capture entries (from framesFromPackets, any number of captures) as a decrypted pcap.
 * Entries from dump files (numeric `conn`) are ignored: they are not packets.
 */
export function decryptedPcap(entries: readonly DumpEntry[]): DecryptedPcap {
  const byConn = new Map<string, FrameEntry[]>();
  for (const e of entries) {
    if (e.kind !== 'frame' || typeof e.conn !== 'string') continue;
    const key = [e.local, e.remote].sort().join('|');
    let list = byConn.get(key);
    if (!list) byConn.set(key, (list = []));
    list.push(e);
  }
  const out: Array<{ t: number; data: Buffer; origLen: number }> = [];
  const result = { packets: 0, decrypted: 0, encrypted: 0, plaintext: 0, unfinished: 0, skipped: 0 };
  for (const list of byConn.values()) {
    list.sort((a, b) => a.t - b.t);
    const ends = new Map<string, { ip: number[]; port: number }>();
    for (const e of list) for (const a of [e.local, e.remote]) if (!ends.has(a)) { const p = ipv4(a); if (p) ends.set(a, p); }
    if (ends.size !== 2) {
      result.skipped++;
      continue;
    }
    const first = list.find((e) => e.truncated === undefined && describeFrame(e).type === 'HANDSHAKE');
    const init = first ? (describeFrame(first).fields.init as { encrypted?: boolean } | undefined) : undefined;
    const sealed = list.some((e) => e.sealed !== undefined);
    const handshakes = list.filter((e) => describeFrame(e).type === 'HANDSHAKE').length;
    const opened = init?.encrypted === true && !sealed && handshakes >= 3 && list.some((e) => !['HANDSHAKE', SEALED_TYPE].includes(describeFrame(e).type));
    if (handshakes < 3 && !sealed) result.unfinished++;
    else if (opened) result.decrypted++;
    else if (init?.encrypted === false || (!init && !sealed)) result.plaintext++;
    else result.encrypted++;
    // Sequence numbers per direction; a SYN each way just before the connection's first frame.
    const seq = new Map<string, number>();
    const t0 = list[0]!.t;
    for (const [a, b] of [[list[0]!.local, list[0]!.remote], [list[0]!.remote, list[0]!.local]] as const) {
      out.push({ t: t0 - 1, ...segment(ends.get(a)!, ends.get(b)!, 999, 0, SYN, Buffer.alloc(0), 0) });
      seq.set(a, 1000);
    }
    for (const e of list) {
      const { bytes, claimed } = wireBytes(e, opened && e === first);
      const s = seq.get(e.local)!;
      out.push({ t: e.t, ...segment(ends.get(e.local)!, ends.get(e.remote)!, s, seq.get(e.remote)!, ACK_PSH, bytes, claimed) });
      seq.set(e.local, s + claimed);
    }
  }
  out.sort((a, b) => a.t - b.t);
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(PCAP_SNAPLEN, 16);
  header.writeUInt32LE(LinkType.RAW, 20);
  const parts: Buffer[] = [header];
  for (const p of out) {
    const rec = Buffer.alloc(16);
    const t = Math.max(0, p.t);
    rec.writeUInt32LE(Math.floor(t / 1e6), 0);
    rec.writeUInt32LE(Math.floor(t % 1e6), 4);
    rec.writeUInt32LE(p.data.length, 8);
    rec.writeUInt32LE(p.origLen, 12);
    parts.push(rec, p.data);
  }
  result.packets = out.length;
  return { bytes: Buffer.concat(parts), ...result };
}
