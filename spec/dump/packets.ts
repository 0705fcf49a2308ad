/**
 * Builders for synthetic captures: IPv4/TCP packets, link-layer wrappers and pcap/pcapng
 * writers. Checksums are left zero (the decoder does not verify them, as tcpdump on
 * loopback often records them unverified anyway).
 */
import { LinkType } from '../../lib/dump/pcap.js';
import type { Packet } from '../../lib/dump/pcap.js';

export interface TcpSpec {
  src: [number, number, number, number];
  dst: [number, number, number, number];
  sport: number;
  dport: number;
  seq: number;
  syn?: boolean;
  payload?: Buffer;
}

/** An IPv4 packet holding one TCP segment. */
export function ipv4Tcp(s: TcpSpec): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(s.src).copy(ip, 12);
  Buffer.from(s.dst).copy(ip, 16);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(s.sport, 0);
  tcp.writeUInt16BE(s.dport, 2);
  tcp.writeUInt32BE(s.seq >>> 0, 4);
  tcp[12] = 5 << 4;
  tcp[13] = s.syn ? 0x02 : 0x18;
  return Buffer.concat([ip, tcp, payload]);
}

/** Wrap an IPv4 packet in the given link layer. */
export function wrap(linkType: number, ip: Buffer): Buffer {
  switch (linkType) {
    case LinkType.ETHERNET: {
      const h = Buffer.alloc(14);
      h.writeUInt16BE(0x0800, 12);
      return Buffer.concat([h, ip]);
    }
    case LinkType.NULL: {
      const h = Buffer.alloc(4);
      h.writeUInt32LE(2, 0);
      return Buffer.concat([h, ip]);
    }
    case LinkType.LINUX_SLL: {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(0x0800, 14);
      return Buffer.concat([h, ip]);
    }
    case LinkType.LINUX_SLL2: {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(0x0800, 0);
      return Buffer.concat([h, ip]);
    }
    default:
      return ip;
  }
}

/** A classic pcap file. */
export function writePcap(packets: Packet[], opts: { littleEndian: boolean; nanos: boolean }): Buffer {
  const le = opts.littleEndian;
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (le) b.writeUInt32LE(v >>> 0, 0);
    else b.writeUInt32BE(v >>> 0, 0);
    return b;
  };
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    if (le) b.writeUInt16LE(v, 0);
    else b.writeUInt16BE(v, 0);
    return b;
  };
  const parts: Buffer[] = [u32(opts.nanos ? 0xa1b23c4d : 0xa1b2c3d4), u16(2), u16(4), u32(0), u32(0), u32(262144), u32(packets[0]?.linkType ?? 1)];
  for (const p of packets) {
    const sec = Math.floor(p.t / 1e6);
    const us = p.t % 1e6;
    parts.push(u32(sec), u32(opts.nanos ? us * 1000 : us), u32(p.data.length), u32(p.data.length), p.data);
  }
  return Buffer.concat(parts);
}

/** A little-endian pcapng file with one interface whose timestamps are in nanoseconds. */
export function writePcapng(packets: Packet[]): Buffer {
  const block = (type: number, body: Buffer) => {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const len = 12 + padded.length;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(len, 4);
    padded.copy(b, 8);
    b.writeUInt32LE(len, len - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeBigInt64LE(-1n, 8);
  const idb = Buffer.alloc(8 + 8 + 4);
  idb.writeUInt16LE(packets[0]?.linkType ?? 1, 0);
  idb.writeUInt32LE(262144, 4);
  idb.writeUInt16LE(9, 8); // if_tsresol
  idb.writeUInt16LE(1, 10);
  idb[12] = 9; // 10^-9 s
  const parts = [block(0x0a0d0d0a, shb), block(1, idb)];
  for (const p of packets) {
    const ns = BigInt(p.t) * 1000n;
    const h = Buffer.alloc(20);
    h.writeUInt32LE(0, 0);
    h.writeUInt32LE(Number(ns >> 32n), 4);
    h.writeUInt32LE(Number(ns & 0xffffffffn), 8);
    h.writeUInt32LE(p.data.length, 12);
    h.writeUInt32LE(p.data.length, 16);
    parts.push(block(6, Buffer.concat([h, p.data])));
  }
  return Buffer.concat(parts);
}
