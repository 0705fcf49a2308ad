/**
 * Exponential backoff in two parts: a pure policy (`backoffDelay`: how long to wait before
 * retry n) and a scheduler (`BackoffScheduler`) that runs an attempt function again after
 * those waits on the injected clock. Tasks are cancellable one by one and all at once (the
 * network's stop()). No global timers: every wait goes through `Clock.setTimeout`.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { InvalidOptionError, P2PError } from '../errors.js';

/**
 * How randomness spreads a nominal delay `d`:
 * - `'none'`: exactly `d`;
 * - `'full'`: uniform in `[0, d)`: spreads retries the most, but may retry almost at once;
 * - `'equal'`: uniform in `[d/2, d)`: spreads retries while keeping a floor of half.
 */
export type Jitter = 'none' | 'full' | 'equal';

/** The retry policy. Resolve a partial one with `resolveRetryConfig`. */
export interface RetryConfig {
  /** Nominal wait before the first retry, ms. Default 1000. */
  initialDelayMs: number;
  /**
   * Upper bound on every wait, ms, jitter included. Default 60000. At most 2147483647
   * (2^31 - 1), the largest delay a Node timer honours; larger ones fire after 1 ms.
   */
  maxDelayMs: number;
  /** Factor by which the nominal wait grows per retry; >= 1 (1 = constant delay). Default 2. */
  multiplier: number;
  /** Retries after the first attempt, so at most `1 + maxRetries` attempts. Default 5. */
  maxRetries: number;
  /**
   * How the nominal wait is randomised; see `Jitter`. Default `'equal'`: peers that lost the
   * same link (a node restart, a partition) retry at spread-out times instead of in lockstep,
   * and none waits less than half the nominal delay, so a recovering node is not hammered by
   * near-immediate retries. AWS's "Exponential Backoff and Jitter" analysis compares these
   * schemes: full jitter spreads load the most, equal jitter trades a little of that for the
   * floor.
   */
  jitter: Jitter;
}

/** The default retry policy: waits of about 1, 2, 4, 8 and 16 s, then give up. */
export const DEFAULT_RETRY: Readonly<RetryConfig> = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  multiplier: 2,
  maxRetries: 5,
  jitter: 'equal',
});

/** The largest delay a Node timer honours, ms. */
const MAX_TIMER_MS = 2_147_483_647;

const JITTERS: readonly Jitter[] = ['none', 'full', 'equal'];

/**
 * Merge `partial` over `DEFAULT_RETRY` (with `??`, so an explicit 0 is kept) and validate.
 * Throws `InvalidOptionError` whose `field` is `${field}.initialDelayMs` etc.
 */
export function resolveRetryConfig(partial?: Partial<RetryConfig>, field = 'retry'): RetryConfig {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null)) {
    throw new InvalidOptionError(field, 'expected an object');
  }
  const p = partial ?? {};
  const config: RetryConfig = {
    initialDelayMs: p.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs,
    maxDelayMs: p.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    multiplier: p.multiplier ?? DEFAULT_RETRY.multiplier,
    maxRetries: p.maxRetries ?? DEFAULT_RETRY.maxRetries,
    jitter: p.jitter ?? DEFAULT_RETRY.jitter,
  };
  const fail = (name: keyof RetryConfig, want: string): never => {
    throw new InvalidOptionError(`${field}.${name}`, `expected ${want}, got ${describe(config[name])}`);
  };
  const { initialDelayMs, maxDelayMs, multiplier, maxRetries, jitter } = config;
  if (!isFiniteNumber(initialDelayMs) || initialDelayMs < 0) fail('initialDelayMs', 'a finite number >= 0');
  if (!isFiniteNumber(maxDelayMs) || maxDelayMs < initialDelayMs || maxDelayMs > MAX_TIMER_MS) {
    fail('maxDelayMs', `a finite number >= initialDelayMs (${initialDelayMs}) and <= ${MAX_TIMER_MS}`);
  }
  if (!isFiniteNumber(multiplier) || multiplier < 1) fail('multiplier', 'a finite number >= 1');
  if (!Number.isInteger(maxRetries) || maxRetries < 0) fail('maxRetries', 'an integer >= 0');
  if (!JITTERS.includes(jitter)) fail('jitter', "'none', 'full' or 'equal'");
  return config;
}

/**
 * The wait before retry number `retry`, ms. Retries are 1-based: the wait before the second
 * attempt is retry 1. The nominal delay is `min(maxDelayMs, initialDelayMs * multiplier^(retry-1))`,
 * then jitter is applied with `random()` (expected in [0, 1); out-of-range values are clamped).
 * The result is rounded down to a whole millisecond, is never negative and never exceeds
 * `maxDelayMs`; huge retry numbers saturate at `maxDelayMs` instead of overflowing.
 * Throws P2PError INVALID_ARGUMENT if `retry` is not an integer >= 1.
 */
export function backoffDelay(config: RetryConfig, retry: number, random: () => number = Math.random): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw P2PError.invalidArgument(`retry must be an integer >= 1, got ${describe(retry)}`);
  }
  return jittered(nominalDelay(config, retry), config, random);
}

function nominalDelay(config: RetryConfig, retry: number): number {
  const { initialDelayMs, maxDelayMs, multiplier } = config;
  // 0 * Infinity is NaN, so a zero start is answered before the power is taken.
  if (initialDelayMs === 0) return 0;
  const raw = initialDelayMs * multiplier ** (retry - 1);
  // `!(raw < max)` also catches Infinity (and NaN) from a huge exponent.
  return raw < maxDelayMs ? raw : maxDelayMs;
}

function jittered(base: number, config: RetryConfig, random: () => number): number {
  let delay: number;
  switch (config.jitter) {
    case 'none':
      delay = base;
      break;
    case 'full':
      delay = unit(random) * base;
      break;
    case 'equal':
      delay = base / 2 + (unit(random) * base) / 2;
      break;
  }
  return Math.min(config.maxDelayMs, Math.max(0, Math.floor(delay)));
}

/** random() clamped into [0, 1]; NaN counts as 0. */
function unit(random: () => number): number {
  const r = random();
  return r > 0 ? Math.min(r, 1) : 0;
}

/** Per-run behaviour of `BackoffScheduler.run`. */
export interface RetryOptions {
  /**
   * After the `maxRetries` fast retries are used up, keep retrying every `maxDelayMs` (with
   * jitter) as long as the next attempt would start no later than this many ms after the
   * first attempt. Default 0: give up after `maxRetries`. `Infinity` retries until success
   * or cancel. Used for reconnecting to known peers, so a partition of any realistic length
   * heals.
   */
  persistForMs?: number;
  /**
   * Called before each wait with the retry number (1-based), the wait in ms and the error
   * that caused it; for logging and metrics. If it throws, the task rejects with that error.
   */
  onRetry?: (retry: number, delayMs: number, error: unknown) => void;
  /**
   * Return false to stop at once on this error (e.g. a permanent one): the task then rejects
   * with that error itself, not a RetryExhaustedError. Default: retry every error. If it
   * throws, the task rejects with what it threw.
   */
  shouldRetry?: (error: unknown) => boolean;
}

/** One running retry loop. */
export interface RetryTask<T> {
  /**
   * Resolves with the first successful attempt's value. Rejects with RetryExhaustedError after
   * giving up, with the error itself when `shouldRetry` refused it, or with P2PError STOPPED
   * when cancelled. A no-op handler is attached internally, so a rejection nobody awaits
   * (typically after cancel) is never reported as unhandled.
   */
  readonly promise: Promise<T>;
  /** Stop retrying and clear the pending timer; the promise rejects with STOPPED. Idempotent; no-op once settled. */
  cancel(): void;
  /** Attempts started so far. */
  readonly attempts: number;
}

/**
 * Retries ran out. Deliberately not a P2PError: the caller maps it to a code that names what
 * failed (sendToPeer maps it to PEER_UNREACHABLE). The last error is also the `cause`.
 */
export class RetryExhaustedError extends Error {
  /** Attempts made, the first included. */
  readonly attempts: number;
  /** The error of the last attempt. */
  readonly lastError: unknown;

  constructor(attempts: number, lastError: unknown) {
    super(`gave up after ${attempts} attempt(s): ${errorMessage(lastError)}`, { cause: lastError });
    this.name = 'RetryExhaustedError';
    this.attempts = attempts;
    this.lastError = lastError;
  }
}

/**
 * Runs attempt functions with backoff between failures, on the injected clock. Owns one timer
 * per waiting task and nothing else; `cancelAll()` leaves no timer behind.
 */
export class BackoffScheduler {
  private readonly clock: Clock;
  private readonly random: () => number;
  /** The cancel function of every task not yet settled. */
  private readonly cancels = new Set<() => void>();

  /** `random` (default Math.random) drives jitter; tests pass a stub. */
  constructor(clock: Clock, random: () => number = Math.random) {
    this.clock = clock;
    this.random = random;
  }

  /** Tasks not yet settled. */
  get pending(): number {
    return this.cancels.size;
  }

  /**
   * Call `attempt(1)` now (synchronously); whenever its promise rejects (or it throws), wait
   * the backoff delay and call it again with the next attempt number, until one succeeds, the
   * policy gives up or the task is cancelled. `config` is validated (InvalidOptionError naming
   * `config.x`); a bad `attempt` or `persistForMs` throws P2PError INVALID_ARGUMENT.
   */
  run<T>(attempt: (attemptNumber: number) => Promise<T>, config: RetryConfig, options: RetryOptions = {}): RetryTask<T> {
    if (typeof attempt !== 'function') throw P2PError.invalidArgument('attempt must be a function');
    const policy = resolveRetryConfig(config, 'config');
    const persistForMs = options.persistForMs ?? 0;
    if (typeof persistForMs !== 'number' || !(persistForMs >= 0)) {
      throw P2PError.invalidArgument(`persistForMs must be a number >= 0, got ${describe(persistForMs)}`);
    }
    const { onRetry, shouldRetry } = options;
    const clock = this.clock;
    const startedAt = clock.now();
    let attempts = 0;
    let timer: TimerHandle | undefined;
    let settled = false;
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Cancelling must never crash a process because nobody awaited this promise; callers that
    // do await it still see the rejection (this handler is on a branch of its own).
    promise.catch(() => {});

    const settle = (ok: boolean, value: unknown): void => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      timer = undefined;
      this.cancels.delete(cancel);
      if (ok) resolve(value as T);
      else reject(value);
    };
    const cancel = (): void => settle(false, new P2PError('STOPPED', 'retry cancelled'));

    const failed = (error: unknown): void => {
      // A task cancelled while this attempt was in flight schedules nothing.
      if (settled) return;
      try {
        if (shouldRetry && !shouldRetry(error)) return settle(false, error);
        const retry = attempts; // the wait before attempt n + 1 is retry n
        let delay: number;
        if (retry <= policy.maxRetries) {
          delay = backoffDelay(policy, retry, this.random);
        } else {
          delay = jittered(policy.maxDelayMs, policy, this.random);
          if (clock.now() + delay - startedAt > persistForMs) {
            return settle(false, new RetryExhaustedError(attempts, error));
          }
        }
        onRetry?.(retry, delay, error);
        // onRetry may have cancelled this task (or all of them).
        if (settled) return;
        timer = clock.setTimeout(next, delay);
      } catch (hookError) {
        settle(false, hookError);
      }
    };

    const next = (): void => {
      timer = undefined;
      if (settled) return;
      attempts++;
      let result: Promise<T>;
      try {
        result = Promise.resolve(attempt(attempts));
      } catch (error) {
        result = Promise.reject(error);
      }
      result.then((value) => settle(true, value), failed);
    };

    this.cancels.add(cancel);
    next();
    return {
      promise,
      cancel,
      get attempts() {
        return attempts;
      },
    };
  }

  /**
   * Cancel every pending task (each rejects with STOPPED) and clear every timer. The
   * scheduler stays usable: run() works afterwards, since a stopped network can start again.
   */
  cancelAll(): void {
    for (const cancel of [...this.cancels]) cancel();
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  try {
    return String(value);
  } catch {
    return 'an unprintable value'; // e.g. an object without a prototype
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : describe(error);
}
