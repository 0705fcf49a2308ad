/**
 * Bans by node id and by address (host), each with an expiry. Pure bookkeeping over an
 * injected clock: the network bans a peer when its score reaches the ban threshold
 * (lib/peers/peer-ledger.ts) and asks isBanned() when a connection finishes its handshake
 * (and before dialing), refusing banned peers with GOODBYE MISBEHAVIOR.
 *
 * Bounded: at most maxBannedIds ids and maxBannedHosts hosts; when a list is full, the ban
 * that expires first is dropped to make room (so the newest misbehaviour is always
 * recorded). Loopback hosts are never banned by address: every local process shares them,
 * and a ban of 127.0.0.1 would shut out a whole test cluster or a local proxy; the id ban
 * still applies to them.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import { isLoopback } from './address-group.js';

export interface BanListOptions {
  /** Cap on banned node ids. Default 10000. */
  maxBannedIds?: number;
  /** Cap on banned hosts. Default 10000. */
  maxBannedHosts?: number;
}

export const BAN_LIST_DEFAULTS = Object.freeze({ maxBannedIds: 10_000, maxBannedHosts: 10_000 });

/** One ban as listed by entries(). */
export interface BanEntry {
  /** 'id' (64 hex chars) or 'host' (an address). */
  kind: 'id' | 'host';
  key: string;
  /** Clock time, ms, at which the ban ends. */
  until: number;
  reason: string;
}

interface Ban {
  until: number;
  reason: string;
}

export class BanList {
  private readonly ids = new Map<string, Ban>();
  private readonly hosts = new Map<string, Ban>();
  private readonly maxIds: number;
  private readonly maxHosts: number;

  constructor(
    private readonly clock: Clock,
    options: BanListOptions = {},
  ) {
    this.maxIds = cap('maxBannedIds', options.maxBannedIds ?? BAN_LIST_DEFAULTS.maxBannedIds);
    this.maxHosts = cap('maxBannedHosts', options.maxBannedHosts ?? BAN_LIST_DEFAULTS.maxBannedHosts);
  }

  /**
   * Ban `id` (and `host`, unless empty or loopback) for `durationMs` from now. A longer ban
   * already in place is kept.
   */
  ban(id: string, host: string, durationMs: number, reason: string): void {
    const until = this.clock.now() + durationMs;
    put(this.ids, id, { until, reason }, this.maxIds);
    if (host !== '' && !isLoopback(host)) put(this.hosts, normalizeHost(host), { until, reason }, this.maxHosts);
  }

  /** Whether the id or the host (either may be '') is banned now. */
  isBanned(id: string, host = ''): boolean {
    const now = this.clock.now();
    return live(this.ids, id, now) || (host !== '' && live(this.hosts, normalizeHost(host), now));
  }

  /** Lift every ban on `id` (the host ban stays). */
  unban(id: string): void {
    this.ids.delete(id);
  }

  /** Drop expired bans (the network's heartbeat calls it). Returns how many. */
  prune(): number {
    const now = this.clock.now();
    let n = 0;
    for (const m of [this.ids, this.hosts]) {
      for (const [k, b] of m) {
        if (b.until <= now) {
          m.delete(k);
          n++;
        }
      }
    }
    return n;
  }

  /** Bans in force now. */
  entries(): BanEntry[] {
    const now = this.clock.now();
    const out: BanEntry[] = [];
    for (const [key, b] of this.ids) if (b.until > now) out.push({ kind: 'id', key, until: b.until, reason: b.reason });
    for (const [key, b] of this.hosts) if (b.until > now) out.push({ kind: 'host', key, until: b.until, reason: b.reason });
    return out;
  }

  get size(): number {
    return this.ids.size + this.hosts.size;
  }

  clear(): void {
    this.ids.clear();
    this.hosts.clear();
  }
}

function cap(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidOptionError(field, `expected an integer >= 1, got ${String(v)}`);
  return v;
}

/** '::ffff:10.1.2.3' and '10.1.2.3' are one address. */
function normalizeHost(host: string): string {
  const h = host.toLowerCase();
  return h.startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h;
}

function live(m: Map<string, Ban>, key: string, now: number): boolean {
  const b = m.get(key);
  if (!b) return false;
  if (b.until > now) return true;
  m.delete(key);
  return false;
}

function put(m: Map<string, Ban>, key: string, ban: Ban, max: number): void {
  const old = m.get(key);
  if (old && old.until >= ban.until) return;
  if (!old && m.size >= max) {
    // Full: drop the ban that ends first (O(size), only when full, and bans are rare).
    let firstKey: string | undefined;
    let first = Infinity;
    for (const [k, b] of m) {
      if (b.until < first) {
        first = b.until;
        firstKey = k;
      }
    }
    if (firstKey !== undefined) m.delete(firstKey);
  }
  m.set(key, ban);
}
