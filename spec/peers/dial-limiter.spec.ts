import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { DialLimiter } from '../../lib/peers/dial-limiter.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const VICTIM = ['192.0.2.10', 4000] as const;

describe('DialLimiter', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => clock.restore());

  /** Dial as the network does: check, start, then fail. Returns the verdicts. */
  function failDials(l: DialLimiter, n: number, everyMs: number, claim?: string): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const v = l.check(...VICTIM, 'learned', claim);
      out.push(v);
      if (v === 'ok') {
        l.started(...VICTIM);
        l.failed(...VICTIM);
      }
      clock.tick(everyMs);
    }
    return out;
  }

  it('dials an address nobody proved at most maxUnprovenDials times without success, then leaves it alone for an hour', () => {
    const l = new DialLimiter(systemClock);
    const v = failDials(l, 10, 2000);
    expect(v.filter((x) => x === 'ok')).to.have.length(3);
    expect(v.slice(3)).to.deep.equal(new Array(7).fill('unproven_limit'));
    expect(l.attempts(...VICTIM)).to.equal(3);
    clock.tick(3_600_000);
    expect(l.check(...VICTIM, 'learned')).to.equal('ok');
  });

  it('spaces dials of a failing address by minRedialIntervalMs, however many identities claim it', () => {
    const l = new DialLimiter(systemClock, { maxUnprovenDials: 100 });
    const v = failDials(l, 20, 100);
    // 20 claims over 2 s, one dial per second.
    expect(v.filter((x) => x === 'ok')).to.have.length(2);
    expect(l.refused.too_soon).to.equal(18);
  });

  it('does not dial an address proven to host another node for a new claim', () => {
    const l = new DialLimiter(systemClock);
    l.started(...VICTIM);
    l.succeeded(...VICTIM, A);
    expect(l.check(...VICTIM, 'learned', A)).to.equal('ok');
    expect(l.check(...VICTIM, 'learned', B)).to.equal('claimed_by_other');
    expect(l.check(...VICTIM, 'learned')).to.equal('ok');
  });

  it('lets a kept peer be redialed at its own claimed address past the unproven limit, spaced, but not once another node proved it', () => {
    const l = new DialLimiter(systemClock);
    failDials(l, 5, 2000);
    expect(l.check(...VICTIM, 'claimed', A)).to.equal('ok');
    l.failed(...VICTIM);
    expect(l.check(...VICTIM, 'claimed', A)).to.equal('too_soon');
    l.succeeded(...VICTIM, B);
    expect(l.check(...VICTIM, 'claimed', A)).to.equal('claimed_by_other');
  });

  it('always allows trusted dials (bootstrap, addPeer, members)', () => {
    const l = new DialLimiter(systemClock, { maxUnprovenDials: 1 });
    failDials(l, 3, 10);
    expect(l.check(...VICTIM, 'trusted', B)).to.equal('ok');
  });

  it('resets the failure count on success and forgets the least recently dialed beyond its cap', () => {
    const l = new DialLimiter(systemClock, { maxTrackedAddresses: 2 });
    failDials(l, 2, 2000);
    l.succeeded(...VICTIM, A);
    l.failed(...VICTIM);
    clock.tick(2000);
    expect(l.check(...VICTIM, 'learned', A)).to.equal('ok');
    l.started('192.0.2.11', 1);
    l.started('192.0.2.12', 1);
    expect(l.size).to.equal(2);
    expect(l.provenId(...VICTIM)).to.equal(undefined);
  });

  it('validates options, naming the field', () => {
    expect(() => new DialLimiter(systemClock, { maxUnprovenDials: 0 })).to.throw(InvalidOptionError).with.property('field', 'maxUnprovenDials');
    expect(() => new DialLimiter(systemClock, { minRedialIntervalMs: 1.5 })).to.throw(InvalidOptionError).with.property('field', 'minRedialIntervalMs');
  });
});
