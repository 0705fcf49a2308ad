/**
 * Exponential backoff: a pure policy (the delay before retry n) and a scheduler that runs
 * retries on the injected clock, cancellable per task and wholesale (stop()).
 *
 * Jitter defaults to 'equal': the delay is drawn from [d/2, d]. Many peers that lost the same
 * link retry at spread-out times instead of in lockstep, while each keeps a floor of half
 * the nominal delay so nobody hammers a recovering node (the trade-off measured in AWS's
 * "Exponential Backoff and Jitter" analysis: full jitter spreads more, equal keeps a floor).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { InvalidOptionError, P2PError } from '../errors.js';

export type Jitter = 'none' | 'full' | 'equal';

export interface RetryConfig {
  /** Delay before the first retry, ms. */
  initialDelayMs: number;
  /** Cap on any delay, ms, jitter included. */
  maxDelayMs: number;
  /** Growth factor per retry, >= 1. */
  multiplier: number;
  /** Retries after the first attempt: at most 1 + maxRetries attempts. */
  maxRetries: number;
  /** How randomness spreads the delay: none, full ([0, d]) or equal ([d/2, d]). */
  jitter: Jitter;
}

export const DEFAULT_RETRY: Readonly<RetryConfig> = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  multiplier: 2,
  maxRetries: 5,
  jitter: 'equal',
});

/** Merge over the defaults with `??` and validate; errors name `${field}.x`. */
export function resolveRetryConfig(partial: Partial<RetryConfig> = {}, field = 'retry'): RetryConfig {
  if (typeof partial !== 'object' || partial === null) throw new InvalidOptionError(field, 'expected an object');
  const c: RetryConfig = {
    initialDelayMs: partial.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs,
    maxDelayMs: partial.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    multiplier: partial.multiplier ?? DEFAULT_RETRY.multiplier,
    maxRetries: partial.maxRetries ?? DEFAULT_RETRY.maxRetries,
    jitter: partial.jitter ?? DEFAULT_RETRY.jitter,
  };
  const num = (name: keyof RetryConfig, ok: boolean, want: string) => {
    if (!ok) throw new InvalidOptionError(`${field}.${name}`, `expected ${want}, got ${String(c[name])}`);
  };
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  num('initialDelayMs', finite(c.initialDelayMs) && c.initialDelayMs >= 0, 'a number >= 0');
  num('maxDelayMs', finite(c.maxDelayMs) && c.maxDelayMs >= c.initialDelayMs && c.maxDelayMs <= 2_147_483_647, 'a number >= initialDelayMs');
  num('multiplier', finite(c.multiplier) && c.multiplier >= 1, 'a number >= 1');
  num('maxRetries', Number.isInteger(c.maxRetries) && c.maxRetries >= 0, 'an integer >= 0');
  num('jitter', c.jitter === 'none' || c.jitter === 'full' || c.jitter === 'equal', "'none', 'full' or 'equal'");
  return c;
}

/** Delay before retry number `retry` (1-based), ms: never negative, never above maxDelayMs. */
export function backoffDelay(config: RetryConfig, retry: number, random: () => number = Math.random): number {
  const exp = Math.max(0, retry - 1);
  const raw = config.initialDelayMs * Math.pow(config.multiplier, exp);
  const base = Number.isFinite(raw) ? Math.min(config.maxDelayMs, raw) : config.maxDelayMs;
  switch (config.jitter) {
    case 'none': return base;
    case 'full': return Math.min(config.maxDelayMs, Math.floor(random() * base));
    case 'equal': return Math.min(config.maxDelayMs, Math.floor(base / 2 + random() * (base / 2)));
  }
}

export interface RetryOptions {
  /** After maxRetries, keep retrying every maxDelayMs (jittered) until this long since the first attempt, ms. */
  persistForMs?: number;
  /** Called before each wait. */
  onRetry?: (retry: number, delayMs: number, error: unknown) => void;
  /** Return false to stop on this error. */
  shouldRetry?: (error: unknown) => boolean;
}

export interface RetryTask<T> {
  readonly promise: Promise<T>;
  cancel(): void;
  readonly attempts: number;
}

/** Retries ran out. Not a P2PError: the caller maps it to its own code (e.g. PEER_UNREACHABLE). */
export class RetryExhaustedError extends Error {
  override name = 'RetryExhaustedError';
  constructor(readonly attempts: number, readonly lastError: unknown) {
    super(`gave up after ${attempts} attempt(s): ${(lastError as Error)?.message ?? String(lastError)}`);
  }
}

export class BackoffScheduler {
  private readonly tasks = new Set<() => void>();

  constructor(private readonly clock: Clock, private readonly random: () => number = Math.random) {}

  get pending(): number {
    return this.tasks.size;
  }

  run<T>(attempt: (attemptNumber: number) => Promise<T>, config: RetryConfig, options: RetryOptions = {}): RetryTask<T> {
    const startedAt = this.clock.now();
    let attempts = 0;
    let timer: TimerHandle | undefined;
    let settled = false;
    let resolveP!: (v: T) => void;
    let rejectP!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolveP = res;
      rejectP = rej;
    });
    // A cancelled task nobody awaits must not surface as an unhandled rejection.
    promise.catch(() => {});
    const finish = (ok: boolean, value: unknown) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      this.tasks.delete(cancel);
      if (ok) resolveP(value as T);
      else rejectP(value);
    };
    const cancel = () => finish(false, new P2PError('STOPPED', 'retry cancelled'));
    this.tasks.add(cancel);
    const go = () => {
      timer = undefined;
      if (settled) return;
      attempts++;
      attempt(attempts).then(
        (v) => finish(true, v),
        (err: unknown) => {
          if (settled) return;
          if (options.shouldRetry && !options.shouldRetry(err)) return finish(false, err);
          const retry = attempts; // retries made so far + 1
          let delay: number;
          if (retry <= config.maxRetries) {
            delay = backoffDelay(config, retry, this.random);
          } else {
            const persist = options.persistForMs ?? 0;
            delay = backoffDelay({ ...config, initialDelayMs: config.maxDelayMs }, 1, this.random);
            if (this.clock.now() + delay - startedAt > persist) return finish(false, new RetryExhaustedError(attempts, err));
          }
          options.onRetry?.(retry, delay, err);
          timer = this.clock.setTimeout(go, delay);
        },
      );
    };
    go();
    return {
      promise,
      cancel,
      get attempts() {
        return attempts;
      },
    };
  }

  cancelAll(): void {
    for (const cancel of [...this.tasks]) cancel();
  }
}
