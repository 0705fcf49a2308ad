/**
 * Read packet captures: classic pcap (microsecond and nanosecond, either byte order) and
 * pcapng (section header, interface description with if_tsresol, enhanced and simple
 * packet blocks). Returns each packet's time, link type and bytes; link-layer and IP/TCP
 * parsing is in tcp-streams.ts. A truncated or damaged file yields the packets before the
 * damage and an error string, never an exception.
 */
import { readFile } from 'node:fs/promises';

/** Link types this reader's consumers understand (https://www.tcpdump.org/linktypes.html). */
export const LinkType = {
  /** BSD loopback: 4-byte address family in the capturing host's byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** Raw IP (LINKTYPE_RAW). */
  RAW: 101,
  /** Linux "cooked" capture v1 (tcpdump -i any, older libpcap). */
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  /** Linux "cooked" capture v2 (tcpdump -i any, libpcap ≥ 1.10). */
  LINUX_SLL2: 276,
} as const;

export interface Packet {
  /** Capture time, µs since the epoch. */
  t: number;
  linkType: number;
  data: Buffer;
}

export interface Capture {
  format: 'pcap' | 'pcapng';
  packets: Packet[];
  /** Set when the file ended early or a block was damaged. */
  error?: string;
}

export async function readCapture(path: string): Promise<Capture> {
  return parseCapture(await readFile(path));
}

export function parseCapture(buf: Buffer): Capture {
  if (buf.length < 4) return { format: 'pcap', packets: [], error: 'file shorter than a capture header' };
  if (buf.readUInt32LE(0) === 0x0a0d0d0a) return parsePcapng(buf);
  return parsePcap(buf);
}

function parsePcap(buf: Buffer): Capture {
  const packets: Packet[] = [];
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nanos = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = buf.readUInt32BE(0);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) return { format: 'pcap', packets, error: 'not a pcap or pcapng file (unknown magic)' };
    le = false;
    nanos = magicBE === 0xa1b23c4d;
  }
  if (buf.length < 24) return { format: 'pcap', packets, error: 'truncated pcap header' };
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20) & 0x03ffffff; // upper bits may carry FCS information
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) return { format: 'pcap', packets, error: `truncated record header at byte ${off}` };
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    if (off + 16 + incl > buf.length) return { format: 'pcap', packets, error: `truncated packet at byte ${off}` };
    packets.push({ t: sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac), linkType, data: buf.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return { format: 'pcap', packets };
}

interface Iface {
  linkType: number;
  /** Multiply a raw timestamp by this to get µs. */
  toUs: number;
}

function parsePcapng(buf: Buffer): Capture {
  const packets: Packet[] = [];
  let le = true;
  let ifaces: Iface[] = [];
  let off = 0;
  const fail = (error: string): Capture => ({ format: 'pcapng', packets, error });
  while (off < buf.length) {
    if (off + 12 > buf.length) return fail(`truncated block header at byte ${off}`);
    let type = le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    if (type === 0x0a0d0d0a || buf.readUInt32BE(off) === 0x0a0d0d0a) {
      // Section header: its byte-order magic decides how the rest of the section reads.
      const bom = buf.readUInt32LE(off + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else return fail(`bad byte-order magic at byte ${off}`);
      type = 0x0a0d0d0a;
      ifaces = [];
    }
    const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    const len = u32(off + 4);
    if (len < 12 || len % 4 !== 0 || off + len > buf.length) return fail(`bad block length ${len} at byte ${off}`);
    const body = off + 8;
    const end = off + len - 4;
    if (type === 1) {
      ifaces.push({ linkType: u16(body), toUs: tsResolution(buf, body + 8, end, u16) });
    } else if (type === 6) {
      const iface = ifaces[u32(body)];
      if (!iface) return fail(`packet for undeclared interface at byte ${off}`);
      const raw = u32(body + 4) * 2 ** 32 + u32(body + 8);
      const caplen = u32(body + 12);
      if (body + 20 + caplen > end) return fail(`packet overruns its block at byte ${off}`);
      packets.push({ t: Math.floor(raw * iface.toUs), linkType: iface.linkType, data: buf.subarray(body + 20, body + 20 + caplen) });
    } else if (type === 3) {
      const iface = ifaces[0];
      if (!iface) return fail(`packet before any interface at byte ${off}`);
      const caplen = Math.min(u32(body), end - body - 4);
      packets.push({ t: 0, linkType: iface.linkType, data: buf.subarray(body + 4, body + 4 + caplen) });
    }
    off += len;
  }
  return { format: 'pcapng' as const, packets };
}

/** µs per timestamp unit from the interface's if_tsresol option (code 9); default 1 µs. */
function tsResolution(buf: Buffer, off: number, end: number, u16: (o: number) => number): number {
  while (off + 4 <= end) {
    const code = u16(off);
    const len = u16(off + 2);
    if (code === 0) break;
    if (code === 9 && len >= 1) {
      const v = buf[off + 4]!;
      const seconds = v & 0x80 ? 2 ** -(v & 0x7f) : 10 ** -v;
      return seconds * 1e6;
    }
    off += 4 + Math.ceil(len / 4) * 4;
  }
  return 1;
}
