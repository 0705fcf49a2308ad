import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { BanList } from '../../lib/peers/ban-list.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

describe('BanList', () => {
  let now: number;
  let clock: Clock;
  beforeEach(() => {
    now = 1000;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  });

  it('bans an id and its address until the ban expires', () => {
    const bans = new BanList(clock);
    bans.ban(ID_A, '10.1.2.3', 60_000, 'bad_signature');
    expect(bans.isBanned(ID_A)).to.equal(true);
    expect(bans.isBanned(ID_B, '10.1.2.3')).to.equal(true);
    expect(bans.isBanned(ID_B, '::ffff:10.1.2.3')).to.equal(true);
    expect(bans.isBanned(ID_B, '10.1.2.4')).to.equal(false);
    now += 59_999;
    expect(bans.isBanned(ID_A)).to.equal(true);
    now += 1;
    expect(bans.isBanned(ID_A)).to.equal(false);
    expect(bans.isBanned(ID_B, '10.1.2.3')).to.equal(false);
  });

  it('never bans a loopback address (the id ban still applies)', () => {
    const bans = new BanList(clock);
    bans.ban(ID_A, '127.0.0.1', 60_000, 'x');
    bans.ban(ID_A, '::1', 60_000, 'x');
    expect(bans.isBanned(ID_B, '127.0.0.1')).to.equal(false);
    expect(bans.isBanned(ID_B, '::1')).to.equal(false);
    expect(bans.isBanned(ID_A, '127.0.0.1')).to.equal(true);
  });

  it('keeps the longer of two bans', () => {
    const bans = new BanList(clock);
    bans.ban(ID_A, '', 60_000, 'long');
    bans.ban(ID_A, '', 1000, 'short');
    now += 30_000;
    expect(bans.isBanned(ID_A)).to.equal(true);
  });

  it('stays within its cap by dropping the ban that ends first', () => {
    const bans = new BanList(clock, { maxBannedIds: 2 });
    bans.ban('1'.repeat(64), '', 10_000, 'x');
    bans.ban('2'.repeat(64), '', 1_000, 'x');
    bans.ban('3'.repeat(64), '', 5_000, 'x');
    expect(bans.isBanned('1'.repeat(64))).to.equal(true);
    expect(bans.isBanned('2'.repeat(64))).to.equal(false);
    expect(bans.isBanned('3'.repeat(64))).to.equal(true);
    expect(bans.size).to.equal(2);
  });

  it('prunes expired bans and lists the ones in force', () => {
    const bans = new BanList(clock);
    bans.ban(ID_A, '10.0.0.1', 1000, 'x');
    bans.ban(ID_B, '', 5000, 'y');
    now += 2000;
    expect(bans.prune()).to.equal(2);
    expect(bans.entries()).to.deep.equal([{ kind: 'id', key: ID_B, until: 6000, reason: 'y' }]);
  });

  it('names the bad cap option', () => {
    expect(() => new BanList(clock, { maxBannedHosts: 0 })).to.throw(InvalidOptionError).with.property('field', 'maxBannedHosts');
  });
});
