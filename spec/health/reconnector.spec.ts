import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { P2PError } from '../../lib/errors.js';
import { Reconnector } from '../../lib/health/reconnector.js';
import { BackoffScheduler, resolveRetryConfig } from '../../lib/retry/backoff.js';
import type { RetryConfig } from '../../lib/retry/backoff.js';

describe('Reconnector', () => {
  let clock: sinon.SinonFakeTimers;
  let t0: number;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 5_000_000 });
    t0 = Date.now();
  });

  afterEach(() => {
    clock.restore();
  });

  const policy = (over: Partial<RetryConfig> = {}) =>
    resolveRetryConfig({ initialDelayMs: 50, maxDelayMs: 400, multiplier: 2, maxRetries: 3, jitter: 'none', ...over });

  function setup(over: Partial<RetryConfig> = {}, reconnectForMs = 2000, random = () => 0.5) {
    const gaveUp: Array<[string, unknown]> = [];
    const scheduler = new BackoffScheduler(systemClock, random);
    const r = new Reconnector(systemClock, scheduler, { retry: policy(over), reconnectForMs }, (k, e) => void gaveUp.push([k, e]), random);
    return { r, gaveUp, scheduler };
  }

  /** An attempt function that fails until `succeedAt` attempts were made, recording when each started. */
  function attempts(succeedAt = Infinity) {
    const at: number[] = [];
    const fn = async () => {
      at.push(Date.now() - t0);
      if (at.length < succeedAt) throw new P2PError('CONNECTION_CLOSED', 'refused');
    };
    return { fn, at };
  }

  it('waits initialDelayMs, retries fast, then every maxDelayMs until reconnectForMs, then gives up', async () => {
    const { r, gaveUp } = setup();
    const a = attempts();
    r.schedule('peer', a.fn);
    await clock.tickAsync(10_000);
    // 50 ms first wait; fast retries after 50, 100, 200; then 400 each while the next attempt
    // starts within 2000 ms of the first one (at 50 ms).
    expect(a.at).to.deep.equal([50, 100, 200, 400, 800, 1200, 1600, 2000]);
    expect(gaveUp).to.have.length(1);
    expect(gaveUp[0]![0]).to.equal('peer');
    expect(r.has('peer')).to.equal(false);
    expect(clock.countTimers()).to.equal(0);
  });

  it('stops at the first successful attempt and forgets the key', async () => {
    const { r, gaveUp } = setup();
    const a = attempts(3);
    r.schedule('peer', a.fn);
    await clock.tickAsync(5000);
    expect(a.at).to.deep.equal([50, 100, 200]);
    expect(gaveUp).to.deep.equal([]);
    expect(r.size).to.equal(0);
    expect(clock.countTimers()).to.equal(0);
  });

  it('keeps one task per key: a second schedule while one is pending is a no-op', async () => {
    const { r } = setup();
    const first = attempts(2);
    const second = attempts(1);
    r.schedule('peer', first.fn);
    r.schedule('peer', second.fn);
    expect(r.size).to.equal(1);
    await clock.tickAsync(1000);
    expect(first.at).to.deep.equal([50, 100]);
    expect(second.at).to.deep.equal([]);
  });

  it('cancel stops retrying a key, during the first wait or later, and leaves no timer', async () => {
    const { r, gaveUp } = setup();
    const early = attempts();
    r.schedule('early', early.fn);
    r.cancel('early');
    const late = attempts();
    r.schedule('late', late.fn);
    await clock.tickAsync(150);
    r.cancel('late');
    r.cancel('late'); // idempotent
    await clock.tickAsync(10_000);
    expect(early.at).to.deep.equal([]);
    expect(late.at).to.deep.equal([50, 100]);
    expect(gaveUp, 'a cancel is not a give-up').to.deep.equal([]);
    expect(clock.countTimers()).to.equal(0);
  });

  it('cancelAll stops every key and leaves no timer', async () => {
    const { r } = setup();
    const a = attempts();
    const b = attempts();
    r.schedule('a', a.fn);
    r.schedule('b', b.fn);
    await clock.tickAsync(60);
    r.cancelAll();
    expect(r.size).to.equal(0);
    await clock.tickAsync(10_000);
    expect(a.at).to.deep.equal([50]);
    expect(b.at).to.deep.equal([50]);
    expect(clock.countTimers()).to.equal(0);
  });

  it('retries until cancelled when reconnectForMs is Infinity', async () => {
    const { r, gaveUp } = setup({}, Infinity);
    const a = attempts();
    r.schedule('peer', a.fn);
    await clock.tickAsync(3_600_000);
    expect(a.at.length).to.be.greaterThan(8000);
    expect(gaveUp).to.deep.equal([]);
    r.cancel('peer');
    expect(r.size).to.equal(0);
    // No attempt after the cancel. (Counting the fake clock's timers here would also count a
    // socket-close timer left by an earlier spec, which under load can still be pending.)
    const made = a.at.length;
    await clock.tickAsync(3_600_000);
    expect(a.at.length).to.equal(made);
  });

  it('ends quietly when an attempt says the network stopped', async () => {
    const { r, gaveUp } = setup();
    let calls = 0;
    r.schedule('peer', async () => {
      calls++;
      throw new P2PError('STOPPED', 'stopped');
    });
    await clock.tickAsync(5000);
    expect(calls).to.equal(1);
    expect(gaveUp).to.deep.equal([]);
    expect(r.has('peer')).to.equal(false);
  });

  it('keeps every wait within [d/2, d] of its nominal delay with equal jitter', async () => {
    for (const rnd of [0, 0.999999]) {
      const { r } = setup({ jitter: 'equal' }, 2000, () => rnd);
      const a = attempts();
      const start = Date.now() - t0;
      r.schedule('peer', a.fn);
      await clock.tickAsync(10_000);
      const gaps = a.at.map((t, i) => t - (i === 0 ? start : a.at[i - 1]!));
      // The first wait and retry n (n >= 1) are nominally 50 * 2^(n-1), capped at 400.
      const nominal = (i: number) => (i === 0 ? 50 : Math.min(400, 50 * 2 ** (i - 1)));
      gaps.forEach((g, i) => expect(g, `wait ${i}`).to.be.within(nominal(i) / 2, nominal(i)));
      expect(gaps.length).to.be.greaterThan(5);
    }
  });
});
