import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { DEFAULT_PARTITION_TIMEOUT_MS, PartitionMonitor } from '../../lib/health/partition-monitor.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const C = 'cc'.repeat(32);

describe('PartitionMonitor', () => {
  let clock: sinon.SinonFakeTimers;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    clock.restore();
  });

  it('reports a connected peer partitioned once it has been silent for the default 30 s, not before', () => {
    const m = new PartitionMonitor(systemClock);
    m.connected(A);
    clock.tick(DEFAULT_PARTITION_TIMEOUT_MS - 1);
    expect(m.check()).to.deep.equal([]);
    expect(m.state(A)).to.equal('connected');
    clock.tick(1);
    expect(m.check()).to.deep.equal([A]);
    expect(m.state(A)).to.equal('partitioned');
  });

  it('reports each partitioned peer once until it connects again', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    clock.tick(500);
    expect(m.check()).to.deep.equal([A]);
    clock.tick(10_000);
    expect(m.check()).to.deep.equal([]);
  });

  it('keeps a peer that keeps talking connected', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    for (let i = 0; i < 20; i++) {
      clock.tick(400);
      m.contact(A);
      expect(m.check()).to.deep.equal([]);
    }
    expect(m.state(A)).to.equal('connected');
  });

  it('takes an explicit contact time and never moves last contact backwards', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    const t0 = Date.now();
    clock.tick(300);
    m.contact(A, t0 + 250);
    m.contact(A, t0 + 100);
    expect(m.lastContact(A)).to.equal(t0 + 250);
    clock.tick(449); // 749 ms after connecting, 499 after the contact
    expect(m.check()).to.deep.equal([]);
    clock.tick(1);
    expect(m.check()).to.deep.equal([A]);
  });

  it('reports a peer whose connection dropped without a word once the timeout passes since its last contact', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    clock.tick(200);
    m.disconnected(A);
    expect(m.state(A)).to.equal('disconnected');
    clock.tick(299);
    expect(m.check()).to.deep.equal([]);
    clock.tick(1);
    expect(m.check()).to.deep.equal([A]);
  });

  it('never reports a peer that departed on purpose', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    m.disconnected(A, true);
    clock.tick(60_000);
    expect(m.check()).to.deep.equal([]);
    expect(m.state(A)).to.equal('disconnected');
    expect(m.connected(A)).to.equal(false);
    clock.tick(500);
    expect(m.check(), 'watched again once reconnected').to.deep.equal([A]);
  });

  it('says a partitioned peer recovered when it connects again, and only then', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    expect(m.connected(A)).to.equal(false);
    m.disconnected(A);
    expect(m.connected(A), 'a short disconnection is no recovery').to.equal(false);
    clock.tick(500);
    m.check();
    m.disconnected(A);
    expect(m.state(A), 'closing a partitioned link keeps it partitioned').to.equal('partitioned');
    expect(m.connected(A)).to.equal(true);
    expect(m.state(A)).to.equal('connected');
  });

  it('summarises health over known peers, and forgets removed ones', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    expect(m.health()).to.deep.equal({ connectedPeers: 0, knownPeers: 0, partitionedPeers: 0, reachableFraction: 0 });
    m.connected(A);
    m.connected(B);
    m.connected(C);
    clock.tick(300);
    m.contact(B);
    m.contact(C);
    clock.tick(200);
    expect(m.check()).to.deep.equal([A]);
    m.disconnected(C);
    expect(m.health()).to.deep.equal({ connectedPeers: 1, knownPeers: 3, partitionedPeers: 1, reachableFraction: 1 / 3 });
    m.remove(A);
    expect(m.health()).to.deep.equal({ connectedPeers: 1, knownPeers: 2, partitionedPeers: 0, reachableFraction: 0.5 });
    m.clear();
    expect(m.health().knownPeers).to.equal(0);
  });

  it('counts only the basis: members (an unseen member is unreachable) or the peers a filter keeps', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.connected(A);
    m.connected(B);
    m.disconnected(B);
    // 200 identities that connected and left: they poison an unfiltered view.
    const churn = Array.from({ length: 200 }, (_, i) => i.toString(16).padStart(64, '1'));
    for (const id of churn) {
      m.connected(id);
      m.disconnected(id);
    }
    expect(m.health().reachableFraction).to.be.below(0.01);
    expect(m.health({ counts: (id) => id === A || id === B })).to.deep.equal({ connectedPeers: 1, knownPeers: 2, partitionedPeers: 0, reachableFraction: 0.5 });
    expect(m.health({ members: [A, C] })).to.deep.equal({ connectedPeers: 1, knownPeers: 2, partitionedPeers: 0, reachableFraction: 0.5 });
  });

  it('ignores contact and disconnection of peers it does not track', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 500 });
    m.contact(A);
    m.disconnected(A);
    expect(m.state(A)).to.equal(undefined);
    expect(m.lastContact(A)).to.equal(undefined);
    expect(m.health().knownPeers).to.equal(0);
  });

  for (const bad of [0, -1, 1.5, NaN, '30' as unknown as number]) {
    it(`rejects partitionTimeoutMs ${String(bad)} naming the field`, () => {
      expect(() => new PartitionMonitor(systemClock, { partitionTimeoutMs: bad }))
        .to.throw(InvalidOptionError)
        .with.property('field', 'partitionTimeoutMs');
    });
  }
});
