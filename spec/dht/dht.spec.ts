import { expect } from 'chai';
import sinon from 'sinon';
import { createHash, randomBytes } from 'node:crypto';
import { systemClock } from '../../lib/clock.js';
import { Dht, validAddress } from '../../lib/dht/dht.js';
import type { DhtHost, DhtLink } from '../../lib/dht/dht.js';
import type { LookupContact } from '../../lib/dht/lookup.js';
import { bucketIndexOf } from '../../lib/dht/routing-table.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message, NodeContact } from '../../lib/wire/messages.js';

const idOf = (n: number) => createHash('sha256').update(`n${n}`).digest();
const SELF = idOf(0);

/** A link whose FIND_NODE is answered by `reply` (or never, when it returns undefined). */
class FakeLink implements DhtLink {
  sent: Message[] = [];
  constructor(readonly idHex: string, private readonly dht: () => Dht, private readonly reply?: () => NodeContact[]) {}
  send(msg: Message): boolean {
    this.sent.push(msg);
    if (msg.type === MessageType.FIND_NODE && this.reply) {
      const contacts = this.reply();
      queueMicrotask(() => this.dht().onNodes(this, { type: MessageType.NODES, reqId: msg.reqId, contacts }));
    }
    return true;
  }
}

describe('Dht', () => {
  let clock: sinon.SinonFakeTimers | undefined;
  afterEach(() => clock?.restore());

  function make(host: Partial<DhtHost>, k = 2): Dht {
    const full: DhtHost = {
      linkTo: host.linkTo ?? (async () => { throw new Error('unreachable'); }),
      isAlive: host.isAlive ?? (async () => true),
      isConnected: host.isConnected ?? (() => false),
    };
    return new Dht(SELF, systemClock, { k, alpha: 3, requestTimeoutMs: 500, refreshIntervalMs: 3_600_000 }, full, randomBytes);
  }

  /** Two ids in the same bucket relative to SELF, plus a third for that bucket. */
  function sameBucket(count: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 1; out.length < count; i++) if (bucketIndexOf(SELF, idOf(i)) === 255) out.push(idOf(i));
    return out;
  }

  describe('the full-bucket rule through peerSeen', () => {
    it('keeps the oldest contact when it answers the ping; the newcomer waits', async () => {
      const isAlive = sinon.stub().resolves(true);
      const dht = make({ isAlive });
      const [a, b, c] = sameBucket(3);
      dht.peerSeen(a!, '10.0.1.1', 1001);
      dht.peerSeen(b!, '10.0.2.1', 1002);
      dht.peerSeen(c!, '10.0.3.1', 1003);
      await Promise.resolve();
      await Promise.resolve();
      expect(isAlive.calledOnce).to.equal(true);
      expect(isAlive.firstCall.args[0].id.equals(a)).to.equal(true);
      expect(dht.table.has(a!)).to.equal(true);
      expect(dht.table.has(c!)).to.equal(false);
    });

    it('evicts the oldest contact when it does not answer; the newcomer takes its place', async () => {
      const dht = make({ isAlive: sinon.stub().resolves(false) });
      const [a, b, c] = sameBucket(3);
      dht.peerSeen(a!, '10.0.1.1', 1001);
      dht.peerSeen(b!, '10.0.2.1', 1002);
      dht.peerSeen(c!, '10.0.3.1', 1003);
      await Promise.resolve();
      await Promise.resolve();
      expect(dht.table.has(a!)).to.equal(false);
      expect(dht.table.has(c!)).to.equal(true);
    });

    it('replaces a contact only after its liveness check fails, however many newcomers arrive meanwhile', async () => {
      let answer!: (alive: boolean) => void;
      const isAlive = sinon.stub().returns(new Promise<boolean>((resolve) => (answer = resolve)));
      const dht = make({ isAlive });
      const ids = sameBucket(12);
      dht.peerSeen(ids[0]!, '10.0.0.1', 1000);
      dht.peerSeen(ids[1]!, '10.0.1.1', 1001);
      for (let i = 2; i < 12; i++) dht.peerSeen(ids[i]!, `10.0.${i}.1`, 1000 + i);
      await Promise.resolve();
      // One check of the oldest for the whole flood, and nobody replaced while it runs.
      expect(isAlive.callCount).to.equal(1);
      expect(dht.table.has(ids[0]!)).to.equal(true);
      expect(dht.table.has(ids[1]!)).to.equal(true);
      answer(false);
      await Promise.resolve();
      await Promise.resolve();
      expect(dht.table.has(ids[0]!), 'the contact that failed its check').to.equal(false);
      expect(dht.table.has(ids[1]!)).to.equal(true);
      expect(dht.table.size).to.equal(2);
    });

    it('keeps every live contact through a flood of newcomers', async () => {
      const dht = make({ isAlive: sinon.stub().resolves(true) });
      const ids = sameBucket(30);
      for (let i = 0; i < 30; i++) {
        dht.peerSeen(ids[i]!, `10.0.${i}.1`, 1000 + i);
        await Promise.resolve();
        await Promise.resolve();
      }
      expect(dht.table.has(ids[0]!)).to.equal(true);
      expect(dht.table.has(ids[1]!)).to.equal(true);
    });

    it('adds an inbound peer only if the address it claims is the one it came from', () => {
      const dht = make({}, 20);
      dht.peerSeen(idOf(11), '192.0.2.77', 9000, '203.0.113.5');
      expect(dht.table.has(idOf(11))).to.equal(false);
      expect(dht.refusedUnproven).to.equal(1);
      dht.peerSeen(idOf(12), '203.0.113.5', 9000, '::ffff:203.0.113.5');
      expect(dht.table.has(idOf(12))).to.equal(true);
      dht.peerSeen(idOf(13), '198.51.100.1', 9000); // dialed by us: proven by the handshake
      expect(dht.table.has(idOf(13))).to.equal(true);
    });

    it('passes its group limits and exemption to the routing table', () => {
      const full: DhtHost = { linkTo: async () => { throw new Error('x'); }, isAlive: async () => true, isConnected: () => false };
      const dht = new Dht(SELF, systemClock, {
        k: 20, alpha: 3, requestTimeoutMs: 500, refreshIntervalMs: 3_600_000,
        maxPerGroupInBucket: 1, maxPerGroupInTable: 3, groupExempt: (h) => h === '127.0.0.1',
      }, full, randomBytes);
      const ids = sameBucket(4);
      dht.peerSeen(ids[0]!, '203.0.113.1', 1);
      dht.peerSeen(ids[1]!, '203.0.113.2', 2);
      for (let i = 2; i < 4; i++) dht.peerSeen(ids[i]!, '127.0.0.1', i);
      expect(dht.table.size).to.equal(3);
      expect(dht.table.refusedByGroup).to.deep.equal({ bucket: 1, table: 0 });
      expect(dht.table.maxPerGroupInTable).to.equal(3);
    });

    it('ignores peers that do not listen', () => {
      const dht = make({});
      dht.peerSeen(idOf(5), '', 0);
      expect(dht.table.size).to.equal(0);
    });
  });

  describe('answering FIND_NODE', () => {
    it('replies with the k nearest contacts, never the asker', () => {
      const dht = make({}, 20);
      for (let i = 1; i <= 30; i++) dht.peerSeen(idOf(i), '127.0.0.1', 1000 + i);
      const asker = new FakeLink(idOf(1).toString('hex'), () => dht);
      dht.onFindNode(asker, { type: MessageType.FIND_NODE, reqId: 9, target: idOf(1) });
      const reply = asker.sent[0] as Extract<Message, { type: 11 }>;
      expect(reply.type).to.equal(MessageType.NODES);
      expect(reply.reqId).to.equal(9);
      expect(reply.contacts.length).to.be.at.most(20).and.greaterThan(0);
      expect(reply.contacts.some((c) => c.id.equals(idOf(1)))).to.equal(false);
    });
  });

  describe('join', () => {
    it('looks up its own id, then a random id in every bucket further than its closest neighbour', async () => {
      // One neighbour, in bucket 250 relative to SELF: the far buckets 251..255 get a lookup each.
      let near: Buffer | undefined;
      for (let i = 1; !near; i++) if (bucketIndexOf(SELF, idOf(i)) === 250) near = idOf(i);
      const targets: Buffer[] = [];
      let dht!: Dht;
      dht = make({
        linkTo: async (c: LookupContact) => new FakeLink(c.id.toString('hex'), () => dht, () => []),
      });
      dht.peerSeen(near, '127.0.0.1', 1001);
      const lookup = dht.lookup.bind(dht);
      sinon.stub(dht, 'lookup').callsFake((target: Buffer) => {
        targets.push(Buffer.from(target));
        return lookup(target);
      });
      await dht.join();
      expect(targets[0]!.equals(SELF), 'the self-lookup comes first').to.equal(true);
      expect(targets.slice(1).map((t) => bucketIndexOf(SELF, t))).to.deep.equal([251, 252, 253, 254, 255]);
    });

    it('does nothing with an empty table', async () => {
      const dht = make({});
      await dht.join();
      expect(dht.lookupRounds).to.deep.equal([]);
    });
  });

  describe('hostile NODES replies', () => {
    function lookupWith(replies: Record<string, () => NodeContact[]>, reachable: Set<string>): { dht: Dht } {
      let dht!: Dht;
      dht = make({
        linkTo: async (c: LookupContact) => {
          const hex = c.id.toString('hex');
          if (!reachable.has(hex)) throw new Error(`nothing at ${c.host}:${c.port}`);
          return new FakeLink(hex, () => dht, replies[hex]);
        },
      }, 4);
      return { dht };
    }

    it('drops a reply with more than k contacts and completes with the others', async () => {
      const [good, liar] = [idOf(1), idOf(2)];
      const many = Array.from({ length: 10 }, (_, i) => ({ id: idOf(100 + i), host: '127.0.0.1', port: 2000 + i }));
      const { dht } = lookupWith({
        [good.toString('hex')]: () => [],
        [liar.toString('hex')]: () => many,
      }, new Set([good.toString('hex'), liar.toString('hex')]));
      dht.peerSeen(good, '127.0.0.1', 1001);
      dht.peerSeen(liar, '127.0.0.1', 1002);
      const r = await dht.lookup(idOf(50));
      expect(r.closest.map((c) => c.id.toString('hex'))).to.deep.equal([good.toString('hex')]);
      expect(r.failed).to.equal(1);
    });

    it('ignores contacts with bad addresses or our own id, and survives addresses pointing nowhere', async () => {
      const seed = idOf(1);
      const nowhere = idOf(3);
      const { dht } = lookupWith({
        [seed.toString('hex')]: () => [
          { id: SELF, host: '127.0.0.1', port: 5000 },
          { id: idOf(4), host: 'not a host!', port: 5000 },
          { id: idOf(5), host: '127.0.0.1', port: 0 },
          { id: nowhere, host: '127.0.0.1', port: 1 },
        ],
      }, new Set([seed.toString('hex')]));
      dht.peerSeen(seed, '127.0.0.1', 1001);
      const r = await dht.lookup(idOf(60));
      expect(r.closest.map((c) => c.id.toString('hex'))).to.deep.equal([seed.toString('hex')]);
      expect(r.queried).to.equal(2); // the seed and the one well-formed contact
      expect(r.failed).to.equal(1);
    });

    it('ignores a NODES reply from a peer it did not ask, and says it was unsolicited', async () => {
      const dht = make({});
      const stranger = new FakeLink(idOf(9).toString('hex'), () => dht);
      expect(dht.onNodes(stranger, { type: MessageType.NODES, reqId: 1, contacts: [] })).to.equal(false);
    });

    it('does not blame a peer whose NODES comes after its request timed out', async () => {
      clock = sinon.useFakeTimers();
      let dht!: Dht;
      const link = new FakeLink(idOf(1).toString('hex'), () => dht);
      dht = make({ linkTo: async () => link });
      const p = dht.findNode({ id: idOf(1), host: '127.0.0.1', port: 1 }, idOf(2)).catch((e: Error) => e);
      await clock.tickAsync(600);
      expect(await p).to.be.instanceOf(Error);
      const reqId = (link.sent[0] as { reqId: number }).reqId;
      expect(dht.onNodes(link, { type: MessageType.NODES, reqId, contacts: [] })).to.equal(true);
      expect(dht.onNodes(link, { type: MessageType.NODES, reqId: reqId + 7, contacts: [] })).to.equal(false);
    });

    it('times out a peer that never answers FIND_NODE', async () => {
      clock = sinon.useFakeTimers();
      let dht!: Dht;
      dht = make({ linkTo: async (c) => new FakeLink(c.id.toString('hex'), () => dht) });
      const p = dht.findNode({ id: idOf(1), host: '127.0.0.1', port: 1 }, idOf(2));
      await clock.tickAsync(499);
      let settled = false;
      p.then(() => (settled = true), () => (settled = true));
      await clock.tickAsync(0);
      expect(settled).to.equal(false);
      await clock.tickAsync(1);
      await p.then(() => expect.fail('resolved'), (e: { code: string }) => expect(e.code).to.equal('TIMEOUT'));
    });
  });

  describe('validAddress', () => {
    const cases: Array<[string, number, boolean]> = [
      ['127.0.0.1', 7001, true], ['::1', 7001, true], ['node-1.example', 80, true],
      ['127.0.0.1', 0, false], ['127.0.0.1', 65536, false], ['has space', 80, false], ['', 80, false],
    ];
    for (const [host, port, ok] of cases) {
      it(`${ok ? 'accepts' : 'rejects'} ${JSON.stringify(host)}:${port}`, () => expect(validAddress(host, port)).to.equal(ok));
    }
  });
});
