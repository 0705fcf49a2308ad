import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { GossipEngine } from '../../lib/gossip/engine.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import type { GossipOptions } from '../../lib/gossip/engine.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { DEFAULTS, resolveOptions } from '../../lib/options.js';
import { seededRandom } from '../../lib/random.js';
import { parseSimArgs } from '../../lib/cli/sim.js';
import { resolveSimOptions } from '../../lib/sim/options.js';
import { runSimulation } from '../../lib/sim/scenario.js';
import { packValue } from '../../lib/wire/codec.js';
import { encodeGossip } from '../../lib/wire/gossip-envelope.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';
import { RecordingPeer as Peer } from '../helpers/gossip-peer.js';

const OPTIONS: GossipOptions = {
  fanout: 3, gossipTtl: 10, seenTtlMs: 300_000, maxSeenEntries: 1000, signMessages: true, deliverOwnMessages: false,
  repair: true, heartbeatMs: 1000, messageCacheMs: 120_000, maxCachedMessages: 1000, maxCachedBytes: 1 << 20,
};

const tick = () => new Promise<void>((r) => queueMicrotask(r));

/** A peer that counts the sends tried, refused or not. */
class AttemptedPeer extends Peer {
  attempts = 0;
  override send(msg: Message): boolean {
    this.attempts++;
    return super.send(msg);
  }
}

function gossipFrom(origin: Identity, n: number): Gossip {
  const payload = packValue({ n });
  const seq = Date.now() * 1000 + n;
  const id = gossipMessageId(origin.publicKey, seq, 't', payload);
  return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: 't', ttl: 5, hops: 1, seenBy: [], payload, signature: origin.sign(id) };
}

describe('GossipEngine: announceLimit (a bound on announce at once, PROTOCOL.md §4.6)', () => {
  let clock: sinon.SinonFakeTimers;
  let self: Identity;
  let peers: Peer[];
  const engine = (over: Partial<GossipOptions> = {}, seed = 3) => new GossipEngine(self, systemClock, { ...OPTIONS, ...over }, {
    peers: () => peers, deliver: () => {}, invalid: () => {},
  }, new Metrics(), seededRandom(seed));

  /** Indexes of the peers pushed `id`, and of those announced it (IHAVE). */
  function outcome(id: Buffer): { pushed: number[]; announced: number[] } {
    const pushed: number[] = [];
    const announced: number[] = [];
    peers.forEach((p, i) => {
      if (p.of(MessageType.GOSSIP).some((g) => g.id.equals(id))) pushed.push(i);
      if (p.of(MessageType.IHAVE).some((m) => m.ids.some((x) => x.equals(id)))) announced.push(i);
    });
    return { pushed, announced };
  }

  /** Publish one message on a fresh engine; what went where. */
  async function publishOnce(over: Partial<GossipOptions>, seed = 3): Promise<{ pushed: number[]; announced: number[]; ihaves: number }> {
    for (const p of peers) p.sent.length = 0;
    const e = engine(over, seed);
    const id = e.publish('t', packValue(1));
    await tick();
    const ihaves = peers.reduce((n, p) => n + p.of(MessageType.IHAVE).length, 0);
    e.clear();
    return { ...outcome(id), ihaves };
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_700_000_000_000, toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    self = generateIdentity();
    peers = Array.from({ length: 10 }, () => new Peer());
  });
  afterEach(() => clock.restore());

  it('with 10 candidates and a limit of 3, sends exactly 3 IHAVEs for a new message, none to a push target', async () => {
    const r = await publishOnce({ announceLimit: 3 });
    expect(r.pushed).to.have.length(3);
    expect(r.announced).to.have.length(3);
    expect(r.ihaves).to.equal(3);
    expect(r.announced.filter((i) => r.pushed.includes(i))).to.deep.equal([]);
  });

  it('by default announces to every candidate it did not push to (7 of 10 with fanout 3)', async () => {
    const r = await publishOnce({});
    expect(r.pushed).to.have.length(3);
    expect(r.announced.sort()).to.deep.equal([...Array(10).keys()].filter((i) => !r.pushed.includes(i)));
    expect(r.ihaves).to.equal(7);
  });

  it('announces to every candidate when there are no more than the limit', async () => {
    const r = await publishOnce({ announceLimit: 7 });
    expect(r.announced).to.have.length(7);
    const s = await publishOnce({ announceLimit: 50 });
    expect(s.announced).to.have.length(7);
  });

  it('announces to neither the sender nor the peers that announced it to us (known holders)', async () => {
    const e = engine({ announceLimit: 3 });
    const m = gossipFrom(generateIdentity(), 2);
    const holders = [peers[0]!, peers[1]!];
    for (const h of holders) e.onIHave(h, [m.id]);
    await clock.tickAsync(1); // less than the announce wait: nothing asked yet
    for (const p of peers) p.sent.length = 0;
    e.onGossip(peers[2]!, encodeGossip(m));
    await tick();
    const r = outcome(m.id);
    expect(r.pushed).to.have.length(3);
    expect(r.announced).to.have.length(3);
    for (const i of [0, 1, 2]) {
      expect(r.pushed, `peer ${i} pushed to`).to.not.include(i);
      expect(r.announced, `peer ${i} announced to`).to.not.include(i);
    }
    expect(r.announced.filter((i) => r.pushed.includes(i))).to.deep.equal([]);
    e.clear();
  });

  it('counts only the peers it queued: peers behind are skipped, not counted, whatever the seed', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      peers = Array.from({ length: 10 }, () => new AttemptedPeer());
      const e = engine({ announceLimit: 3 }, seed);
      // Every send refused: the 3 push targets and the 3 announced to fall behind, 4 peers do not.
      for (const p of peers) p.accepting = false;
      e.publish('t', packValue(seed));
      await tick();
      for (const p of peers) p.accepting = true;
      const behind = [...peers.keys()].filter((i) => (peers[i] as AttemptedPeer).attempts > 0);
      expect(behind, `seed ${seed}: peers behind`).to.have.length(6);
      const id = e.publish('t', packValue(1000 + seed));
      await tick();
      const r = outcome(id);
      // Behind peers are never announced to (their catch-up covers it); the others not pushed to are, up to the limit.
      expect(r.announced.filter((i) => behind.includes(i)), `seed ${seed}`).to.deep.equal([]);
      const eligible = [...peers.keys()].filter((i) => !behind.includes(i) && !r.pushed.includes(i));
      expect(r.announced, `seed ${seed}`).to.have.length(Math.min(3, eligible.length));
      e.clear();
    }
  });

  it('chooses the announced peers at random with the engine\'s random source: the subset varies with the seed and reaches every peer', async () => {
    const subsets = new Set<string>();
    const reached = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const r = await publishOnce({ announceLimit: 3 }, seed);
      expect(r.announced, `seed ${seed}`).to.have.length(3);
      subsets.add(r.announced.sort().join(','));
      for (const i of r.announced) reached.add(i);
    }
    expect(subsets.size).to.be.greaterThan(5);
    // Taking the first 3 peers after the push targets would never reach the last peers in connection order.
    expect([...reached].sort((a, b) => a - b)).to.deep.equal([...Array(10).keys()]);
  });

  it('chooses the same subset for the same seed (no other random source)', async () => {
    const a = await publishOnce({ announceLimit: 3 }, 7);
    const b = await publishOnce({ announceLimit: 3 }, 7);
    expect(b).to.deep.equal(a);
  });

  it('leaves the other candidates to the heartbeat, which advertises the message to them', async () => {
    const e = engine({ announceLimit: 3 });
    const id = e.publish('t', packValue(5));
    await tick();
    const r = outcome(id);
    const rest = [...Array(10).keys()].filter((i) => !r.pushed.includes(i) && !r.announced.includes(i));
    expect(rest).to.have.length(4);
    for (const p of peers) p.sent.length = 0;
    e.heartbeat();
    const later = outcome(id);
    expect(later.announced.sort()).to.deep.equal(rest);
    e.clear();
  });

  describe('the option', () => {
    it('defaults to Infinity (every candidate)', () => {
      expect(DEFAULTS.announceLimit).to.equal(Infinity);
      expect(resolveOptions({}).announceLimit).to.equal(Infinity);
      expect(resolveOptions({ announceLimit: 6 }).announceLimit).to.equal(6);
      expect(resolveOptions({ announceLimit: Infinity }).announceLimit).to.equal(Infinity);
      expect(resolveSimOptions({ nodes: 10 }).announceLimit).to.equal(Infinity);
      expect(resolveSimOptions({ nodes: 10, announceLimit: 3 }).announceLimit).to.equal(3);
    });

    for (const bad of [0, -1, 2.5, NaN, -Infinity, '3', true]) {
      it(`rejects announceLimit ${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)} naming the field`, () => {
        for (const resolve of [() => resolveOptions({ announceLimit: bad as number }), () => resolveSimOptions({ nodes: 10, announceLimit: bad as number })]) {
          let err: unknown;
          try {
            resolve();
          } catch (e) {
            err = e;
          }
          expect(err).to.be.instanceOf(InvalidOptionError);
          expect((err as InvalidOptionError).field).to.equal('announceLimit');
          expect((err as InvalidOptionError).code).to.equal('INVALID_OPTION');
        }
      });
    }
  });

  describe('in the simulator', function () {
    this.timeout(60_000);

    it('takes --announce-limit N (default: all) and rejects 0', () => {
      expect(parseSimArgs(['--nodes', '10']).options.announceLimit).to.equal(Infinity);
      expect(parseSimArgs(['--nodes', '10', '--announce-limit', '6']).options.announceLimit).to.equal(6);
      expect(() => parseSimArgs(['--nodes', '10', '--announce-limit', '0'])).to.throw(/announce-limit/);
    });

    it('still delivers every message everywhere with a limit of 3, with fewer IHAVE frames per delivery, and names the limit', async () => {
      // Mean degree about 16, as in the scale runs: 12 or so candidates after the 3 push targets.
      const base = { nodes: 150, degree: 8, messages: 10, join: false, lookups: 0, settleMs: 5000, seed: 5 };
      const all = await runSimulation(base);
      const three = await runSimulation({ ...base, announceLimit: 3 });
      expect([all.announceLimit, three.announceLimit]).to.deep.equal([null, 3]);
      expect(three.deliveryFraction).to.equal(1);
      expect(three.fullyDelivered).to.equal(10);
      expect(three.framesPerDelivery.ihave, `limit 3 ${three.framesPerDelivery.ihave}, all ${all.framesPerDelivery.ihave}`)
        .to.be.below(0.6 * all.framesPerDelivery.ihave);
      expect(three.deliveryDelayMs!.p50).to.be.at.most(three.deliveryDelayMs!.max);
    });
  });
});
