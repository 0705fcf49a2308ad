/**
 * Direct messages (DIRECT/ACK) between two connected peers: the sender waits for the ACK
 * that echoes its random reference; the receiver acknowledges every copy but delivers a
 * reference only once, so a retry after a lost ACK is never delivered twice.
 * No sockets, no global timers: time comes from the injected clock.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.js';
import { P2PError } from './errors.js';
import { SeenCache } from './gossip/seen-cache.js';
import { LIMITS } from './wire/messages.js';

/** What the receiver answered (§4.9). */
export interface AckResult {
  status: number;
  reply: Buffer | null;
}

interface PendingAck {
  resolve: (ack: AckResult) => void;
  reject: (err: P2PError) => void;
  timer: TimerHandle;
}

/** How long a received reference is remembered for duplicate suppression, ms. */
export const DIRECT_DEDUP_TTL_MS = 10 * 60_000;
/** Cap on remembered references. */
export const DIRECT_DEDUP_MAX = 50_000;

export class DirectMessenger {
  private readonly pending = new Map<string, PendingAck>();
  private readonly received: SeenCache;

  constructor(private readonly clock: Clock) {
    this.received = new SeenCache(clock, { ttlMs: DIRECT_DEDUP_TTL_MS, maxEntries: DIRECT_DEDUP_MAX });
  }

  /** A fresh reference for one logical message (retries reuse it). */
  newRef(): Buffer {
    return randomBytes(LIMITS.refBytes);
  }

  /** Resolves with the ACK for `ref` when it arrives; rejects with TIMEOUT after `timeoutMs`. */
  waitForAck(ref: Buffer, timeoutMs: number): Promise<AckResult> {
    const key = ref.toString('latin1');
    this.pending.get(key)?.reject(new P2PError('TIMEOUT', 'superseded by a retry'));
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(key);
        reject(new P2PError('TIMEOUT', `no ACK within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
    });
  }

  /** An ACK arrived; unknown references are ignored. */
  onAck(ref: Buffer, status: number, reply: Buffer | null): void {
    const key = ref.toString('latin1');
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    p.timer.cancel();
    p.resolve({ status, reply: reply && Buffer.from(reply) });
  }

  /** A DIRECT arrived from `senderId`: true if it is new and should be delivered. */
  accept(senderId: Buffer, ref: Buffer): boolean {
    return this.received.add(Buffer.concat([senderId, ref]));
  }

  /** Periodic cleanup of remembered references. */
  heartbeat(): void {
    this.received.cleanup();
  }

  /** Reject every waiting sender (on stop) and forget everything. */
  clear(err: P2PError): void {
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.reject(err);
    }
    this.pending.clear();
    this.received.clear();
  }
}
