import { expect } from 'chai';
import { once } from 'node:events';
import { InvalidOptionError, P2PError } from '../lib/errors.js';
import { P2PNetwork } from '../lib/network.js';
import type { P2PNetworkOptions } from '../lib/options.js';
import { waitFor } from '../lib/testnet.js';
import type { DeliveryInfo } from '../lib/gossip/engine.js';
import { systemClock } from '../lib/clock.js';
import type { Clock } from '../lib/clock.js';
import { FaultProxy } from './helpers/fault-proxy.js';

describe('P2PNetwork', () => {
  const nodes: P2PNetwork[] = [];
  const proxies: FaultProxy[] = [];

  async function node(opts: P2PNetworkOptions = {}): Promise<P2PNetwork> {
    const n = new P2PNetwork({ heartbeatMs: 50, ...opts });
    nodes.push(n);
    await n.start();
    return n;
  }

  const addr = (n: P2PNetwork) => `127.0.0.1:${n.address.port}`;

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  async function proxy(): Promise<FaultProxy> {
    const p = await FaultProxy.start();
    proxies.push(p);
    return p;
  }

  /** A node behind a fault proxy that it advertises: every link to it passes through the proxy. */
  async function proxied(opts: P2PNetworkOptions = {}): Promise<{ n: P2PNetwork; p: FaultProxy }> {
    const p = await proxy();
    const n = await node({ ...opts, advertisePort: p.port });
    p.setTarget(n.address.port);
    return { n, p };
  }

  /** Real-time pause, only where a test checks that something does NOT happen. */
  const quiet = (ms: number) => new Promise((r) => setTimeout(r, ms));

  describe('options', () => {
    const bad: Array<[P2PNetworkOptions, string]> = [
      [{ fanout: 0 }, 'fanout'],
      [{ fanout: 2.5 }, 'fanout'],
      [{ gossipTtl: 33 }, 'gossipTtl'],
      [{ listenPort: 70000 }, 'listenPort'],
      [{ seenTtlMs: -1 }, 'seenTtlMs'],
      [{ networkId: '' }, 'networkId'],
      [{ networkId: 'x'.repeat(65) }, 'networkId'],
      [{ bootstrap: ['nope'] }, 'bootstrap[0]'],
      [{ bootstrap: ['127.0.0.1:0'] }, 'bootstrap[0]'],
      [{ signMessages: 'yes' as unknown as boolean }, 'signMessages'],
      [{ maxFrameBytes: 10 }, 'maxFrameBytes'],
      [{ retry: { multiplier: 0.5 } }, 'retry.multiplier'],
      [{ messageCacheMs: 600_000, seenTtlMs: 300_000 }, 'messageCacheMs'],
      [{ listenHost: 'has space' }, 'listenHost'],
      [{ reconnectForMs: -1 }, 'reconnectForMs'],
      [{ reconnectForMs: 1.5 }, 'reconnectForMs'],
      [{ reconnectForMs: NaN }, 'reconnectForMs'],
      [{ advertisePort: 70000 }, 'advertisePort'],
      [{ partitionTimeoutMs: 0 }, 'partitionTimeoutMs'],
      [{ heartbeatMs: 1000, partitionTimeoutMs: 1000 }, 'partitionTimeoutMs'],
    ];
    for (const [opts, field] of bad) {
      it(`rejects ${JSON.stringify(opts)} naming ${field}`, () => {
        let err: unknown;
        try {
          new P2PNetwork(opts);
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).field).to.equal(field);
        expect((err as InvalidOptionError).code).to.equal('INVALID_OPTION');
      });
    }

    it('keeps an explicit 0 rather than replacing it with the default', () => {
      const n = new P2PNetwork({ listenPort: 0, messageCacheMs: 0 });
      expect(n).to.be.instanceOf(P2PNetwork);
    });

    it('accepts reconnectForMs Infinity (never give up) and 0 (fast retries only)', () => {
      expect(new P2PNetwork({ reconnectForMs: Infinity })).to.be.instanceOf(P2PNetwork);
      expect(new P2PNetwork({ reconnectForMs: 0 })).to.be.instanceOf(P2PNetwork);
    });
  });

  describe('lifecycle', () => {
    it('binds an ephemeral port and reports a 64-hex id', async () => {
      const a = await node();
      expect(a.address.port).to.be.greaterThan(0);
      expect(a.id).to.match(/^[0-9a-f]{64}$/);
    });

    it('throws NOT_STARTED before start and STOPPED after stop', async () => {
      const a = new P2PNetwork();
      nodes.push(a);
      expect(() => a.address).to.throw(P2PError).with.property('code', 'NOT_STARTED');
      await a.broadcast('t', 1).then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('NOT_STARTED'));
      await a.start();
      await a.stop();
      await a.stop(); // idempotent
      await a.broadcast('t', 1).then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('STOPPED'));
      await a.start().then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('STOPPED'));
    });

    it('emits peer:connect on both sides and peer:disconnect when one stops', async () => {
      // provenAfterMs 0: b, which dialed in, is kept from its first connection (else a forgets it).
      const a = await node({ provenAfterMs: 0 });
      const b = await node();
      const connected = once(a, 'peer:connect');
      const info = await b.addPeer(addr(a));
      expect(info.id).to.equal(a.id);
      expect(info.state).to.equal('connected');
      const [peer] = await connected;
      expect(peer.id).to.equal(b.id);
      const gone = once(a, 'peer:disconnect');
      await b.stop();
      const [left] = await gone;
      expect(left.id).to.equal(b.id);
      expect(a.peers().find((p) => p.id === b.id)?.state).to.equal('disconnected');
    });

    it('keeps exactly one connection when two nodes dial each other at once', async () => {
      const a = await node();
      const b = await node();
      await Promise.all([a.addPeer(addr(b)), b.addPeer(addr(a))]);
      await waitFor(() => a.health().connectedPeers === 1 && b.health().connectedPeers === 1, 3000, 'one link');
      // Both ends still exchange messages over the survivor.
      const got = new Promise<unknown>((r) => b.subscribe('t', (d) => r(d)));
      await a.broadcast('t', 'over the survivor');
      expect(await got).to.equal('over the survivor');
    });

    it('refuses peers on another networkId', async () => {
      const a = await node({ networkId: 'one' });
      const b = await node({ networkId: 'two' });
      await b.addPeer(addr(a)).then(() => expect.fail('connected'), (e: P2PError) => expect(e.code).to.equal('NETWORK_MISMATCH'));
      expect(b.health().connectedPeers).to.equal(0);
    });

    it('removePeer closes the connection and forgets the peer', async () => {
      const a = await node();
      const b = await node();
      await b.addPeer(addr(a));
      await b.removePeer(a.id);
      expect(b.peers()).to.have.length(0);
      await waitFor(() => a.health().connectedPeers === 0, 3000, 'a sees the close');
    });
  });

  describe('three nodes', () => {
    it('delivers a broadcast to the other two exactly once, with origin and hops', async () => {
      const a = await node();
      const b = await node({ bootstrap: [addr(a)] });
      const c = await node({ bootstrap: [addr(a), addr(b)] });
      const got: Array<[string, unknown, DeliveryInfo]> = [];
      for (const [name, n] of [['a', a], ['b', b], ['c', c]] as const) n.subscribe('consensus', (d, i) => void got.push([name, d, i]));
      const id = await a.broadcast('consensus', { phase: 'prepare', view: 3 });
      await waitFor(() => got.length >= 2, 3000, 'two deliveries');
      await new Promise((r) => setTimeout(r, 200)); // room for a wrong third delivery to show up
      expect(got.map((g) => g[0]).sort()).to.deep.equal(['b', 'c']);
      for (const [, data, info] of got) {
        expect(data).to.deep.equal({ phase: 'prepare', view: 3 });
        expect(info).to.include({ id, topic: 'consensus', from: a.id, direct: false });
        expect(info.hops).to.be.within(1, 2);
      }
    });

    it('stops delivering after unsubscribe, and keeps other handlers', async () => {
      const a = await node();
      const b = await node({ bootstrap: [addr(a)] });
      const first: unknown[] = [];
      const second: unknown[] = [];
      const off = b.subscribe('t', (d) => void first.push(d));
      b.subscribe('t', (d) => void second.push(d));
      await a.broadcast('t', 1);
      await waitFor(() => second.length === 1, 3000, 'first message');
      off();
      await a.broadcast('t', 2);
      await waitFor(() => second.length === 2, 3000, 'second message');
      expect(first).to.deep.equal([1]);
      expect(second).to.deep.equal([1, 2]);
    });

    it('counts a throwing handler and still runs the others', async () => {
      const a = await node();
      const b = await node({ bootstrap: [addr(a)] });
      b.subscribe('t', () => {
        throw new Error('boom');
      });
      const ok: unknown[] = [];
      b.subscribe('t', (d) => void ok.push(d));
      await a.broadcast('t', 'x');
      await waitFor(() => ok.length === 1, 3000, 'delivery');
      expect(b.metrics().droppedByReason.handler_error).to.equal(1);
    });

    it('reports traffic in metrics: bytes with framing, counts per type', async () => {
      const a = await node();
      const b = await node({ bootstrap: [addr(a)] });
      const got = new Promise((r) => b.subscribe('t', r));
      await a.broadcast('t', 'x');
      await got;
      const m = a.metrics();
      expect(m.sentByType.GOSSIP).to.equal(1);
      expect(m.sentByType.HANDSHAKE).to.equal(1);
      expect(m.bytesSent).to.be.greaterThan(100);
      expect(m.connectedPeers).to.equal(1);
      expect(m.seenMessages).to.equal(1);
      expect(b.metrics().receivedByType.GOSSIP).to.equal(1);
      expect(b.metrics().delivered).to.equal(1);
    });

    it('rejects bad broadcast arguments synchronously-typed', async () => {
      const a = await node();
      for (const topic of ['', 'x'.repeat(300), 5 as unknown as string]) {
        await a.broadcast(topic, 1).then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('INVALID_ARGUMENT'));
      }
      await a.broadcast('t', Buffer.alloc(2 << 20)).then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('INVALID_ARGUMENT'));
    });
  });

  describe('partitions and reconnection', () => {
    const RETRY = { initialDelayMs: 20, maxDelayMs: 100, maxRetries: 3 };

    it('partitions a peer silent for the default 30 s on the injected clock, then recovers it by redialing', async () => {
      let skew = 0;
      // Real timers (sockets need them), a clock that can jump, and no heartbeat timer: the test calls heartbeat().
      const clock: Clock = { now: () => Date.now() + skew, setTimeout: systemClock.setTimeout, setInterval: () => ({ cancel() {} }) };
      // provenAfterMs 0: b, which dialed in, is kept and redialed from its first connection.
      const a = await node({ clock, retry: RETRY, provenAfterMs: 0 });
      const b = await node({ clock, retry: RETRY });
      await b.addPeer(addr(a));
      await waitFor(() => a.health().connectedPeers === 1, 3000, 'a sees b');
      const events: string[] = [];
      for (const e of ['peer:disconnect', 'peer:partitioned', 'peer:recovered'] as const) a.on(e, (p: { id: string }) => void events.push(`${e}:${p.id === b.id}`));

      skew += 29_000;
      a.heartbeat();
      expect(a.health()).to.include({ connectedPeers: 1, partitionedPeers: 0 });
      skew += 1000;
      a.heartbeat();
      expect(events).to.deep.equal(['peer:disconnect:true', 'peer:partitioned:true']);
      expect(a.peers()[0]?.state).to.equal('partitioned');
      expect(a.health()).to.deep.equal({ connectedPeers: 0, knownPeers: 1, partitionedPeers: 1, reachableFraction: 0 });

      await waitFor(() => events.includes('peer:recovered:true'), 5000, 'peer:recovered');
      expect(a.peers()[0]?.state).to.equal('connected');
      const got = new Promise((r) => b.subscribe('t', r));
      await a.broadcast('t', 'after recovery');
      expect(await got).to.equal('after recovery');
    });

    it('redials a peer whose connection was reset, with no partition when it is back quickly', async () => {
      // provenAfterMs 0: b, which dialed in, is kept and redialed from its first connection.
      const a = await proxied({ retry: RETRY, provenAfterMs: 0 });
      const b = await proxied({ retry: RETRY });
      await b.n.addPeer(`127.0.0.1:${a.p.port}`);
      await waitFor(() => a.n.health().connectedPeers === 1, 3000, 'a sees b');
      const events: string[] = [];
      for (const e of ['peer:disconnect', 'peer:connect', 'peer:partitioned'] as const) a.n.on(e, () => void events.push(e));
      a.p.setMode('reset');
      await waitFor(() => events.includes('peer:disconnect'), 3000, 'the reset noticed');
      await waitFor(() => a.n.health().connectedPeers === 1 && b.n.health().connectedPeers === 1, 5000, 'redialed');
      expect(events).to.deep.equal(['peer:disconnect', 'peer:connect']);
    });

    it('does not redial a peer that said GOODBYE: it left on purpose', async () => {
      const a = await node({ retry: RETRY });
      const b = await proxied();
      await a.addPeer(`127.0.0.1:${b.p.port}`);
      const gone = once(a, 'peer:disconnect');
      await b.n.stop();
      await gone;
      // The same node is back behind the same address; a must not go looking for it.
      const back = await node({ identity: b.n.identity });
      b.p.setTarget(back.address.port);
      await quiet(400); // room for several redials at a 20..100 ms backoff
      expect(b.p.accepted).to.equal(1);
      expect(a.peers()[0]?.state).to.equal('disconnected');
      expect(a.health()).to.include({ connectedPeers: 0, partitionedPeers: 0 });
    });

    for (const how of ['removePeer', 'stop'] as const) {
      it(`${how}() cancels the redialing of a lost peer`, async () => {
        const a = await proxied({ retry: RETRY });
        const b = await proxied({ retry: RETRY });
        await b.n.addPeer(`127.0.0.1:${a.p.port}`);
        await waitFor(() => a.n.health().connectedPeers === 1, 3000, 'a sees b');
        // Resets every link through a's proxy, and b's redials: only a's redials (to b's proxy) could succeed.
        const lost = once(a.n, 'peer:disconnect');
        a.p.setMode('reset');
        await lost;
        if (how === 'removePeer') await a.n.removePeer(b.n.id);
        else await a.n.stop();
        await quiet(400);
        expect(b.p.accepted, 'nobody dialed b').to.equal(0);
        expect(a.n.health().connectedPeers).to.equal(0);
      });
    }

    it('keeps dialing its bootstrap addresses when none answered at start', async () => {
      const entry = await proxy();
      const dead = await node();
      entry.setTarget(dead.address.port);
      await dead.stop(); // the entry address leads nowhere for now
      const b = await node({ bootstrap: [`127.0.0.1:${entry.port}`], retry: RETRY });
      expect(b.health().connectedPeers).to.equal(0);
      const a = await node();
      entry.setTarget(a.address.port);
      await waitFor(() => b.peers().some((p) => p.id === a.id && p.state === 'connected'), 5000, 'b joined late');
    });

    it('re-bootstraps when it has lost every peer, and finds whoever answers there now', async () => {
      const entry = await proxy();
      const a = await node();
      entry.setTarget(a.address.port);
      const b = await node({ bootstrap: [`127.0.0.1:${entry.port}`], retry: RETRY });
      await waitFor(() => b.health().connectedPeers === 1, 3000, 'b joined through the entry address');
      await a.stop();
      await waitFor(() => b.health().connectedPeers === 0, 3000, 'b alone');
      const c = await node();
      entry.setTarget(c.address.port);
      await waitFor(() => b.peers().some((p) => p.id === c.id && p.state === 'connected'), 5000, 'b rejoined through c');
    });
  });

  describe('sendToPeer', () => {
    it('delivers to the peer once with info.direct and resolves on its ACK', async () => {
      const a = await node();
      const b = await node({ bootstrap: [addr(a)] });
      const got: Array<[unknown, DeliveryInfo]> = [];
      a.subscribe('state_sync', (d, i) => void got.push([d, i]));
      await b.sendToPeer(a.id, 'state_sync', { want: 7 });
      expect(got).to.have.length(1);
      expect(got[0]![0]).to.deep.equal({ want: 7 });
      expect(got[0]![1]).to.include({ direct: true, from: b.id, topic: 'state_sync' });
    });

    it('rejects with PEER_UNREACHABLE after the configured retries, counting a drop', async () => {
      const a = await node({ retry: { initialDelayMs: 5, maxDelayMs: 10, maxRetries: 2 } });
      const unknown = 'ab'.repeat(32);
      const err = await a.sendToPeer(unknown, 't', 1).then(() => undefined, (e: P2PError) => e);
      expect(err?.code).to.equal('PEER_UNREACHABLE');
      expect(err?.message).to.match(/3 attempt/);
      expect(a.metrics().droppedByReason.send_failed).to.equal(1);
    });

    it('rejects a malformed peer id as INVALID_ARGUMENT', async () => {
      const a = await node();
      await a.sendToPeer('xyz', 't', 1).then(() => expect.fail('resolved'), (e: P2PError) => expect(e.code).to.equal('INVALID_ARGUMENT'));
    });
  });
});
