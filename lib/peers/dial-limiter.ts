/**
 * Dial limits per address, so that what others tell this node (HELLO listen addresses, NODES
 * replies) cannot turn it into a tool that floods a third party. Pure bookkeeping over an
 * injected clock: no sockets, no timers. The network asks check() before each dial and
 * reports started(), then succeeded(host, port, id) when the handshake showed an id there,
 * or failed() when the dial or handshake failed.
 *
 * Kinds of dial and their rules:
 * - 'learned' (an address a third party gave us: a NODES reply, a routing-table contact):
 *   all three rules below;
 * - 'claimed' (the redial of a peer worth keeping at the address it gave for itself in its
 *   handshake): the first and third rules; the reconnector's backoff spaces the attempts;
 * - 'trusted' (addresses from the user: bootstrap, addPeer, members): always allowed.
 * Rules:
 * - an address whose last dial showed another node than the one expected is not dialed for
 *   that claim ('claimed_by_other'): one dial tells us who really lives there;
 * - an address never proven is dialed at most maxUnprovenDials times without success, then
 *   left alone for unprovenRetryAfterMs ('unproven_limit');
 * - after a failure the address is not dialed again within minRedialIntervalMs ('too_soon'),
 *   however many identities claim it.
 * The table is capped (maxTrackedAddresses), least recently dialed forgotten first.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';

export interface DialLimiterOptions {
  /** Failed dials of an address nobody proved, at most, before it is left alone. Default 3. */
  maxUnprovenDials?: number;
  /** Wait after a failed dial of an address before the next one, ms. Default 1000. */
  minRedialIntervalMs?: number;
  /** How long an address that used up maxUnprovenDials is left alone, ms. Default 3600000 (1 hour). */
  unprovenRetryAfterMs?: number;
  /** Addresses remembered at most. Default 4096. */
  maxTrackedAddresses?: number;
}

export const DIAL_LIMITER_DEFAULTS = Object.freeze({
  maxUnprovenDials: 3,
  minRedialIntervalMs: 1000,
  unprovenRetryAfterMs: 3_600_000,
  maxTrackedAddresses: 4096,
});

export type DialKind = 'trusted' | 'claimed' | 'learned';
export type DialVerdict = 'ok' | 'too_soon' | 'unproven_limit' | 'claimed_by_other';

interface AddressRecord {
  /** Node id the last successful handshake at this address showed. */
  provenId: string | undefined;
  /** Failures since the last success. */
  failures: number;
  lastAttemptAt: number;
  lastFailedAt: number;
  /** Dials started, in total (for reports). */
  attempts: number;
}

export class DialLimiter {
  private readonly opts: Required<DialLimiterOptions>;
  private readonly addresses = new Map<string, AddressRecord>();
  /** Dials refused, by verdict. */
  readonly refused: Record<Exclude<DialVerdict, 'ok'>, number> = { too_soon: 0, unproven_limit: 0, claimed_by_other: 0 };

  constructor(private readonly clock: Clock, options: DialLimiterOptions = {}) {
    const d = DIAL_LIMITER_DEFAULTS;
    const int = (field: keyof DialLimiterOptions, min: number): number => {
      const v = options[field] ?? d[field];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidOptionError(field, `expected an integer >= ${min}, got ${String(v)}`);
      return v;
    };
    this.opts = {
      maxUnprovenDials: int('maxUnprovenDials', 1),
      minRedialIntervalMs: int('minRedialIntervalMs', 0),
      unprovenRetryAfterMs: int('unprovenRetryAfterMs', 0),
      maxTrackedAddresses: int('maxTrackedAddresses', 1),
    };
  }

  get size(): number {
    return this.addresses.size;
  }

  /** May this node dial host:port now? `expectedId`: the node the caller expects there, if any. */
  check(host: string, port: number, kind: DialKind, expectedId?: string): DialVerdict {
    if (kind === 'trusted') return 'ok';
    const r = this.addresses.get(key(host, port));
    if (!r) return 'ok';
    const now = this.clock.now();
    let verdict: DialVerdict = 'ok';
    if (r.provenId !== undefined && expectedId !== undefined && r.provenId !== expectedId) verdict = 'claimed_by_other';
    else if (kind === 'learned' && r.provenId === undefined && r.failures >= this.opts.maxUnprovenDials && now - r.lastAttemptAt < this.opts.unprovenRetryAfterMs) verdict = 'unproven_limit';
    else if (r.failures > 0 && now - r.lastFailedAt < this.opts.minRedialIntervalMs) verdict = 'too_soon';
    if (verdict !== 'ok') this.refused[verdict]++;
    return verdict;
  }

  /** A dial of host:port starts. */
  started(host: string, port: number): void {
    const r = this.touch(host, port);
    r.attempts++;
    r.lastAttemptAt = this.clock.now();
  }

  /** The handshake at host:port showed node `id`: the address is proven to host it. */
  succeeded(host: string, port: number, id: string): void {
    const r = this.touch(host, port);
    r.provenId = id;
    r.failures = 0;
  }

  /**
   * The dial of host:port failed (no connection, no handshake), or the node there was not
   * the one expected (then call succeeded() with the id seen as well).
   */
  failed(host: string, port: number): void {
    const r = this.touch(host, port);
    r.failures++;
    r.lastFailedAt = this.clock.now();
  }

  /** Node id proven at host:port, if any. */
  provenId(host: string, port: number): string | undefined {
    return this.addresses.get(key(host, port))?.provenId;
  }

  /** Dials started to host:port since it was first tracked. */
  attempts(host: string, port: number): number {
    return this.addresses.get(key(host, port))?.attempts ?? 0;
  }

  private touch(host: string, port: number): AddressRecord {
    const k = key(host, port);
    let r = this.addresses.get(k);
    if (r) {
      this.addresses.delete(k); // re-insert: the Map's order is least recently used first
    } else {
      r = { provenId: undefined, failures: 0, lastAttemptAt: 0, lastFailedAt: 0, attempts: 0 };
      if (this.addresses.size >= this.opts.maxTrackedAddresses) {
        const oldest = this.addresses.keys().next().value;
        if (oldest !== undefined) this.addresses.delete(oldest);
      }
    }
    this.addresses.set(k, r);
    return r;
  }
}

function key(host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`;
}
