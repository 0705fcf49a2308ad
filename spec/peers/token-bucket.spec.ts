import { expect } from 'chai';
import { InvalidOptionError } from '../../lib/errors.js';
import { TokenBucket } from '../../lib/peers/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full and grants up to its burst at once, then refuses', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(b.take(0)).to.equal(true);
    expect(b.take(0)).to.equal(false);
  });

  it('refills at its rate from the clock alone, never beyond burst', () => {
    const b = new TokenBucket(10, 5, 0);
    expect(b.take(0, 5)).to.equal(true);
    expect(b.available(100)).to.be.closeTo(1, 1e-9); // 100 ms at 10/s
    expect(b.take(100)).to.equal(true);
    expect(b.take(100)).to.equal(false);
    expect(b.available(60_000)).to.equal(5);
  });

  it('takes all or nothing', () => {
    const b = new TokenBucket(0, 3, 0);
    expect(b.take(0, 4)).to.equal(false);
    expect(b.available(0)).to.equal(3);
  });

  it('admits exactly rate x time + burst over a long run', () => {
    const b = new TokenBucket(100, 50, 0);
    let granted = 0;
    for (let t = 0; t <= 10_000; t += 1) if (b.take(t)) granted++;
    expect(granted).to.equal(50 + 100 * 10);
  });

  it('adds credited tokens up to burst', () => {
    const b = new TokenBucket(0, 10, 0);
    b.take(0, 10);
    b.credit(0, 4);
    expect(b.available(0)).to.equal(4);
    b.credit(0, 100);
    expect(b.available(0)).to.equal(10);
  });

  it('neither refills nor drains when the clock steps back', () => {
    const b = new TokenBucket(1000, 10, 1000);
    b.take(1000, 10);
    expect(b.available(500)).to.equal(0);
  });

  it('refuses a negative rate or a burst below 1', () => {
    expect(() => new TokenBucket(-1, 5, 0)).to.throw(InvalidOptionError);
    expect(() => new TokenBucket(1, 0, 0)).to.throw(InvalidOptionError);
  });
});
