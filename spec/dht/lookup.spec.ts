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
    const t = new RoutingTable(id, { k: 8 });
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
