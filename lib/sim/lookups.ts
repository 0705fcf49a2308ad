/**
 * DHT accuracy in the simulator: sampled lookups of random targets from random live honest
 * nodes, each compared with the true k closest live nodes computed from the full node list.
 */
import { compareDistance } from '../dht/routing-table.js';
import type { SimNetwork } from './network.js';
import type { ResolvedSimOptions } from './options.js';

/** Rounds and accuracy (fraction of the true k closest found) of each sampled lookup. */
export interface LookupStats {
  rounds: number[];
  accuracy: number[];
}

/** Run `opts.lookups` lookups, 10 virtual ms apart, and wait for all of them. */
export async function measureLookups(net: SimNetwork, opts: ResolvedSimOptions, progress: (f: number) => void): Promise<LookupStats> {
  const stats: LookupStats = { rounds: [], accuracy: [] };
  const live = net.nodes.filter((n) => n.up);
  const searchers = live.filter((n) => n.honest);
  if (opts.lookups === 0 || searchers.length === 0) return stats;
  const k = net.config.dht.k;
  const start = net.clock.now();
  let finished = 0;
  for (let i = 0; i < opts.lookups; i++) {
    const from = searchers[Math.floor(net.random() * searchers.length)]!;
    const target = Buffer.alloc(32);
    for (let b = 0; b < 32; b++) target[b] = Math.floor(net.random() * 256);
    net.clock.at(start + i * 10, () => {
      void net.track(from.dht.lookup(target).then((r) => {
        const truth = trueClosest(live, from.index, target, k);
        const found = new Set(r.closest.map((c) => c.id.toString('latin1')));
        let hit = 0;
        for (const id of truth) if (found.has(id)) hit++;
        stats.rounds.push(r.rounds);
        stats.accuracy.push(truth.length === 0 ? 1 : hit / truth.length);
      }, () => {
        stats.rounds.push(0);
        stats.accuracy.push(0);
      }).finally(() => {
        finished++;
        progress(finished / opts.lookups);
      }));
    });
  }
  await net.runUntil(net.clock.now() + 3_600_000, undefined, () => finished === opts.lookups);
  return stats;
}

/** The k ids (latin1 keys) nearest to target among `live`, the searcher excluded. */
function trueClosest(live: { index: number; identity: { id: Buffer } }[], self: number, target: Buffer, k: number): string[] {
  const best: Buffer[] = [];
  for (const n of live) {
    if (n.index === self) continue;
    const id = n.identity.id;
    if (best.length === k && compareDistance(target, id, best[k - 1]!) >= 0) continue;
    let at = best.length;
    while (at > 0 && compareDistance(target, id, best[at - 1]!) < 0) at--;
    best.splice(at, 0, id);
    if (best.length > k) best.pop();
  }
  return best.map((b) => b.toString('latin1'));
}
