/**
 * Per-peer accounting: what each authenticated peer sent, what it cost us, how much more it
 * may send, and a score that says whether to keep listening to it. Pure bookkeeping over an
 * injected clock, no sockets and no timers.
 *
 * Who calls what (the network's part goes through lib/peers/sanctions.ts):
 * - the network's dispatch() calls chargeInbound() for every message before handing it to an
 *   engine: a message over its peer's budget (token buckets per message type) is dropped and
 *   costs `rateExcessPenalty`; it asks verdict() first and ignores the gossip and requests
 *   of a graylisted peer, each of which also costs rateExcessPenalty (ignored());
 * - the gossip engine (through its host) reports first deliveries, duplicates and invalid
 *   messages, asks mayVerify() before each signature check and mayServe() before answering
 *   an IWANT;
 * - the network calls originExcess() for the origin of a message dropped over its
 *   per-origin budget (lib/peers/origin-budget.ts);
 * - the network's reportInvalid() calls invalid(); after any penalty it asks verdict() and
 *   bans a peer whose score reached banScore (lib/peers/ban-list.ts);
 * - the network calls connected() when a peer's connection opens: a known peer coming back
 *   (its record predates this connection) is granted the IWANT serve burst for its catch-up.
 *
 * Score: a sum of weighted events that decays exponentially toward 0 with half-life
 * `scoreHalfLifeMs` (computed lazily from the clock when read or changed), capped above at
 * `maxPositiveScore` so good behaviour cannot be banked to pay for a later attack. Verdict:
 * score <= banScore is 'ban', <= graylistScore is 'graylist', else 'ok'.
 *
 * Records outlive connections (the ledger does not know about them), so a peer that
 * reconnects finds its score and buckets where it left them. At most maxTrackedPeers
 * records: creating one more evicts the record idle longest among those with a score >= 0,
 * else among those above banScore, else the one idle longest. An evicted ban-level record
 * loses only its history: bans themselves live in the BanList, which has its own cap.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import { MessageType } from '../wire/messages.js';
import type { GossipFrame, Message } from '../wire/messages.js';
import { ORIGIN_BUDGET_DEFAULTS, resolveOriginBudgetOptions } from './origin-budget.js';
import type { OriginBudgetOptions } from './origin-budget.js';
import { refilled, TokenBucket } from './token-bucket.js';

/** Budgets kept per peer. Units: messages, except gossipBytes (bytes) and ihaveIds/iwantIds (ids). */
export type RateKind = 'gossip' | 'gossipBytes' | 'ihaveIds' | 'iwantIds' | 'findNode' | 'direct' | 'verify';

export const RATE_KINDS: readonly RateKind[] = Object.freeze(['gossip', 'gossipBytes', 'ihaveIds', 'iwantIds', 'findNode', 'direct', 'verify']);

export type Verdict = 'ok' | 'graylist' | 'ban';

/**
 * Weights, thresholds and budgets. Every field has a default in SCORING_DEFAULTS. The
 * per-origin budget (originPerSecond, originBurst, maxTrackedOrigins) is kept by
 * lib/peers/origin-budget.ts, not by the ledger.
 */
export interface ScoringOptions extends OriginBudgetOptions {
  /** Time for a score to halve, ms. Default 300000 (5 min). */
  scoreHalfLifeMs: number;
  /** At or below this score a peer's GOSSIP, IHAVE, IWANT and FIND_NODE are ignored. Default -40. */
  graylistScore: number;
  /** At or below this score a peer is disconnected (GOODBYE MISBEHAVIOR) and banned. Default -100. */
  banScore: number;
  /** Cap on a positive score. Default 20. */
  maxPositiveScore: number;
  /** Added per first delivery of a valid message (subject to the cap). Default 0.01. */
  firstDeliveryWeight: number;
  /**
   * Subtracted per duplicate copy. Default 0.00001: light enough that a peer sending nothing
   * but duplicates at its whole gossip budget (2000/s) settles at about -9, far from
   * graylistScore, since an honest peer that is always second is not misbehaving; the
   * gossip budget is what bounds a duplicate flood.
   */
  duplicatePenalty: number;
  /** Subtracted per message dropped for exceeding a budget (any kind), and per message of a graylisted peer. Default 0.25. */
  rateExcessPenalty: number;
  /**
   * Per budget, a penalty that replaces rateExcessPenalty for its excess (and for an ignored
   * message of that kind from a graylisted peer). Default { findNode: 5 }: no honest node
   * asks one peer for more than findNodeBurst lookups at once, so a FIND_NODE flooder is
   * graylisted 8 requests past its budget and banned 12 later: about 50 frames with the
   * burst, where it was 600 (each one the victim decrypts and decodes; 16 flooders were
   * 200 ms of one uninterrupted event-loop turn on the shared test machine).
   */
  rateExcessPenaltyByKind: Readonly<Partial<Record<RateKind, number>>>;
  /**
   * Subtracted per invalid message, by reason; reasons not listed cost `otherInvalidPenalty`.
   * Defaults: bad_signature, id_mismatch, unsigned, schema 30 (two graylist, four ban: an
   * honest peer verifies before it forwards, so it never relays these); bad_payload 25
   * (a valid signer's undecodable payload); ttl_zero and unsolicited_nodes 5; replay and
   * too_old 0.1 (an honest relay whose replay state differs from ours may forward one).
   */
  invalidPenalty: Readonly<Record<string, number>>;
  /** Penalty for an invalid reason not in invalidPenalty. Default 5. */
  otherInvalidPenalty: number;
  /** GOSSIP messages per second per peer. Default 2000. */
  gossipPerSecond: number;
  /** GOSSIP burst, messages (covers a whole repair window fetched after a partition). Default 20000. */
  gossipBurst: number;
  /** GOSSIP payload bytes per second per peer. Default 16 MiB. */
  gossipBytesPerSecond: number;
  /** GOSSIP payload burst, bytes. Default 64 MiB (the default repair cache). */
  gossipBytesBurst: number;
  /** Ids per second a peer may advertise (IHAVE). Default 5000. */
  ihaveIdsPerSecond: number;
  /** IHAVE burst, ids (a reconnection advertises the whole window). Default 30000. */
  ihaveIdsBurst: number;
  /** Ids per second a peer may ask for (IWANT): gossipsub's 5000 per 1 s heartbeat. Default 5000. */
  iwantIdsPerSecond: number;
  /** IWANT burst, ids. Default 30000. */
  iwantIdsBurst: number;
  /** FIND_NODE per second per peer. Default 20. */
  findNodePerSecond: number;
  /** FIND_NODE burst (a joining node's bootstrap asks one peer a few at most). Default 30. */
  findNodeBurst: number;
  /** DIRECT per second per peer. Default 1000. */
  directPerSecond: number;
  /** DIRECT burst. Default 5000. */
  directBurst: number;
  /**
   * Signature verifications per second a peer's unsolicited GOSSIP may cost us, checked
   * before verifying (~110 us each: 1000/s is at most 11% of a core per peer). Messages we
   * asked for by IWANT are not charged (they are bounded by the wanted list). Default 1000.
   */
  verifyPerSecond: number;
  /** Verification burst. Default 2000. */
  verifyBurst: number;
  /**
   * IWANT answers: bytes a peer earns per byte it sends us. Default 1.5: with the shared
   * allowance below, a swarm of new identities asking IWANT is served at most about twice
   * what it sends (the amplification bound).
   */
  serveAmplification: number;
  /**
   * IWANT answers: bytes per second granted on top of what the peer earns. Default 0: a
   * peer is served at most serveAmplification times what it sends, plus its bursts.
   */
  serveBytesPerSecond: number;
  /**
   * IWANT answers: the burst, bytes (one catch-up of the repair window), and the serve
   * budget's capacity. Granted only to a known peer that comes back (connected() finds its
   * record, which outlives a disconnection), at most once per serveBurstIntervalMs: a new
   * identity starts with nothing and earns what it is served, so a Sybil swarm asking IWANT
   * gets at most serveAmplification times what it sends. Default 4 MiB.
   */
  serveBurstBytes: number;
  /** Least time between two serve bursts of one peer, ms. Default 60000. */
  serveBurstIntervalMs: number;
  /**
   * IWANT answers: one allowance for the whole node, bytes per second, drawn by any budgeted
   * peer whose own budget is short (a new node catching up, an honest peer asking before it
   * has earned): shared, so a Sybil swarm gets it once, not once per identity. Default 8192.
   */
  serveSharedBytesPerSecond: number;
  /** The shared allowance's burst, bytes; 0 turns the shared allowance off. Default 131072 (128 KiB). */
  serveSharedBurstBytes: number;
  /** Cap on peer records. Default 4096. */
  maxTrackedPeers: number;
  /**
   * Subtracted from an origin's own record per message of it dropped over originPerSecond
   * (the relay that brought it is not charged). Default 0.02: a signer flooding 1,000/s over
   * its budget is graylisted in 2 s and banned in 5 s where it is connected; an origin that
   * bursts 1,000 messages past its burst loses 20, far from graylistScore.
   */
  originExcessPenalty: number;
}

export const SCORING_DEFAULTS: Readonly<ScoringOptions> = Object.freeze({
  scoreHalfLifeMs: 300_000,
  graylistScore: -40,
  banScore: -100,
  maxPositiveScore: 20,
  firstDeliveryWeight: 0.01,
  duplicatePenalty: 0.00001,
  rateExcessPenalty: 0.25,
  rateExcessPenaltyByKind: Object.freeze({ findNode: 5 }),
  invalidPenalty: Object.freeze({
    bad_signature: 30,
    id_mismatch: 30,
    unsigned: 30,
    schema: 30,
    bad_payload: 25,
    ttl_zero: 5,
    unsolicited_nodes: 5,
    replay: 0.1,
    too_old: 0.1,
  }),
  otherInvalidPenalty: 5,
  gossipPerSecond: 2000,
  gossipBurst: 20_000,
  gossipBytesPerSecond: 16 * 1024 * 1024,
  gossipBytesBurst: 64 * 1024 * 1024,
  ihaveIdsPerSecond: 5000,
  ihaveIdsBurst: 30_000,
  iwantIdsPerSecond: 5000,
  iwantIdsBurst: 30_000,
  findNodePerSecond: 20,
  findNodeBurst: 30,
  directPerSecond: 1000,
  directBurst: 5000,
  verifyPerSecond: 1000,
  verifyBurst: 2000,
  serveAmplification: 1.5,
  serveBytesPerSecond: 0,
  serveBurstBytes: 4 * 1024 * 1024,
  serveBurstIntervalMs: 60_000,
  serveSharedBytesPerSecond: 8192,
  serveSharedBurstBytes: 128 * 1024,
  maxTrackedPeers: 4096,
  originExcessPenalty: 0.1,
  ...ORIGIN_BUDGET_DEFAULTS,
});

/**
 * Objects resolveScoringOptions() returned (frozen): passed in again, they are used as they
 * are, so the ledgers of one network (or of a simulated network's 10,000 nodes) share one
 * copy instead of some 400 bytes each.
 */
const RESOLVED = new WeakSet<object>();

/** Apply defaults and validate; `prefix` names the option in errors ('scoring'). The result is frozen. */
export function resolveScoringOptions(o: Partial<ScoringOptions> = {}, prefix = 'scoring'): ScoringOptions {
  if (typeof o === 'object' && o !== null && RESOLVED.has(o)) return o as ScoringOptions;
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError(prefix, 'expected an object');
  const d = SCORING_DEFAULTS;
  const num = (k: keyof ScoringOptions, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = (o[k] ?? d[k]) as unknown;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new InvalidOptionError(`${prefix}.${k}`, `expected a number from ${min} to ${max}, got ${String(v)}`);
    }
    return v;
  };
  const penalties = { ...d.invalidPenalty, ...(o.invalidPenalty ?? {}) };
  for (const [reason, w] of Object.entries(penalties)) {
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new InvalidOptionError(`${prefix}.invalidPenalty.${reason}`, `expected a number >= 0, got ${String(w)}`);
  }
  const byKind = { ...d.rateExcessPenaltyByKind, ...(o.rateExcessPenaltyByKind ?? {}) };
  for (const [kind, w] of Object.entries(byKind)) {
    if (!RATE_KINDS.includes(kind as RateKind)) throw new InvalidOptionError(`${prefix}.rateExcessPenaltyByKind.${kind}`, `not a budget (one of ${RATE_KINDS.join(', ')})`);
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new InvalidOptionError(`${prefix}.rateExcessPenaltyByKind.${kind}`, `expected a number >= 0, got ${String(w)}`);
  }
  const r: ScoringOptions = {
    scoreHalfLifeMs: num('scoreHalfLifeMs', 1),
    graylistScore: num('graylistScore', -Number.MAX_SAFE_INTEGER, 0),
    banScore: num('banScore', -Number.MAX_SAFE_INTEGER, 0),
    maxPositiveScore: num('maxPositiveScore', 0),
    firstDeliveryWeight: num('firstDeliveryWeight', 0),
    duplicatePenalty: num('duplicatePenalty', 0),
    rateExcessPenalty: num('rateExcessPenalty', 0),
    rateExcessPenaltyByKind: Object.freeze(byKind),
    invalidPenalty: Object.freeze(penalties),
    otherInvalidPenalty: num('otherInvalidPenalty', 0),
    gossipPerSecond: num('gossipPerSecond', 0),
    gossipBurst: num('gossipBurst', 1),
    gossipBytesPerSecond: num('gossipBytesPerSecond', 0),
    gossipBytesBurst: num('gossipBytesBurst', 1),
    ihaveIdsPerSecond: num('ihaveIdsPerSecond', 0),
    ihaveIdsBurst: num('ihaveIdsBurst', 1),
    iwantIdsPerSecond: num('iwantIdsPerSecond', 0),
    iwantIdsBurst: num('iwantIdsBurst', 1),
    findNodePerSecond: num('findNodePerSecond', 0),
    findNodeBurst: num('findNodeBurst', 1),
    directPerSecond: num('directPerSecond', 0),
    directBurst: num('directBurst', 1),
    verifyPerSecond: num('verifyPerSecond', 0),
    verifyBurst: num('verifyBurst', 1),
    serveAmplification: num('serveAmplification', 0),
    serveBytesPerSecond: num('serveBytesPerSecond', 0),
    serveBurstBytes: num('serveBurstBytes', 1),
    serveBurstIntervalMs: num('serveBurstIntervalMs', 0),
    serveSharedBytesPerSecond: num('serveSharedBytesPerSecond', 0),
    serveSharedBurstBytes: num('serveSharedBurstBytes', 0),
    maxTrackedPeers: num('maxTrackedPeers', 1),
    originExcessPenalty: num('originExcessPenalty', 0),
    ...resolveOriginBudgetOptions(o, prefix),
  };
  if (!Number.isInteger(r.maxTrackedPeers)) throw new InvalidOptionError(`${prefix}.maxTrackedPeers`, 'expected an integer');
  if (r.banScore >= r.graylistScore) throw new InvalidOptionError(`${prefix}.banScore`, `must be below graylistScore (${r.graylistScore})`);
  RESOLVED.add(Object.freeze(r));
  return r;
}

/** What the ledger counted for one peer (a copy). */
export interface PeerCounters {
  firstDeliveries: number;
  duplicates: number;
  /** Invalid messages by reason. */
  invalid: Record<string, number>;
  /** Messages dropped over budget, by budget. */
  rateLimited: Partial<Record<RateKind, number>>;
  /** Messages ignored because the peer was graylisted. */
  ignored: number;
  iwantIdsAsked: number;
  iwantIdsServed: number;
  /** GOSSIP bytes (encoded bodies) sent in answer to its IWANTs. */
  bytesServed: number;
  /** IWANT answers refused for the serve budget. */
  serveRefused: number;
  findNodeAsked: number;
  /** Estimated bytes received (message bodies), all types. */
  bytesIn: number;
  /** Its own messages (as origin) dropped over the per-origin budget. */
  originExcess: number;
}

export interface PeerSnapshot {
  id: string;
  score: number;
  verdict: Verdict;
  /** Clock time, ms, of the last event recorded. */
  lastSeen: number;
  counters: PeerCounters;
}

/** PeerCounters as kept: the two maps are made on first use (most peers never need them). */
type KeptCounters = Omit<PeerCounters, 'invalid' | 'rateLimited'> & {
  invalid: Record<string, number> | undefined;
  rateLimited: Partial<Record<RateKind, number>> | undefined;
};

interface PeerRecord {
  score: number;
  scoreAt: number;
  lastSeen: number;
  counters: KeptCounters;
  /**
   * The token buckets, as numbers (a TokenBucket object each was about 50 bytes more, and a
   * node keeps some 90): tokens at 2k and the clock time they were counted at 2k + 1, for
   * budget k (RATE_KINDS[k], then SERVE for the IWANT serve budget). NaN tokens: not made
   * yet (made on first use, full; the serve budget empty), as TokenBucket would be then.
   */
  buckets: number[];
  /** Clock time of the last serve burst granted (-Infinity: never). */
  burstAt: number;
  /** Its current connection is one this node chose (dialed, or a member): IWANT answers not budgeted. */
  chosen: boolean;
}

/** Bucket number of the IWANT serve budget in PeerRecord.buckets (after the RATE_KINDS). */
const SERVE = RATE_KINDS.length;

/** A record's buckets before any is used (copied: packed doubles, exactly as long as needed). */
const NO_BUCKETS: readonly number[] = Array.from({ length: 2 * (SERVE + 1) }, (_, i) => (i % 2 === 0 ? NaN : 0));

/** The bucket number of a budget (its index in RATE_KINDS). */
function kindIndex(kind: RateKind): number {
  switch (kind) {
    case 'gossip': return 0;
    case 'gossipBytes': return 1;
    case 'ihaveIds': return 2;
    case 'iwantIds': return 3;
    case 'findNode': return 4;
    case 'direct': return 5;
    case 'verify': return 6;
  }
}

export class PeerLedger {
  readonly opts: ScoringOptions;
  private readonly records = new Map<string, PeerRecord>();
  /** The record looked up last, and its id: a message's charges and hooks all name one peer in a row. */
  private lastId: string | undefined;
  private last: PeerRecord | undefined;
  /** Rate (per second) and burst of each bucket number (see PeerRecord.buckets). */
  private readonly rates: number[];
  private readonly bursts: number[];
  /** The node-wide IWANT serve allowance (serveSharedBytesPerSecond). */
  private readonly sharedServe: TokenBucket | undefined;
  /** Records evicted to stay within maxTrackedPeers. */
  evictions = 0;

  constructor(
    private readonly clock: Clock,
    options: Partial<ScoringOptions> | ScoringOptions = {},
  ) {
    this.opts = resolveScoringOptions(options);
    const o = this.opts;
    this.sharedServe = o.serveSharedBurstBytes > 0 ? new TokenBucket(o.serveSharedBytesPerSecond, o.serveSharedBurstBytes, clock.now()) : undefined;
    // In RATE_KINDS order, then the serve budget.
    this.rates = [o.gossipPerSecond, o.gossipBytesPerSecond, o.ihaveIdsPerSecond, o.iwantIdsPerSecond, o.findNodePerSecond, o.directPerSecond, o.verifyPerSecond, o.serveBytesPerSecond];
    this.bursts = [o.gossipBurst, o.gossipBytesBurst, o.ihaveIdsBurst, o.iwantIdsBurst, o.findNodeBurst, o.directBurst, o.verifyBurst, o.serveBurstBytes];
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Take `n` units from the peer's `kind` budget. False when the budget is spent: the
   * caller drops the message; the excess is counted and costs rateExcessPenalty.
   */
  take(id: string, kind: RateKind, n = 1): boolean {
    const now = this.clock.now();
    const r = this.record(id, now);
    if (this.takeFrom(r, kindIndex(kind), now, n)) return true;
    const limited = (r.counters.rateLimited ??= {});
    limited[kind] = (limited[kind] ?? 0) + 1;
    this.add(r, now, -this.excessPenalty(kind));
    return false;
  }

  /**
   * A connection with the peer opened. `chosen`: this node picked the peer (it dialed it, or
   * it is a configured member): its IWANT answers are not budgeted while this connection
   * lasts (still at most iwantServesPerPeer per id, and only ids advertised to it), since an
   * attacker cannot make itself chosen at will. Otherwise, a peer this ledger knew before
   * (its record predates this connection: a reconnection, a healed partition, a restart) is
   * granted the serve burst for its catch-up, at most once per serveBurstIntervalMs; a new
   * identity is only recorded, with an empty serve budget. Returns whether a burst was granted.
   */
  connected(id: string, chosen = false): boolean {
    const now = this.clock.now();
    const known = this.find(id);
    const r = this.record(id, now);
    r.chosen = chosen;
    if (!known || now - r.burstAt < this.opts.serveBurstIntervalMs) return false;
    r.burstAt = now;
    this.creditServe(r, now, this.opts.serveBurstBytes);
    return true;
  }

  /** Whether a signature check for the peer fits its verification budget (see take()). */
  mayVerify(id: string): boolean {
    return this.take(id, 'verify');
  }

  /** The peer sent something invalid. */
  invalid(id: string, reason: string): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    const invalid = (r.counters.invalid ??= {});
    invalid[reason] = (invalid[reason] ?? 0) + 1;
    this.add(r, now, -(this.opts.invalidPenalty[reason] ?? this.opts.otherInvalidPenalty));
  }

  /** The peer was first to bring us a valid message. */
  firstDelivery(id: string): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    r.counters.firstDeliveries++;
    this.add(r, now, this.opts.firstDeliveryWeight);
  }

  /** The peer sent a copy of a message we already had. */
  duplicate(id: string): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    r.counters.duplicates++;
    if (this.opts.duplicatePenalty > 0) this.add(r, now, -this.opts.duplicatePenalty);
  }

  /** A message of about `bytes` arrived from the peer: counted, and it earns IWANT serve credit. */
  received(id: string, bytes: number): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    r.counters.bytesIn += bytes;
    if (this.opts.serveAmplification > 0) this.creditServe(r, now, bytes * this.opts.serveAmplification);
  }

  /**
   * The peer is graylisted and one of its messages (of budget `kind`) was ignored. A
   * graylisted peer has no budget left: each ignored message costs what its kind's excess
   * costs (rateExcessPenalty unless rateExcessPenaltyByKind says otherwise), so a peer that keeps sending
   * after it was graylisted reaches banScore (from graylistScore, 240 messages at the
   * defaults), while one that stops recovers by decay.
   */
  ignored(id: string, kind?: RateKind): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    r.counters.ignored++;
    this.add(r, now, -(kind === undefined ? this.opts.rateExcessPenalty : this.excessPenalty(kind)));
  }

  /** The peer asked for `n` ids by IWANT. */
  iwantAsked(id: string, n: number): void {
    this.record(id, this.clock.now()).counters.iwantIdsAsked += n;
  }

  /** The peer sent a FIND_NODE. */
  findNodeAsked(id: string): void {
    this.record(id, this.clock.now()).counters.findNodeAsked++;
  }

  /**
   * Whether answering an IWANT with a body of `bytes` fits the peer's serve budget: what it
   * earned (serveAmplification x the bytes it sent us) plus serveBytesPerSecond plus the
   * bursts connected() granted, up to serveBurstBytes, else from the node-wide shared
   * allowance; always, while the peer's connection is one this node chose (connected(id, true)). Refusals are counted, not penalized (a catch-up may ask for much).
   */
  mayServe(id: string, bytes: number): boolean {
    const now = this.clock.now();
    const r = this.record(id, now);
    if (!r.chosen && !this.takeFrom(r, SERVE, now, Math.min(bytes, this.opts.serveBurstBytes)) && !this.sharedServe?.take(now, Math.min(bytes, this.opts.serveSharedBurstBytes))) {
      r.counters.serveRefused++;
      return false;
    }
    r.counters.iwantIdsServed++;
    r.counters.bytesServed += bytes;
    return true;
  }

  /**
   * A message of this origin (a node id, whoever relayed it) was dropped over its
   * per-origin budget: costs the origin originExcessPenalty.
   */
  originExcess(id: string): void {
    const now = this.clock.now();
    const r = this.record(id, now);
    r.counters.originExcess++;
    this.add(r, now, -this.opts.originExcessPenalty);
  }

  /** The peer's score now (0 for an unknown peer). */
  score(id: string): number {
    const r = this.find(id);
    return r ? this.decayed(r, this.clock.now()) : 0;
  }

  /** 'ban' at or below banScore, 'graylist' at or below graylistScore, else 'ok'. */
  verdict(id: string): Verdict {
    const r = this.find(id);
    return r ? this.verdictOf(this.decayed(r, this.clock.now())) : 'ok';
  }

  /** A copy of what is known about the peer, or undefined. */
  snapshot(id: string): PeerSnapshot | undefined {
    const r = this.find(id);
    if (!r) return undefined;
    const score = this.decayed(r, this.clock.now());
    const c = r.counters;
    return {
      id, score, verdict: this.verdictOf(score), lastSeen: r.lastSeen,
      counters: { ...c, invalid: { ...c.invalid }, rateLimited: { ...c.rateLimited } },
    };
  }

  /** Ids of every tracked peer. */
  ids(): string[] {
    return [...this.records.keys()];
  }

  clear(): void {
    this.records.clear();
    this.lastId = undefined;
    this.last = undefined;
  }

  /** The record of `id`, if any (the one looked up last is not looked up again). */
  private find(id: string): PeerRecord | undefined {
    if (id === this.lastId) return this.last;
    const r = this.records.get(id);
    if (r !== undefined) {
      this.lastId = id;
      this.last = r;
    }
    return r;
  }

  private verdictOf(score: number): Verdict {
    if (score <= this.opts.banScore) return 'ban';
    if (score <= this.opts.graylistScore) return 'graylist';
    return 'ok';
  }

  private decayed(r: PeerRecord, now: number): number {
    if (now > r.scoreAt && r.score !== 0) {
      r.score *= Math.pow(2, -(now - r.scoreAt) / this.opts.scoreHalfLifeMs);
      if (Math.abs(r.score) < 1e-6) r.score = 0;
    }
    r.scoreAt = now;
    return r.score;
  }

  private add(r: PeerRecord, now: number, delta: number): void {
    r.score = Math.min(this.opts.maxPositiveScore, this.decayed(r, now) + delta);
  }

  private record(id: string, now: number): PeerRecord {
    let r = this.find(id);
    if (!r) {
      if (this.records.size >= this.opts.maxTrackedPeers) this.evict(now);
      r = {
        score: 0, scoreAt: now, lastSeen: now,
        counters: {
          firstDeliveries: 0, duplicates: 0, invalid: undefined, rateLimited: undefined, ignored: 0, iwantIdsAsked: 0,
          iwantIdsServed: 0, bytesServed: 0, serveRefused: 0, findNodeAsked: 0, bytesIn: 0, originExcess: 0,
        },
        buckets: NO_BUCKETS.slice(),
        burstAt: -Infinity,
        chosen: false,
      };
      this.records.set(id, r);
      this.lastId = id;
      this.last = r;
    }
    r.lastSeen = now;
    return r;
  }

  /** Drop one record: idle longest with score >= 0, else above banScore, else any (O(records), only when full). */
  private evict(now: number): void {
    const tiers: Array<string | undefined> = [undefined, undefined, undefined];
    const oldest = [Infinity, Infinity, Infinity];
    for (const [id, r] of this.records) {
      const s = this.decayed(r, now);
      const tier = s >= 0 ? 0 : s > this.opts.banScore ? 1 : 2;
      if (r.lastSeen < oldest[tier]!) {
        oldest[tier] = r.lastSeen;
        tiers[tier] = id;
      }
    }
    const victim = tiers.find((t) => t !== undefined);
    if (victim !== undefined) {
      this.records.delete(victim);
      if (victim === this.lastId) this.lastId = this.last = undefined;
      this.evictions++;
    }
  }

  /**
   * Take `n` tokens from bucket `k` of the record at clock time `now`: TokenBucket.take on
   * the record's numbers. A bucket not made yet is made now: full, or empty for the serve
   * budget (it is filled by what the peer sends and by connected()'s bursts).
   */
  private takeFrom(r: PeerRecord, k: number, now: number, n: number): boolean {
    const b = r.buckets;
    const tokens = this.tokensAt(b, k, now);
    if (tokens < n) return false;
    b[2 * k] = tokens - n;
    return true;
  }

  /** Add `n` earned tokens to the serve budget (never beyond its burst): TokenBucket.credit. */
  private creditServe(r: PeerRecord, now: number, n: number): void {
    const b = r.buckets;
    b[2 * SERVE] = Math.min(this.bursts[SERVE]!, this.tokensAt(b, SERVE, now) + n);
  }

  /** Bucket k's tokens, refilled to `now` and stored with that time (made first if need be). */
  private tokensAt(b: number[], k: number, now: number): number {
    const i = 2 * k;
    let tokens = b[i]!;
    if (Number.isNaN(tokens)) tokens = k === SERVE ? 0 : this.bursts[k]!;
    else tokens = refilled(tokens, b[i + 1]!, now, this.rates[k]!, this.bursts[k]!);
    b[i] = tokens;
    b[i + 1] = now;
    return tokens;
  }

  private excessPenalty(kind: RateKind): number {
    return this.opts.rateExcessPenaltyByKind[kind] ?? this.opts.rateExcessPenalty;
  }
}

/** The budget a message type is charged to (GOSSIP: its message count), or undefined. */
export function rateKindOf(type: number): RateKind | undefined {
  switch (type) {
    case MessageType.GOSSIP: return 'gossip';
    case MessageType.IHAVE: return 'ihaveIds';
    case MessageType.IWANT: return 'iwantIds';
    case MessageType.FIND_NODE: return 'findNode';
    case MessageType.DIRECT: return 'direct';
    default: return undefined;
  }
}

/** Envelope bytes counted on top of a GOSSIP payload (ids, key, signature, seen-by, topic). */
const GOSSIP_ENVELOPE_BYTES = 200;
/** Bytes counted per id of an IHAVE or IWANT (a 32-byte id and its MessagePack header). */
const ID_BYTES = 34;

/**
 * Charge an inbound message to its peer's budgets (before any engine sees it). False: drop
 * it (over budget: already counted and penalized). Messages of other types always pass.
 */
export function chargeInbound(ledger: PeerLedger, id: string, msg: Message | GossipFrame): boolean {
  switch (msg.type) {
    case MessageType.GOSSIP: {
      const bytes = 'body' in msg ? msg.body.length : msg.payload.length + GOSSIP_ENVELOPE_BYTES;
      if (!ledger.take(id, 'gossip') || !ledger.take(id, 'gossipBytes', Math.min(bytes, ledger.opts.gossipBytesBurst))) return false;
      ledger.received(id, bytes);
      return true;
    }
    case MessageType.IHAVE:
      if (!ledger.take(id, 'ihaveIds', Math.min(msg.ids.length, ledger.opts.ihaveIdsBurst))) return false;
      ledger.received(id, msg.ids.length * ID_BYTES);
      return true;
    case MessageType.IWANT:
      ledger.iwantAsked(id, msg.ids.length);
      if (!ledger.take(id, 'iwantIds', Math.min(msg.ids.length, ledger.opts.iwantIdsBurst))) return false;
      ledger.received(id, msg.ids.length * ID_BYTES);
      return true;
    case MessageType.FIND_NODE:
      ledger.findNodeAsked(id);
      return ledger.take(id, 'findNode');
    case MessageType.DIRECT:
      if (!ledger.take(id, 'direct')) return false;
      ledger.received(id, msg.payload.length + 64);
      return true;
    default:
      return true;
  }
}
