import { expect } from 'chai';
import { main } from '../docs/examples/consensus.js';

/** Runs docs/examples so that they cannot rot. */
describe('docs/examples/consensus.ts', function () {
  this.timeout(60_000);

  it('decides the same values everywhere, pauses without a quorum, and resumes after a state_sync', async () => {
    const r = await main({ nodes: 4, rounds: 2 });
    expect(r.decided).to.have.length(3);
    expect(r.decided[0]).to.have.length(4);
    for (const d of r.decided) expect(d).to.deep.equal(r.decided[0]);
    expect(new Set(r.decided[0]).size, 'one value per height').to.equal(4);
    expect(r.survivorsPaused).to.deep.equal([true, true]);
    expect(r.decidedWithoutQuorum).to.equal(0);
    expect(r.syncedEntries, 'the restarted node got the first two heights by state_sync').to.equal(2);
  });
});
