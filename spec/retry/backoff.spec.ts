import { expect } from 'chai';
import fc from 'fast-check';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import type { Clock, TimerHandle } from '../../lib/clock.js';
import { InvalidOptionError, P2PError } from '../../lib/errors.js';
import {
  BackoffScheduler,
  DEFAULT_RETRY,
  RetryExhaustedError,
  backoffDelay,
  resolveRetryConfig,
} from '../../lib/retry/backoff.js';
import type { Jitter, RetryConfig } from '../../lib/retry/backoff.js';

/** Captured before any test installs fake timers: lets a test wait one real turn of the event loop. */
const realSetImmediate = setImmediate;

const noJitter = (over: Partial<RetryConfig> = {}): RetryConfig => resolveRetryConfig({ jitter: 'none', ...over });

const delays = (config: RetryConfig, retries: number, random?: () => number): number[] =>
  Array.from({ length: retries }, (_, i) => backoffDelay(config, i + 1, random));

/** The settled state of a promise, read without awaiting it forever. */
function track<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const t: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(t, { state: 'resolved', value }),
    (error: unknown) => Object.assign(t, { state: 'rejected', error }),
  );
  return t;
}

/** An attempt function that fails `failures` times (with distinct errors), then returns `value`. */
function failingThen<T>(failures: number, value: T): { fn: (n: number) => Promise<T>; calls: number[]; errors: Error[] } {
  const calls: number[] = [];
  const errors: Error[] = [];
  const fn = async (n: number): Promise<T> => {
    calls.push(n);
    if (calls.length <= failures) {
      const e = new Error(`attempt ${n} failed`);
      errors.push(e);
      throw e;
    }
    return value;
  };
  return { fn, calls, errors };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    expect((err as P2PError).code).to.equal(code);
    return err;
  }
  return expect.fail(`expected a rejection with ${code}`);
}

describe('retry/backoff', () => {
  describe('DEFAULT_RETRY', () => {
    it('holds the documented defaults and is frozen', () => {
      expect(DEFAULT_RETRY).to.deep.equal({ initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2, maxRetries: 5, jitter: 'equal' });
      expect(Object.isFrozen(DEFAULT_RETRY)).to.equal(true);
    });
  });

  describe('resolveRetryConfig', () => {
    it('returns the defaults, as a fresh object, when given nothing', () => {
      const c = resolveRetryConfig();
      expect(c).to.deep.equal(DEFAULT_RETRY);
      expect(c).to.not.equal(DEFAULT_RETRY);
      expect(resolveRetryConfig({})).to.deep.equal(DEFAULT_RETRY);
    });

    it('keeps explicit zeros instead of replacing them with defaults', () => {
      const c = resolveRetryConfig({ initialDelayMs: 0, maxRetries: 0 });
      expect(c.initialDelayMs).to.equal(0);
      expect(c.maxRetries).to.equal(0);
    });

    it('accepts the edge values of every rule', () => {
      const c = resolveRetryConfig({ initialDelayMs: 500, maxDelayMs: 500, multiplier: 1, maxRetries: 0, jitter: 'full' });
      expect(c).to.deep.equal({ initialDelayMs: 500, maxDelayMs: 500, multiplier: 1, maxRetries: 0, jitter: 'full' });
      expect(resolveRetryConfig({ maxDelayMs: 2_147_483_647 }).maxDelayMs).to.equal(2_147_483_647);
    });

    const invalid: Array<[string, unknown, string]> = [
      ['a negative initialDelayMs', { initialDelayMs: -1 }, 'retry.initialDelayMs'],
      ['a NaN initialDelayMs', { initialDelayMs: NaN }, 'retry.initialDelayMs'],
      ['an infinite initialDelayMs', { initialDelayMs: Infinity }, 'retry.initialDelayMs'],
      ['a string initialDelayMs', { initialDelayMs: '1000' }, 'retry.initialDelayMs'],
      ['a maxDelayMs below initialDelayMs', { initialDelayMs: 2000, maxDelayMs: 1999 }, 'retry.maxDelayMs'],
      ['a maxDelayMs below the default initialDelayMs', { maxDelayMs: 999 }, 'retry.maxDelayMs'],
      ['an infinite maxDelayMs', { maxDelayMs: Infinity }, 'retry.maxDelayMs'],
      ['a maxDelayMs beyond what a timer can hold', { maxDelayMs: 2_147_483_648 }, 'retry.maxDelayMs'],
      ['a multiplier below 1', { multiplier: 0.5 }, 'retry.multiplier'],
      ['a NaN multiplier', { multiplier: NaN }, 'retry.multiplier'],
      ['an infinite multiplier', { multiplier: Infinity }, 'retry.multiplier'],
      ['a negative maxRetries', { maxRetries: -1 }, 'retry.maxRetries'],
      ['a fractional maxRetries', { maxRetries: 1.5 }, 'retry.maxRetries'],
      ['an infinite maxRetries', { maxRetries: Infinity }, 'retry.maxRetries'],
      ['an unknown jitter', { jitter: 'random' }, 'retry.jitter'],
      ['a partial that is not an object', 5, 'retry'],
      ['a null partial', null, 'retry'],
    ];
    for (const [what, partial, field] of invalid) {
      it(`rejects ${what}, naming ${field}`, () => {
        let caught: unknown;
        try {
          resolveRetryConfig(partial as Partial<RetryConfig>);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(InvalidOptionError);
        expect((caught as InvalidOptionError).code).to.equal('INVALID_OPTION');
        expect((caught as InvalidOptionError).field).to.equal(field);
      });
    }

    it('prefixes the field with the name it is given', () => {
      expect(() => resolveRetryConfig({ multiplier: 0 }, 'dial.retry'))
        .to.throw(InvalidOptionError)
        .with.property('field', 'dial.retry.multiplier');
    });
  });

  describe('backoffDelay', () => {
    it('doubles from 1 s with the defaults and no jitter: 1000, 2000, 4000, 8000, 16000', () => {
      expect(delays(noJitter(), 5)).to.deep.equal([1000, 2000, 4000, 8000, 16000]);
    });

    it('caps the delay at maxDelayMs: 1000, 2000, 4000, 5000, 5000', () => {
      expect(delays(noJitter({ maxDelayMs: 5000 }), 5)).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
    });

    it('stays constant with multiplier 1', () => {
      expect(delays(noJitter({ initialDelayMs: 300, multiplier: 1 }), 4)).to.deep.equal([300, 300, 300, 300]);
    });

    it('rounds a fractional delay down to a whole millisecond', () => {
      // 1000 * 1.5^n: 1000, 1500, 2250, 3375, 5062.5
      expect(delays(noJitter({ multiplier: 1.5 }), 5)).to.deep.equal([1000, 1500, 2250, 3375, 5062]);
    });

    it('is always 0 when initialDelayMs is 0, even for huge retries', () => {
      const c = noJitter({ initialDelayMs: 0 });
      expect(delays(c, 3)).to.deep.equal([0, 0, 0]);
      expect(backoffDelay(c, 1e9)).to.equal(0);
    });

    it('saturates at maxDelayMs for huge retry numbers instead of overflowing', () => {
      const c = noJitter({ maxDelayMs: 60_000 });
      for (const retry of [1024, 1025, 1e6, Number.MAX_SAFE_INTEGER, 1e308]) {
        expect(backoffDelay(c, retry), `retry ${retry}`).to.equal(60_000);
      }
      const huge = resolveRetryConfig({ multiplier: 1e6, maxDelayMs: 2_147_483_647 });
      for (const r of [0, 0.5, 0.999999]) {
        const d = backoffDelay(huge, Number.MAX_SAFE_INTEGER, () => r);
        expect(Number.isFinite(d)).to.equal(true);
        expect(d).to.be.at.least(0).and.at.most(2_147_483_647);
      }
    });

    const badRetries = [0, -1, 1.5, NaN, Infinity];
    for (const retry of badRetries) {
      it(`throws INVALID_ARGUMENT for retry ${retry}`, () => {
        expect(() => backoffDelay(noJitter(), retry)).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
      });
    }

    describe('jitter', () => {
      /** Inclusive bounds for a nominal delay `base` under each jitter kind. */
      const bounds: Record<Jitter, (base: number) => [number, number]> = {
        none: (base) => [base, base],
        full: (base) => [0, base],
        equal: (base) => [Math.floor(base / 2), base],
      };
      const nominal = (c: RetryConfig, retry: number) => backoffDelay({ ...c, jitter: 'none' }, retry);

      for (const jitter of ['none', 'full', 'equal'] as const) {
        it(`keeps '${jitter}' delays within bounds and under maxDelayMs for any random() in [0, 1)`, () => {
          fc.assert(
            fc.property(
              fc.integer({ min: 0, max: 5000 }),
              fc.integer({ min: 0, max: 100_000 }),
              fc.double({ min: 1, max: 4, noNaN: true }),
              fc.integer({ min: 1, max: 80 }),
              fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
              (initialDelayMs, extra, multiplier, retry, r) => {
                const c = resolveRetryConfig({ initialDelayMs, maxDelayMs: initialDelayMs + extra, multiplier, jitter });
                const base = nominal(c, retry);
                const [lo, hi] = bounds[jitter](base);
                const d = backoffDelay(c, retry, () => r);
                return Number.isInteger(d) && d >= lo && d <= hi && d <= c.maxDelayMs;
              },
            ),
            { numRuns: 2000 },
          );
        });
      }

      const extremes: Array<[Jitter, number, number]> = [
        // [jitter, random(), expected delay for a nominal 1000 ms]
        ['none', 0, 1000],
        ['none', 0.999999, 1000],
        ['full', 0, 0],
        ['full', 0.25, 250],
        ['full', 0.999999, 999],
        ['equal', 0, 500],
        ['equal', 0.25, 625],
        ['equal', 0.999999, 999],
      ];
      for (const [jitter, r, expected] of extremes) {
        it(`gives ${expected} ms for '${jitter}' jitter with random() = ${r} and a nominal 1000 ms`, () => {
          expect(backoffDelay(resolveRetryConfig({ jitter }), 1, () => r)).to.equal(expected);
        });
      }

      it('never exceeds a cap that the nominal delay has reached, for the extreme random() values', () => {
        for (const jitter of ['none', 'full', 'equal'] as const) {
          const c = resolveRetryConfig({ maxDelayMs: 5000, jitter });
          for (const r of [0, 0.999999]) {
            const d = backoffDelay(c, 10, () => r);
            expect(d, `${jitter} ${r}`).to.be.at.most(5000).and.at.least(bounds[jitter](5000)[0]);
          }
        }
      });

      it('clamps a random() that strays outside [0, 1)', () => {
        const c = resolveRetryConfig({ jitter: 'full' });
        expect(backoffDelay(c, 1, () => 1.5)).to.equal(1000);
        expect(backoffDelay(c, 1, () => -3)).to.equal(0);
        expect(backoffDelay(c, 1, () => NaN)).to.equal(0);
      });

      it('spreads delays when random() varies', () => {
        const c = resolveRetryConfig({ jitter: 'equal' });
        const seen = new Set<number>();
        let r = 0;
        for (let i = 0; i < 100; i++) seen.add(backoffDelay(c, 1, () => (r = (r + 0.37) % 1)));
        expect(seen.size).to.be.greaterThan(50);
      });
    });
  });

  describe('BackoffScheduler', () => {
    let clock: sinon.SinonFakeTimers;
    let scheduler: BackoffScheduler;

    beforeEach(() => {
      clock = sinon.useFakeTimers();
      scheduler = new BackoffScheduler(systemClock);
    });

    afterEach(() => {
      clock.restore();
    });

    it('succeeds on the 3rd attempt after waiting exactly 1000 then 2000 ms', async () => {
      const a = failingThen(2, 'ok');
      const task = scheduler.run(a.fn, noJitter());
      const result = track(task.promise);
      expect(task.attempts).to.equal(1);

      await clock.tickAsync(999);
      expect(task.attempts).to.equal(1);
      await clock.tickAsync(1);
      expect(task.attempts).to.equal(2);

      await clock.tickAsync(1999);
      expect(task.attempts).to.equal(2);
      expect(result.state).to.equal('pending');
      await clock.tickAsync(1);
      expect(task.attempts).to.equal(3);

      expect(await task.promise).to.equal('ok');
      expect(a.calls).to.deep.equal([1, 2, 3]);
      expect(scheduler.pending).to.equal(0);
      expect(clock.countTimers()).to.equal(0);
    });

    it('gives up after maxRetries with RetryExhaustedError carrying attempts and the last error', async () => {
      const a = failingThen(Infinity, 'never');
      const task = scheduler.run(a.fn, noJitter({ initialDelayMs: 100, maxRetries: 2 }));
      const result = track(task.promise);

      await clock.tickAsync(100);
      expect(task.attempts).to.equal(2);
      await clock.tickAsync(199);
      expect(task.attempts).to.equal(2);
      expect(result.state).to.equal('pending');
      await clock.tickAsync(1);
      expect(task.attempts).to.equal(3);

      const err = result.error;
      expect(result.state).to.equal('rejected');
      expect(err).to.be.instanceOf(RetryExhaustedError);
      expect(err).to.not.be.instanceOf(P2PError);
      expect((err as RetryExhaustedError).attempts).to.equal(3);
      expect((err as RetryExhaustedError).lastError).to.equal(a.errors[2]);
      expect((err as RetryExhaustedError).cause).to.equal(a.errors[2]);
      expect((err as Error).name).to.equal('RetryExhaustedError');
      expect(Date.now()).to.equal(300);
      expect(scheduler.pending).to.equal(0);
      expect(clock.countTimers()).to.equal(0);
    });

    it('makes exactly one attempt when maxRetries is 0', async () => {
      const a = failingThen(Infinity, 'never');
      const task = scheduler.run(a.fn, noJitter({ maxRetries: 0 }));
      const err = await task.promise.then(() => expect.fail('resolved'), (e: unknown) => e);
      expect(err).to.be.instanceOf(RetryExhaustedError).with.property('attempts', 1);
      expect(clock.countTimers()).to.equal(0);
    });

    it('reports each wait to onRetry with the retry number, delay and error', async () => {
      const a = failingThen(Infinity, 'never');
      const onRetry = sinon.spy();
      const task = scheduler.run(a.fn, noJitter({ initialDelayMs: 100, maxRetries: 2 }), { onRetry });
      await clock.tickAsync(300);
      await task.promise.catch(() => {});
      expect(onRetry.args).to.deep.equal([
        [1, 100, a.errors[0]],
        [2, 200, a.errors[1]],
      ]);
    });

    it('waits the jittered delay drawn from the random() it was given', async () => {
      scheduler = new BackoffScheduler(systemClock, () => 0.5);
      const task = scheduler.run(failingThen(1, 'ok').fn, resolveRetryConfig({ jitter: 'equal' }));
      await clock.tickAsync(749);
      expect(task.attempts).to.equal(1);
      await clock.tickAsync(1);
      expect(task.attempts).to.equal(2);
      expect(await task.promise).to.equal('ok');
    });

    it('keeps retrying every maxDelayMs while persistForMs allows, then gives up', async () => {
      const a = failingThen(Infinity, 'never');
      const onRetry = sinon.spy();
      const config = noJitter({ initialDelayMs: 100, maxDelayMs: 1000, maxRetries: 2 });
      const task = scheduler.run(a.fn, config, { persistForMs: 5000, onRetry });
      const result = track(task.promise);

      // Fast retries at 100 and 300 ms, then every 1000 ms: 1300, 2300, 3300, 4300.
      await clock.tickAsync(300);
      expect(task.attempts).to.equal(3);
      for (const [i, at] of [1300, 2300, 3300, 4300].entries()) {
        await clock.tickAsync(at - 1 - Date.now());
        expect(task.attempts, `just before ${at} ms`).to.equal(3 + i);
        expect(result.state).to.equal('pending');
        await clock.tickAsync(1);
        expect(task.attempts, `at ${at} ms`).to.equal(4 + i);
      }
      // The next attempt would start at 5300 ms, past the 5000 ms allowed: give up now.
      expect(task.attempts).to.equal(7);
      expect(result.state).to.equal('rejected');
      expect(result.error).to.be.instanceOf(RetryExhaustedError).with.property('attempts', 7);
      expect((result.error as RetryExhaustedError).lastError).to.equal(a.errors[6]);
      expect(onRetry.args.map(([retry, delay]) => [retry, delay])).to.deep.equal([
        [1, 100], [2, 200], [3, 1000], [4, 1000], [5, 1000], [6, 1000],
      ]);
      expect(Date.now()).to.equal(4300);
      expect(clock.countTimers()).to.equal(0);
      expect(scheduler.pending).to.equal(0);
    });

    it('resolves when an attempt in the persistent phase succeeds', async () => {
      const a = failingThen(4, 'healed');
      const task = scheduler.run(a.fn, noJitter({ initialDelayMs: 100, maxDelayMs: 1000, maxRetries: 1 }), { persistForMs: 60_000 });
      await clock.tickAsync(100 + 1000 + 1000 + 1000);
      expect(await task.promise).to.equal('healed');
      expect(task.attempts).to.equal(5);
    });

    it('retries until cancelled when persistForMs is Infinity', async () => {
      const task = scheduler.run(failingThen(Infinity, 'never').fn, noJitter({ maxDelayMs: 1000, maxRetries: 0 }), { persistForMs: Infinity });
      await clock.tickAsync(100 * 1000);
      expect(task.attempts).to.equal(101);
      expect(scheduler.pending).to.equal(1);
      task.cancel();
      await expectCode(task.promise, 'STOPPED');
    });

    it('stops at once, with the error itself, when shouldRetry returns false', async () => {
      const a = failingThen(Infinity, 'never');
      const shouldRetry = sinon.stub().returns(false);
      const task = scheduler.run(a.fn, noJitter(), { shouldRetry });
      const err = await task.promise.then(() => expect.fail('resolved'), (e: unknown) => e);
      expect(err).to.equal(a.errors[0]);
      expect(shouldRetry.calledOnceWithExactly(a.errors[0])).to.equal(true);
      expect(task.attempts).to.equal(1);
      expect(clock.countTimers()).to.equal(0);
      expect(scheduler.pending).to.equal(0);
    });

    it('retries transient errors and stops on the first one shouldRetry refuses', async () => {
      const permanent = new P2PError('VERSION_MISMATCH', 'permanent');
      let n = 0;
      const task = scheduler.run(async () => {
        n++;
        throw n < 3 ? new Error('transient') : permanent;
      }, noJitter(), { shouldRetry: (e) => e !== permanent });
      await clock.tickAsync(1000 + 2000);
      expect(await task.promise.catch((e: unknown) => e)).to.equal(permanent);
      expect(task.attempts).to.equal(3);
      expect(clock.countTimers()).to.equal(0);
    });

    it('treats an attempt that throws synchronously like a rejection', async () => {
      let n = 0;
      const task = scheduler.run((): Promise<string> => {
        n++;
        if (n === 1) throw new Error('sync');
        return Promise.resolve('second');
      }, noJitter());
      expect(task.attempts).to.equal(1);
      await clock.tickAsync(1000);
      expect(await task.promise).to.equal('second');
    });

    it('rejects with the hook error, leaving no timer, when onRetry throws', async () => {
      const boom = new Error('logger broke');
      const task = scheduler.run(failingThen(Infinity, 'never').fn, noJitter(), {
        onRetry: () => {
          throw boom;
        },
      });
      expect(await task.promise.catch((e: unknown) => e)).to.equal(boom);
      expect(clock.countTimers()).to.equal(0);
      expect(scheduler.pending).to.equal(0);
    });

    it('cancel() rejects with STOPPED, clears its timer and makes no more attempts', async () => {
      const task = scheduler.run(failingThen(Infinity, 'never').fn, noJitter());
      await clock.tickAsync(500);
      expect(clock.countTimers()).to.equal(1);
      task.cancel();
      await expectCode(task.promise, 'STOPPED');
      expect(clock.countTimers()).to.equal(0);
      expect(scheduler.pending).to.equal(0);
      await clock.tickAsync(120_000);
      expect(task.attempts).to.equal(1);
    });

    it('cancel() is idempotent and does nothing to a task that already succeeded', async () => {
      const task = scheduler.run(async () => 'done', noJitter());
      expect(await task.promise).to.equal('done');
      task.cancel();
      task.cancel();
      expect(await task.promise).to.equal('done');

      const other = scheduler.run(failingThen(Infinity, 'never').fn, noJitter());
      other.cancel();
      other.cancel();
      await expectCode(other.promise, 'STOPPED');
      expect(scheduler.pending).to.equal(0);
    });

    it('schedules nothing when an attempt in flight settles after cancel()', async () => {
      let failInFlight!: (e: Error) => void;
      const task = scheduler.run(
        () => new Promise<string>((_resolve, reject) => {
          failInFlight = reject;
        }),
        noJitter(),
      );
      task.cancel();
      failInFlight(new Error('late failure'));
      await clock.tickAsync(0);
      expect(clock.countTimers()).to.equal(0);
      await clock.tickAsync(120_000);
      expect(task.attempts).to.equal(1);
      await expectCode(task.promise, 'STOPPED');
    });

    it('keeps STOPPED when an attempt in flight succeeds after cancel()', async () => {
      let succeed!: (v: string) => void;
      const task = scheduler.run(() => new Promise<string>((resolve) => (succeed = resolve)), noJitter());
      task.cancel();
      succeed('too late');
      await expectCode(task.promise, 'STOPPED');
    });

    it('never reports an unhandled rejection for a cancelled task nobody awaits', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const task = scheduler.run(failingThen(Infinity, 'never').fn, noJitter());
        task.cancel();
        scheduler.run(failingThen(Infinity, 'never').fn, noJitter());
        scheduler.cancelAll();
        // Node reports unhandled rejections once the microtask queue drains: one real turn is enough.
        await new Promise((resolve) => realSetImmediate(resolve));
        await new Promise((resolve) => realSetImmediate(resolve));
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      expect(unhandled).to.deep.equal([]);
    });

    it('cancelAll() rejects every pending task with STOPPED and leaves no timer', async () => {
      const waiting = [1, 2, 3].map(() => scheduler.run(failingThen(Infinity, 'never').fn, noJitter()));
      const inFlight = scheduler.run(() => new Promise<never>(() => {}), noJitter());
      await clock.tickAsync(10);
      expect(clock.countTimers()).to.equal(3);
      expect(scheduler.pending).to.equal(4);

      scheduler.cancelAll();
      for (const task of [...waiting, inFlight]) await expectCode(task.promise, 'STOPPED');
      expect(clock.countTimers()).to.equal(0);
      expect(scheduler.pending).to.equal(0);
      await clock.tickAsync(120_000);
      expect(waiting.map((t) => t.attempts)).to.deep.equal([1, 1, 1]);
    });

    it('still runs tasks after cancelAll()', async () => {
      scheduler.run(failingThen(Infinity, 'never').fn, noJitter());
      scheduler.cancelAll();
      const task = scheduler.run(failingThen(1, 'again').fn, noJitter());
      expect(scheduler.pending).to.equal(1);
      await clock.tickAsync(1000);
      expect(await task.promise).to.equal('again');
      expect(scheduler.pending).to.equal(0);
    });

    it('counts pending tasks until each settles', async () => {
      expect(scheduler.pending).to.equal(0);
      const quick = scheduler.run(failingThen(1, 'a').fn, noJitter({ initialDelayMs: 100 }));
      const slow = scheduler.run(failingThen(Infinity, 'b').fn, noJitter());
      expect(scheduler.pending).to.equal(2);
      await clock.tickAsync(100);
      await quick.promise;
      expect(scheduler.pending).to.equal(1);
      slow.cancel();
      expect(scheduler.pending).to.equal(0);
      await slow.promise.catch(() => {});
    });

    it('uses only the clock it was given', async () => {
      const scheduled: number[] = [];
      const fired: Array<() => void> = [];
      const manual: Clock = {
        now: () => 0,
        setTimeout(fn, delayMs): TimerHandle {
          scheduled.push(delayMs);
          fired.push(fn);
          return { cancel: () => {} };
        },
        setInterval: () => expect.fail('no intervals expected'),
      };
      const own = new BackoffScheduler(manual);
      const task = own.run(failingThen(2, 'ok').fn, noJitter());
      await clock.tickAsync(0);
      expect(scheduled).to.deep.equal([1000]);
      expect(clock.countTimers()).to.equal(0);
      fired.shift()!();
      await clock.tickAsync(0);
      expect(scheduled).to.deep.equal([1000, 2000]);
      fired.shift()!();
      expect(await task.promise).to.equal('ok');
      expect(clock.countTimers()).to.equal(0);
    });

    describe('argument checks', () => {
      it('throws INVALID_ARGUMENT when attempt is not a function', () => {
        expect(() => scheduler.run(42 as never, noJitter())).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
      });

      for (const persistForMs of [-1, NaN, '10' as unknown as number]) {
        it(`throws INVALID_ARGUMENT for persistForMs ${String(persistForMs)}`, () => {
          expect(() => scheduler.run(async () => 1, noJitter(), { persistForMs }))
            .to.throw(P2PError)
            .with.property('code', 'INVALID_ARGUMENT');
        });
      }

      it('validates the config, naming config.<field>', () => {
        const bad = { ...noJitter(), multiplier: 0 };
        expect(() => scheduler.run(async () => 1, bad)).to.throw(InvalidOptionError).with.property('field', 'config.multiplier');
        expect(scheduler.pending).to.equal(0);
      });
    });
  });
});
