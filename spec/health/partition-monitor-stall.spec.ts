import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { PartitionMonitor } from '../../lib/health/partition-monitor.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);

describe('PartitionMonitor after the node\'s own stall', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => clock.restore());

  it('does not count a stall of this node as its peers\' silence', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 1000 });
    m.connected(A);
    clock.tick(300);
    clock.tick(5000); // the process was stopped
    m.resumeAfterStall(5000);
    expect(m.check()).to.deep.equal([]);
    expect(m.lastContact(A)).to.equal(1_005_000);
    clock.tick(699);
    expect(m.check()).to.deep.equal([]);
    clock.tick(1); // 1000 ms of silence the node was awake to hear
    expect(m.check()).to.deep.equal([A]);
  });

  it('never moves a last contact past now, and ignores a stall of zero', () => {
    const m = new PartitionMonitor(systemClock, { partitionTimeoutMs: 1000 });
    m.connected(A);
    clock.tick(100);
    m.connected(B);
    m.resumeAfterStall(50);
    expect(m.lastContact(A)).to.equal(1_000_050);
    expect(m.lastContact(B)).to.equal(1_000_100);
    m.resumeAfterStall(0);
    expect(m.lastContact(A)).to.equal(1_000_050);
  });
});
