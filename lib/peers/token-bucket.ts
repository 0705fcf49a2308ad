/**
 * A token bucket: at most `burst` tokens, refilled at `ratePerSecond`. No timers: the refill
 * owed since the last call is computed from the clock time the caller passes to take(),
 * so a bucket is two numbers and a timestamp, and thousands of them cost nothing while idle.
 *
 * The owner (the peer ledger) calls take() once per inbound message (or id, or byte count)
 * and drops what the bucket refuses; credit() adds earned tokens (the IWANT serve budget is
 * credited with what the peer sent us). A bucket starts full (a new peer may burst at once)
 * unless the owner says otherwise (the serve budget starts empty).
 */
import { InvalidOptionError } from '../errors.js';

export class TokenBucket {
  private tokens: number;
  private at: number;

  /**
   * @param ratePerSecond tokens added per second (>= 0; 0: only the initial burst, ever).
   * @param burst capacity in tokens (>= 1): the largest amount take() can ever grant at once.
   * @param now clock time, ms, at creation.
   * @param initial tokens at creation, from 0 to burst (default burst: the bucket starts full).
   */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
    initial = burst,
  ) {
    if (!(ratePerSecond >= 0) || !Number.isFinite(ratePerSecond)) throw new InvalidOptionError('ratePerSecond', `expected a finite number >= 0, got ${String(ratePerSecond)}`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new InvalidOptionError('burst', `expected a finite number >= 1, got ${String(burst)}`);
    this.tokens = Math.max(0, Math.min(burst, initial));
    this.at = now;
  }

  /** Tokens available at clock time `now` (ms). */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /**
   * Take `n` tokens at clock time `now` (ms). All or nothing: false (and nothing taken)
   * when fewer than `n` are available.
   */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Add `n` earned tokens (never beyond burst). */
  credit(now: number, n: number): void {
    this.refill(now);
    this.tokens = Math.min(this.burst, this.tokens + n);
  }

  private refill(now: number): void {
    this.tokens = refilled(this.tokens, this.at, now, this.ratePerSecond, this.burst);
    this.at = now;
  }
}

/**
 * A bucket's tokens at clock time `now` (ms), from `tokens` at time `at`: the refill of
 * TokenBucket, for owners that keep many buckets as numbers in one array rather than as
 * objects (the peer ledger: about 50 bytes less per bucket). A clock that steps back (a test
 * resetting it, NTP) neither refills nor drains.
 */
export function refilled(tokens: number, at: number, now: number, ratePerSecond: number, burst: number): number {
  return now > at ? Math.min(burst, tokens + ((now - at) * ratePerSecond) / 1000) : tokens;
}
