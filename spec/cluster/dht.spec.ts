import { expect } from 'chai';
import { compareDistance } from '../../lib/dht/routing-table.js';
import { P2PNetwork } from '../../lib/network.js';
import { seededRandom } from '../../lib/random.js';
import { LOOPBACK_ALLOWLIST } from '../../lib/testnet.js';
import { randomBytes } from 'node:crypto';

/**
 * 100 real nodes on loopback, each bootstrapping through node 0 only. After they join, a
 * lookup of any id from any node must return the true k closest among all 100 (computed
 * from the full list). The lookup rounds are reported.
 */
describe('Kademlia over a 100-node loopback cluster', function () {
  this.timeout(120_000);
  const nodes: P2PNetwork[] = [];

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  it('finds the true k closest nodes for random targets from random nodes', async () => {
    const k = 8;
    // maxPeers is raised because node 0, the only bootstrap, is dialed by all 99 others.
    // The FIND_NODE timeout is generous: this checks what lookups find, not how fast, and a
    // query timed out on a loaded machine would drop a true neighbour from the result.
    const opts = { k, heartbeatMs: 1000, maxPeers: 200, dhtRequestTimeoutMs: 15_000, admissionAllowlist: [...LOOPBACK_ALLOWLIST] };
    const first = new P2PNetwork(opts);
    nodes.push(first);
    await first.start();
    const boot = [`127.0.0.1:${first.address.port}`];
    for (let i = 1; i < 100; i++) {
      const n = new P2PNetwork({ ...opts, bootstrap: boot });
      nodes.push(n);
      await n.start();
    }
    const ids = nodes.map((n) => Buffer.from(n.id, 'hex'));
    const r = seededRandom(5);
    const rounds: number[] = [];
    let retried = 0;
    for (let t = 0; t < 20; t++) {
      const asker = nodes[Math.floor(r() * nodes.length)]!;
      const target = randomBytes(32);
      let got = await asker.findClosest(target.toString('hex'));
      // A query that failed (a dial or an answer lost on a loaded machine) can drop a true
      // neighbour from this one result; the lookup is then asked once more, and that one
      // must be exact. Seen once in a CI run under load (1 of 10 queries failed).
      if (asker.dhtStats().lastLookup!.failed > 0) {
        retried++;
        got = await asker.findClosest(target.toString('hex'));
      }
      const self = Buffer.from(asker.id, 'hex');
      const want = ids.filter((i) => !i.equals(self)).sort((a, b) => compareDistance(target, a, b)).slice(0, k).map((i) => i.toString('hex'));
      const st = asker.dhtStats();
      expect(got.map((c) => c.id), `lookup ${t} from ${asker.id.slice(0, 8)}: ${JSON.stringify(st.lastLookup)}, table ${st.tableSize}, connected ${asker.health().connectedPeers}`).to.deep.equal(want);
      rounds.push(asker.dhtStats().lookupRounds.at(-1)!);
    }
    const mean = rounds.reduce((a, b) => a + b, 0) / rounds.length;
    console.log(`      lookup rounds over 100 nodes: mean ${mean.toFixed(1)}, max ${Math.max(...rounds)}; lookups asked again after a failed query: ${retried}`);
    expect(retried, 'lookups with a failed query').to.be.lessThan(5);
    expect(Math.max(...rounds)).to.be.lessThan(20);
  });
});
