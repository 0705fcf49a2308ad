import { expect } from 'chai';
import { addressGroup, isLoopback } from '../../lib/peers/address-group.js';

describe('addressGroup', () => {
  const cases: Array<[string, string]> = [
    ['10.1.2.3', 'v4:10.1.2.0/24'],
    ['10.1.2.250', 'v4:10.1.2.0/24'],
    ['::ffff:10.1.2.3', 'v4:10.1.2.0/24'],
    ['2001:db8:1:2::5', 'v6:2001:db8:1:0:0:0:0:0/48'],
    ['2001:db8:1:ffff:1:2:3:4', 'v6:2001:db8:1:0:0:0:0:0/48'],
    ['::1', 'v6:0:0:0:0:0:0:0:0/48'],
    ['Example.COM', 'host:example.com'],
  ];
  for (const [host, group] of cases) {
    it(`puts ${host} in ${group}`, () => expect(addressGroup(host)).to.equal(group));
  }

  it('separates addresses in different /24s and honours other prefix lengths', () => {
    expect(addressGroup('10.1.2.3')).to.not.equal(addressGroup('10.1.3.3'));
    expect(addressGroup('10.1.2.3', { ipv4Bits: 16 })).to.equal(addressGroup('10.1.3.3', { ipv4Bits: 16 }));
    expect(addressGroup('10.1.2.3', { ipv4Bits: 32 })).to.equal('v4:10.1.2.3/32');
  });

  it('tells loopback from other addresses', () => {
    expect(isLoopback('127.0.0.1')).to.equal(true);
    expect(isLoopback('127.3.4.5')).to.equal(true);
    expect(isLoopback('::1')).to.equal(true);
    expect(isLoopback('::ffff:127.0.0.1')).to.equal(true);
    expect(isLoopback('10.0.0.1')).to.equal(false);
    expect(isLoopback('::2')).to.equal(false);
    expect(isLoopback('localhost')).to.equal(false);
  });
});
