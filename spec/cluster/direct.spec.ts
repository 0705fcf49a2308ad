import { expect } from 'chai';
import type { DeliveryInfo } from '../../lib/gossip/engine.js';
import type { P2PNetwork } from '../../lib/network.js';
import { waitFor } from '../../lib/testnet.js';
import { addrOf, useNodes } from '../helpers/nodes.js';

/**
 * Routed direct messages: sendToPeer to a node this one has no connection to. The sender
 * must find the peer's address (its routing table, else a DHT lookup through the peers it
 * has), dial it, send DIRECT and resolve on the ACK.
 */
describe('sendToPeer to a peer that is not directly connected', function () {
  this.timeout(20_000);
  const { start: node } = useNodes({ heartbeatMs: 200 });
  const connectedTo = (from: P2PNetwork, to: P2PNetwork) => from.peers().some((p) => p.id === to.id && p.state === 'connected');

  it('finds a peer it has never heard of through a DHT lookup, dials it and delivers once', async () => {
    // hub knows both; `far` joins through hub; `asker` starts with no bootstrap and then
    // connects to hub only with addPeer, which runs no lookup: it knows nothing of `far`.
    const hub = await node();
    const far = await node({ bootstrap: [addrOf(hub)] });
    const asker = await node();
    await asker.addPeer(addrOf(hub));
    expect(asker.peers().map((p) => p.id)).to.deep.equal([hub.id]);

    const got: Array<[unknown, DeliveryInfo]> = [];
    far.subscribe('state_sync', (d, i) => void got.push([d, i]));
    await asker.sendToPeer(far.id, 'state_sync', { from: 42 });

    expect(got).to.have.length(1);
    expect(got[0]![0]).to.deep.equal({ from: 42 });
    expect(got[0]![1]).to.include({ direct: true, from: asker.id, topic: 'state_sync', hops: 1 });
    expect(connectedTo(asker, far), 'the sender dialed the peer it found').to.equal(true);
    expect(asker.dhtStats().lookupRounds.length, 'a lookup was run').to.be.greaterThan(0);
  });

  it('reaches a peer it was disconnected from by dialing the address it remembers', async () => {
    const a = await node();
    const b = await node({ bootstrap: [addrOf(a)] });
    const c = await node({ bootstrap: [addrOf(a)] });
    // Joining through a, c's lookup of its own id may have connected it to b: cut that link.
    if (connectedTo(c, b)) await c.removePeer(b.id);
    await waitFor(() => !connectedTo(b, c) && !connectedTo(c, b), 5000, 'b and c disconnected');

    const got: unknown[] = [];
    b.subscribe('t', (d) => void got.push(d));
    await c.sendToPeer(b.id, 't', 'hello');
    expect(got).to.deep.equal(['hello']);
  });
});
