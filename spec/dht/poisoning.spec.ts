import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { systemClock } from '../../lib/clock.js';
import { Dht } from '../../lib/dht/dht.js';
import type { DhtHost, DhtLink, DhtOptions } from '../../lib/dht/dht.js';
import type { LookupContact } from '../../lib/dht/lookup.js';
import { bucketIndexOf, compareDistance } from '../../lib/dht/routing-table.js';
import { addressGroup } from '../../lib/peers/address-group.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message, NodeContact } from '../../lib/wire/messages.js';

/**
 * The DHT-poisoning attack of issue 12 at unit level: a node joins through an honest
 * bootstrap while 15 hostile identities in 2 address groups, all nearer to its id than any
 * honest node, answer every FIND_NODE with poisoned NODES: each other (their real addresses)
 * and made-up ids at one third party's address. The joining node's Dht runs over a fake host
 * that behaves as lib/network.ts does: linkTo dials host:port, succeeds only if the node
 * there has the expected id, and then reports the proven contact through peerSeen.
 */
const K = 20;
const idOf = (s: string) => createHash('sha256').update(s).digest();
const SELF = idOf('joining node');
const THIRD_PARTY = { host: '192.0.2.77', port: 9000 };

interface WorldNode { id: Buffer; host: string; port: number; hostile: boolean }

/** An id in bucket `bucket` relative to SELF: nearer to SELF than a random id. */
function nearSelf(seed: string, bucket: number): Buffer {
  const d = idOf(seed);
  const byteAt = 31 - (bucket >> 3);
  for (let i = 0; i < byteAt; i++) d[i] = 0;
  const bit = 1 << (bucket & 7);
  d[byteAt] = bit | (d[byteAt]! & (bit - 1));
  const id = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) id[i] = SELF[i]! ^ d[i]!;
  return id;
}

function buildWorld(): WorldNode[] {
  const honest: WorldNode[] = Array.from({ length: 40 }, (_, i) => ({ id: idOf(`honest ${i}`), host: `10.${i}.0.1`, port: 7000, hostile: false }));
  // 15 hostile identities, all in SELF's bucket 240 (far nearer than any honest node), in two /24s.
  const hostile: WorldNode[] = Array.from({ length: 15 }, (_, i) => ({
    id: nearSelf(`hostile ${i}`, 240),
    host: i < 8 ? `198.51.100.${i + 1}` : `203.0.113.${i + 1}`,
    port: 7000 + i,
    hostile: true,
  }));
  return [...honest, ...hostile];
}

class FakeLink implements DhtLink {
  constructor(readonly idHex: string, private readonly dht: () => Dht, private readonly answer: (target: Buffer) => NodeContact[]) {}
  send(msg: Message): boolean {
    if (msg.type === MessageType.FIND_NODE) {
      const contacts = this.answer(msg.target);
      queueMicrotask(() => this.dht().onNodes(this, { type: MessageType.NODES, reqId: msg.reqId, contacts }));
    }
    return true;
  }
}

/** The joining node, its world, and what its host was asked to dial. */
function joiningNode(world: WorldNode[], limits: Partial<DhtOptions> = {}) {
  const at = new Map(world.map((n) => [`${n.host}:${n.port}`, n]));
  const hostile = world.filter((n) => n.hostile);
  const dials: string[] = [];
  const answer = (node: WorldNode) => (target: Buffer): NodeContact[] => {
    if (node.hostile) {
      // Poisoned: every hostile identity, then made-up ids all at the third party's address.
      const lies = Array.from({ length: K - hostile.length }, (_, i) => ({ id: nearSelf(`lie ${i}`, 239), ...THIRD_PARTY }));
      return [...hostile.map((h) => ({ id: h.id, host: h.host, port: h.port })), ...lies];
    }
    // Honest: the true nearest it knows (it knows everyone, the hostile ones included).
    return world.filter((n) => !n.id.equals(node.id)).sort((a, b) => compareDistance(target, a.id, b.id)).slice(0, K)
      .map((n) => ({ id: n.id, host: n.host, port: n.port }));
  };
  let dht!: Dht;
  const host: DhtHost = {
    linkTo: async (c: LookupContact) => {
      dials.push(`${c.host}:${c.port}`);
      const node = at.get(`${c.host}:${c.port}`);
      if (!node || !node.id.equals(c.id)) throw new Error(`no node ${c.id.toString('hex').slice(0, 8)} at ${c.host}:${c.port}`);
      dht.peerSeen(node.id, node.host, node.port); // as network.ts's register(): a dialed, proven contact
      return new FakeLink(node.id.toString('hex'), () => dht, answer(node));
    },
    isAlive: async () => true,
    isConnected: () => false,
  };
  dht = new Dht(SELF, systemClock, { k: K, alpha: 3, requestTimeoutMs: 1000, refreshIntervalMs: 3_600_000, ...limits }, host, randomBytes);
  return { dht, dials };
}

/** Contacts per (bucket, address group) in the table. */
function perBucketGroup(dht: Dht): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of dht.table.all()) {
    const key = `${bucketIndexOf(SELF, c.id)} ${addressGroup(c.host)}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

describe('DHT poisoning: 15 hostile identities in 2 address groups answer with poisoned NODES', function () {
  this.timeout(20_000);
  const world = buildWorld();
  const hostileIds = new Set(world.filter((n) => n.hostile).map((n) => n.id.toString('hex')));
  const bootstrap = world[0]!;

  it('cannot fill a joining node\'s table: at most 2 per group per bucket, and the honest contacts are kept', async () => {
    const { dht } = joiningNode(world);
    dht.peerSeen(bootstrap.id, bootstrap.host, bootstrap.port);
    await dht.join();
    const table = dht.table.all();
    const hostileIn = table.filter((c) => hostileIds.has(c.id.toString('hex')));
    const honestIn = table.filter((c) => !hostileIds.has(c.id.toString('hex')));
    console.log(`      table after the join: ${table.length} contacts, ${hostileIn.length} hostile, ${honestIn.length} honest; refused by group ${JSON.stringify(dht.table.refusedByGroup)}`);
    expect(Math.max(...perBucketGroup(dht).values())).to.be.at.most(2);
    expect(hostileIn).to.have.length.at.most(4); // 2 groups x 2 places of bucket 240
    expect(dht.table.refusedByGroup.bucket).to.be.greaterThan(0);
    expect(honestIn.length, 'honest contacts from other groups').to.be.at.least(20);
    expect(honestIn.length).to.be.greaterThan(hostileIn.length * 4);
    // Nothing at the third party's address entered the table: those ids never answered there.
    expect(table.some((c) => c.host === THIRD_PARTY.host)).to.equal(false);
  });

  it('hands out in NODES only contacts that proved themselves, never the third party\'s address', async () => {
    const { dht } = joiningNode(world);
    dht.peerSeen(bootstrap.id, bootstrap.host, bootstrap.port);
    await dht.join();
    const sent: Message[] = [];
    const asker = { idHex: idOf('asker').toString('hex'), send: (m: Message) => sent.push(m) > 0 };
    dht.onFindNode(asker, { type: MessageType.FIND_NODE, reqId: 1, target: SELF });
    const reply = sent[0] as Extract<Message, { type: 11 }>;
    expect(reply.contacts.length).to.be.greaterThan(0);
    const proven = new Set(world.map((n) => `${n.id.toString('hex')}@${n.host}:${n.port}`));
    for (const c of reply.contacts) expect(proven.has(`${c.id.toString('hex')}@${c.host}:${c.port}`)).to.equal(true);
  });

  it('returns a self-lookup result with at most 2 of each hostile group while honest contacts remain', async () => {
    const { dht } = joiningNode(world);
    dht.peerSeen(bootstrap.id, bootstrap.host, bootstrap.port);
    await dht.join();
    const r = await dht.lookup(SELF);
    const groups = new Map<string, number>();
    for (const c of r.closest) groups.set(addressGroup(c.host), (groups.get(addressGroup(c.host)) ?? 0) + 1);
    expect(groups.get('v4:198.51.100.0/24') ?? 0).to.be.at.most(2);
    expect(groups.get('v4:203.0.113.0/24') ?? 0).to.be.at.most(2);
    expect(r.closest).to.have.length(K);
  });

  it('without the group limits the same attack takes every hostile place it wants (the checks above can fail)', async () => {
    const { dht } = joiningNode(world, { maxPerGroupInBucket: 20, maxPerGroupInTable: 100 });
    dht.peerSeen(bootstrap.id, bootstrap.host, bootstrap.port);
    await dht.join();
    const hostileIn = dht.table.all().filter((c) => hostileIds.has(c.id.toString('hex')));
    console.log(`      without limits: ${dht.table.size} contacts, ${hostileIn.length} hostile`);
    expect(hostileIn).to.have.length(15);
  });
});
