import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { KnownPeers } from '../../lib/peers/known-peers.js';

const id = (n: number): string => n.toString(16).padStart(64, '0');
const MEMBER = 'ee'.repeat(32);
const claimed = (host: string, port: number) => ({ host, port, proven: false });
const dialed = (host: string, port: number) => ({ host, port, proven: true });

describe('KnownPeers', () => {
  let clock: sinon.SinonFakeTimers;
  const useful = new Set<string>();
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
    useful.clear();
  });
  afterEach(() => clock.restore());
  const make = (max = 1000, provenAfterMs = 120_000) =>
    new KnownPeers(systemClock, { maxKnownPeers: max, provenAfterMs }, (i) => (useful.has(i) ? 1 : 0), (i) => i === MEMBER);

  const cases: Array<[string, (k: KnownPeers) => void, boolean, boolean]> = [
    ['an outbound peer (the address it was dialed at)', (k) => k.connected(id(1), dialed('192.0.2.1', 4000)), true, true],
    ['an inbound peer that just connected', (k) => k.connected(id(1), claimed('192.0.2.1', 4000)), false, false],
    ['an inbound peer connected for 2 minutes', (k) => { k.connected(id(1), claimed('192.0.2.1', 4000)); clock.tick(120_000); }, false, true],
    ['an inbound peer that left after 2 minutes', (k) => { k.connected(id(1), claimed('192.0.2.1', 4000)); clock.tick(120_000); k.disconnected(id(1)); }, false, true],
    ['an inbound peer that left after 1 minute', (k) => { k.connected(id(1), claimed('192.0.2.1', 4000)); clock.tick(60_000); k.disconnected(id(1)); clock.tick(60_000); }, false, false],
    ['an inbound peer that delivered something useful', (k) => { k.connected(id(1), claimed('192.0.2.1', 4000)); useful.add(id(1)); k.disconnected(id(1)); useful.delete(id(1)); }, false, true],
    ['an inbound peer whose address a later dial proved', (k) => { k.connected(id(1), claimed('192.0.2.1', 4000)); k.proveAddress(id(1), '192.0.2.1', 4000); }, true, true],
  ];
  for (const [what, setup, proven, kept] of cases) {
    it(`${what}: proven ${proven}, worth keeping ${kept}`, () => {
      const k = make();
      setup(k);
      expect(k.isProven(id(1))).to.equal(proven);
      expect(k.worthKeeping(id(1))).to.equal(kept);
    });
  }

  it('keeps a proven address when the same peer later claims another one inbound', () => {
    const k = make();
    k.connected(id(1), dialed('192.0.2.1', 4000));
    k.disconnected(id(1));
    k.connected(id(1), claimed('203.0.113.66', 9));
    expect(k.get(id(1))).to.include({ host: '192.0.2.1', port: 4000, addressProven: true });
  });

  it('members are proven by their configured address, kept, and never evicted or removed', () => {
    const k = make(1);
    k.addMember(MEMBER, '192.0.2.50', 7000);
    expect(k.isProven(MEMBER)).to.equal(true);
    expect(k.worthKeeping(MEMBER)).to.equal(true);
    k.connected(id(1), claimed('192.0.2.1', 1));
    k.disconnected(id(1));
    k.connected(id(2), claimed('192.0.2.2', 1));
    expect(k.has(MEMBER)).to.equal(true);
    k.remove(MEMBER);
    expect(k.has(MEMBER)).to.equal(true);
  });

  it('stays within maxKnownPeers, evicting unproven disconnected peers before kept ones, least recently useful first', () => {
    const k = make(3);
    k.connected(id(1), dialed('192.0.2.1', 1)); // proven
    k.disconnected(id(1));
    k.connected(id(2), claimed('192.0.2.2', 1)); // unproven, leaves at once
    k.disconnected(id(2));
    k.connected(id(3), claimed('192.0.2.3', 1)); // still connected
    expect(k.connected(id(4), claimed('192.0.2.4', 1))).to.deep.equal([id(2)]);
    expect(k.connected(id(5), claimed('192.0.2.5', 1))).to.deep.equal([id(1)]);
    // Everyone else connected: the table may exceed the cap rather than drop a live peer.
    expect(k.connected(id(6), claimed('192.0.2.6', 1))).to.deep.equal([]);
    expect(k.size).to.equal(4);
  });

  it('bounds 1,500 churned identities to the cap', () => {
    const k = make(100);
    for (let i = 1; i <= 1500; i++) {
      k.connected(id(i), claimed('192.0.2.77', 4000));
      k.disconnected(id(i));
    }
    expect(k.size).to.equal(100);
  });

  it('validates options, naming the field', () => {
    expect(() => new KnownPeers(systemClock, { maxKnownPeers: 0 })).to.throw(InvalidOptionError).with.property('field', 'maxKnownPeers');
    expect(() => new KnownPeers(systemClock, { provenAfterMs: -1 })).to.throw(InvalidOptionError).with.property('field', 'provenAfterMs');
  });
});
