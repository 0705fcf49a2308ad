/**
 * Reconnection of lost links, one task per key (a peer id, or a name such as 'bootstrap'),
 * on the backoff scheduler: the first attempt after a jittered initialDelayMs, then the fast
 * retries of the policy, then one attempt every maxDelayMs (with jitter) until reconnectForMs
 * have passed since the first attempt. No sockets and no global timers: the attempt function
 * is supplied by the owner and time comes from the injected clock.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { P2PError } from '../errors.js';
import { backoffDelay } from '../retry/backoff.js';
import type { BackoffScheduler, RetryConfig, RetryTask } from '../retry/backoff.js';

export interface ReconnectorOptions {
  /** Backoff policy: initialDelayMs, maxDelayMs, multiplier, maxRetries (the fast retries), jitter. */
  retry: RetryConfig;
  /**
   * After the fast retries, keep trying every maxDelayMs for as long as the next attempt
   * starts at most this many ms after the first one. Infinity: until success or cancel.
   */
  reconnectForMs: number;
}

interface Pending {
  /** The initial wait, before the task exists. */
  timer: TimerHandle | undefined;
  task: RetryTask<void> | undefined;
}

export class Reconnector {
  private readonly pending = new Map<string, Pending>();

  /**
   * @param onGiveUp called when a task ran out of time (not when it is cancelled), with the
   *   last attempt's error.
   */
  constructor(
    private readonly clock: Clock,
    private readonly scheduler: BackoffScheduler,
    private readonly opts: ReconnectorOptions,
    private readonly onGiveUp: (key: string, error: unknown) => void = () => {},
    private readonly random: () => number = Math.random,
  ) {}

  /** Keys with a task waiting or running. */
  get size(): number {
    return this.pending.size;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  /**
   * Start reconnecting `key` with `attempt` (resolve = done, reject = try again later).
   * A no-op while a task for `key` is pending: the first schedule wins.
   */
  schedule(key: string, attempt: () => Promise<void>): void {
    if (this.pending.has(key)) return;
    const entry: Pending = { timer: undefined, task: undefined };
    this.pending.set(key, entry);
    // A jittered first wait: the peers that lost the same link do not redial in lockstep, and
    // a peer that drops every connection at once cannot make us redial in a tight loop.
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      const task = this.scheduler.run(() => attempt(), this.opts.retry, {
        persistForMs: this.opts.reconnectForMs,
        shouldRetry: (e) => !(e instanceof P2PError && e.code === 'STOPPED'),
      });
      entry.task = task;
      task.promise.then(
        () => this.settle(key, entry),
        (err: unknown) => {
          // Cancelled tasks were already removed by cancel(); a STOPPED attempt error ends quietly.
          if (this.settle(key, entry) && !(err instanceof P2PError && err.code === 'STOPPED')) this.onGiveUp(key, err);
        },
      );
    }, backoffDelay(this.opts.retry, 1, this.random));
  }

  /** Stop reconnecting `key`. Idempotent. */
  cancel(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.pending.delete(key);
    entry.timer?.cancel();
    entry.task?.cancel();
  }

  /** Stop every task and clear every timer. */
  cancelAll(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }

  /** Forget a finished task; true if it was still the current one for its key. */
  private settle(key: string, entry: Pending): boolean {
    if (this.pending.get(key) !== entry) return false;
    this.pending.delete(key);
    return true;
  }
}
