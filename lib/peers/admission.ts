/**
 * Admission: which connections a node keeps, so that identities that cost nothing cannot take
 * the slots the node chose for itself, crowd out its established peers, or hold its accept
 * loop with half-open handshakes. Pure bookkeeping over an injected clock: no sockets, no
 * timers. The network asks and reports:
 *
 * - openPending(ip) when a socket is accepted, before any byte is read (a refused socket is
 *   destroyed at once), and closePending(ip) when that handshake ends either way;
 * - admit() once a handshake shows the peer's id; on `accept` it closes the peer named in
 *   `evict` (GOODBYE EVICTED) and then calls added(); removed() when a connection closes.
 *
 * Slots: outbound peers are those the node dialed (bootstrap, routing table, members, user
 * calls) and never count against inbound; inbound ones are capped in total, per IP and per
 * address group (/24, /48); members are always admitted and never evicted. When inbound is
 * full a newcomer may evict one inbound peer chosen in the spirit of Bitcoin Core's inbound
 * eviction: protect a few peers of each kind an attacker cannot fake cheaply (distinct
 * address groups, low latency, useful deliveries, longevity), then take the youngest peer of
 * the best-represented address group among the rest. If nobody is left, the newcomer is
 * refused: a peer younger than minEvictionAgeMs is never a candidate.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import { addressGroup } from './address-group.js';

export interface AdmissionOptions {
  /** Inbound connections kept at most (members excluded). Default 40, or maxPeers − maxOutboundPeers when larger. */
  maxInboundPeers?: number;
  /** Outbound connections the node opens on its own (discovery, redials), at most; members excluded. Default 10. */
  maxOutboundPeers?: number;
  /** Connections in total, both directions, members excepted. Default maxInboundPeers + maxOutboundPeers. */
  maxPeers?: number;
  /** Inbound connections from one IP address, at most. Default 2. */
  maxInboundPerIp?: number;
  /** Inbound connections from one address group (/24 IPv4, /48 IPv6), at most. Default 4. */
  maxInboundPerGroup?: number;
  /** CIDRs ('127.0.0.0/8', 'fd00::/8') or single addresses exempt from the per-IP and per-group limits. Default []. */
  admissionAllowlist?: readonly string[];
  /** Inbound sockets whose handshake is under way, at most, in total. Default 64. */
  maxPendingHandshakes?: number;
  /** Inbound sockets whose handshake is under way from one IP address, at most (allowlist exempt). Default 4. */
  maxPendingPerIp?: number;
  /** An inbound peer connected for less than this, ms, is never evicted. Default 10000. */
  minEvictionAgeMs?: number;
  /** Node ids (64 hex) always admitted, never evicted, outside both slot counts. Default []. */
  members?: readonly string[];
  /** Refuse every identity that is not a member. Default false. */
  onlyMembers?: boolean;
}

export type ResolvedAdmissionOptions = Required<Omit<AdmissionOptions, 'members' | 'admissionAllowlist'>> & {
  members: readonly string[];
  admissionAllowlist: readonly string[];
};

/** Defaults: CometBFT's 40 inbound / 10 outbound (the old maxPeers 50 split), geth-like pending caps. */
export const ADMISSION_DEFAULTS = Object.freeze({
  /** CometBFT's split of 50 (geth: 34 in / 16 out): the node picks a fifth of its peers itself. */
  maxInboundPeers: 40,
  maxOutboundPeers: 10,
  /** Two per IP leaves room for a NAT with two nodes; one IP cannot hold more. */
  maxInboundPerIp: 2,
  /** Four per /24 or /48: filling 40 inbound slots takes ten distinct networks. */
  maxInboundPerGroup: 4,
  /** geth keeps 50 handshake slots; libp2p 32 transient inbound connections. */
  maxPendingHandshakes: 64,
  maxPendingPerIp: 4,
  /**
   * Ten heartbeats to earn a protection (a measured round trip, useful deliveries) before it
   * can be evicted; short enough that a flood of identities holding every inbound slot is
   * evictable, and an honest newcomer gets in, seconds after it arrived.
   */
  minEvictionAgeMs: 10_000,
  onlyMembers: false,
});

/** Peers protected from eviction by each criterion, in order (Bitcoin Core protects 4, 8, 4, then half by uptime). */
export const EVICTION_PROTECT = Object.freeze({ byGroup: 4, byLatency: 8, byUsefulness: 4 });

/** What the admission asks of its owner about a connected peer. */
export interface AdmissionHost {
  /** Useful first deliveries of the peer (the scoring ledger); higher is more useful. */
  usefulness(id: string): number;
  /** Last measured round trip to the peer, ms; undefined when not measured yet. */
  rttMs(id: string): number | undefined;
}

export type PendingVerdict = 'ok' | 'too_many_pending' | 'too_many_pending_from_ip';

export type AdmissionRefusal = 'NOT_MEMBER' | 'TOO_MANY_PEERS' | 'TOO_MANY_FROM_IP' | 'TOO_MANY_FROM_GROUP';

export type AdmitVerdict = { accept: true; evict?: string } | { accept: false; reason: AdmissionRefusal };

export interface AdmissionPeer {
  /** Node id, 64 hex. */
  id: string;
  /** Remote IP address of the connection. */
  ip: string;
  /** True when this node dialed. */
  outbound: boolean;
}

interface Slot extends AdmissionPeer {
  group: string;
  member: boolean;
  allowlisted: boolean;
  connectedAt: number;
}

/** Counts for metrics and reports. */
export interface AdmissionCounts {
  inbound: number;
  outbound: number;
  members: number;
  pending: number;
}

/** Validate and fill admission options; throws InvalidOptionError naming the field. */
export function resolveAdmissionOptions(o: AdmissionOptions = {}): ResolvedAdmissionOptions {
  const d = ADMISSION_DEFAULTS;
  const int = (field: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidOptionError(field, `expected an integer from ${min} to ${max}, got ${String(v)}`);
    }
    return v;
  };
  const members = o.members ?? [];
  if (!Array.isArray(members)) throw new InvalidOptionError('members', 'expected an array of node ids');
  members.forEach((m, i) => {
    if (typeof m !== 'string' || !/^[0-9a-f]{64}$/.test(m)) throw new InvalidOptionError(`members[${i}]`, 'expected 64 lowercase hex characters');
  });
  const allow = o.admissionAllowlist ?? [];
  if (!Array.isArray(allow)) throw new InvalidOptionError('admissionAllowlist', 'expected an array of CIDRs or addresses');
  allow.forEach((a, i) => parseAllowEntry(`admissionAllowlist[${i}]`, a));
  const onlyMembers = o.onlyMembers ?? d.onlyMembers;
  if (typeof onlyMembers !== 'boolean') throw new InvalidOptionError('onlyMembers', `expected a boolean, got ${typeof onlyMembers}`);
  if (onlyMembers && members.length === 0) throw new InvalidOptionError('onlyMembers', 'needs a non-empty members list');
  const maxOutboundPeers = int('maxOutboundPeers', o.maxOutboundPeers ?? d.maxOutboundPeers, 0, 10_000);
  const derivedInbound = Number.isInteger(o.maxPeers) ? Math.max(d.maxInboundPeers, o.maxPeers! - maxOutboundPeers) : d.maxInboundPeers;
  const maxInboundPeers = int('maxInboundPeers', o.maxInboundPeers ?? derivedInbound, 0, 10_000);
  return {
    maxInboundPeers,
    maxOutboundPeers,
    maxPeers: int('maxPeers', o.maxPeers ?? maxInboundPeers + maxOutboundPeers, 1, 20_000),
    maxInboundPerIp: int('maxInboundPerIp', o.maxInboundPerIp ?? d.maxInboundPerIp, 1, 10_000),
    maxInboundPerGroup: int('maxInboundPerGroup', o.maxInboundPerGroup ?? d.maxInboundPerGroup, 1, 10_000),
    maxPendingHandshakes: int('maxPendingHandshakes', o.maxPendingHandshakes ?? d.maxPendingHandshakes, 1, 100_000),
    maxPendingPerIp: int('maxPendingPerIp', o.maxPendingPerIp ?? d.maxPendingPerIp, 1, 100_000),
    minEvictionAgeMs: int('minEvictionAgeMs', o.minEvictionAgeMs ?? d.minEvictionAgeMs, 0, Number.MAX_SAFE_INTEGER),
    members: [...members],
    onlyMembers,
    admissionAllowlist: [...allow],
  };
}

type AllowEntry = { kind: 4 | 6; bits: number; group: string } | { kind: 'host'; host: string };

/** Parse one allowlist entry: 'a.b.c.d/n', 'v6::/n', an address, or a host name (matched literally). */
function parseAllowEntry(field: string, v: unknown): AllowEntry {
  if (typeof v !== 'string' || v.length === 0 || /\s/.test(v)) throw new InvalidOptionError(field, `expected a CIDR or address, got ${JSON.stringify(v)}`);
  const [addr, bitsText] = v.split('/') as [string, string | undefined];
  const kind = isIP(addr) as 0 | 4 | 6;
  if (kind === 0) {
    if (bitsText !== undefined) throw new InvalidOptionError(field, `not an IP prefix: ${JSON.stringify(v)}`);
    return { kind: 'host', host: v.toLowerCase() };
  }
  const max = kind === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (!/^\d*$/.test(bitsText ?? '') || !Number.isInteger(bits) || bits < 0 || bits > max) {
    throw new InvalidOptionError(field, `prefix length must be 0..${max}: ${JSON.stringify(v)}`);
  }
  return { kind, bits, group: groupAt(addr, kind, bits) };
}

function groupAt(addr: string, kind: 4 | 6, bits: number): string {
  return kind === 4 ? addressGroup(addr, { ipv4Bits: bits }) : addressGroup(addr, { ipv6Bits: bits });
}

/** Matches addresses against a list of CIDRs and literal hosts. */
export class AddressAllowlist {
  private readonly entries: AllowEntry[];
  constructor(list: readonly string[]) {
    this.entries = list.map((e, i) => parseAllowEntry(`admissionAllowlist[${i}]`, e));
  }
  get empty(): boolean {
    return this.entries.length === 0;
  }
  has(host: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
    const h = mapped ? mapped[1]! : host;
    const kind = isIP(h) as 0 | 4 | 6;
    for (const e of this.entries) {
      if (e.kind === 'host') {
        if (e.host === h.toLowerCase()) return true;
      } else if (kind !== 0 && e.kind === kind && groupAt(h, kind, e.bits) === e.group) {
        return true;
      }
    }
    return false;
  }
}

export class Admission {
  readonly opts: ResolvedAdmissionOptions;
  private readonly allowlist: AddressAllowlist;
  private readonly members: Set<string>;
  private readonly slots = new Map<string, Slot>();
  private readonly pendingByIp = new Map<string, number>();
  private pendingTotal = 0;
  private inbound = 0;
  private outbound = 0;
  private membersConnected = 0;

  /**
   * @param salt keys the hash that picks which address groups are protected, so an attacker
   *   cannot predict (and pick addresses in) the protected groups. Random by default.
   */
  constructor(
    private readonly clock: Clock,
    options: AdmissionOptions | ResolvedAdmissionOptions,
    private readonly host: AdmissionHost,
    private readonly salt: Buffer = randomBytes(16),
  ) {
    this.opts = resolveAdmissionOptions(options);
    this.allowlist = new AddressAllowlist(this.opts.admissionAllowlist);
    this.members = new Set(this.opts.members);
  }

  isMember(id: string): boolean {
    return this.members.has(id);
  }

  isAllowlisted(ip: string): boolean {
    return this.allowlist.has(ip);
  }

  /** An inbound socket from `ip` was accepted: may its handshake start? On 'ok' a pending slot is held until closePending(ip). */
  openPending(ip: string): PendingVerdict {
    if (this.pendingTotal >= this.opts.maxPendingHandshakes) return 'too_many_pending';
    const n = this.pendingByIp.get(ip) ?? 0;
    if (n >= this.opts.maxPendingPerIp && !this.allowlist.has(ip)) return 'too_many_pending_from_ip';
    this.pendingByIp.set(ip, n + 1);
    this.pendingTotal++;
    return 'ok';
  }

  /** The handshake of a socket from `ip` that openPending() let in has ended (opened or failed). */
  closePending(ip: string): void {
    const n = this.pendingByIp.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.pendingByIp.delete(ip);
    else this.pendingByIp.set(ip, n - 1);
    this.pendingTotal--;
  }

  /** Whether the node may open one more outbound connection of its own choosing (discovery, redial of a non-member). */
  outboundAvailable(): boolean {
    return this.outbound < this.opts.maxOutboundPeers;
  }

  /**
   * A handshake completed: keep the connection? Members are always kept (outside the counts);
   * an outbound one while the total is below maxPeers; an inbound one must fit the per-IP,
   * per-group, inbound and total limits, possibly by evicting one inbound peer (`evict`). Does not change state:
   * call added() if the connection is kept.
   */
  admit(peer: AdmissionPeer): AdmitVerdict {
    const member = this.members.has(peer.id);
    if (this.opts.onlyMembers && !member) return { accept: false, reason: 'NOT_MEMBER' };
    if (member || this.slots.has(peer.id)) return { accept: true };
    const full = this.inbound + this.outbound >= this.opts.maxPeers;
    if (peer.outbound) return full ? { accept: false, reason: 'TOO_MANY_PEERS' } : { accept: true };
    if (!this.allowlist.has(peer.ip)) {
      const group = addressGroup(peer.ip);
      let sameIp = 0;
      let sameGroup = 0;
      for (const s of this.slots.values()) {
        if (s.outbound || s.member) continue;
        if (s.ip === peer.ip) sameIp++;
        if (s.group === group) sameGroup++;
      }
      if (sameIp >= this.opts.maxInboundPerIp) return { accept: false, reason: 'TOO_MANY_FROM_IP' };
      if (sameGroup >= this.opts.maxInboundPerGroup) return { accept: false, reason: 'TOO_MANY_FROM_GROUP' };
    }
    if (this.inbound < this.opts.maxInboundPeers && !full) return { accept: true };
    const evict = this.selectEviction();
    return evict === undefined ? { accept: false, reason: 'TOO_MANY_PEERS' } : { accept: true, evict };
  }

  /**
   * The connection is kept (after admit() accepted it). A peer already counted (a duplicate
   * connection replacing the first) keeps the slot it had: a redial cannot turn an inbound
   * peer into an outbound one.
   */
  added(peer: AdmissionPeer): void {
    if (this.slots.has(peer.id)) return;
    const member = this.members.has(peer.id);
    const slot: Slot = { ...peer, group: addressGroup(peer.ip), member, allowlisted: this.allowlist.has(peer.ip), connectedAt: this.clock.now() };
    this.slots.set(peer.id, slot);
    if (member) this.membersConnected++;
    else if (peer.outbound) this.outbound++;
    else this.inbound++;
  }

  /** The peer's connection closed. Unknown ids are ignored. */
  removed(id: string): void {
    const s = this.slots.get(id);
    if (!s) return;
    this.slots.delete(id);
    if (s.member) this.membersConnected--;
    else if (s.outbound) this.outbound--;
    else this.inbound--;
  }

  /** True when `id` holds an outbound slot (the node chose it), false for inbound, undefined when not connected. */
  isOutbound(id: string): boolean | undefined {
    return this.slots.get(id)?.outbound;
  }

  /** Address groups of the outbound peers now: discovery prefers candidates outside them. */
  outboundGroups(): Set<string> {
    const groups = new Set<string>();
    for (const s of this.slots.values()) if (s.outbound && !s.member) groups.add(s.group);
    return groups;
  }

  /** Clock time the peer's slot was taken, or undefined. */
  connectedAt(id: string): number | undefined {
    return this.slots.get(id)?.connectedAt;
  }

  counts(): AdmissionCounts {
    return { inbound: this.inbound, outbound: this.outbound, members: this.membersConnected, pending: this.pendingTotal };
  }

  /**
   * The inbound peer to evict for a newcomer, or undefined when none may be. Steps, each
   * removing peers from the candidates: members, outbound peers, allowlisted peers (a local
   * testbed's own) and peers younger than minEvictionAgeMs; EVICTION_PROTECT.byGroup peers of
   * distinct address groups picked by a salted hash; the byLatency lowest round trips; the
   * byUsefulness most useful (usefulness > 0); the older half of the rest. Then the address
   * group with the most inbound peers, counting the young ones too (ties: the group whose
   * youngest peer is youngest), loses its youngest remaining candidate; if it has none,
   * nobody is evicted. Counting young peers is what keeps a flood of fresh identities from
   * one network from evicting established peers of other networks: their own group is the
   * most represented, and it has no candidate yet.
   */
  selectEviction(): string | undefined {
    const now = this.clock.now();
    const inbound = [...this.slots.values()].filter((s) => !s.member && !s.outbound && !s.allowlisted);
    let c = inbound.filter((s) => now - s.connectedAt >= this.opts.minEvictionAgeMs);
    // 1. Distinct address groups, chosen by a keyed hash the attacker cannot predict.
    const byKey = [...c].sort((a, b) => cmp(this.groupKey(a.group), this.groupKey(b.group)) || a.connectedAt - b.connectedAt);
    const protectedGroups = new Set<string>();
    const keep = new Set<Slot>();
    for (const s of byKey) {
      if (protectedGroups.size >= EVICTION_PROTECT.byGroup) break;
      if (protectedGroups.has(s.group)) continue;
      protectedGroups.add(s.group);
      keep.add(s);
    }
    c = c.filter((s) => !keep.has(s));
    // 2. Lowest latency: distance cannot be faked.
    c = protect(c, EVICTION_PROTECT.byLatency, (s) => this.host.rttMs(s.id) !== undefined, (a, b) => this.host.rttMs(a.id)! - this.host.rttMs(b.id)!);
    // 3. Most useful deliveries: work cannot be faked.
    c = protect(c, EVICTION_PROTECT.byUsefulness, (s) => this.host.usefulness(s.id) > 0, (a, b) => this.host.usefulness(b.id) - this.host.usefulness(a.id));
    // 4. The older half: an attacker arriving now cannot have been here long.
    c = protect(c, Math.floor(c.length / 2), () => true, (a, b) => a.connectedAt - b.connectedAt);
    if (c.length === 0) return undefined;
    // 5. The most represented group (all its inbound peers, young ones included) loses its
    //    youngest remaining candidate.
    const groups = new Map<string, { size: number; youngest: number }>();
    for (const s of inbound) {
      const g = groups.get(s.group);
      if (g) {
        g.size++;
        g.youngest = Math.max(g.youngest, s.connectedAt);
      } else {
        groups.set(s.group, { size: 1, youngest: s.connectedAt });
      }
    }
    let bestGroup: string | undefined;
    let best = { size: 0, youngest: -Infinity };
    for (const [group, g] of groups) {
      if (g.size > best.size || (g.size === best.size && g.youngest > best.youngest)) {
        bestGroup = group;
        best = g;
      }
    }
    const victims = c.filter((s) => s.group === bestGroup);
    if (victims.length === 0) return undefined;
    return victims.reduce((a, b) => (b.connectedAt > a.connectedAt ? b : a)).id;
  }

  private groupKey(group: string): Buffer {
    return createHash('sha256').update(this.salt).update(group).digest();
  }
}

/** Remove up to `n` candidates that satisfy `eligible`, best first by `order`; returns the rest. */
function protect(c: Slot[], n: number, eligible: (s: Slot) => boolean, order: (a: Slot, b: Slot) => number): Slot[] {
  if (n <= 0) return c;
  const chosen = new Set(c.filter(eligible).sort(order).slice(0, n));
  return c.filter((s) => !chosen.has(s));
}

function cmp(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/**
 * Order outbound candidates for diversity: first one per address group not in `taken`
 * (in the given order), then the rest in the given order. So the node's own picks spread
 * over networks, and one network's many identities do not take every outbound slot.
 */
export function preferDiverse<T extends { host: string }>(candidates: readonly T[], taken: ReadonlySet<string>): T[] {
  const seen = new Set(taken);
  const first: T[] = [];
  const rest: T[] = [];
  for (const c of candidates) {
    const g = addressGroup(c.host);
    if (seen.has(g)) rest.push(c);
    else {
      seen.add(g);
      first.push(c);
    }
  }
  return [...first, ...rest];
}
