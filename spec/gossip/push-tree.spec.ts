import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import type { GossipHost, GossipOptions } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { MAX_PUSHES_REMEMBERED, PushTree } from '../../lib/gossip/push-tree.js';
import { generateIdentity } from '../../lib/identity.js';
import { parseSimArgs } from '../../lib/cli/sim.js';
import { UsageError } from '../../lib/cli/args.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { DEFAULTS, resolveOptions } from '../../lib/options.js';
import { resolveSimOptions } from '../../lib/sim/options.js';
import { runSimulation } from '../../lib/sim/scenario.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { seededRandom } from '../../lib/random.js';
import { packValue } from '../../lib/wire/codec.js';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordingPeer as Peer } from '../helpers/gossip-peer.js';

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20, push: 'tree',
};

describe('GossipEngine: eager-tree push (push: tree, PROTOCOL.md §4.6, eager-tree push)', () => {
  let clock: sinon.SinonFakeTimers;
  let self: Identity;
  let peers: Peer[];
  let turn: Array<() => void>;
  /** The network's shape: forwards and answers go out at the end of the turn. */
  const engine = (over: Partial<GossipOptions> = {}, host: Partial<GossipHost> = {}) => new GossipEngine(self, systemClock, { ...OPTIONS, ...over }, {
    peers: () => peers, deliver: () => {}, invalid: () => {}, endOfTurn: (fn) => void turn.push(fn), ...host,
  }, new Metrics(), seededRandom(5));
  const endTurn = () => { for (const fn of turn.splice(0)) fn(); };
  const clearSent = () => { for (const p of peers) p.sent.length = 0; };
  const hex = (b: Buffer) => b.toString('hex');
  const pushedIds = (p: Peer) => p.gossip().map((g) => hex(g.id));
  const announcedIds = (p: Peer) => p.of(MessageType.IHAVE).flatMap((m) => m.ids.map(hex));

  function gossipFrom(origin: Identity, n: number): Gossip {
    const payload = packValue({ n });
    const seq = Date.now() * 1000 + n;
    const id = gossipMessageId(origin.publicKey, seq, 't', payload);
    return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: origin.sign(id) };
  }

  /** Publish one message and end the turn; returns its id (hex). */
  function publish(e: GossipEngine, n: number): string {
    const id = hex(e.publish('t', packValue(n)));
    endTurn();
    return id;
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_700_000_000_000, toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    self = generateIdentity();
    peers = Array.from({ length: 5 }, () => new Peer());
    turn = [];
  });
  afterEach(() => clock.restore());

  it('pushes a new message to every peer while every link is eager (a new link starts eager)', () => {
    const e = engine();
    const id = publish(e, 1);
    for (const p of peers) expect(pushedIds(p), p.idHex.slice(0, 8)).to.deep.equal([id]);
    expect(peers.every((p) => p.of(MessageType.IHAVE).length === 0)).to.equal(true);
  });

  it('answers a duplicate copy with an IHAVE of its id to its sender, one per sender per turn, and stops pushing to it', () => {
    const e = engine();
    const [a, b] = [peers[0]!, peers[1]!];
    const m1 = gossipFrom(generateIdentity(), 1);
    const m2 = gossipFrom(generateIdentity(), 2);
    e.onGossip(a, encodeGossip(m1));
    e.onGossip(a, encodeGossip(m2));
    endTurn();
    clearSent();
    // b sends both again: duplicates.
    e.onGossip(b, encodeGossip(m1));
    e.onGossip(b, encodeGossip(m2));
    expect(b.sent, 'answered at the end of the turn').to.deep.equal([]);
    endTurn();
    expect(b.of(MessageType.IHAVE)).to.have.length(1);
    expect(announcedIds(b)).to.deep.equal([hex(m1.id), hex(m2.id)]);
    expect(a.sent, 'the first sender is not told anything').to.deep.equal([]);
    expect(e.tree!.prunes).to.equal(1);
    // The next message is announced to b, not pushed; every other peer still gets it pushed.
    clearSent();
    const id = publish(e, 3);
    expect(pushedIds(b)).to.deep.equal([]);
    expect(announcedIds(b)).to.deep.equal([id]);
    for (const p of peers.filter((x) => x !== b)) expect(pushedIds(p), p.idHex.slice(0, 8)).to.deep.equal([id]);
  });

  it('stops pushing to a peer that answers a push with an IHAVE of the same id (the sender side of a prune)', () => {
    const e = engine();
    const c = peers[2]!;
    const id = e.publish('t', packValue(1));
    endTurn();
    expect(pushedIds(c)).to.deep.equal([hex(id)]);
    e.onIHave(c, [id]); // c already had it: our copy was a duplicate there
    clearSent();
    const next = publish(e, 2);
    expect(pushedIds(c)).to.deep.equal([]);
    expect(announcedIds(c)).to.deep.equal([next]);
    expect(peers.filter((p) => pushedIds(p).length === 1)).to.have.length(4);
  });

  it('keeps pushing to a peer whose IHAVE names an id it was not pushed (an announcement, not a prune)', () => {
    const e = engine();
    const m = gossipFrom(generateIdentity(), 1);
    const [a, c] = [peers[0]!, peers[2]!];
    e.onIHave(c, [m.id]); // c announces it first: we have not pushed it to c
    e.onGossip(a, encodeGossip(m));
    endTurn();
    expect(pushedIds(c), 'c holds it: neither pushed nor announced').to.deep.equal([]);
    e.onIHave(c, [m.id]); // told again: still not a copy we pushed
    clearSent();
    const next = publish(e, 2);
    expect(pushedIds(c)).to.deep.equal([next]);
    expect(e.tree!.prunes).to.equal(0);
  });

  it('grafts a pruned peer back when it asks for a message (IWANT): the next message is pushed to it', () => {
    const e = engine();
    const c = peers[2]!;
    const id = e.publish('t', packValue(1));
    endTurn();
    e.onIHave(c, [id]);
    clearSent();
    const announced = publish(e, 2);
    expect(announcedIds(c)).to.deep.equal([announced]);
    clearSent();
    // c's wait for the push ran out: it asks, and gets the message as an IWANT answer.
    e.onIWant(c, [Buffer.from(announced, 'hex')]);
    expect(pushedIds(c)).to.deep.equal([announced]);
    expect(e.tree!.grafts).to.equal(1);
    clearSent();
    const next = publish(e, 3);
    expect(pushedIds(c)).to.deep.equal([next]);
    expect(announcedIds(c)).to.deep.equal([]);
  });

  it('never prunes its last eager peer, by a duplicate or by an IHAVE', () => {
    peers = peers.slice(0, 2);
    const [a, b] = [peers[0]!, peers[1]!];
    const e = engine();
    const m = gossipFrom(generateIdentity(), 1);
    e.onGossip(a, encodeGossip(m));
    endTurn(); // pushed to b
    e.onGossip(b, encodeGossip(m)); // a duplicate from b: b pruned, a is left
    e.onIHave(a, [m.id]); // a holds it, but we did not push it to a: no prune anyway
    endTurn();
    const id = e.publish('t', packValue(2));
    endTurn();
    e.onIHave(a, [id]); // we pushed it to a, our last eager peer: kept
    clearSent();
    const next = publish(e, 3);
    expect(pushedIds(a)).to.deep.equal([next]);
    expect(pushedIds(b)).to.deep.equal([]);
    expect(announcedIds(b)).to.deep.equal([next]);
    expect(e.tree!.prunes).to.equal(1);
    expect(e.tree!.lazyCount).to.equal(1);
  });

  it('converges when two peers push the same message to each other at once: each prunes the other once', () => {
    // Two engines joined by one link each way, plus one other eager peer each (so neither
    // link is the last eager one).
    const [x, y] = [generateIdentity(), generateIdentity()];
    const xPeer = Object.assign(new Peer(), { idHex: x.idHex, prefixKey: x.id.subarray(0, 8).toString('latin1') });
    const yPeer = Object.assign(new Peer(), { idHex: y.idHex, prefixKey: y.id.subarray(0, 8).toString('latin1') });
    const [xOther, yOther] = [new Peer(), new Peer()];
    const ex = new GossipEngine(x, systemClock, OPTIONS, { peers: () => [yPeer, xOther], deliver: () => {}, invalid: () => {}, endOfTurn: (fn) => void turn.push(fn) }, new Metrics());
    const ey = new GossipEngine(y, systemClock, OPTIONS, { peers: () => [xPeer, yOther], deliver: () => {}, invalid: () => {}, endOfTurn: (fn) => void turn.push(fn) }, new Metrics());
    const m = gossipFrom(generateIdentity(), 1);
    ex.onGossip(xOther, encodeGossip(m));
    ey.onGossip(yOther, encodeGossip(m));
    endTurn();
    // Each pushed it to the other (yPeer is what x sends to y).
    const [toY, toX] = [yPeer.gossip(), xPeer.gossip()];
    expect([toY.length, toX.length]).to.deep.equal([1, 1]);
    yPeer.sent.length = 0;
    xPeer.sent.length = 0;
    ey.onGossip(xPeer, encodeGossip(toY[0]!));
    ex.onGossip(yPeer, encodeGossip(toX[0]!));
    endTurn();
    // Each answered with an IHAVE, and each IHAVE names an id the other pushed.
    const [ihaveToY, ihaveToX] = [yPeer.of(MessageType.IHAVE), xPeer.of(MessageType.IHAVE)];
    expect([ihaveToY.length, ihaveToX.length]).to.deep.equal([1, 1]);
    yPeer.sent.length = 0;
    xPeer.sent.length = 0;
    ey.onIHave(xPeer, ihaveToY[0]!.ids);
    ex.onIHave(yPeer, ihaveToX[0]!.ids);
    endTurn();
    expect([ex.tree!.prunes, ey.tree!.prunes]).to.deep.equal([1, 1]);
    expect([ex.tree!.lazyCount, ey.tree!.lazyCount]).to.deep.equal([1, 1]);
    // Nothing more goes back and forth about it.
    expect(yPeer.sent.concat(xPeer.sent)).to.deep.equal([]);
  });

  it('starts a reconnected peer eager again', () => {
    const e = engine();
    const c = peers[2]!;
    const id = e.publish('t', packValue(1));
    endTurn();
    e.onIHave(c, [id]);
    expect(e.tree!.lazyCount).to.equal(1);
    e.onPeerConnected(c);
    expect(e.tree!.lazyCount).to.equal(0);
    clearSent();
    const next = publish(e, 2);
    expect(pushedIds(c)).to.deep.equal([next]);
  });

  it('in fanout mode (the default) neither answers duplicates nor prunes on an IHAVE', () => {
    const e = engine({ push: undefined });
    expect(e.tree).to.equal(undefined);
    const m = gossipFrom(generateIdentity(), 1);
    e.onGossip(peers[0]!, encodeGossip(m));
    endTurn();
    const pushed = peers.filter((p) => p.gossip().length === 1);
    expect(pushed).to.have.length(3);
    clearSent();
    e.onGossip(peers[1]!, encodeGossip(m));
    for (const p of pushed) e.onIHave(p, [m.id]);
    endTurn();
    expect(peers.every((p) => p.sent.length === 0)).to.equal(true);
    // Still fanout 3 of 5.
    publish(e, 2);
    expect(peers.filter((p) => p.gossip().length === 1)).to.have.length(3);
  });

  it('is off without repair (lazy links would learn nothing)', () => {
    expect(engine({ repair: false }).tree).to.equal(undefined);
  });
});

describe('PushTree (eager and lazy links, push-tree.ts)', () => {
  it('remembers pushes for two rotations (heartbeats), then forgets them', () => {
    const t = new PushTree();
    t.pushed('a', [1, 2]);
    expect([t.wasPushed('a', 1), t.wasPushed('a', 2), t.wasPushed('a', 3)]).to.deep.equal([true, true, false]);
    t.rotate();
    expect(t.wasPushed('a', 2)).to.equal(true);
    t.rotate();
    expect(t.wasPushed('a', 2)).to.equal(false);
  });

  it('bounds what it remembers: a full generation rotates early', () => {
    const t = new PushTree();
    for (let i = 0; i < 2 * MAX_PUSHES_REMEMBERED + 1; i++) t.pushed(`m${i}`, [0]);
    expect(t.wasPushed('m0', 0)).to.equal(false);
    expect(t.wasPushed(`m${MAX_PUSHES_REMEMBERED}`, 0)).to.equal(true);
    expect(t.wasPushed(`m${2 * MAX_PUSHES_REMEMBERED}`, 0)).to.equal(true);
  });

  it('prunes only while another connected peer stays eager, and forgets retired slots', () => {
    const t = new PushTree();
    expect(t.prune(1, [1, 2])).to.equal(true);
    expect(t.prune(2, [1, 2]), 'the last eager one').to.equal(false);
    expect(t.prune(2, [1, 2, 3])).to.equal(true);
    expect(t.prune(3, [1, 2, 3])).to.equal(false);
    expect([t.isLazy(1), t.isLazy(2), t.isLazy(3)]).to.deep.equal([true, true, false]);
    t.forget([1]);
    expect(t.isLazy(1)).to.equal(false);
    expect(t.graft(2)).to.equal(true);
    expect(t.graft(2)).to.equal(false);
    expect([t.prunes, t.grafts]).to.deep.equal([2, 1]);
  });
});

describe('the push option (P2POptions, simulator, CLI)', () => {
  const fieldOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      expect(e).to.be.instanceOf(InvalidOptionError);
      return (e as InvalidOptionError).field;
    }
    return undefined;
  };

  it("defaults to 'fanout' and accepts 'tree'", () => {
    expect(resolveOptions({}).push).to.equal('fanout');
    expect(DEFAULTS.push).to.equal('fanout');
    expect(resolveOptions({ push: 'tree' }).push).to.equal('tree');
    expect(resolveSimOptions({ nodes: 10 }).push).to.equal('fanout');
    expect(resolveSimOptions({ nodes: 10, push: 'tree' }).push).to.equal('tree');
  });

  it('refuses another value, and tree without repair, naming the field push', () => {
    expect(fieldOf(() => resolveOptions({ push: 'star' as 'tree' }))).to.equal('push');
    expect(fieldOf(() => resolveOptions({ push: 'tree', repair: false }))).to.equal('push');
    expect(fieldOf(() => resolveOptions({ push: 'fanout', repair: false }))).to.equal(undefined);
    expect(fieldOf(() => resolveSimOptions({ nodes: 10, push: 'star' as 'tree' }))).to.equal('push');
    expect(fieldOf(() => resolveSimOptions({ nodes: 10, push: 'tree', repair: false }))).to.equal('push');
  });

  it('is --push fanout|tree on the sim command line', () => {
    expect(parseSimArgs(['--nodes', '10']).options.push).to.equal('fanout');
    expect(parseSimArgs(['--nodes', '10', '--push', 'tree']).options.push).to.equal('tree');
    expect(() => parseSimArgs(['--nodes', '10', '--push', 'star'])).to.throw(UsageError, /--push/);
  });
});

describe('the simulator in tree mode (push: tree)', function () {
  this.timeout(60_000);

  it('delivers every message to every node, with fewer GOSSIP copies than fanout once the tree has formed', async () => {
    // 100 nodes of mean degree 8, 60 messages 100 virtual ms apart: the first few flood, the rest follow the tree.
    const base = { nodes: 100, degree: 4, messages: 60, intervalMs: 100, join: false, lookups: 0, settleMs: 5000, seed: 3 };
    const fanout = await runSimulation({ ...base, push: 'fanout' });
    const tree = await runSimulation({ ...base, push: 'tree' });
    expect(tree.deliveryFraction).to.equal(1);
    expect(tree.fullyDelivered).to.equal(60);
    expect(tree.redundancy, `tree ${tree.redundancy}, fanout ${fanout.redundancy}`).to.be.below(0.75 * fanout.redundancy);
    expect([fanout.push, tree.push]).to.deep.equal(['fanout', 'tree']);
  });
});
