import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { alignClocks } from '../../lib/dump/clock-align.js';
import { countByNode } from '../../lib/dump/counts.js';
import { messageDelays, summarizeDelays } from '../../lib/dump/delays.js';
import { followMessage } from '../../lib/dump/follow.js';
import { linkViews } from '../../lib/dump/links.js';
import { mapConnections } from '../../lib/dump/pairs.js';
import { mergeByTime, readDump } from '../../lib/dump/reader.js';
import type { DumpEntry } from '../../lib/dump/reader.js';

/** The second DEBUGGING.md session (spec/fixtures/incident.ts made it): a blackholing relay and a frozen node. */
const DIR = 'spec/fixtures/incident';
interface Incident {
  a: string; b: string; c: string; d: string;
  ports: { a: number; b: number; c: number; proxy: number };
  m1: string; m2: string; m3: string; frozenMs: number;
  delivered: Record<string, Array<{ data: string; via: string }>>;
}

describe('the DEBUGGING.md incident: a relay that blackholes a link, a frozen node', () => {
  let s: Incident;
  let merged: DumpEntry[];
  before(async () => {
    s = JSON.parse(await readFile(`${DIR}/incident.json`, 'utf8')) as Incident;
    merged = mergeByTime(await Promise.all(['a', 'b', 'c', 'd'].map((n) => readDump(`${DIR}/${n}.ndjson`))));
  });

  it('recorded C getting M2 by repair and D getting M3 by push after its freeze', () => {
    expect(s.delivered.c!.map((m) => m.via)).to.deep.equal(['push', 'repair', 'push']);
    expect(s.delivered.d!.map((m) => m.via)).to.deep.equal(['push', 'push', 'push']);
  });

  it('finds exactly the two late deliveries, with how late, how and from whom', () => {
    const late = summarizeDelays(messageDelays(merged), 100).late;
    expect(late.map((l) => [l.id, l.node, l.via, l.from])).to.deep.equal([[s.m2, s.c, 'repair', s.b], [s.m3, s.d, 'push', s.a]]);
    expect(late[0]!.delayMs).to.be.greaterThan(1500); // the partition timeout, then the repair
    expect(late[1]!.delayMs).to.be.within(s.frozenMs - 400, s.frozenMs + 200); // M3 was published 200 ms into the freeze
  });

  it('shows the push copy of M2 going into the blackholed link and never arriving, and the repair that replaced it', () => {
    const trail = followMessage(merged, s.m2);
    expect(trail.steps.filter((x) => x.text.includes('✗ never received by')).map((x) => x.node)).to.deep.equal([s.b]);
    const c = trail.nodes.find((n) => n.node === s.c)!;
    expect(c.detail).to.match(new RegExp(`^\\+\\d+\\.\\d ms by repair from ${s.b.slice(0, 8)}, hops 2; sent to it and never received: from ${s.b.slice(0, 8)} at `));
  });

  it('pairs the B - C link across the proxy by node ids and counts what B sent into it', () => {
    const views = linkViews(mapConnections(merged), 1000);
    const bc = views.find((v) => v.pairedBy === 'node ids' && [v.a.node, v.b!.node].sort().join() === [s.b, s.c].sort().join())!;
    expect(bc.note).to.include(`127.0.0.1:${s.ports.proxy}`);
    const bToC = bc.directions.find((d) => d.from === s.b)!;
    expect(bToC.lost).to.be.greaterThan(0);
    expect(bToC.sentAfterLastReceived).to.equal(bToC.lost);
    expect(bc.silences.map((x) => x.node).sort()).to.deep.equal([s.b, s.c].sort());
  });

  it('flags D\'s stall: a stalled line, a gap in its dump, and no link closed because of it', () => {
    const d = countByNode(merged, 1000).find((c) => c.node === s.d)!;
    expect(d.events.stalled).to.equal(1);
    expect(d.gaps).to.have.length(1);
    expect(d.gaps[0]!.ms).to.be.within(s.frozenMs - 300, s.frozenMs + 300); // from its last line before the freeze to its first after
    expect(d.events.partitioned ?? 0).to.equal(0);
    const verdict = followMessage(merged, s.m3).nodes.find((n) => n.node === s.d)!;
    expect(verdict.detail).to.match(/by push .*; before that this node's event loop stalled for \d+ ms$/);
  });

  it('needs no clock correction: every receive is after its send as recorded', () => {
    const al = alignClocks(mapConnections(merged));
    expect(al.pairs).to.be.greaterThan(300);
    expect(al.inversionsBefore).to.equal(0);
    expect(Object.values(al.offsets).every((o) => o === 0)).to.equal(true);
  });
});
