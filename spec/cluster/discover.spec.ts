import { expect } from 'chai';
import { addrOf, useNodes } from '../helpers/nodes.js';

/** discoverPeers(): lookups of the node's own id and a random id, then dials up to minPeers. */
describe('discoverPeers over a 12-node loopback cluster', function () {
  this.timeout(30_000);
  const { start, all: nodes } = useNodes({ heartbeatMs: 200 });

  it('returns every other node as PeerInfo and connects to minPeers of them', async () => {
    // A chain: node i bootstraps through node i - 1 only.
    let prev = await start({});
    for (let i = 1; i < 11; i++) prev = await start({ bootstrap: [addrOf(prev)] });
    // The newcomer knows one node, and has no lookup run at start (no bootstrap): addPeer only.
    const newcomer = await start({ minPeers: 6 });
    await newcomer.addPeer(addrOf(nodes[0]!));
    expect(newcomer.health().connectedPeers).to.equal(1);

    const found = await newcomer.discoverPeers();

    const others = nodes.filter((n) => n !== newcomer).map((n) => n.id).sort();
    expect(found.map((p) => p.id).sort(), 'k = 20 exceeds the network: every node is found').to.deep.equal(others);
    for (const p of found) {
      const owner = nodes.find((n) => n.id === p.id)!;
      expect(p.port, `port of ${p.id.slice(0, 8)}`).to.equal(owner.address.port);
      expect(p.host).to.equal('127.0.0.1');
    }
    expect(newcomer.health().connectedPeers).to.be.at.least(6);
  });

  it('returns nothing, and throws nothing, for a node with no peers', async () => {
    const alone = await start({});
    expect(await alone.discoverPeers()).to.deep.equal([]);
  });
});
