/**
 * Partition detection: which peers this node can hear from. Pure bookkeeping over an
 * injected clock: no sockets, no timers. The owner reports connections, disconnections and
 * contact (any valid frame from the peer), and calls check() periodically (the network's
 * heartbeat; the simulator's virtual clock). A peer not heard from for partitionTimeoutMs is
 * reported once as partitioned, whether its connection is still open (silent link: the owner
 * should close it) or already gone (a crash, a reset link that will not come back).
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';

/** What the monitor knows of one peer. */
export type PeerHealthState = 'connected' | 'disconnected' | 'partitioned';

/**
 * The network's health as a consensus layer reads it. Without a basis every tracked peer
 * counts; with one (see HealthBasis) knownPeers, partitionedPeers and reachableFraction
 * count only the basis, so identities that proved nothing cannot move them.
 */
export interface HealthSnapshot {
  /** Peers with an open, authenticated connection (any identity). */
  connectedPeers: number;
  /** Peers health is computed over: the members, or the tracked peers that count (never this node itself). */
  knownPeers: number;
  /** Of those, peers not heard from for at least partitionTimeoutMs. */
  partitionedPeers: number;
  /** Of knownPeers, the share connected now; 0 when knownPeers is 0. */
  reachableFraction: number;
}

/**
 * Which peers health() counts. `members`: exactly these ids, tracked or not (one never
 * connected counts as unreachable: the quorum view). Otherwise `counts` filters the tracked
 * peers (the network passes "proven or worth keeping").
 */
export interface HealthBasis {
  members?: readonly string[];
  counts?: (id: string) => boolean;
}

export interface PartitionMonitorOptions {
  /** A peer silent this long, ms, is partitioned. Default 30000. */
  partitionTimeoutMs?: number;
}

/** Default silence after which a peer is partitioned, ms. */
export const DEFAULT_PARTITION_TIMEOUT_MS = 30_000;

interface Tracked {
  state: PeerHealthState;
  lastContact: number;
  /** False for a peer that left on purpose: its silence is expected, not a partition. */
  watched: boolean;
}

export class PartitionMonitor {
  /** Silence, ms, after which a peer is partitioned. */
  readonly partitionTimeoutMs: number;
  private readonly peers = new Map<string, Tracked>();

  constructor(
    private readonly clock: Clock,
    options: PartitionMonitorOptions = {},
  ) {
    const t = options.partitionTimeoutMs ?? DEFAULT_PARTITION_TIMEOUT_MS;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) {
      throw new InvalidOptionError('partitionTimeoutMs', `expected an integer >= 1, got ${String(t)}`);
    }
    this.partitionTimeoutMs = t;
  }

  /**
   * A connection to `id` is open (contact now). Returns true when the peer had been
   * reported partitioned: it has recovered.
   */
  connected(id: string): boolean {
    const p = this.peers.get(id);
    const recovered = p?.state === 'partitioned';
    this.peers.set(id, { state: 'connected', lastContact: this.clock.now(), watched: true });
    return recovered;
  }

  /** Something valid arrived from `id` at clock time `at` (default now). Unknown ids are ignored. */
  contact(id: string, at: number = this.clock.now()): void {
    const p = this.peers.get(id);
    if (p && at > p.lastContact) p.lastContact = at;
  }

  /**
   * The connection to `id` closed. A partitioned peer stays partitioned; unknown ids are
   * ignored. `departed`: the peer left on purpose (it said GOODBYE), so its silence from now
   * on is never reported as a partition.
   */
  disconnected(id: string, departed = false): void {
    const p = this.peers.get(id);
    if (!p) return;
    if (p.state === 'connected') p.state = 'disconnected';
    if (departed) p.watched = false;
  }

  /** Stop tracking `id` (the peer was removed on purpose). */
  remove(id: string): void {
    this.peers.delete(id);
  }

  /** Stop tracking every peer. */
  clear(): void {
    this.peers.clear();
  }

  /**
   * Mark every peer silent for at least partitionTimeoutMs as partitioned (except those that
   * departed) and return those newly marked (each is reported once until it connects again).
   */
  check(): string[] {
    const now = this.clock.now();
    const newly: string[] = [];
    for (const [id, p] of this.peers) {
      if (p.watched && p.state !== 'partitioned' && now - p.lastContact >= this.partitionTimeoutMs) {
        p.state = 'partitioned';
        newly.push(id);
      }
    }
    return newly;
  }

  /**
   * This node's own event loop was stalled for `stalledMs` (a GC pause, SIGSTOP, a VM
   * migration): it could not read its sockets, so that time is not the peers' silence.
   * Every tracked peer's last contact moves forward by `stalledMs` (never past now), so a
   * peer is judged partitioned only on silence the node was awake to hear. The owner calls
   * this before check(), when its heartbeat fires far past its due time.
   */
  resumeAfterStall(stalledMs: number): void {
    if (!(stalledMs > 0)) return;
    const now = this.clock.now();
    for (const p of this.peers.values()) p.lastContact = Math.min(now, p.lastContact + stalledMs);
  }

  /** State of `id`, or undefined when it is not tracked. */
  state(id: string): PeerHealthState | undefined {
    return this.peers.get(id)?.state;
  }

  /** Clock time (ms) of the last contact with `id`, or undefined when it is not tracked. */
  lastContact(id: string): number | undefined {
    return this.peers.get(id)?.lastContact;
  }

  /** Counts over every tracked peer, or over `basis` (connectedPeers always counts every connected peer). */
  health(basis: HealthBasis = {}): HealthSnapshot {
    let connectedPeers = 0;
    for (const p of this.peers.values()) if (p.state === 'connected') connectedPeers++;
    let knownPeers = 0;
    let reachable = 0;
    let partitionedPeers = 0;
    const tally = (state: PeerHealthState | undefined) => {
      knownPeers++;
      if (state === 'connected') reachable++;
      else if (state === 'partitioned') partitionedPeers++;
    };
    if (basis.members && basis.members.length > 0) {
      for (const id of new Set(basis.members)) tally(this.peers.get(id)?.state);
    } else {
      for (const [id, p] of this.peers) if (!basis.counts || basis.counts(id)) tally(p.state);
    }
    return { connectedPeers, knownPeers, partitionedPeers, reachableFraction: knownPeers === 0 ? 0 : reachable / knownPeers };
  }
}
