import { expect } from 'chai';
import { createTestnet, waitFor } from '../../lib/testnet.js';
import type { Testnet } from '../../lib/testnet.js';
import { seededRandom } from '../../lib/random.js';

/**
 * 30 real nodes over TCP on loopback, sparse random topology (each dials 2 earlier nodes),
 * 500 broadcasts from random nodes. Every node must get every message exactly once when
 * repair is on; with repair off, the fraction push alone reaches is reported.
 */
describe('a 30-node cluster over loopback', function () {
  this.timeout(60_000);
  let net: Testnet | undefined;

  afterEach(async () => {
    await net?.stop();
    net = undefined;
  });

  async function run(repair: boolean): Promise<{ fraction: number; dupes: number; perNode: Map<number, Map<string, number>>; degree: number }> {
    net = await createTestnet({ nodes: 30, degree: 2, seed: 42, nodeOptions: { repair, heartbeatMs: 100, signMessages: true, minPeers: 3 } });
    await net.ready(1);
    // Links the join lookups opened are trimmed to minPeers on the next heartbeat.
    for (const n of net.nodes) n.heartbeat();
    const degree = net.nodes.reduce((s, n) => s + n.health().connectedPeers, 0) / net.nodes.length;
    const nodes = net.nodes;
    const perNode = new Map<number, Map<string, number>>();
    nodes.forEach((n, i) => {
      const seen = new Map<string, number>();
      perNode.set(i, seen);
      n.subscribe('load', (_d, info) => void seen.set(info.id, (seen.get(info.id) ?? 0) + 1));
    });
    const random = seededRandom(7);
    const sent: Array<{ id: string; from: number }> = [];
    for (let i = 0; i < 500; i++) {
      const from = Math.floor(random() * nodes.length);
      sent.push({ id: await nodes[from]!.broadcast('load', { i }), from });
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    const expected = sent.length * (nodes.length - 1);
    const count = () => [...perNode.values()].reduce((s, m) => s + m.size, 0);
    // With repair every copy arrives; without it, wait until the network goes quiet.
    await waitFor(() => count() === expected, repair ? 20_000 : 3000, 'every delivery').catch(() => {});
    let dupes = 0;
    for (const m of perNode.values()) for (const c of m.values()) if (c > 1) dupes++;
    for (const { id, from } of sent) expect(perNode.get(from)!.has(id), 'no self-delivery').to.equal(false);
    return { fraction: count() / expected, dupes, perNode, degree };
  }

  it('delivers all 500 broadcasts to every node exactly once with repair on', async () => {
    const r = await run(true);
    expect(r.dupes).to.equal(0);
    expect(r.fraction).to.equal(1);
    expect(r.degree, 'the topology is sparse').to.be.below(8);
  });

  it('reports the fraction push gossip alone reaches with repair off', async () => {
    const r = await run(false);
    expect(r.dupes).to.equal(0);
    expect(r.fraction).to.be.greaterThan(0).and.at.most(1);
    // Reported, not asserted: push alone misses some nodes in a sparse topology.
    console.log(`      push-only delivery fraction: ${(r.fraction * 100).toFixed(2)}% (mean degree ${r.degree.toFixed(1)})`);
  });
});
