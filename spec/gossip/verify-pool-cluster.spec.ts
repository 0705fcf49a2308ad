/**
 * Real nodes over loopback with verifyWorkers: 1 (the pool sending every request to its
 * worker): signed messages are delivered everywhere,
 * a forged one is refused and its sender reported, and stopping nodes with verifications in
 * flight throws nothing and ends the pool's threads (mocha would not exit otherwise).
 */
import { expect } from 'chai';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { acquireVerifyPool, verifyPoolStats } from '../../lib/gossip/verify-pool.js';
import type { VerifyPoolLease } from '../../lib/gossip/verify-pool.js';
import { generateIdentity } from '../../lib/identity.js';
import type { P2PNetwork } from '../../lib/network.js';
import { waitFor } from '../../lib/testnet.js';
import { packValue } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { addrOf, useNodes } from '../helpers/nodes.js';
import { RawPeer } from '../helpers/raw-peer.js';

describe('signed gossip between real nodes with a verification worker (verifyWorkers: 1)', function () {
  this.timeout(30_000);
  const nodes = useNodes({ verifyWorkers: 1 });
  const raws: RawPeer[] = [];
  // The process's pool, held first so that it sends every request to the worker (by default
  // the first of each turn is verified on the event loop, and at this rate that is most).
  let lease: VerifyPoolLease | undefined;
  beforeEach(() => {
    lease = acquireVerifyPool(1, { inlinePerTurn: 0 });
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await lease?.release();
  });

  /** Three nodes in a line a - b - c, every one subscribed to 't'; returns what each received. */
  async function line(): Promise<{ ns: P2PNetwork[]; got: string[][] }> {
    const ns = [await nodes.start(), await nodes.start(), await nodes.start()];
    await ns[1]!.addPeer(addrOf(ns[0]!));
    await ns[2]!.addPeer(addrOf(ns[1]!));
    await waitFor(() => ns[1]!.health().connectedPeers === 2, 5000, 'links up');
    const got: string[][] = ns.map(() => []);
    ns.forEach((n, i) => n.subscribe('t', (data) => void got[i]!.push(String(data))));
    return { ns, got };
  }

  it('delivers every signed message to every node, through one shared pool', async () => {
    const { ns, got } = await line();
    expect(verifyPoolStats()?.workers).to.equal(1);
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(`m${i}`);
      await ns[i % 3]!.broadcast('t', `m${i}`);
    }
    await waitFor(() => got.every((g, i) => g.length === sent.filter((_, j) => j % 3 !== i).length), 10_000, 'every message everywhere');
    got.forEach((g, i) => expect([...g].sort()).to.deep.equal(sent.filter((_, j) => j % 3 !== i).sort()));
    // Verified by the pool, not on the event loop (nothing refused at this rate).
    expect(verifyPoolStats()!.requests).to.be.at.least(20);
    for (const n of ns) expect(n.metrics().invalidByReason).to.deep.equal({});
  });

  it('refuses a forged message, reports its sender, and delivers the next genuine one', async () => {
    const { ns, got } = await line();
    const forger = await RawPeer.connect(ns[0]!.address.port);
    raws.push(forger);
    await forger.handshake();
    await waitFor(() => ns[0]!.peers().some((p) => p.id === forger.identity.idHex && p.state === 'connected'), 5000, 'forger registered');
    const reported: Array<[string, string]> = [];
    ns[0]!.on('peer:invalid', (id, reason) => reported.push([id, reason]));
    const victim = generateIdentity();
    const payload = packValue('forged');
    const seq = Date.now() * 1000;
    const id = gossipMessageId(victim.publicKey, seq, 't', payload);
    const g: Gossip = { type: MessageType.GOSSIP, id, origin: victim.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: Buffer.alloc(64, 1) };
    forger.send(g);
    await waitFor(() => reported.length > 0, 5000, 'forgery reported');
    expect(reported).to.deep.equal([[forger.identity.idHex, 'bad_signature']]);
    expect(ns[0]!.metrics().invalidByReason.bad_signature).to.equal(1);
    await ns[2]!.broadcast('t', 'genuine');
    await waitFor(() => got[0]!.includes('genuine') && got[1]!.includes('genuine'), 5000, 'genuine delivered');
    expect(got.flat()).to.not.include('forged');
  });

  it('stops nodes with verifications in flight without throwing, and ends the pool\'s threads', async () => {
    const { ns } = await line();
    // Broadcasts, and a stop as soon as the pool has requests in flight (checked every turn, for at most 5 s).
    const broadcasts = Promise.all(Array.from({ length: 30 }, (_, i) => ns[i % 2 === 0 ? 0 : 2]!.broadcast('t', `x${i}`)));
    const started = Date.now();
    while ((verifyPoolStats()?.inFlight ?? 0) === 0 && Date.now() - started < 5000) await new Promise((r) => setImmediate(r));
    const inFlightAtStop = verifyPoolStats()?.inFlight ?? 0;
    await Promise.all(ns.map((n) => n.stop()));
    await broadcasts.catch(() => {}); // some may be refused: STOPPED
    expect(inFlightAtStop).to.be.above(0);
    await lease!.release(); // the last holder
    expect(verifyPoolStats()).to.equal(undefined);
  });
});

describe('the verification pool held by nodes alone (verifyWorkers: 1, defaults)', function () {
  this.timeout(30_000);
  const nodes = useNodes({ verifyWorkers: 1 });

  it('is shared by the nodes of the process and ends with the last one\'s stop', async () => {
    const a = await nodes.start();
    const b = await nodes.start();
    await b.addPeer(addrOf(a));
    expect(verifyPoolStats()?.workers).to.equal(1);
    const got: string[] = [];
    b.subscribe('t', (data) => void got.push(String(data)));
    for (let i = 0; i < 5; i++) await a.broadcast('t', `m${i}`);
    await waitFor(() => got.length === 5, 5000, 'delivered');
    await a.stop();
    expect(verifyPoolStats()?.workers).to.equal(1);
    await b.stop();
    expect(verifyPoolStats()).to.equal(undefined);
  });
});
