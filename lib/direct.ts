/**
 * Direct messages (DIRECT/ACK) between two connected peers: the sender waits for the ACK
 * that echoes its random reference; the receiver acknowledges every copy but delivers a
 * reference only once, so a retry after a lost ACK is never delivered twice.
 * No sockets, no global timers: time comes from the injected clock.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.js';
import type { DeliveryInfo } from './gossip/engine.js';
import { packValue } from './wire/codec.js';
import { P2PError } from './errors.js';
import { SeenCache } from './gossip/seen-cache.js';
import { AckStatus, LIMITS } from './wire/messages.js';

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

// ---- the sender's and the receiver's decisions (PROTOCOL.md §4.9), kept out of the facade ----

/** Options of sendToPeer() and request(). */
export interface SendOptions {
  /** Give up after this many ms in all (dials, retries, ACK waits included): rejects with TIMEOUT. Default: no limit beyond the retry policy. */
  timeoutMs?: number;
  /** Abort the send: rejects with ABORTED (the peer may still receive what was already written). */
  signal?: AbortSignal;
}

const MS_MAX = 2_147_483_647;

/** Validate SendOptions; throws INVALID_ARGUMENT naming the bad field. */
export function checkSendOptions(o: SendOptions): SendOptions {
  if (typeof o !== 'object' || o === null) throw P2PError.invalidArgument('options must be an object { timeoutMs?, signal? }');
  const { timeoutMs, signal } = o;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MS_MAX)) {
    throw P2PError.invalidArgument(`options.timeoutMs must be an integer from 1 to ${MS_MAX}, got ${String(timeoutMs)}`);
  }
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.addEventListener !== 'function' || typeof signal.aborted !== 'boolean')) {
    throw P2PError.invalidArgument('options.signal must be an AbortSignal');
  }
  return { timeoutMs, signal };
}

/** Errors a direct send does not retry: the peer answered, or we stopped. */
export function isFinalDirectError(e: unknown): boolean {
  return e instanceof P2PError && (e.code === 'STOPPED' || e.code === 'NO_HANDLER' || e.code === 'HANDLER_FAILED');
}

/**
 * What the sender makes of an ACK: the reply (DELIVERED; null for a plain send), or the error
 * it means. DUPLICATE is success for a send and a lost answer for a request; an unknown status
 * is taken as REFUSED (retried).
 */
export function ackOutcome(ack: AckResult, peerId: string, topic: string, wantReply: boolean): Buffer | null {
  switch (ack.status) {
    case AckStatus.DELIVERED: return ack.reply;
    case AckStatus.NO_SUBSCRIBER: throw new P2PError('NO_HANDLER', `peer ${peerId.slice(0, 16)} has no handler for topic ${JSON.stringify(topic)}`);
    case AckStatus.HANDLER_FAILED: throw new P2PError('HANDLER_FAILED', `peer ${peerId.slice(0, 16)}'s handler failed: ${ack.reply?.toString('utf8') ?? ''}`);
    case AckStatus.DUPLICATE:
      if (!wantReply) return null;
      throw new P2PError('TIMEOUT', 'the reply to this request was lost');
    default: throw new P2PError('QUEUE_FULL', `peer refused the message (ACK status ${ack.status})`);
  }
}

/**
 * Answer a request: run the first handler, then ACK DELIVERED with its value packed (undefined
 * becomes nil), or HANDLER_FAILED with the error's text (at most 1 KiB) when it throws, rejects
 * or returns what MessagePack cannot carry.
 */
export function answerRequest(
  handler: (data: unknown, info: DeliveryInfo) => unknown,
  data: unknown,
  info: DeliveryInfo,
  ack: (status: number, reply: Buffer | null) => void,
  onFailure: (err: unknown) => void,
): void {
  Promise.resolve()
    .then(() => handler(data, info))
    .then(
      (value) => {
        let reply: Buffer;
        try {
          reply = packValue(value ?? null);
        } catch (err) {
          return void ack(AckStatus.HANDLER_FAILED, Buffer.from(`reply cannot be encoded: ${(err as Error).message}`));
        }
        ack(AckStatus.DELIVERED, reply);
      },
      (err: unknown) => {
        onFailure(err);
        const text = err instanceof Error ? err.message : String(err);
        ack(AckStatus.HANDLER_FAILED, Buffer.from(text.length <= 1024 ? text : `${text.slice(0, 1023)}…`));
      },
    );
}

/** The caller's limits on a send (timeoutMs, signal): whichever comes first ends it. */
export class CallerLimits {
  private timer: TimerHandle | undefined;
  private onAbort: (() => void) | undefined;
  private limitHit: P2PError | undefined;
  private readonly limits: Promise<never> | undefined;

  constructor(clock: Clock, timeoutMs: number | undefined, private readonly signal: AbortSignal | undefined, what: string, peerId: string) {
    if (timeoutMs === undefined && !signal) return;
    this.limits = new Promise<never>((_resolve, reject) => {
      if (timeoutMs !== undefined) {
        this.timer = clock.setTimeout(() => reject((this.limitHit = new P2PError('TIMEOUT', `${what}: no ACK from ${peerId.slice(0, 12)} within ${timeoutMs} ms`))), timeoutMs);
      }
      if (signal) {
        this.onAbort = () => reject((this.limitHit = P2PError.aborted(what, signal.reason)));
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
    });
  }

  /** The task's outcome, unless a limit comes first. */
  race<T>(task: Promise<T>): Promise<T> {
    return this.limits ? Promise.race([task, this.limits]) : task;
  }

  /** Whether `err` is the limit that ended the send. */
  hit(err: unknown): boolean {
    return this.limitHit !== undefined && err === this.limitHit;
  }

  /** Cancel the timer and the abort listener. */
  dispose(): void {
    this.timer?.cancel();
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
  }
}
