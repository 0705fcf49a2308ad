import { expect } from 'chai';
import { PROGRESS_LINE_MS, progressLines } from '../../lib/cli/sim.js';

describe('aethel-p2p sim progress without a terminal', () => {
  it('writes a line at each new phase and at most one per PROGRESS_LINE_MS within a phase', () => {
    let t = 1000;
    const lines: string[] = [];
    const p = progressLines(() => t, (l) => void lines.push(l));
    p('build', 0);
    t += 50;
    p('build', 1);
    p('join', 0.1);
    t += PROGRESS_LINE_MS - 1;
    p('join', 0.5);
    t += 1;
    p('join', 0.75);
    t += 20_000;
    p('gossip', 0.333);
    p('done', 1);
    expect(lines).to.deep.equal([
      'sim: build 0% (0 s)\n',
      'sim: join 10% (0 s)\n',
      'sim: join 75% (10 s)\n',
      'sim: gossip 33% (30 s)\n',
    ]);
  });
});
