/**
 * Epidemic gossip: push to `fanout` random peers per hop, with a seen-cache for dedup, TTL
 * hops, a seen-by list, and lazy repair (IHAVE/IWANT) from a bounded cache of recent
 * messages so that push gossip's few misses are filled in within a heartbeat.
 *
 * No sockets and no timers here: peers are a small interface, time comes from the injected
 * clock, and periodic work is heartbeat(), which the network's timer (or the simulator)
 * calls. Every receiver recomputes the id and verifies the origin's signature once per
 * unique message, before it delivers or forwards.
 *
 * The relay path works on bytes (PROTOCOL.md §4.5, issue 14): onGossip() gets the GOSSIP body
 * as it came off the wire, reads the id at its fixed offset and drops a copy already seen
 * before any decode or hash; a new one is read once (offsets and views, no copies), hashed
 * once, verified at most once, and forwarded as one new body (ttl, hops and seen-by patched,
 * the tail copied as bytes) that every target of the tick shares and the repair cache keeps.
 * Who holds a cached message is a few bits per entry, one per peer slot (peer-slots.ts).
 *
 * push: 'tree' (PROTOCOL.md §4.6, "Eager-tree push") replaces the fanout pick with an eager
 * tree kept by push-tree.ts: a new message goes to every eager peer and is announced to the
 * lazy ones; a duplicate prunes the link it came over (here, and at the sender through an
 * IHAVE of its id); an IWANT grafts the link it came over back.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { nodeIdOf, verifySignature } from '../identity.js';
import type { Identity } from '../identity.js';
import type { Metrics } from '../metrics.js';
import type { TraceEvent } from '../dump/records.js';
import {
  encodeGossip, forwardGossip, gossipHeadOk, gossipIdOf, gossipSeenByOffset, GOSSIP_ID_OFFSET, GOSSIP_TTL_OFFSET, readGossip,
} from '../wire/gossip-envelope.js';
import type { GossipLayout } from '../wire/gossip-envelope.js';
import { LIMITS, MessageType } from '../wire/messages.js';
import type { Message } from '../wire/messages.js';
import { gossipMessageId, gossipMessageIdOfBody } from './message-id.js';
import { clearKnown, entryBody, entryId, isKnown, MAX_SERVES_PER_PEER, MessageCache, setKnown } from './message-cache.js';
import type { CacheEntry } from './message-cache.js';
import { PeerSlots } from './peer-slots.js';
import { PushTree } from './push-tree.js';
import { ReplayWindow } from './replay-window.js';
import { SeenCache } from './seen-cache.js';

/** A connected peer as the engine sees it. */
export interface GossipPeer {
  /** Node id, 64 hex chars. */
  readonly idHex: string;
  /** First 8 bytes of the node id as a latin1 string: how seen-by entries are compared. */
  readonly prefixKey: string;
  /** Queue a message; false when it was dropped (queue full, closed). */
  send(msg: Message): boolean;
  /** Queue an already-encoded body of the given type (one encoding shared by many peers). */
  sendEncoded(type: number, body: Buffer): boolean;
  /** Last measured round trip to the peer, ms; undefined before the first PONG. */
  readonly rttMs?: number | undefined;
}

/** What a subscriber learns about a delivered message. */
export interface DeliveryInfo {
  /** Message id, 64 hex chars. */
  id: string;
  topic: string;
  /** Origin's node id, 64 hex chars. */
  from: string;
  /** Links the message crossed to reach this node (0 for a local delivery). */
  hops: number;
  /** True for sendToPeer messages, false for gossip. */
  direct: boolean;
  /** Gossip: 'repair' when the copy arrived while we had asked for it by IWANT, else 'push'. */
  via?: 'push' | 'repair';
}

/** What the engine needs from the node it runs in. */
export interface GossipHost {
  /** Connected, authenticated peers. */
  peers(): readonly GossipPeer[];
  /**
   * Hand a verified, new message to local subscribers. `payload` is the host's own copy (the
   * bytes the engine forwards are not exposed: a subscriber that changed them would corrupt
   * what peers get).
   */
  deliver(topic: string, payload: Buffer, info: DeliveryInfo): void;
  /**
   * Optional: whether `topic` has a local subscriber. false: the message is only relayed, and
   * deliver() is not called (its payload is neither copied nor decoded). Absent: always called.
   */
  subscribed?(topic: string): boolean;
  /** A peer sent something invalid (reason is a stable snake_case word). */
  invalid(from: GossipPeer, reason: string): void;
  /** Optional observer of each decision and its reason (wire dumps). Not called when absent. */
  trace?(event: TraceEvent): void;
  /**
   * Peer accounting (lib/peers/peer-ledger.ts); every one optional: without them nothing is
   * budgeted. mayVerify: whether a signature check for an unsolicited GOSSIP from the peer
   * fits its budget (asked before verifying; false drops the message). mayServe: whether
   * answering its IWANT with `bytes` fits its serve budget. firstDelivery / duplicate: what
   * its copies were worth.
   */
  mayVerify?(from: GossipPeer): boolean;
  /**
   * Per-origin budget, signed mode only (an unsigned origin is not authenticated, so anyone
   * could spend it): mayAccept is asked once per unique message whose id checked out, before
   * verifying, and false drops it (origin_budget); accepted is told once it verified.
   */
  mayAccept?(from: GossipPeer, origin: Buffer): boolean;
  accepted?(origin: Buffer): void;
  mayServe?(from: GossipPeer, bytes: number): boolean;
  /**
   * Optional: whether a peer's answer to an IWANT would be heard. false (a graylisted peer,
   * whose GOSSIP the network ignores) skips it as a repair source: the next advertiser is
   * asked instead. Absent: every advertiser is asked in turn.
   */
  mayAsk?(peer: GossipPeer): boolean;
  firstDelivery?(from: GossipPeer): void;
  duplicate?(from: GossipPeer): void;
  /**
   * Optional: run `fn` once when this turn's inbound work is done (every message that arrived
   * together has been handled) and before anything queued to peers in the turn is written
   * (the network passes Connection.atEndOfTurn). Given, a new message is delivered at once but
   * forwarded then: peers that sent a copy of it or announced it in the same turn hold it, and
   * are neither pushed nor announced it (from a copy of the body: the engine keeps no view of
   * the buffer passed to onGossip once it returns). Absent: forwarded at once, announcements
   * sent in a microtask (the simulator).
   */
  endOfTurn?(fn: () => void): void;
  /**
   * Optional: verify a signature elsewhere (a worker pool, lib/gossip/verify-pool.ts
   * AsyncVerifier.verify; signed mode). true: `done` runs later, never synchronously, with the
   * verdict, or never once the node stopped; meanwhile the message is in flight (copies of it
   * with the same signature are duplicates). false (no room): the engine verifies
   * synchronously, as it does when this is absent (the simulator).
   */
  verifyAsync?(origin: Buffer, id: Buffer, signature: Buffer, done: (valid: boolean) => void): boolean;
}

export interface GossipOptions {
  fanout: number;
  gossipTtl: number;
  seenTtlMs: number;
  maxSeenEntries: number;
  signMessages: boolean;
  deliverOwnMessages: boolean;
  repair: boolean;
  heartbeatMs: number;
  messageCacheMs: number;
  maxCachedMessages: number;
  maxCachedBytes: number;
  /** Accepted seqs remembered per origin by the replay window. Default 1024. */
  replayWindowSize?: number;
  /** Origins the replay window tracks at once. Default 10000. */
  maxReplayOrigins?: number;
  /** IWANT answers per (peer, message). Default 3. */
  iwantServesPerPeer?: number;
  /**
   * Announce at once (lazy push, PROTOCOL.md §4.6): a node that forwards or publishes a
   * message announces its id in the same tick to every other connected peer not known to hold
   * it, and a receiver of an announcement waits a little (announceWaitMs) for the push copy
   * before asking. false: announcements only at the heartbeat, asked for at once. Default true.
   */
  announce?: boolean;
  /**
   * The most peers a message is announced to at once, chosen at random (the engine's
   * `random`) among those announce() would queue it for; the rest learn of it from the
   * heartbeat's IHAVE. A positive integer or Infinity (every one). Default Infinity.
   */
  announceLimit?: number;
  /**
   * How a new message is pushed (PROTOCOL.md §4.6, "Eager-tree push"). 'fanout': to
   * `fanout` random peers per hop, announced to the rest. 'tree': to every eager peer, announced to the lazy ones; a
   * link that carries a duplicate is pruned to lazy (an IHAVE of the id tells the sender), and
   * an IWANT over a lazy link grafts it back (push-tree.ts). Needs `repair`. Default 'fanout'.
   */
  push?: 'fanout' | 'tree';
}

/**
 * How long a node waits, after an IHAVE for an id it has not received, before it asks for it
 * (IWANT): the push copy is usually already on its way. 1.5 round trips of the announcing
 * link (ANNOUNCE_WAIT_UNKNOWN_MS before the link's first PONG), or twice the push lag this
 * node observes (how long after the first announcement push copies arrive: under load, hops
 * queue for longer than a PING round trip says), whichever is longer, bounded to
 * [ANNOUNCE_WAIT_MIN_MS, ANNOUNCE_WAIT_MAX_MS].
 */
export const ANNOUNCE_WAIT_MIN_MS = 5;
export const ANNOUNCE_WAIT_MAX_MS = 1000;
export const ANNOUNCE_WAIT_UNKNOWN_MS = 50;

/** The wait before asking an announcer, ms (see ANNOUNCE_WAIT_MIN_MS). `pushLagMs`: the observed push lag (0 when unknown). */
export function announceWaitMs(rttMs: number | undefined, pushLagMs = 0): number {
  const byRtt = rttMs === undefined ? ANNOUNCE_WAIT_UNKNOWN_MS : 1.5 * rttMs;
  return Math.min(ANNOUNCE_WAIT_MAX_MS, Math.max(ANNOUNCE_WAIT_MIN_MS, Math.ceil(Math.max(byRtt, 2 * pushLagMs))));
}

/** Weight of a new sample in the push lag's moving average (1/8, as TCP's SRTT). */
const PUSH_LAG_GAIN = 1 / 8;

/** Outstanding IWANT requests we track at most (bounds memory under an IHAVE flood). */
const MAX_WANTED = 20_000;

/**
 * Advertisers remembered per wanted id, asked in turn (one every two heartbeats) until one
 * delivers a valid copy. Large enough that advertisers which never answer, or answer with
 * forgeries, cannot use up every place before an honest one is heard: with 4 places, a third
 * of nodes withholding or tampering left 0.04% of (node, message) pairs undelivered in the
 * 10,000-node simulation.
 */
const MAX_SOURCES_PER_WANT = 16;

interface Wanted {
  /** When the first announcement came (clock ms). */
  announcedAt: number;
  askedAt: number;
  /** The peer asked last (IWANT), if any. */
  asked: GossipPeer | undefined;
  /** Not asked yet: the first announcer is asked at this clock time (announce mode). */
  dueAt: number | undefined;
  /** Other peers that advertised it, asked in turn if the first does not answer. */
  sources: string[];
  /** Every peer that advertised it (up to MAX_SOURCES_PER_WANT): they hold it, so are not pushed it. */
  told: GossipPeer[];
}

export class GossipEngine {
  readonly seen: SeenCache;
  readonly cache: MessageCache;
  /** Per-origin anti-replay: refuses (origin, seq) pairs seen before or older than seenTtlMs. */
  readonly replay: ReplayWindow;
  private readonly selfPrefix: Buffer;
  private readonly selfHi: number;
  private readonly selfLo: number;
  /** Small integer per peer: the knownBy bits of cached messages (peer-slots.ts). */
  readonly slots = new PeerSlots();
  /** The seen-by entries of the body being forwarded, as two 32-bit words each (reused). */
  private readonly seenWords = new Uint32Array(2 * LIMITS.seenBy);
  private seq: number;
  private readonly wanted = new Map<string, Wanted>();
  /**
   * Peers a send to failed (outbound queue full: a slow reader), with the clock time of the
   * first failure since they last caught up. Each heartbeat advertises to them every cached
   * message since then that they are not known to hold, until an advert gets through: a
   * peer that fell behind on an open connection still learns of every message.
   */
  private readonly behind = new Map<string, number>();
  /**
   * Announcements gathered in this tick, sent as one IHAVE per peer when the tick's work is
   * done: the k-th peer queued for (k < announcingCount, in the order first queued) is
   * announcingPeers[k], its entries announcing[k], its slot announcingSlots[k], and
   * announceIndex[slot] is k. Arrays kept from turn to turn, not a Map by peer emptied every
   * turn (Map.clear allocates a new table, which then grows again) nor arrays truncated (an
   * array set to length 0 gives up its storage). Their length: the most peers queued for in
   * one turn (about one per connected peer); between turns every place is undefined.
   */
  private readonly announcing: (CacheEntry[] | undefined)[] = [];
  private readonly announcingPeers: (GossipPeer | undefined)[] = [];
  private readonly announcingSlots: number[] = [];
  private readonly announceIndex: (number | undefined)[] = [];
  private announcingCount = 0;
  /** New messages delivered in this turn and forwarded at its end (host endOfTurn), by id (latin1). */
  private readonly deferred = new Map<string, DeferredForward>();
  /** endTurn is queued (host endOfTurn or a microtask). */
  private turnQueued = false;
  /** Fires when the earliest wanted id is due to be asked for (announce mode). */
  private askTimer: TimerHandle | undefined;
  private askTimerAt = Infinity;
  /** Moving average of how long after an id's first announcement its push copy arrives, ms (announceWaitMs). */
  pushLagMs = 0;
  /** Messages whose signature is being verified elsewhere (host.verifyAsync), by id (latin1). */
  private readonly verifying = new Map<string, InFlight>();
  /** Bytes of the body copies `verifying` holds (at most MAX_VERIFYING_BYTES). */
  private verifyingBytes = 0;
  /** Eager and lazy links (push: 'tree' with repair on); undefined in fanout mode. */
  readonly tree: PushTree | undefined;
  /** Tree mode: ids of duplicates received this turn, per sender, answered with one IHAVE each at its end (the prune signal). */
  private readonly pruning = new Map<GossipPeer, Buffer[]>();

  constructor(
    private readonly identity: Identity,
    private readonly clock: Clock,
    private readonly opts: GossipOptions,
    private readonly host: GossipHost,
    private readonly metrics: Metrics,
    private readonly random: () => number = Math.random,
  ) {
    this.seen = new SeenCache(clock, { ttlMs: opts.seenTtlMs, maxEntries: opts.maxSeenEntries });
    this.tree = opts.push === 'tree' && opts.repair ? new PushTree() : undefined;
    this.cache = new MessageCache({
      maxAgeMs: opts.messageCacheMs,
      maxEntries: opts.repair ? opts.maxCachedMessages : 0,
      maxBytes: opts.maxCachedBytes,
    });
    // The replay window's hash salt: secret (a signature only this node can make) and
    // deterministic (the simulator's runs stay reproducible), without drawing from `random`.
    const salt = identity.sign(Buffer.from('aethel-p2p replay-window salt')).readUInt32BE(0) / 0x100000000;
    this.replay = new ReplayWindow(clock, {
      horizonMs: opts.seenTtlMs,
      windowSize: opts.replayWindowSize,
      maxOrigins: opts.maxReplayOrigins,
    }, () => salt);
    this.selfPrefix = Buffer.from(identity.id.subarray(0, LIMITS.seenByEntryBytes));
    this.selfHi = this.selfPrefix.readUInt32BE(0);
    this.selfLo = this.selfPrefix.readUInt32BE(4);
    // Sequence numbers are the publish time in microseconds (strictly increasing), so a node
    // restarted with the same identity never reuses a (origin, seq) pair its peers may still
    // remember, and receivers can refuse a message older than their seen-cache TTL.
    this.seq = Math.floor(clock.now() * 1000) - 1;
  }

  /** Originate a message. Returns its id. `payload` is already MessagePack-encoded. */
  publish(topic: string, payload: Buffer): Buffer {
    const seq = (this.seq = Math.max(this.seq + 1, Math.floor(this.clock.now() * 1000)));
    const origin = this.identity.publicKey;
    const id = gossipMessageId(origin, seq, topic, payload);
    this.seen.add(id);
    this.replay.commit(origin, seq);
    const chosen = this.choose(undefined, 0, undefined);
    const body = encodeGossip({
      type: MessageType.GOSSIP, id, origin, seq, topic, ttl: this.opts.gossipTtl, hops: 1, seenBy: chosen.added, payload,
      signature: this.opts.signMessages ? this.identity.sign(id) : null,
    });
    this.send(body, id, chosen, undefined, payload.length);
    if (this.opts.deliverOwnMessages) {
      this.host.deliver(topic, payload, { id: id.toString('hex'), topic, from: this.identity.idHex, hops: 0, direct: false });
    }
    return id;
  }

  /**
   * A GOSSIP body arrived from `from`, as it came off the wire (a view the engine keeps no
   * reference to once this returns: what it keeps, it copies). A copy whose id is already seen is counted as a duplicate and dropped before any
   * decode or hash; a new one is read, replay-checked, hashed, verified (at most once),
   * delivered and forwarded.
   *
   * @throws ProtocolError SCHEMA when the body is not a GOSSIP in the fixed layout (§4.5): the
   *   caller treats it as a frame that failed to decode (the Connection closes the link).
   */
  onGossip(from: GossipPeer, body: Buffer): void {
    if (!gossipHeadOk(body)) readGossip(body); // throws SCHEMA, naming what is wrong
    if (body[GOSSIP_TTL_OFFSET] === 0) return this.reject(from, gossipIdOf(body), 'ttl_zero');
    // Only ids recomputed and verified below ever enter the seen-cache, so a claimed id found
    // there names a message we already hold: this copy, genuine or not, changes nothing and
    // is dropped before any decoding or hashing. (A tampered copy claiming a seen id is
    // counted as a duplicate, not as invalid.)
    const key = body.toString('latin1', GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32);
    if (this.seen.hasKey(key)) {
      this.metrics.duplicatesReceived++;
      this.host.trace?.({ event: 'duplicate', msg: body.toString('hex', GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32), peer: from.idHex });
      this.holds(from, key);
      this.host.duplicate?.(from);
      if (this.tree) this.duplicateOver(from, key);
      return;
    }
    if (this.verifying.size > 0 && this.inFlightCopy(from, body, key)) return;
    const l = readGossip(body);
    const origin = body.subarray(l.originOffset, l.originOffset + 32);
    // Before any hashing: (origin, seq) alone proves a replay or a message past the seen-cache
    // TTL, whatever the seen-cache still holds. Nothing is recorded until verified below, so
    // a forged copy cannot make the genuine message look like a replay.
    // The origin's key, made once: the replay window's check and commit and the origin memo use it.
    const originKey = body.toString('latin1', l.originOffset, l.originOffset + 32);
    const fresh = this.replay.checkKey(originKey, l.seq);
    if (fresh !== 'new') return this.reject(from, gossipIdOf(body), fresh);
    const id = gossipMessageIdOfBody(body, l);
    if (id.compare(body, GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32) !== 0) return this.reject(from, gossipIdOf(body), 'id_mismatch');
    // Verify only now: a tampered copy cannot enter the seen-cache and suppress the genuine
    // message, and each unique message costs one hash and one verification, not one per copy.
    if (l.signatureOffset < 0) {
      if (this.opts.signMessages) return this.reject(from, id, 'unsigned');
    } else if (this.opts.signMessages) {
      // An origin over its budget is dropped first, charging neither the relay's verification
      // budget nor its score; only a verified message spends the origin's budget, so
      // forgeries claiming an honest origin cannot use it up.
      if (this.host.mayAccept && !this.host.mayAccept(from, origin)) return void this.metrics.drop('origin_budget');
      // A peer's unsolicited messages may cost only so many verifications (what we asked for
      // by IWANT is bounded by the wanted list instead).
      if (!this.wanted.has(key) && this.host.mayVerify && !this.host.mayVerify(from)) {
        this.metrics.drop('verify_budget');
        this.host.trace?.({ event: 'dropped', msg: id.toString('hex'), peer: from.idHex, reason: 'verify_budget' });
        return;
      }
      if (this.host.verifyAsync && this.verifyLater(from, body, l, id, key)) return;
      if (!verifySignature(origin, id, body.subarray(l.signatureOffset, l.signatureOffset + 64))) return this.reject(from, id, 'bad_signature');
      this.host.accepted?.(origin);
    }
    this.accept(from, body, l, origin, originKey, id, key, NO_PEERS);
  }

  /**
   * A new message whose signature checked out (or that needs none): remember it, deliver it,
   * forward it. `heldBy`: peers that sent a copy or an IHAVE while it was being verified
   * (verifyLater); they hold it.
   */
  private accept(from: GossipPeer, body: Buffer, l: GossipLayout, origin: Buffer, originKey: string, id: Buffer, key: string, heldBy: readonly GossipPeer[]): void {
    this.seen.addKey(key);
    this.replay.commitKey(originKey, l.seq);
    // Repair when we had asked for it; an announced id not yet asked for came by push.
    const w = this.wanted.get(key);
    const via = w !== undefined && w.dueAt === undefined ? 'repair' : 'push';
    if (w) {
      this.wanted.delete(key);
      // A push copy, in time (still waiting) or too late (it beat the answer of the peer we
      // asked): how long after the announcement pushes arrive, what the wait must cover.
      if (this.opts.announce !== false && (w.dueAt !== undefined || (w.asked !== undefined && w.asked !== from))) {
        const lag = this.clock.now() - w.announcedAt;
        this.pushLagMs += (lag - this.pushLagMs) * PUSH_LAG_GAIN;
      }
    }
    this.host.firstDelivery?.(from);
    const idHex = id.toString('hex');
    // The payload is copied only for a subscriber: a relay-only node neither copies nor decodes it.
    if (this.host.subscribed?.(l.topic) !== false) {
      this.host.deliver(l.topic, Buffer.from(body.subarray(l.payloadOffset, l.payloadOffset + l.payloadLength)), {
        id: idHex,
        topic: l.topic,
        from: this.originIdHex(origin, originKey),
        hops: l.hops,
        direct: false,
        via,
      });
    }
    this.host.trace?.({ event: 'delivered', msg: idHex, peer: from.idHex, hops: l.hops, via });
    const holders = w ? w.told.slice() : [];
    for (const p of heldBy) if (!holders.includes(p)) holders.push(p);
    if (this.host.endOfTurn) {
      // Forwarded at the end of the turn: copies and announcements of it that arrive in the
      // meantime name more peers that hold it. From a copy of the body, not the view: a turn
      // under load brings thousands of new messages, and their views would keep every record
      // they came in (duplicates and IHAVEs too, about three times their bytes) to its end.
      this.deferred.set(key, { body: Buffer.from(body), l, from, id, idHex, key, holders });
      this.queueTurnEnd();
      return;
    }
    this.forward({ body, l, from, id, idHex, key, holders });
  }

  /**
   * Signed mode with host.verifyAsync: hand the signature check over and keep a copy of the
   * body (the view is valid only until the end of the turn) until the verdict comes
   * (verified). Everything checked before (seen, replay, id, budgets) stays checked before.
   * False when the check could not be handed over (bodies in flight at their cap, verifier
   * full): the caller verifies synchronously.
   */
  private verifyLater(from: GossipPeer, body: Buffer, l: GossipLayout, id: Buffer, key: string): boolean {
    if (this.verifyingBytes + body.length > MAX_VERIFYING_BYTES) return false;
    const copy = Buffer.from(body);
    const origin = copy.subarray(l.originOffset, l.originOffset + 32);
    const signature = copy.subarray(l.signatureOffset, l.signatureOffset + 64);
    const v = this.verifying.get(key) ?? { id: Buffer.from(id), copies: [], told: [] };
    const c: InFlightCopy = { body: copy, l, from, holders: [] };
    if (!this.host.verifyAsync!(origin, v.id, signature, (valid) => this.verified(key, v, c, valid))) return false;
    if (v.copies.length === 0) this.verifying.set(key, v);
    v.copies.push(c);
    this.verifyingBytes += copy.length;
    return true;
  }

  /**
   * A copy of an id being verified. With the signature bytes of a copy in flight it is a
   * duplicate, counted as one (the verdict will be the same: the id binds the origin). With
   * another signature it is not: it goes on to be checked and verified itself, so a forged
   * copy that arrived first cannot suppress the genuine one.
   */
  private inFlightCopy(from: GossipPeer, body: Buffer, key: string): boolean {
    const v = this.verifying.get(key);
    if (!v) return false;
    const end = body.length;
    if (end < 66 || body[end - 66] !== 0xc4 || body[end - 65] !== 0x40) return false; // unsigned: refused below
    for (const c of v.copies) {
      const sigEnd = c.l.signatureOffset + 64;
      if (body.compare(c.body, sigEnd - 64, sigEnd, end - 64, end) !== 0) continue;
      this.metrics.duplicatesReceived++;
      this.host.trace?.({ event: 'duplicate', msg: body.toString('hex', GOSSIP_ID_OFFSET, GOSSIP_ID_OFFSET + 32), peer: from.idHex });
      if (from !== c.from && !c.holders.includes(from)) c.holders.push(from);
      this.host.duplicate?.(from);
      if (this.tree) this.duplicateOver(from, key);
      return true;
    }
    return false;
  }

  /**
   * The verdict on copy `c` of in-flight message `v` (verifyLater): valid, the rest of
   * onGossip runs now (a seq taken meanwhile by another message of its origin is a replay, as
   * it would have been in order); invalid, the sender is refused as before. Nothing happens
   * once the node stopped (clear() emptied `verifying`).
   */
  private verified(key: string, v: InFlight, c: InFlightCopy, valid: boolean): void {
    if (this.verifying.get(key) !== v) return;
    v.copies.splice(v.copies.indexOf(c), 1);
    this.verifyingBytes -= c.body.length;
    if (v.copies.length === 0) this.verifying.delete(key);
    const { body, l, from } = c;
    if (!valid) {
      this.reject(from, v.id, 'bad_signature');
      if (v.copies.length === 0 && !this.seen.hasKey(key)) this.askAnnouncers(v, key);
      return;
    }
    if (this.seen.hasKey(key)) {
      // Another copy of it, with another valid signature, was accepted first.
      this.metrics.duplicatesReceived++;
      this.holds(from, key);
      this.host.duplicate?.(from);
      if (this.tree) this.duplicateOver(from, key);
      return;
    }
    const origin = body.subarray(l.originOffset, l.originOffset + 32);
    const originKey = origin.toString('latin1');
    const fresh = this.replay.checkKey(originKey, l.seq);
    if (fresh !== 'new') return this.reject(from, v.id, fresh);
    this.host.accepted?.(origin);
    this.accept(from, body, l, origin, originKey, v.id, key, c.holders.length === 0 ? v.told : [...v.told, ...c.holders]);
  }

  /**
   * Every copy of an in-flight id was refused: ask for it now, of what asked-for entry there
   * is, else of the peers that announced it while it was in flight.
   */
  private askAnnouncers(v: InFlight, key: string): void {
    const w = this.wanted.get(key);
    if (w) {
      if (w.dueAt !== undefined) this.scheduleAsk(this.clock.now());
      return;
    }
    if (!this.opts.repair || v.told.length === 0 || this.wanted.size >= MAX_WANTED) return;
    const now = this.clock.now();
    const sources = v.told.slice(0, MAX_SOURCES_PER_WANT).map((p) => p.idHex);
    this.wanted.set(key, { announcedAt: now, askedAt: now, asked: undefined, dueAt: now, sources, told: v.told.slice(0, MAX_SOURCES_PER_WANT) });
    this.scheduleAsk(now);
  }

  /**
   * Forward a new message: push to up to fanout peers that neither sent it, nor are in its
   * seen-by, nor are known to hold it (`holders`), announce it to the rest; the body for the
   * next hop is built once, shared by every target and the cache.
   */
  private forward(f: DeferredForward): void {
    const { body, l, from, id, key } = f;
    const ttl = l.ttl - 1;
    const hops = Math.min(LIMITS.maxHops, l.hops + 1);
    const holders = f.holders.length > 0 ? f.holders : undefined;
    const chosen = ttl === 0 ? undefined : this.choose(body, l.seenByCount, from, holders);
    const out = forwardGossip(body, ttl, hops, chosen ? chosen.added : NONE);
    if (!chosen) {
      this.metrics.drop('ttl_expired');
      this.host.trace?.({ event: 'dropped', msg: f.idHex, reason: 'ttl_expired' });
      const now = this.clock.now();
      const known = [this.slotOf(from, now)];
      if (holders) for (const p of holders) known.push(this.slotOf(p, now));
      this.cache.add(out, l.payloadLength, now, known, key);
      return;
    }
    this.send(out, id, chosen, from, l.payloadLength, holders, key);
  }

  /** Run endTurn once this turn's work is done: at the host's end of turn, else in a microtask. */
  private queueTurnEnd(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    if (this.host.endOfTurn) this.host.endOfTurn(this.endTurn);
    else queueMicrotask(this.endTurn);
  }

  /**
   * The turn's deferred forwards (they queue announcements), then its announcements, one IHAVE
   * per peer. Still queued while forwarding, so the announcements it queues are sent by this
   * call rather than by a second one. An empty Map is not cleared: clear() allocates a new
   * table each call, and this runs every turn.
   */
  private readonly endTurn = (): void => {
    try {
      if (this.deferred.size > 0) {
        for (const f of this.deferred.values()) this.forward(f);
        this.deferred.clear();
      }
    } finally {
      this.turnQueued = false;
    }
    this.flushAnnouncements();
  };

  /** A peer advertised ids it holds: ask for those we have not seen. */
  onIHave(from: GossipPeer, ids: Buffer[]): void {
    if (!this.opts.repair) return;
    let ask: Buffer[] | undefined;
    const now = this.clock.now();
    // The announcer's slot, looked up once per IHAVE (when first needed), not once per id.
    let slot = -1;
    for (const id of ids) {
      const key = id.toString('latin1');
      if (this.seen.hasKeyAt(key, now)) {
        // It holds the message (holds(), inline).
        const entry = this.cache.getByKey(key);
        if (entry) setKnown(entry, slot < 0 ? (slot = this.slotOf(from, now)) : slot);
        else if (this.deferred.size > 0) this.deferred.get(key)?.holders.push(from);
        // Tree mode: an IHAVE for a message we pushed to this peer says our copy was a duplicate there.
        if (this.tree) {
          if (slot < 0) slot = this.slotOf(from, now);
          if (this.tree.wasPushed(key, slot)) this.tree.prune(slot, this.connectedSlots(now));
        }
        continue;
      }
      const v = this.verifying.size > 0 ? this.verifying.get(key) : undefined;
      if (v) {
        // Being verified: the announcer holds it, and is asked for it should every copy in flight be refused.
        if (v.told.length < MAX_SOURCES_PER_WANT && !v.told.includes(from)) v.told.push(from);
        continue;
      }
      const w = this.wanted.get(key);
      if (w) {
        if (w.sources.length < MAX_SOURCES_PER_WANT && !w.sources.includes(from.idHex)) w.sources.push(from.idHex);
        if (w.told.length < MAX_SOURCES_PER_WANT && !w.told.includes(from)) w.told.push(from);
        continue;
      }
      if (this.wanted.size >= MAX_WANTED) continue;
      // The wanted id is kept as its key only; the bytes of an IWANT are made from it when one
      // is sent (most announced ids come by push and are never asked for).
      if (this.opts.announce === false) {
        this.wanted.set(key, { announcedAt: now, askedAt: now, asked: from, dueAt: undefined, sources: [], told: [from] });
        (ask ??= []).push(idOfKey(key));
      } else {
        // The push copy is probably on its way: ask this announcer only if it has not come.
        const dueAt = now + announceWaitMs(from.rttMs, this.pushLagMs);
        this.wanted.set(key, { announcedAt: now, askedAt: now, asked: undefined, dueAt, sources: [from.idHex], told: [from] });
        this.scheduleAsk(dueAt);
      }
    }
    if (ask) from.send({ type: MessageType.IWANT, ids: ask });
  }

  private scheduleAsk(at: number): void {
    if (at >= this.askTimerAt) return;
    this.askTimer?.cancel();
    this.askTimerAt = at;
    this.askTimer = this.clock.setTimeout(this.askDue, Math.max(0, at - this.clock.now()));
  }

  /** Ask (IWANT) for the announced ids whose push copy did not come in time, each of its first announcer. */
  private readonly askDue = (): void => {
    this.askTimer = undefined;
    this.askTimerAt = Infinity;
    const next = this.askWanted(this.clock.now(), (w) => w.dueAt !== undefined);
    if (next !== Infinity) this.scheduleAsk(next);
  };

  /**
   * Ask the next source of every wanted id that `isDue` picks (an announced id whose wait is
   * over is always due), one IWANT per peer; an id seen meanwhile, or with no source left
   * connected, is forgotten. Returns the earliest announced id's due time still ahead.
   */
  private askWanted(now: number, isDue: (w: Wanted) => boolean): number {
    // Both made at the first id due: most calls (the timer of an id whose push copy came) ask for none.
    let byId: Map<string, GossipPeer> | undefined;
    let asks: Map<GossipPeer, Buffer[]> | undefined;
    let next = Infinity;
    for (const [key, w] of this.wanted) {
      if (w.dueAt !== undefined && w.dueAt > now) {
        next = Math.min(next, w.dueAt);
        continue;
      }
      if (!isDue(w)) continue;
      if (this.verifying.size > 0 && this.verifying.has(key)) continue; // a copy is being verified: asked if it is refused (askAnnouncers)
      w.dueAt = undefined;
      const peer = this.nextSource(w, (byId ??= peersById(this.host.peers())));
      if (!peer || this.seen.hasKey(key)) {
        this.wanted.delete(key);
        continue;
      }
      w.askedAt = now;
      w.asked = peer;
      const list = (asks ??= new Map()).get(peer);
      if (list) list.push(idOfKey(key));
      else asks.set(peer, [idOfKey(key)]);
    }
    if (asks === undefined) return next;
    for (const [peer, ids] of asks) {
      for (let i = 0; i < ids.length; i += LIMITS.idsPerAdvert) peer.send({ type: MessageType.IWANT, ids: ids.slice(i, i + LIMITS.idsPerAdvert) });
    }
    return next;
  }

  /**
   * A peer asked for ids: send those still in the cache that we pushed or advertised to it,
   * each at most iwantServesPerPeer times to that peer, within its serve budget (host
   * mayServe: bytes served stay within twice what it sent us plus a small allowance).
   * What is refused is counted (iwant_refused, serve_budget); the asker asks another advertiser.
   */
  onIWant(from: GossipPeer, ids: Buffer[]): void {
    const maxServes = this.opts.iwantServesPerPeer ?? MAX_SERVES_PER_PEER;
    const slot = this.slotOf(from);
    // Tree mode: the peer's announce wait ran out, so the link is needed: graft it (push to it again).
    this.tree?.graft(slot);
    for (const id of ids) {
      const entry = this.cache.get(id);
      if (!entry) continue;
      if (this.cache.mayServe(entry, slot, maxServes) !== 'ok') {
        this.metrics.drop('iwant_refused');
        continue;
      }
      if (this.host.mayServe && !this.host.mayServe(from, entry.length)) {
        this.metrics.drop('serve_budget');
        continue;
      }
      // Served as forwarded; one kept after its TTL ran out goes with TTL 1 (one more hop).
      const body = entryBody(entry);
      const sent = from.sendEncoded(MessageType.GOSSIP, entry.ttl >= 1 ? body : withTtl(body, 1));
      if (!sent) continue; // the asker asks another advertiser two heartbeats on
      this.cache.served(entry, slot);
      this.metrics.gossipSent++;
      this.host.trace?.({ event: 'forwarded', msg: id.toString('hex'), to: [from.idHex], ttl: Math.max(1, entry.ttl), via: 'iwant' });
      setKnown(entry, slot);
    }
  }

  /**
   * A peer connected (or reconnected after a partition): advertise the whole repair window,
   * so messages from either side of a partition cross over. Whole, not just the ids the peer
   * is not known to hold: knownBy records what we pushed or advertised to it, and a push over
   * a link that then went silent may never have arrived. The peer ignores ids it has seen.
   */
  onPeerConnected(peer: GossipPeer): void {
    if (!this.opts.repair) return;
    const now = this.clock.now();
    this.tree?.graft(this.slotOf(peer, now)); // a new link starts eager
    this.cache.expire(now);
    // Slot -1 is never a peer's, so no entry is skipped.
    this.advertise(peer, this.cache.unknownTo(-1, 0));
  }

  /**
   * Periodic work: advertise messages that arrived since the last heartbeat to peers not
   * known to hold them, re-ask for wanted ids that were not answered, expire caches.
   */
  heartbeat(): void {
    const now = this.clock.now();
    this.seen.cleanup();
    this.cache.expire(now);
    const peers = this.host.peers();
    // A slot outlives its peer's connection by the cache's age (a reconnecting peer keeps
    // what it was known to hold and served), then its number is reused.
    const retired = this.slots.sweep(peers, now, this.opts.messageCacheMs + this.opts.heartbeatMs);
    this.cache.forgetSlots(retired);
    if (this.tree) {
      this.tree.forget(retired);
      this.tree.rotate();
    }
    if (!this.opts.repair) return;
    this.catchUp(peers);
    const fresh = this.cache.takeFresh();
    if (fresh.length > 0) {
      for (const peer of peers) {
        if (this.behind.has(peer.idHex)) continue; // its catch-up covers these too
        const slot = this.slotOf(peer);
        const entries = fresh.filter((e) => !isKnown(e, slot));
        if (!this.advertise(peer, entries)) this.fellBehind(peer.idHex, fresh[0]!.at);
      }
    }
    this.retryWanted(now);
  }

  /** Advertise to each peer that fell behind what it missed since; it stays behind until that gets through. */
  private catchUp(peers: readonly GossipPeer[]): void {
    if (this.behind.size === 0) return;
    const byId = peersById(peers);
    for (const [id, since] of this.behind) {
      const peer = byId.get(id);
      if (!peer) {
        this.behind.delete(id); // gone: a reconnection advertises the whole window anyway
        continue;
      }
      if (!this.advertise(peer, this.cache.unknownTo(this.slotOf(peer), since))) continue;
      this.behind.delete(id);
    }
  }

  private fellBehind(peerIdHex: string, since: number): void {
    if (!this.behind.has(peerIdHex)) this.behind.set(peerIdHex, since);
  }

  /**
   * Heartbeat: ask the next advertiser of ids asked two heartbeats ago and still missing, or
   * asked of a peer whose answer would no longer be heard (host.mayAsk: graylisted since), and
   * any announced id whose timer did not run.
   */
  private retryWanted(now: number): void {
    const unheard = (w: Wanted) => w.asked !== undefined && this.host.mayAsk?.(w.asked) === false;
    const next = this.askWanted(now, (w) => w.dueAt !== undefined || now - w.askedAt >= 2 * this.opts.heartbeatMs || unheard(w));
    if (next !== Infinity) this.scheduleAsk(next);
  }

  /**
   * Send IHAVE for `entries` (then the ids `extra`: tree mode's answers to duplicates) in as
   * many messages as the cap needs; each entry queued marks the peer in its knownBy (not
   * advertised again; its IWANT for it is answered). False if one could not be queued.
   */
  private advertise(peer: GossipPeer, entries: CacheEntry[], extra: readonly Buffer[] = NONE): boolean {
    const slot = this.slotOf(peer);
    const total = entries.length + extra.length;
    for (let i = 0; i < total; i += LIMITS.idsPerAdvert) {
      const end = Math.min(total, i + LIMITS.idsPerAdvert);
      // Made at their size (most IHAVEs carry one id): an array grown by push from empty
      // reserves 16 places.
      const ids = new Array<Buffer>(end - i);
      // Marked before sending: the IWANT may come back before send() returns (a synchronous
      // host), and it must find the ids advertised. Unmarked again if the send failed.
      let marked: CacheEntry[] | undefined;
      for (let j = i, entriesEnd = Math.min(end, entries.length); j < entriesEnd; j++) {
        const e = entries[j]!;
        if (!isKnown(e, slot)) {
          setKnown(e, slot);
          if (marked) marked.push(e);
          else marked = [e];
        }
        ids[j - i] = entryId(e);
      }
      for (let j = Math.max(i, entries.length); j < end; j++) ids[j - i] = extra[j - entries.length]!;
      if (!peer.send({ type: MessageType.IHAVE, ids })) {
        if (marked) for (const e of marked) clearKnown(e, slot);
        return false;
      }
    }
    return true;
  }

  /**
   * `peer` showed it holds the seen message `key` (a duplicate copy or an IHAVE): marked in its
   * cache entry, or among the holders of a forward deferred to the end of the turn.
   */
  private holds(peer: GossipPeer, key: string): void {
    const entry = this.cache.getByKey(key);
    if (entry) setKnown(entry, this.slotOf(peer));
    else this.deferred.get(key)?.holders.push(peer);
  }

  /** The peer's slot (peer-slots.ts), assigned on first use. */
  private slotOf(peer: GossipPeer, now: number = this.clock.now()): number {
    return this.slots.slotOf(peer.idHex, peer.prefixKey, now);
  }

  /**
   * Pick the push targets for a message whose seen-by is that of `body` (`seenByCount`
   * entries; none when publishing) among the connected peers that are neither the sender,
   * nor in seen-by, nor among the peers that announced it to us (`told`: they hold it): the
   * first `targets` (up to fanout at random; in tree mode every eager one) of `candidates`;
   * the others are announced to. `added`: the
   * seen-by entries the next hop appends: this node (unless listed already: the sender
   * usually listed us as one of its targets) and the targets, so they do not push to each other.
   */
  private choose(body: Buffer | undefined, seenByCount: number, from: GossipPeer | undefined, told?: readonly GossipPeer[]): Choice {
    const words = this.seenWords;
    let selfListed = false;
    for (let i = 0; i < seenByCount; i++) {
      const o = gossipSeenByOffset(i);
      words[2 * i] = body!.readUInt32BE(o);
      words[2 * i + 1] = body!.readUInt32BE(o + 4);
      if (words[2 * i] === this.selfHi && words[2 * i + 1] === this.selfLo) selfListed = true;
    }
    const { prefixHi, prefixLo } = this.slots;
    const now = this.clock.now();
    const candidates: GossipPeer[] = [];
    const tree = this.tree;
    const lazy: GossipPeer[] | undefined = tree ? [] : undefined;
    const peers = this.host.peers();
    for (let j = 0; j < peers.length; j++) {
      const peer = peers[j]!;
      if (peer === from || (told !== undefined && told.includes(peer))) continue;
      const s = this.slotOf(peer, now);
      let listed = false;
      for (let i = 0; i < seenByCount && !listed; i++) listed = words[2 * i] === prefixHi[s] && words[2 * i + 1] === prefixLo[s];
      if (listed) continue;
      if (lazy !== undefined && tree!.isLazy(s)) lazy.push(peer);
      else candidates.push(peer);
    }
    // Tree mode: every eager candidate is a target, the lazy ones (after them) are announced to.
    let targets: number;
    if (lazy === undefined) targets = pickFirst(candidates, this.opts.fanout, this.random);
    else {
      targets = candidates.length;
      for (const p of lazy) candidates.push(p);
    }
    const added = selfListed ? [] : [this.selfPrefix];
    for (let i = 0; i < targets; i++) added.push(this.slots.prefix(this.slotOf(candidates[i]!, now)));
    return { candidates, targets, added };
  }

  /**
   * Push `body` (already carrying the TTL, hops and seen-by for the next hop) to the chosen
   * targets, the same bytes to each; cache it; announce its id to the other candidates (lazy
   * push). `told`: peers that announced it to us (they hold it); `key`: the id, latin1.
   */
  private send(body: Buffer, id: Buffer, chosen: Choice, from: GossipPeer | undefined, payloadBytes: number, told?: readonly GossipPeer[], key?: string): void {
    const now = this.clock.now();
    const { candidates, targets } = chosen;
    if (this.host.trace) {
      const to = candidates.slice(0, targets).map((t) => t.idHex);
      this.host.trace({ event: 'forwarded', msg: id.toString('hex'), to, ttl: body[GOSSIP_TTL_OFFSET]!, peer: from?.idHex, via: 'push' });
    }
    // Known to hold it: the sender, the announcers, and the targets whose copy was queued. A
    // target whose queue was full is not, and falls behind: the heartbeat advertises the
    // message to it.
    const known = from ? [this.slotOf(from, now)] : [];
    if (told) for (const p of told) known.push(this.slotOf(p, now));
    const pushedTo: number[] | undefined = this.tree ? [] : undefined;
    for (let i = 0; i < targets; i++) {
      const t = candidates[i]!;
      if (t.sendEncoded(MessageType.GOSSIP, body)) {
        this.metrics.gossipSent++;
        const s = this.slotOf(t, now);
        known.push(s);
        pushedTo?.push(s);
      } else {
        this.host.trace?.({ event: 'dropped', msg: id.toString('hex'), peer: t.idHex, reason: 'send_failed' });
        this.fellBehind(t.idHex, now);
      }
    }
    if (pushedTo) this.tree!.pushed(key ?? id.toString('latin1'), pushedTo);
    const entry = this.cache.add(body, payloadBytes, now, known, key);
    if (entry && this.opts.repair && this.opts.announce !== false && candidates.length > targets) this.announce(entry, candidates, targets, now);
  }

  /**
   * Lazy push: queue the id for every peer in `peers` from index `from` on (connected, not the
   * sender, not in seen-by, not a push target) that is not known to hold it nor behind, or for
   * `announceLimit` of them at random; one IHAVE per peer goes out once this tick's work is
   * done, so a burst of messages costs one announcement per peer, not one per message.
   * Reorders `peers` past `from` when bounded.
   */
  private announce(entry: CacheEntry, peers: GossipPeer[], from: number, now: number): void {
    this.queueTurnEnd();
    const limit = this.opts.announceLimit ?? Infinity;
    // choose() shuffled only the push targets to the front: the rest are in connection order,
    // so a bounded announcement walks them in random order (a partial Fisher-Yates that stops
    // once `limit` peers are queued; skipped peers do not count).
    const shuffle = peers.length - from > limit;
    let queued = 0;
    for (let i = from; i < peers.length && queued < limit; i++) {
      if (shuffle) {
        const j = i + Math.floor(this.random() * (peers.length - i));
        const tmp = peers[i]!;
        peers[i] = peers[j]!;
        peers[j] = tmp;
      }
      const p = peers[i]!;
      const s = this.slotOf(p, now);
      if (isKnown(entry, s) || this.behind.has(p.idHex)) continue;
      const k = this.announceIndex[s];
      if (k !== undefined && this.announcingPeers[k] === p) this.announcing[k]!.push(entry);
      else {
        const n = this.announcingCount++;
        this.announceIndex[s] = n;
        this.announcing[n] = [entry];
        this.announcingPeers[n] = p;
        this.announcingSlots[n] = s;
      }
      queued++;
    }
  }

  /** Send the turn's announcements (and tree mode's prune answers), one IHAVE per peer; empty Maps are left as they are (clear() allocates). */
  private flushAnnouncements(): void {
    if (this.announcingCount > 0) {
      // To the count as it is then: an advert sent may queue more (a synchronous host).
      for (let k = 0; k < this.announcingCount; k++) {
        const entries = this.announcing[k]!;
        const peer = this.announcingPeers[k]!;
        this.announcing[k] = undefined;
        this.announcingPeers[k] = undefined;
        this.announceIndex[this.announcingSlots[k]!] = undefined;
        this.advertiseQueued(entries, peer);
      }
      this.announcingCount = 0;
    }
    if (this.pruning.size === 0) return;
    // Tree mode: the answers to duplicates from peers announced nothing this turn.
    for (const [peer, ids] of this.pruning) {
      for (let i = 0; i < ids.length; i += LIMITS.idsPerAdvert) peer.send({ type: MessageType.IHAVE, ids: ids.slice(i, i + LIMITS.idsPerAdvert) });
    }
    this.pruning.clear();
  }

  /** flushAnnouncements: one peer's queued announcements (never empty), with tree mode's prune answers for it. */
  private advertiseQueued(entries: CacheEntry[], peer: GossipPeer): void {
    const extra = this.pruning.size > 0 ? this.pruning.get(peer) : undefined;
    if (extra) this.pruning.delete(peer);
    if (!this.advertise(peer, entries, extra)) this.fellBehind(peer.idHex, entries[0]?.at ?? this.clock.now());
  }

  /**
   * Tree mode: `from` sent a duplicate of `key`, so the link it came over is redundant for
   * it: prune it here (unless it is our last eager link), and tell the sender with an IHAVE of
   * the id at the end of the turn, which makes it prune us (onIHave: it pushed that id to us).
   */
  private duplicateOver(from: GossipPeer, key: string): void {
    const now = this.clock.now();
    this.tree!.prune(this.slotOf(from, now), this.connectedSlots(now));
    const id = Buffer.from(key, 'latin1');
    const list = this.pruning.get(from);
    if (list) list.push(id);
    else this.pruning.set(from, [id]);
    this.queueTurnEnd();
  }

  /** The slots of the peers connected now. */
  private connectedSlots(now: number): number[] {
    const peers = this.host.peers();
    const slots = new Array<number>(peers.length);
    for (let i = 0; i < peers.length; i++) slots[i] = this.slotOf(peers[i]!, now);
    return slots;
  }

  /** Refuse a copy: trace it, and report the sender. */
  private reject(from: GossipPeer, id: Buffer, reason: string): void {
    this.host.trace?.({ event: 'rejected', msg: id.toString('hex'), peer: from.idHex, reason });
    this.host.invalid(from, reason);
    // Graylisted by it: nothing more it sends is heard, so every id asked of it goes elsewhere now.
    if (this.host.mayAsk?.(from) === false) this.askWanted(this.clock.now(), (w) => w.asked === from);
    else this.askNextSource(id);
  }

  /**
   * A copy of an id we asked for was refused (forged, tampered): ask the next peer that
   * advertised it now, rather than two heartbeats later. A forger among the advertisers then
   * costs one round trip, not two heartbeats.
   */
  private askNextSource(id: Buffer): void {
    const key = id.toString('latin1');
    const w = this.wanted.get(key);
    if (!w || w.dueAt !== undefined) return;
    const next = this.nextSource(w, peersById(this.host.peers()));
    if (!next) return;
    w.askedAt = this.clock.now();
    w.asked = next;
    next.send({ type: MessageType.IWANT, ids: [idOfKey(key)] });
  }

  /** The next advertiser of `w` to ask: still connected, and one whose answer would be heard (host.mayAsk). */
  private nextSource(w: Wanted, byId: Map<string, GossipPeer>): GossipPeer | undefined {
    while (w.sources.length > 0) {
      const peer = byId.get(w.sources.shift()!);
      if (peer && this.host.mayAsk?.(peer) !== false) return peer;
    }
    return undefined;
  }

  /** `origin`'s node id, hex (`key`: origin as latin1). */
  private originIdHex(origin: Buffer, key: string): string {
    let hex = ORIGIN_ID_HEX.get(key);
    if (hex === undefined) {
      hex = nodeIdOf(origin).toString('hex');
      if (ORIGIN_ID_HEX.size >= MAX_ORIGIN_IDS) ORIGIN_ID_HEX.clear();
      ORIGIN_ID_HEX.set(key, hex);
    }
    return hex;
  }

  /** Forget in-flight repair state (on stop). */
  clear(): void {
    this.askTimer?.cancel();
    this.askTimer = undefined;
    this.askTimerAt = Infinity;
    this.announcing.length = 0;
    this.announcingPeers.length = 0;
    this.announcingSlots.length = 0;
    this.announceIndex.length = 0;
    this.announcingCount = 0;
    this.pruning.clear();
    this.tree?.clear();
    this.deferred.clear();
    this.verifying.clear();
    this.verifyingBytes = 0;
    this.turnQueued = false;
    this.wanted.clear();
    this.behind.clear();
    this.cache.clear();
    this.slots.clear();
    this.seen.clear();
    this.replay.clear();
  }
}

/**
 * Node ids (hex) of recent origins' keys, for DeliveryInfo.from: one memo for the process, so
 * the engines of many nodes in one process (the simulator: 10,000 nodes x 100 origins) do
 * not each keep a copy (about 140 B per origin per node). A pure function of the key: sharing
 * it changes no result; cleared when full.
 */
const ORIGIN_ID_HEX = new Map<string, string>();
const MAX_ORIGIN_IDS = 4096;

/**
 * A message id from its latin1 key, for an IWANT: a new buffer, not a view of what the id came
 * in (a received frame, which the engine keeps no reference to).
 */
function idOfKey(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

/** `peers` by id hex. */
function peersById(peers: readonly GossipPeer[]): Map<string, GossipPeer> {
  const byId = new Map<string, GossipPeer>();
  for (let i = 0; i < peers.length; i++) byId.set(peers[i]!.idHex, peers[i]!);
  return byId;
}

const NONE: readonly Buffer[] = Object.freeze([]);
const NO_PEERS: readonly GossipPeer[] = Object.freeze([]);

/**
 * Bytes of body copies kept while their signatures are verified elsewhere (host.verifyAsync);
 * beyond it a new message is verified synchronously. 8 MiB: thousands of ordinary messages,
 * a few of the largest frames.
 */
const MAX_VERIFYING_BYTES = 8 * 1024 * 1024;

/** A copy of a GOSSIP body with another TTL (an IWANT answer for a message kept after its TTL ran out). */
function withTtl(body: Buffer, ttl: number): Buffer {
  const b = Buffer.from(body);
  b[GOSSIP_TTL_OFFSET] = ttl;
  return b;
}

/** Up to n distinct random elements of `items` (partial Fisher-Yates; `items` is reordered). */
export function sample<T>(items: T[], n: number, random: () => number): T[] {
  return items.slice(0, pickFirst(items, n, random));
}

/** Move up to n distinct random elements of `items` to its front (partial Fisher-Yates); returns how many. */
function pickFirst<T>(items: T[], n: number, random: () => number): number {
  const k = Math.min(n, items.length);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (items.length - i));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return k;
}

/** A new message waiting to be forwarded (GossipEngine.forward). */
interface DeferredForward {
  /** The body as received (a copy when deferred) and where its fields are. */
  body: Buffer;
  l: GossipLayout;
  from: GossipPeer;
  id: Buffer;
  idHex: string;
  /** The id, latin1. */
  key: string;
  /** Peers known to hold it besides `from`: its announcers, and what sent a copy or IHAVE since. */
  holders: GossipPeer[];
}

/** A message whose signature is being verified elsewhere (GossipEngine.verifyLater). */
interface InFlight {
  /** The id (a copy). */
  id: Buffer;
  /** Copies being verified, one per distinct signature, in arrival order. */
  copies: InFlightCopy[];
  /** Peers that announced it (IHAVE) meanwhile: they hold it; asked for it if every copy is refused. */
  told: GossipPeer[];
}

interface InFlightCopy {
  /** A copy of the body as received, and where its fields are. */
  body: Buffer;
  l: GossipLayout;
  from: GossipPeer;
  /** Peers that sent the same bytes meanwhile (duplicates): they hold it if it is valid. */
  holders: GossipPeer[];
}

/** Push targets: the first `targets` of `candidates`; `added`: the seen-by entries for the next hop. */
interface Choice {
  candidates: GossipPeer[];
  targets: number;
  added: Buffer[];
}
