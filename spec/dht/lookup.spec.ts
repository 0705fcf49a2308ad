import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { iterativeLookup, MAX_QUERIES_PER_K } from '../../lib/dht/lookup.js';
import type { LookupContact } from '../../lib/dht/lookup.js';
import { RoutingTable, compareDistance } from '../../lib/dht/routing-table.js';
import { seededRandom } from '../../lib/random.js';

const idOf = (n: number) => createHash('sha256').update(`node-${n}`).digest();
const contact = (id: Buffer, port = 1000): LookupContact => ({ id, host: '127.0.0.1', port });

/**
 * N nodes shaped like a joined Kademlia network: each table holds the node's 8 true nearest
 * neighbours (what a join lookup of its own id yields) plus a random sample of the others.
 */
function world(n: number, known: number, seed: number): Map<string, RoutingTable> {
  const r = seededRandom(seed);
  const ids = Array.from({ length: n }, (_, i) => idOf(i));
  const tables = new Map<string, RoutingTable>();
  for (const id of ids) {
    // One testbed address for all: exempt from the address-group limits, as loopback is.
    const t = new RoutingTable(id, { k: 8, groupExempt: () => true });
    const near = ids.filter((o) => !o.equals(id)).sort((a, b) => compareDistance(id, a, b)).slice(0, 8);
    for (const o of near) t.add({ id: o, host: '127.0.0.1', port: 1000, lastSeen: 0 });
    for (let j = 0; j < known; j++) t.add({ id: ids[Math.floor(r() * n)]!, host: '127.0.0.1', port: 1000, lastSeen: j });
    tables.set(id.toString('hex'), t);
  }
  return tables;
}

function trueClosest(ids: Buffer[], target: Buffer, k: number, self: Buffer): string[] {
  return ids.filter((i) => !i.equals(self)).sort((a, b) => compareDistance(target, a, b)).slice(0, k).map((i) => i.toString('hex'));
}

describe('iterativeLookup', () => {
  it('finds the true k closest in a 300-node world from a single seed, in few rounds', async () => {
    const tables = world(300, 40, 3);
    const ids = [...tables.keys()].map((h) => Buffer.from(h, 'hex'));
    const self = ids[0]!;
    for (let t = 0; t < 10; t++) {
      const target = idOf(10_000 + t);
      const r = await iterativeLookup(target, [contact(ids[1]!)], async (c) => tables.get(c.id.toString('hex'))!.closest(target, 8), { k: 8, alpha: 3, selfId: self });
      expect(r.closest.map((c) => c.id.toString('hex'))).to.deep.equal(trueClosest(ids, target, 8, self));
      expect(r.rounds).to.be.lessThan(20);
    }
  });

  it('never returns its own id', async () => {
    const self = idOf(1);
    const r = await iterativeLookup(self, [contact(idOf(2))], async () => [contact(self), contact(idOf(3))], { k: 4, alpha: 3, selfId: self });
    expect(r.closest.some((c) => c.id.equals(self))).to.equal(false);
  });

  it('drops contacts that fail and still completes with the ones that answer', async () => {
    const self = idOf(0);
    const good = [1, 2, 3].map((i) => contact(idOf(i)));
    const bad = [4, 5, 6].map((i) => contact(idOf(i), 9));
    const r = await iterativeLookup(idOf(99), [good[0]!], async (c) => {
      if (c.port === 9) throw new Error('unreachable');
      return [...good, ...bad];
    }, { k: 8, alpha: 3, selfId: self });
    expect(r.closest.map((c) => c.port)).to.not.include(9);
    expect(r.closest).to.have.length(3);
    expect(r.failed).to.equal(3);
  });

  it('asks each contact at most once', async () => {
    const asked = new Map<string, number>();
    const all = Array.from({ length: 30 }, (_, i) => contact(idOf(i + 1)));
    await iterativeLookup(idOf(500), [all[0]!], async (c) => {
      asked.set(c.id.toString('hex'), (asked.get(c.id.toString('hex')) ?? 0) + 1);
      return all;
    }, { k: 8, alpha: 3, selfId: idOf(0) });
    expect([...asked.values()].every((n) => n === 1)).to.equal(true);
  });

  it('stops after a bounded number of queries when every reply invents new contacts', async () => {
    let fresh = 1_000_000;
    const target = idOf(7);
    const r = await iterativeLookup(target, [contact(idOf(1))], async () =>
      Array.from({ length: 8 }, () => contact(idOf(fresh++))), { k: 8, alpha: 3, selfId: idOf(0) });
    expect(r.queried).to.be.at.most(MAX_QUERIES_PER_K * 8 + 8);
  });

  it('returns an empty result with no seeds', async () => {
    const r = await iterativeLookup(idOf(1), [], async () => [], { k: 8, alpha: 3, selfId: idOf(0) });
    expect(r).to.deep.equal({ closest: [], rounds: 0, queried: 0, failed: 0 });
  });
});

describe('iterativeLookup across address groups', () => {
  /** Contacts whose host names their group: '10.<group>.0.<n>'. */
  const inGroup = (id: Buffer, group: number, n: number): LookupContact => ({ id, host: `10.${group}.0.${n}`, port: 1000 });
  const groupOf = (c: LookupContact) => c.host.split('.').slice(0, 3).join('.');
  const target = idOf(4242);
  /** 40 ids sorted by distance to the target, nearest first. */
  const near = Array.from({ length: 40 }, (_, i) => idOf(5000 + i)).sort((a, b) => compareDistance(target, a, b));
  /** 6 ids equally near the target (its far half: first bit differs), nearest first. */
  const sameClass = Array.from({ length: 6 }, (_, i) => {
    const id = idOf(7000 + i);
    id[0] = target[0]! ^ 0x80;
    return id;
  }).sort((a, b) => compareDistance(target, a, b));

  it('asks the alpha contacts of a round from distinct groups when the nearest share one', async () => {
    // The 3 nearest are all in group 1; the next 3 are in groups 2, 3 and 4.
    const seeds = [...sameClass.slice(0, 3).map((id, i) => inGroup(id, 1, i)), ...sameClass.slice(3, 6).map((id, i) => inGroup(id, 2 + i, i))];
    const firstRound: LookupContact[] = [];
    let calls = 0;
    await iterativeLookup(target, seeds, async (c) => {
      if (calls++ < 3) firstRound.push(c);
      return [];
    }, { k: 8, alpha: 3, selfId: idOf(0), groupOf });
    // All six are equally near (one log-distance class): one of group 1 (its nearest), then
    // the nearest of two other groups.
    expect(firstRound.map(groupOf)).to.deep.equal(['10.1.0', '10.2.0', '10.3.0']);
    expect(firstRound[0]!.id.equals(sameClass[0]!)).to.equal(true);
  });

  it('without groupOf asks the nearest, whatever their group (the check above can fail)', async () => {
    const seeds = [...sameClass.slice(0, 3).map((id, i) => inGroup(id, 1, i)), ...sameClass.slice(3, 6).map((id, i) => inGroup(id, 2 + i, i))];
    const firstRound: LookupContact[] = [];
    let calls = 0;
    await iterativeLookup(target, seeds, async (c) => {
      if (calls++ < 3) firstRound.push(c);
      return [];
    }, { k: 8, alpha: 3, selfId: idOf(0) });
    expect(firstRound.map(groupOf)).to.deep.equal(['10.1.0', '10.1.0', '10.1.0']);
  });

  it('keeps at most maxPerGroup of one group in the result while others are available, nearest first', async () => {
    // The 10 nearest are one group; 10 farther ones are each in their own group.
    const hostile = near.slice(0, 10).map((id, i) => inGroup(id, 1, i));
    const honest = near.slice(10, 20).map((id, i) => inGroup(id, 100 + i, i));
    const all = [...hostile, ...honest];
    const r = await iterativeLookup(target, all, async () => all, { k: 8, alpha: 3, selfId: idOf(0), groupOf, maxPerGroup: 2 });
    expect(r.closest).to.have.length(8);
    expect(r.closest.filter((c) => groupOf(c) === '10.1.0')).to.have.length(2);
    const sorted = [...r.closest].sort((a, b) => compareDistance(target, a.id, b.id));
    expect(r.closest).to.deep.equal(sorted);
    // The two kept are the nearest of that group.
    expect(r.closest.slice(0, 2).map((c) => c.id.toString('hex'))).to.deep.equal(near.slice(0, 2).map((i) => i.toString('hex')));
  });

  it('fills the result from one group when there is no other (a loopback testbed still gets k)', async () => {
    const only = near.slice(0, 12).map((id, i) => inGroup(id, 1, i));
    const r = await iterativeLookup(target, only, async () => only, { k: 8, alpha: 3, selfId: idOf(0), groupOf });
    expect(r.closest.map((c) => c.id.toString('hex'))).to.deep.equal(near.slice(0, 8).map((i) => i.toString('hex')));
  });

  it('treats contacts whose groupOf is undefined as exempt from the cap', async () => {
    const exempt = near.slice(0, 10).map((id, i) => inGroup(id, 1, i));
    const r = await iterativeLookup(target, exempt, async () => exempt, { k: 8, alpha: 3, selfId: idOf(0), groupOf: () => undefined });
    expect(r.closest.map((c) => c.id.toString('hex'))).to.deep.equal(near.slice(0, 8).map((i) => i.toString('hex')));
  });
});
