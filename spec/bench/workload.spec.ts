import { expect } from 'chai';
import sinon from 'sinon';
import { Workload } from '../../bench/util.js';

describe('bench Workload: latencies clear of garbage-collection pauses', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
  });
  afterEach(() => clock.restore());

  /** Three nodes, three messages one at a time: message 0 takes 2 ms, message 1 3 ms, message 2 1 ms. */
  async function threeMessages(): Promise<Workload> {
    const work = new Workload(3, 3, () => {});
    const done = work.run(1, 1000);
    for (const [idx, ms] of [[0, 2], [1, 3], [2, 1]] as const) {
      clock.tick(ms);
      work.deliver(1, idx);
      work.deliver(2, idx);
    }
    await done;
    return work;
  }

  it('leaves out the deliveries of every message whose broadcast a pause overlapped, and counts those messages', async () => {
    const work = await threeMessages();
    // Message 1 ran from 2 to 5 ms.
    const clear = work.latencyMsClearOf([{ start: 3, end: 3.5 }]);
    expect(clear.messagesHit).to.equal(1);
    expect(clear.latencyMs.max).to.equal(2);
    expect(work.latencyMs().max).to.equal(3);
  });

  it('keeps every delivery when no pause overlaps a broadcast, whatever was asked before', async () => {
    const work = await threeMessages();
    expect(work.latencyMs().p50).to.equal(2);
    const clear = work.latencyMsClearOf([{ start: 10, end: 12 }]);
    expect(clear.messagesHit).to.equal(0);
    expect(clear.latencyMs).to.deep.equal(work.latencyMs());
  });

  it('counts a pause that only touches a broadcast at its start or end as no overlap', async () => {
    const work = await threeMessages();
    expect(work.latencyMsClearOf([{ start: 1, end: 2 }]).messagesHit).to.equal(1);
    expect(work.latencyMsClearOf([{ start: 5, end: 5.5 }]).messagesHit).to.equal(1);
  });
});
