/**
 * Address groups: the unit an attacker pays for. Fresh identities cost nothing, addresses in
 * distinct networks cost something, so every per-source limit (inbound slots, routing-table
 * entries, redials) counts by group rather than by identity. A group is the /24 of an IPv4
 * address and the /48 of an IPv6 one (the prefixes Bitcoin Core and geth use), with IPv4
 * mapped into IPv6 (::ffff:a.b.c.d) read as IPv4. Pure functions, no I/O.
 */
import { isIP } from 'node:net';

/** Default prefix lengths that make one address group. */
export const DEFAULT_IPV4_GROUP_BITS = 24;
export const DEFAULT_IPV6_GROUP_BITS = 48;

export interface AddressGroupOptions {
  /** IPv4 prefix length of a group, 1..32. Default 24. */
  ipv4Bits?: number;
  /** IPv6 prefix length of a group, 1..128. Default 48. */
  ipv6Bits?: number;
}

/**
 * The group of an address: 'v4:a.b.c.0/24', 'v6:2001:db8:1::/48', or 'host:<name>' for
 * something that is not an IP literal (a host name is its own group: it has not been
 * resolved, and resolving it here would be I/O).
 */
export function addressGroup(host: string, opts: AddressGroupOptions = {}): string {
  const v4bits = opts.ipv4Bits ?? DEFAULT_IPV4_GROUP_BITS;
  const v6bits = opts.ipv6Bits ?? DEFAULT_IPV6_GROUP_BITS;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  const h = mapped ? mapped[1]! : host;
  const kind = isIP(h);
  if (kind === 4) {
    const bytes = h.split('.').map(Number);
    return `v4:${maskBytes(bytes, v4bits).join('.')}/${v4bits}`;
  }
  if (kind === 6) {
    const words = ipv6Words(h);
    const bytes: number[] = [];
    for (const w of words) bytes.push(w >> 8, w & 0xff);
    const masked = maskBytes(bytes, v6bits);
    const out: string[] = [];
    for (let i = 0; i < 16; i += 2) out.push(((masked[i]! << 8) | masked[i + 1]!).toString(16));
    return `v6:${out.join(':')}/${v6bits}`;
  }
  return `host:${host.toLowerCase()}`;
}

/** True for loopback addresses (127.0.0.0/8, ::1, and IPv4-mapped loopback). */
export function isLoopback(host: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  const h = mapped ? mapped[1]! : host;
  if (isIP(h) === 4) return h.startsWith('127.');
  return isIP(h) === 6 && ipv6Words(h).every((w, i) => (i < 7 ? w === 0 : w === 1));
}

function maskBytes(bytes: number[], bits: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return keep === 0 ? 0 : b & ((0xff << (8 - keep)) & 0xff);
  });
}

/** The eight 16-bit words of an IPv6 literal (already checked by isIP). */
function ipv6Words(h: string): number[] {
  let s = h.replace(/%.*$/, '');
  // A trailing dotted IPv4 part becomes two words.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left, right] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const l = left ? left.split(':').map((x) => parseInt(x, 16)) : [];
  if (right === undefined) return l;
  const r = right ? right.split(':').map((x) => parseInt(x, 16)) : [];
  return [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
}
