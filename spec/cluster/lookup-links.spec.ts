import { expect } from 'chai';
import type { P2PNetwork } from '../../lib/network.js';
import { waitFor } from '../../lib/testnet.js';
import { addrOf, useNodes } from '../helpers/nodes.js';

/**
 * Connections a DHT lookup opens only to ask a node are closed again once no lookup needs
 * them, down to minPeers: the routing table keeps the contacts, the gossip topology stays
 * sparse, and neither side treats the close as a loss to redial.
 */
describe('links opened by DHT lookups', function () {
  this.timeout(20_000);
  const { start } = useNodes({ heartbeatMs: 50 });

  it('are closed after the join lookup, down to minPeers, while the table keeps every contact', async () => {
    const hub = await start();
    const others: P2PNetwork[] = [];
    for (let i = 0; i < 5; i++) others.push(await start({ bootstrap: [addrOf(hub)], minPeers: 1 }));
    // The newcomer's join lookup asks the hub, then every node the hub names.
    const newcomer = await start({ bootstrap: [addrOf(hub)], minPeers: 1 });
    const partitioned: string[] = [];
    for (const o of others) o.on('peer:partitioned', (p) => p.id === newcomer.id && partitioned.push(o.id));

    await waitFor(() => newcomer.health().connectedPeers === 1, 5000, 'lookup links closed');
    // GOODBYE IDLE: the peer entries are forgotten on both sides, the table keeps the contacts.
    expect(newcomer.peers().map((p) => p.id), 'only the bootstrap peer is kept').to.deep.equal([hub.id]);
    expect(newcomer.health()).to.include({ connectedPeers: 1, knownPeers: 1, reachableFraction: 1 });
    expect(newcomer.dhtStats().tableSize, 'every node is still in the routing table').to.equal(6);
    await waitFor(() => others.every((o) => !o.peers().some((p) => p.id === newcomer.id)), 5000, 'others forget the link');
    expect(partitioned, 'a trimmed link is no partition').to.deep.equal([]);

    // The contacts are still usable: a direct message dials one again.
    const got: unknown[] = [];
    others[2]!.subscribe('t', (d) => void got.push(d));
    await newcomer.sendToPeer(others[2]!.id, 't', 'still reachable');
    expect(got).to.deep.equal(['still reachable']);
  });

  it('are kept while the node has no more than minPeers connections', async () => {
    const hub = await start();
    for (let i = 0; i < 4; i++) await start({ bootstrap: [addrOf(hub)] });
    const newcomer = await start({ bootstrap: [addrOf(hub)], minPeers: 8 });
    // 5 links (hub + 4 found by the lookup) <= minPeers 8: no heartbeat trims any.
    for (let i = 0; i < 5; i++) newcomer.heartbeat();
    expect(newcomer.health().connectedPeers).to.equal(5);
  });
});
