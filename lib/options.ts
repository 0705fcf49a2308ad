/**
 * P2PNetwork options: every field documented with its unit, defaults in one frozen object,
 * a resolve step using `??` (an explicit 0 stays 0) and a validate step that throws
 * InvalidOptionError naming the field. docs/API.md lists the same table.
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { InvalidOptionError } from './errors.js';
import type { Identity } from './identity.js';
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES_LIMIT } from './wire/frame.js';
import { LIMITS } from './wire/messages.js';
import { resolveRetryConfig } from './retry/backoff.js';
import { resolveScoringOptions } from './peers/peer-ledger.js';
import type { ScoringOptions } from './peers/peer-ledger.js';
import { ADMISSION_DEFAULTS, resolveAdmissionOptions } from './peers/admission.js';
import { checkWorkers } from './gossip/verify-pool.js';
import type { RetryConfig } from './retry/backoff.js';

export interface P2PNetworkOptions {
  /** Interface to listen on. Default '127.0.0.1'. */
  listenHost?: string;
  /** TCP port to listen on; 0 picks a free port. Default 0. */
  listenPort?: number;
  /** Host peers should dial to reach us. Default: listenHost (or 127.0.0.1 when that is a wildcard). */
  advertiseHost?: string;
  /**
   * Port peers should dial to reach us, when it differs from the bound one (port forwarding,
   * a proxy in front of the node). 0 = the port actually bound. Default 0.
   */
  advertisePort?: number;
  /** 'host:port' addresses dialed at start and whenever the node has no peers. Default []. */
  bootstrap?: string[];
  /** Peers with another networkId are refused at handshake. 1..64 UTF-8 bytes. Default 'aethel'. */
  networkId?: string;
  /** Peers each gossip message is pushed to, per hop. Default 3. */
  fanout?: number;
  /** Hops a gossip message may travel, 1..32 (PROTOCOL.md §Limits). Default 10. */
  gossipTtl?: number;
  /** How long a seen message id is remembered, ms. Default 300000 (5 minutes). */
  seenTtlMs?: number;
  /** Hard cap on remembered message ids; oldest evicted first. Default 100000. */
  maxSeenEntries?: number;
  /** Sign and verify gossip with Ed25519. false only for closed, trusted networks. Default true. */
  signMessages?: boolean;
  /** Deliver this node's own broadcasts to its own subscribers. Default false. */
  deliverOwnMessages?: boolean;
  /** Lazy repair (IHAVE/IWANT) so every connected node receives every message. Default true. */
  repair?: boolean;
  /**
   * Announce each message at once to the peers it is not pushed to (IHAVE in the same tick),
   * so a node the push missed asks for it within a few round trips instead of waiting for the
   * heartbeat (PROTOCOL.md §4.6). false: announcements only at the heartbeat. Default true.
   */
  announce?: boolean;
  /**
   * The most peers each new message is announced to at once (with `announce`), peers: chosen
   * at random, per message, among those it is not pushed to and not known to hold it; the
   * others learn of it from the heartbeat's IHAVE. Bounds the IHAVE frames per message on a
   * node with many peers (gossipsub's D_lazy is 6). An integer >= 1, or Infinity: every such
   * peer. Default Infinity.
   */
  announceLimit?: number;
  /**
   * How a new message is pushed (PROTOCOL.md §4.6, "Eager-tree push"). 'fanout': to
   * `fanout` random peers per hop, announced (IHAVE) to the others. 'tree': an eager tree
   * (Plumtree-like): pushed to every eager peer and announced to the lazy ones; every link
   * starts eager, one that carries a duplicate becomes lazy, and one asked for a message
   * (IWANT) becomes eager again, so once the tree has formed each node gets about one copy
   * per message (the first messages flood), over longer paths. Same messages and bytes on the
   * wire; interoperates with fanout nodes. Needs `repair`. Default 'fanout'.
   */
  push?: 'fanout' | 'tree';
  /** Period of the heartbeat (PING, IHAVE advertisements, cache cleanup), ms. Default 1000. */
  heartbeatMs?: number;
  /** How long recent messages stay in the repair cache and can be fetched by IWANT, ms. Default 120000. */
  messageCacheMs?: number;
  /** Cap on the repair cache, entries. Default 10000. */
  maxCachedMessages?: number;
  /** Cap on the repair cache, payload bytes. Default 64 MiB. */
  maxCachedBytes?: number;
  /** Backoff for dials, reconnects and direct-send retries. */
  retry?: Partial<RetryConfig>;
  /** How long sendToPeer waits for an ACK before retrying, ms. Default 5000. */
  ackTimeoutMs?: number;
  /** A peer silent this long is partitioned, ms. Default 30000. */
  partitionTimeoutMs?: number;
  /**
   * How long a lost peer (partitioned, or disconnected without GOODBYE) and the bootstrap
   * addresses are redialed, ms: the retry policy's fast retries, then one attempt every
   * retry.maxDelayMs (with jitter) until this much time has passed since the first attempt.
   * Infinity: never give up. Default 86400000 (24 hours).
   */
  reconnectForMs?: number;
  /** How long a dial may take to connect, ms. Default 5000. */
  dialTimeoutMs?: number;
  /** How long the handshake may take after connecting, ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Largest frame body accepted or sent, bytes, 1..64 MiB. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Cap on bytes queued for one peer; further sends to it are dropped and counted. Default 8 MiB. */
  maxQueueBytes?: number;
  /**
   * Cap on connected peers in total, both directions, members excepted (beyond it an inbound
   * peer may evict one, else it is refused with TOO_MANY_PEERS, and the node dials no more).
   * Default maxInboundPeers + maxOutboundPeers (50).
   */
  maxPeers?: number;
  /** discoverPeers() dials found peers until this many are connected. Default 8. */
  minPeers?: number;
  /** Kademlia bucket size and lookup width, 1..64. Default 20. */
  k?: number;
  /** Kademlia lookup queries in flight, 1..16. Default 3. */
  alpha?: number;
  /** How long a FIND_NODE waits for its NODES reply, ms. Default 2000. */
  dhtRequestTimeoutMs?: number;
  /** Routing-table buckets untouched this long are refreshed by a lookup, ms. Default 3600000 (1 hour). */
  refreshIntervalMs?: number;
  /** Ed25519 identity; generated when absent. */
  identity?: Identity;
  /** A pino logger; silent when absent. */
  logger?: Logger;
  /** Path of an NDJSON wire dump; off when absent. */
  wireDump?: string;
  /**
   * Seal every frame after the handshake in ChaCha20-Poly1305 records (PROTOCOL.md §4.2).
   * false sends frames in clear after an authenticated handshake: for lab and conformance
   * work only, and only with peers that chose it too (others are refused with
   * ENCRYPTION_MISMATCH). Default true.
   */
  encryption?: boolean;
  /**
   * Path of a key log: one line per session with its traffic keys (PROTOCOL.md §4.2), so that
   * `aethel-p2p dump --pcap capture --keylog FILE` can decrypt a capture. Anyone holding the
   * file can read those sessions: debugging only. Off when absent.
   */
  keyLog?: string;
  /** Injected clock (tests, simulator). Default: the system clock. */
  clock?: Clock;

  // ---- peer scoring and rate limits (docs/API.md "Peer scoring and rate limits") ----
  /** Score weights, thresholds and per-peer budgets; every field optional (lib/peers/peer-ledger.ts SCORING_DEFAULTS). */
  scoring?: Partial<ScoringOptions>;
  /** How long a peer whose score reached scoring.banScore is banned, by id and address, ms. Default 3600000 (1 hour). */
  banDurationMs?: number;
  /** Accepted seqs remembered per origin by the replay window (reordering tolerated, in messages). Default 1024. */
  replayWindowSize?: number;
  /** Origins the replay window tracks at once (least recently used evicted into a fixed floor table). Default 10000. */
  maxReplayOrigins?: number;
  /** Times one message is sent to one peer in answer to its IWANTs. Default 3. */
  iwantServesPerPeer?: number;
  /**
   * Worker threads that verify gossip signatures off the event loop (signed mode), 0 to
   * os.availableParallelism(). One pool per process, shared by every node in it and sized to
   * the largest value asked; its threads end when the last node using it stops. 0 verifies on
   * the event loop. Worth it on a host with a spare core (lib/gossip/verify-pool.ts). Default 0.
   */
  verifyWorkers?: number;
  // ---- adoption ----------------------------------------------------------------------------
  /**
   * start() rejects with BOOTSTRAP_FAILED (after stopping the node) when `bootstrap` lists
   * addresses and none of them completed a handshake. With an empty list there is nothing to
   * require: the first node of a network starts alone. Default false (start() resolves and
   * the node keeps redialing the bootstrap addresses in the background).
   */
  requireBootstrap?: boolean;
  // ---- admission (docs/API.md §Admission) ----
  /** Inbound connections kept at most, members excepted. Default 40, or maxPeers − maxOutboundPeers when that is larger. */
  maxInboundPeers?: number;
  /** Outbound connections the node opens on its own (discovery, redials), at most, members excepted. Default 10. */
  maxOutboundPeers?: number;
  /** Inbound connections from one IP address, at most. Default 2. */
  maxInboundPerIp?: number;
  /** Inbound connections from one address group (/24 IPv4, /48 IPv6), at most. Default 4. */
  maxInboundPerGroup?: number;
  /**
   * CIDRs or addresses exempt from the per-IP and per-group limits (inbound and pending) and
   * from eviction, e.g. ['127.0.0.0/8', '::1'] for a testbed on one machine. Default [] (an
   * Internet node), or ['127.0.0.0/8', '::1'] when listenHost is a loopback address: only
   * local processes can connect then, and they can use any 127.x.y.z address anyway.
   */
  admissionAllowlist?: string[];
  /** Inbound sockets whose handshake is under way, at most; more are closed at accept. Default 64. */
  maxPendingHandshakes?: number;
  /** Inbound sockets whose handshake is under way from one IP, at most (allowlist exempt). Default 4. */
  maxPendingPerIp?: number;
  /** An inbound peer connected for less than this, ms, is never evicted for a newcomer. Default 10000. */
  minEvictionAgeMs?: number;
  /**
   * Node ids (64 hex), each optionally 'id@host:port': always admitted, never evicted, dialed
   * at start when an address is given and redialed forever. health() reports over them. Default [].
   */
  members?: string[];
  /** Refuse every identity that is not a member, right after its handshake (GOODBYE NOT_MEMBER). Default false. */
  onlyMembers?: boolean;
  /** Peers remembered at most (connected ones and members always stay). Default 1000. */
  maxKnownPeers?: number;
  /** An inbound peer connected this long, ms, has proved itself (redialed when lost, counted in health). Default 120000. */
  provenAfterMs?: number;
  /** Failed dials of an address learned from others (HELLO, NODES) before it is left alone for an hour. Default 3. */
  maxUnprovenDials?: number;
  /** Wait after a failed dial of an address before dialing it again, ms, however many peers name it. Default 1000. */
  minRedialIntervalMs?: number;
}

/** Options after defaults; what the components receive. */
export interface ResolvedOptions {
  listenHost: string;
  listenPort: number;
  advertiseHost: string;
  advertisePort: number;
  bootstrap: Array<{ host: string; port: number }>;
  networkId: string;
  fanout: number;
  gossipTtl: number;
  seenTtlMs: number;
  maxSeenEntries: number;
  signMessages: boolean;
  deliverOwnMessages: boolean;
  repair: boolean;
  announce: boolean;
  announceLimit: number;
  push: 'fanout' | 'tree';
  heartbeatMs: number;
  messageCacheMs: number;
  maxCachedMessages: number;
  maxCachedBytes: number;
  retry: RetryConfig;
  ackTimeoutMs: number;
  partitionTimeoutMs: number;
  reconnectForMs: number;
  dialTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  maxQueueBytes: number;
  maxPeers: number;
  minPeers: number;
  k: number;
  alpha: number;
  dhtRequestTimeoutMs: number;
  refreshIntervalMs: number;
  wireDump: string | undefined;
  encryption: boolean;
  keyLog: string | undefined;
  // peer scoring and rate limits
  scoring: ScoringOptions;
  banDurationMs: number;
  replayWindowSize: number;
  maxReplayOrigins: number;
  iwantServesPerPeer: number;
  verifyWorkers: number;
  // ---- adoption ----
  requireBootstrap: boolean;

  // ---- admission ----
  maxInboundPeers: number;
  maxOutboundPeers: number;
  maxInboundPerIp: number;
  maxInboundPerGroup: number;
  admissionAllowlist: string[];
  maxPendingHandshakes: number;
  maxPendingPerIp: number;
  minEvictionAgeMs: number;
  /** Member ids with their configured address (port 0: none). */
  members: Array<{ id: string; host: string; port: number }>;
  onlyMembers: boolean;
  maxKnownPeers: number;
  provenAfterMs: number;
  maxUnprovenDials: number;
  minRedialIntervalMs: number;
}

/** Every default in one place. */
export const DEFAULTS = Object.freeze({
  listenHost: '127.0.0.1',
  listenPort: 0,
  advertisePort: 0,
  networkId: 'aethel',
  fanout: 3,
  gossipTtl: 10,
  seenTtlMs: 300_000,
  maxSeenEntries: 100_000,
  signMessages: true,
  deliverOwnMessages: false,
  repair: true,
  announce: true,
  announceLimit: Infinity,
  push: 'fanout' as 'fanout' | 'tree',
  heartbeatMs: 1000,
  messageCacheMs: 120_000,
  maxCachedMessages: 10_000,
  maxCachedBytes: 64 * 1024 * 1024,
  ackTimeoutMs: 5000,
  partitionTimeoutMs: 30_000,
  reconnectForMs: 86_400_000,
  dialTimeoutMs: 5000,
  handshakeTimeoutMs: 5000,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxQueueBytes: 8 * 1024 * 1024,
  /** maxInboundPeers + maxOutboundPeers with their defaults; resolveOptions derives it from the two. */
  maxPeers: 50,
  minPeers: 8,
  k: 20,
  alpha: 3,
  dhtRequestTimeoutMs: 2000,
  refreshIntervalMs: 3_600_000,
  encryption: true,
  // peer scoring and rate limits (the scoring weights and budgets: SCORING_DEFAULTS)
  banDurationMs: 3_600_000,
  replayWindowSize: 1024,
  maxReplayOrigins: 10_000,
  iwantServesPerPeer: 3,
  verifyWorkers: 0,
  // ---- adoption ----
  requireBootstrap: false,

  // ---- admission (slots, per-source limits, pending handshakes, eviction age: lib/peers/admission.ts, where each is explained) ----
  ...ADMISSION_DEFAULTS,
  maxKnownPeers: 1000,
  /** Four default partition timeouts: a churning identity never stays this long. */
  provenAfterMs: 120_000,
  /** The bound: an address others name is dialed at most 3 times without success. */
  maxUnprovenDials: 3,
  minRedialIntervalMs: 1000,
});

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(field, `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function pushMode(v: unknown): 'fanout' | 'tree' {
  if (v !== 'fanout' && v !== 'tree') throw new InvalidOptionError('push', `expected 'fanout' or 'tree', got ${String(v)}`);
  return v;
}

function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidOptionError(field, `expected a boolean, got ${typeof v}`);
  return v;
}

function host(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > LIMITS.hostBytes || /\s/.test(v)) {
    throw new InvalidOptionError(field, `expected a host name or IP address, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parse 'host:port' or '[v6]:port'; throws InvalidOptionError naming `field`. */
export function parseAddress(field: string, v: unknown): { host: string; port: number } {
  if (typeof v !== 'string') throw new InvalidOptionError(field, `expected "host:port", got ${typeof v}`);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:\s]+):(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidOptionError(field, `expected "host:port" with port 1..65535, got ${JSON.stringify(v)}`);
  }
  return { host: host(field, m[1]), port };
}

const MS_MAX = 2_147_483_647; // setTimeout's limit

/** The announceLimit option: an integer >= 1, or Infinity (no bound). The simulator's options check theirs with it. */
export function announceLimit(v: unknown): number {
  if (v === Infinity || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) return v;
  throw new InvalidOptionError('announceLimit', `expected a positive integer or Infinity (announce: false turns announcements off), got ${String(v)}`);
}

/** A duration in ms: an integer >= 0, or Infinity for "no limit". */
function msOrForever(field: string, v: unknown): number {
  return v === Infinity ? v : int(field, v, 0, Number.MAX_SAFE_INTEGER);
}

// ---- admission ----
type AdmissionFields = Pick<ResolvedOptions,
  'maxInboundPeers' | 'maxOutboundPeers' | 'maxInboundPerIp' | 'maxInboundPerGroup' | 'admissionAllowlist' | 'maxPendingHandshakes' |
  'maxPendingPerIp' | 'minEvictionAgeMs' | 'members' | 'onlyMembers' | 'maxKnownPeers' | 'provenAfterMs' | 'maxUnprovenDials' | 'minRedialIntervalMs'>;

/** Parse 'id' or 'id@host:port'. */
export function parseMember(field: string, v: unknown): { id: string; host: string; port: number } {
  if (typeof v !== 'string') throw new InvalidOptionError(field, `expected "id" or "id@host:port", got ${typeof v}`);
  const at = v.indexOf('@');
  const id = at < 0 ? v : v.slice(0, at);
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidOptionError(field, 'expected a node id of 64 lowercase hex characters');
  if (at < 0) return { id, host: '', port: 0 };
  return { id, ...parseAddress(field, v.slice(at + 1)) };
}

function resolveAdmission(o: P2PNetworkOptions, listenHost: string): AdmissionFields {
  const d = DEFAULTS;
  const list = (field: string, v: unknown): unknown[] => {
    if (!Array.isArray(v)) throw new InvalidOptionError(field, 'expected an array');
    return v;
  };
  const members = list('members', o.members ?? []).map((m, i) => parseMember(`members[${i}]`, m));
  // No exemption by default, even on a loopback listener (a local reverse proxy makes every peer
  // 127.0.0.1): a one-machine testbed opts out explicitly with LOOPBACK_ALLOWLIST.
  const allow = list('admissionAllowlist', o.admissionAllowlist ?? []) as string[];
  const onlyMembers = bool('onlyMembers', o.onlyMembers ?? d.onlyMembers);
  if (onlyMembers && members.length === 0) throw new InvalidOptionError('onlyMembers', 'needs a non-empty members list');
  const maxOutboundPeers = int('maxOutboundPeers', o.maxOutboundPeers ?? d.maxOutboundPeers, 0, 10_000);
  // A maxPeers raised above the default total raises the inbound share with it.
  const derivedInbound = Number.isInteger(o.maxPeers) ? Math.max(d.maxInboundPeers, o.maxPeers! - maxOutboundPeers) : d.maxInboundPeers;
  const maxInboundPeers = int('maxInboundPeers', o.maxInboundPeers ?? derivedInbound, 0, 10_000);
  const a: AdmissionFields = {
    maxInboundPeers,
    maxOutboundPeers,
    maxInboundPerIp: int('maxInboundPerIp', o.maxInboundPerIp ?? d.maxInboundPerIp, 1, 10_000),
    maxInboundPerGroup: int('maxInboundPerGroup', o.maxInboundPerGroup ?? d.maxInboundPerGroup, 1, 10_000),
    admissionAllowlist: [...allow],
    maxPendingHandshakes: int('maxPendingHandshakes', o.maxPendingHandshakes ?? d.maxPendingHandshakes, 1, 100_000),
    maxPendingPerIp: int('maxPendingPerIp', o.maxPendingPerIp ?? d.maxPendingPerIp, 1, 100_000),
    minEvictionAgeMs: int('minEvictionAgeMs', o.minEvictionAgeMs ?? d.minEvictionAgeMs, 0, Number.MAX_SAFE_INTEGER),
    members,
    onlyMembers,
    maxKnownPeers: int('maxKnownPeers', o.maxKnownPeers ?? d.maxKnownPeers, 1, 10_000_000),
    provenAfterMs: int('provenAfterMs', o.provenAfterMs ?? d.provenAfterMs, 0, Number.MAX_SAFE_INTEGER),
    maxUnprovenDials: int('maxUnprovenDials', o.maxUnprovenDials ?? d.maxUnprovenDials, 1, 1000),
    minRedialIntervalMs: int('minRedialIntervalMs', o.minRedialIntervalMs ?? d.minRedialIntervalMs, 0, MS_MAX),
  };
  // The allowlist entries are checked by the admission module's parser (same field names).
  resolveAdmissionOptions({ ...a, members: members.map((m) => m.id) });
  return a;
}

/** Apply defaults and validate. Throws InvalidOptionError naming the first bad field. */
export function resolveOptions(o: P2PNetworkOptions = {}): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError('options', 'expected an object');
  const d = DEFAULTS;
  const listenHost = host('listenHost', o.listenHost ?? d.listenHost);
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  const advertiseHost = host('advertiseHost', o.advertiseHost ?? (wildcard ? '127.0.0.1' : listenHost));
  const bootstrapList = o.bootstrap ?? [];
  if (!Array.isArray(bootstrapList)) throw new InvalidOptionError('bootstrap', 'expected an array of "host:port"');
  const networkId = o.networkId ?? d.networkId;
  if (typeof networkId !== 'string' || networkId.length === 0 || Buffer.byteLength(networkId) > LIMITS.networkIdBytes) {
    throw new InvalidOptionError('networkId', `expected 1..${LIMITS.networkIdBytes} UTF-8 bytes`);
  }
  if (o.wireDump !== undefined && (typeof o.wireDump !== 'string' || o.wireDump.length === 0)) {
    throw new InvalidOptionError('wireDump', 'expected a file path');
  }
  if (o.keyLog !== undefined && (typeof o.keyLog !== 'string' || o.keyLog.length === 0)) {
    throw new InvalidOptionError('keyLog', 'expected a file path');
  }
  if (o.identity !== undefined && (typeof o.identity !== 'object' || !Buffer.isBuffer(o.identity?.publicKey))) {
    throw new InvalidOptionError('identity', 'expected an Identity (see generateIdentity / loadIdentity)');
  }
  const resolved: ResolvedOptions = {
    listenHost,
    listenPort: int('listenPort', o.listenPort ?? d.listenPort, 0, 65535),
    advertiseHost,
    advertisePort: int('advertisePort', o.advertisePort ?? d.advertisePort, 0, 65535),
    bootstrap: bootstrapList.map((a, i) => parseAddress(`bootstrap[${i}]`, a)),
    networkId,
    fanout: int('fanout', o.fanout ?? d.fanout, 1, 64),
    gossipTtl: int('gossipTtl', o.gossipTtl ?? d.gossipTtl, 1, LIMITS.maxTtl),
    seenTtlMs: int('seenTtlMs', o.seenTtlMs ?? d.seenTtlMs, 1, MS_MAX),
    maxSeenEntries: int('maxSeenEntries', o.maxSeenEntries ?? d.maxSeenEntries, 1, 100_000_000),
    signMessages: bool('signMessages', o.signMessages ?? d.signMessages),
    deliverOwnMessages: bool('deliverOwnMessages', o.deliverOwnMessages ?? d.deliverOwnMessages),
    repair: bool('repair', o.repair ?? d.repair),
    announce: bool('announce', o.announce ?? d.announce),
    announceLimit: announceLimit(o.announceLimit ?? d.announceLimit),
    push: pushMode(o.push ?? d.push),
    heartbeatMs: int('heartbeatMs', o.heartbeatMs ?? d.heartbeatMs, 10, MS_MAX),
    messageCacheMs: int('messageCacheMs', o.messageCacheMs ?? d.messageCacheMs, 0, MS_MAX),
    maxCachedMessages: int('maxCachedMessages', o.maxCachedMessages ?? d.maxCachedMessages, 0, 10_000_000),
    maxCachedBytes: int('maxCachedBytes', o.maxCachedBytes ?? d.maxCachedBytes, 0, Number.MAX_SAFE_INTEGER),
    retry: resolveRetryConfig(o.retry, 'retry'),
    ackTimeoutMs: int('ackTimeoutMs', o.ackTimeoutMs ?? d.ackTimeoutMs, 1, MS_MAX),
    partitionTimeoutMs: int('partitionTimeoutMs', o.partitionTimeoutMs ?? d.partitionTimeoutMs, 1, MS_MAX),
    reconnectForMs: msOrForever('reconnectForMs', o.reconnectForMs ?? d.reconnectForMs),
    dialTimeoutMs: int('dialTimeoutMs', o.dialTimeoutMs ?? d.dialTimeoutMs, 1, MS_MAX),
    handshakeTimeoutMs: int('handshakeTimeoutMs', o.handshakeTimeoutMs ?? d.handshakeTimeoutMs, 1, MS_MAX),
    maxFrameBytes: int('maxFrameBytes', o.maxFrameBytes ?? d.maxFrameBytes, 64, MAX_FRAME_BYTES_LIMIT),
    maxQueueBytes: int('maxQueueBytes', o.maxQueueBytes ?? d.maxQueueBytes, 1024, Number.MAX_SAFE_INTEGER),
    maxPeers: 0, // set below, from the admission block
    minPeers: int('minPeers', o.minPeers ?? d.minPeers, 0, 10_000),
    k: int('k', o.k ?? d.k, 1, LIMITS.contacts),
    alpha: int('alpha', o.alpha ?? d.alpha, 1, 16),
    dhtRequestTimeoutMs: int('dhtRequestTimeoutMs', o.dhtRequestTimeoutMs ?? d.dhtRequestTimeoutMs, 1, MS_MAX),
    refreshIntervalMs: int('refreshIntervalMs', o.refreshIntervalMs ?? d.refreshIntervalMs, 1, MS_MAX),
    wireDump: o.wireDump,
    encryption: bool('encryption', o.encryption ?? d.encryption),
    keyLog: o.keyLog,
    // peer scoring and rate limits
    scoring: resolveScoringOptions(o.scoring ?? {}, 'scoring'),
    banDurationMs: int('banDurationMs', o.banDurationMs ?? d.banDurationMs, 0, Number.MAX_SAFE_INTEGER),
    replayWindowSize: int('replayWindowSize', o.replayWindowSize ?? d.replayWindowSize, 1, 1_000_000),
    maxReplayOrigins: int('maxReplayOrigins', o.maxReplayOrigins ?? d.maxReplayOrigins, 1, 10_000_000),
    iwantServesPerPeer: int('iwantServesPerPeer', o.iwantServesPerPeer ?? d.iwantServesPerPeer, 1, 1000),
    verifyWorkers: checkWorkers('verifyWorkers', o.verifyWorkers ?? d.verifyWorkers, 0),
    // ---- adoption ----
    requireBootstrap: bool('requireBootstrap', o.requireBootstrap ?? d.requireBootstrap),
    ...resolveAdmission(o, listenHost),
  };
  resolved.maxPeers = int('maxPeers', o.maxPeers ?? resolved.maxInboundPeers + resolved.maxOutboundPeers, 1, 20_000);
  if (resolved.partitionTimeoutMs <= resolved.heartbeatMs) {
    // A quiet peer is heard from (PONG) about once per heartbeat: a shorter timeout partitions everyone.
    throw new InvalidOptionError('partitionTimeoutMs', `must exceed heartbeatMs (${resolved.heartbeatMs})`);
  }
  if (resolved.push === 'tree' && !resolved.repair) {
    // Lazy links learn of messages only by IHAVE: without repair they would get nothing.
    throw new InvalidOptionError('push', "'tree' needs repair: true");
  }
  if (resolved.minPeers > resolved.maxPeers) throw new InvalidOptionError('minPeers', `must not exceed maxPeers (${resolved.maxPeers})`);
  if (resolved.seenTtlMs < resolved.messageCacheMs) {
    // A message still fetchable by IWANT must still be remembered as seen, or a node could
    // fetch, deliver and forward it twice.
    throw new InvalidOptionError('messageCacheMs', `must not exceed seenTtlMs (${resolved.seenTtlMs})`);
  }
  if (isIP(advertiseHost) === 0 && advertiseHost !== 'localhost' && !/^[a-zA-Z0-9.-]+$/.test(advertiseHost)) {
    throw new InvalidOptionError('advertiseHost', `not a host name or IP address: ${JSON.stringify(advertiseHost)}`);
  }
  checkAdoptionOptions(o, resolved);
  return resolved;
}

// ---- adoption: checks at the constructor ---------------------------------------------------

/** Options accepted although they have no resolved form (objects handed over as they are). */
const PASS_THROUGH_OPTIONS: readonly string[] = ['identity', 'logger', 'clock'];

/** Logger methods the library calls: pino's Logger has them all; `console` lacks `child`. */
const LOGGER_METHODS = ['info', 'warn', 'debug', 'child'] as const;

/**
 * Unknown option keys (a typo such as `bootstraps` would otherwise be silently ignored) and
 * the logger's shape. The known keys are those resolveOptions produced plus the pass-through
 * ones, so an option added to ResolvedOptions is known without a second list to keep.
 */
function checkAdoptionOptions(o: P2PNetworkOptions, resolved: ResolvedOptions): void {
  for (const key of Object.keys(o)) {
    if ((o as Record<string, unknown>)[key] === undefined) continue;
    if (!Object.hasOwn(resolved, key) && !PASS_THROUGH_OPTIONS.includes(key)) {
      throw new InvalidOptionError(key, 'unknown option (see docs/API.md for the list)');
    }
  }
  const logger = o.logger as unknown;
  if (logger !== undefined) {
    const missing = LOGGER_METHODS.filter((m) => typeof (logger as Record<string, unknown> | null)?.[m] !== 'function');
    if (typeof logger !== 'object' || logger === null || missing.length > 0) {
      throw new InvalidOptionError('logger', `expected a pino logger (functions ${LOGGER_METHODS.join(', ')}); missing ${missing.join(', ') || 'all'}`);
    }
  }
}
