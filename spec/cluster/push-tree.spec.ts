/**
 * Real nodes over loopback TCP in each push mode: the eager tree (push: 'tree') delivers every
 * message to every node, and once its links are pruned it sends fewer GOSSIP copies per
 * delivery than fanout-3 push on the same topology.
 */
import { expect } from 'chai';
import type { P2PNetwork } from '../../lib/network.js';
import type { P2PNetworkOptions } from '../../lib/options.js';
import { waitFor } from '../../lib/testnet.js';
import { addrOf, useNodes } from '../helpers/nodes.js';

const NODES = 8;
const WARM_UP = 24;
const MEASURED = 32;

describe('eager-tree push between real nodes (push: tree)', function () {
  this.timeout(60_000);
  const nodes = useNodes({ signMessages: false });

  /**
   * NODES nodes, each linked to the next and to the third next (a ring with chords: degree 4,
   * with cycles for the tree to prune). Broadcasts WARM_UP then MEASURED messages, one at a
   * time from each node in turn, each delivered everywhere before the next. Returns the
   * measured messages' GOSSIP copies per delivery.
   */
  async function run(push: P2PNetworkOptions['push']): Promise<{ copiesPerDelivery: number; delivered: number[] }> {
    const ns: P2PNetwork[] = [];
    for (let i = 0; i < NODES; i++) ns.push(await nodes.start({ push }));
    for (let i = 0; i < NODES; i++) {
      await ns[i]!.addPeer(addrOf(ns[(i + 1) % NODES]!));
      await ns[i]!.addPeer(addrOf(ns[(i + 3) % NODES]!));
    }
    await waitFor(() => ns.every((n) => n.health().connectedPeers === 4), 10_000, 'every link up');
    const delivered = ns.map(() => 0);
    ns.forEach((n, i) => n.subscribe('t', () => void delivered[i]!++));
    const total = () => delivered.reduce((a, b) => a + b, 0);
    const sent = () => ns.reduce((t, n) => t + n.metrics().gossipSent, 0);
    let sentBefore = 0;
    for (let m = 0; m < WARM_UP + MEASURED; m++) {
      if (m === WARM_UP) sentBefore = sent();
      await ns[m % NODES]!.broadcast('t', m);
      await waitFor(() => total() === (m + 1) * (NODES - 1), 10_000, `message ${m} everywhere`);
    }
    // Late duplicates of the last message (if any) are counted too.
    await new Promise((r) => setImmediate(r));
    return { copiesPerDelivery: (sent() - sentBefore) / (MEASURED * (NODES - 1)), delivered };
  }

  it('delivers every message to every node, with fewer GOSSIP copies per delivery than fanout push', async () => {
    const fanout = await run('fanout');
    await Promise.all(nodes.all.splice(0).map((n) => n.stop()));
    const tree = await run('tree');
    // Every node got every message from the others exactly once (counted by subscribers).
    expect(tree.delivered).to.deep.equal(new Array(NODES).fill(((WARM_UP + MEASURED) / NODES) * (NODES - 1)));
    // A spanning tree needs one copy per delivery; fanout-3 push on this graph needs about two.
    expect(tree.copiesPerDelivery, `tree ${tree.copiesPerDelivery}, fanout ${fanout.copiesPerDelivery}`).to.be.at.most(1.3);
    expect(tree.copiesPerDelivery).to.be.below(fanout.copiesPerDelivery);
    console.log(`      GOSSIP copies per delivery after ${WARM_UP} messages: tree ${tree.copiesPerDelivery.toFixed(2)}, fanout ${fanout.copiesPerDelivery.toFixed(2)}`);
  });
});
