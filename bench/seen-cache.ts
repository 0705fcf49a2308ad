/**
 * Seen-cache memory under a flood: unique ids arrive faster than the TTL can expire them, so
 * only the entry cap bounds the cache. Heap is sampled (after a full GC) at intervals; it must
 * grow until the cap is reached and then stay flat.
 *
 *   node --expose-gc --import tsx bench/seen-cache.ts [--cap 100000] [--ids 3*cap]
 *
 * Also reports add() throughput below the cap and at the cap (where every add evicts).
 */
import { SeenCache, DEFAULT_SEEN_MAX_ENTRIES, DEFAULT_SEEN_TTL_MS } from '../lib/gossip/seen-cache.js';
import type { Clock } from '../lib/clock.js';
import { emitResult, intFlag, note, parseFlags } from './util.js';

const flags = parseFlags(process.argv.slice(2));
const cap = intFlag(flags, 'cap', DEFAULT_SEEN_MAX_ENTRIES);
const total = intFlag(flags, 'ids', 3 * cap);
const sampleEvery = Math.max(1, Math.floor(cap / 4));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

// Virtual time: 1 ms per 100 ids (100,000 ids/s), so the TTL (5 min) never expires an entry
// during the run and the cap alone bounds the cache.
let now = 0;
const clock: Clock = {
  now: () => now,
  setTimeout: () => ({ cancel() {} }),
  setInterval: () => ({ cancel() {} }),
};
const cache = new SeenCache(clock, { ttlMs: DEFAULT_SEEN_TTL_MS, maxEntries: cap });
const heapMb = () => {
  gc();
  return process.memoryUsage().heapUsed / (1024 * 1024);
};

const base = heapMb();
const series: Array<{ ids: number; entries: number; heapMb: number; addsPerSec: number }> = [];
const id = Buffer.alloc(32);
let addMs = 0;
let t = performance.now();
for (let i = 1; i <= total; i++) {
  id.writeUInt32BE(i, 0);
  id.writeUInt32BE((i * 2654435761) >>> 0, 28);
  cache.add(id);
  if (i % 100 === 0) now++;
  if (i % sampleEvery === 0 || i === total) {
    addMs = performance.now() - t;
    const heap = heapMb() - base;
    series.push({ ids: i, entries: cache.size, heapMb: heap, addsPerSec: (sampleEvery * 1000) / addMs });
    note(`seen-cache: ${i.toLocaleString()} ids in, ${cache.size.toLocaleString()} entries, heap +${heap.toFixed(1)} MB, ${Math.round((sampleEvery * 1000) / addMs).toLocaleString()} adds/s`);
    t = performance.now();
  }
}
// The Map's table keeps deleted slots until it rehashes, so heap settles a little above the
// figure at the moment the cap is first reached; "plateau" compares the end with 2 x cap.
const atCap = series.find((s) => s.ids >= cap)!;
const settled = series.find((s) => s.ids >= 2 * cap) ?? atCap;
const last = series[series.length - 1]!;
const below = series.filter((s) => s.ids <= cap);
const above = series.filter((s) => s.ids > cap);
emitResult({
  cap,
  ids: total,
  ttlMs: DEFAULT_SEEN_TTL_MS,
  evictions: cache.evictions,
  finalEntries: cache.size,
  heapAtCapMb: atCap.heapMb,
  heapAtEndMb: last.heapMb,
  heapAt2xCapMb: settled.heapMb,
  maxHeapMb: Math.max(...series.map((s) => s.heapMb)),
  bytesPerEntry: (last.heapMb * 1024 * 1024) / last.entries,
  plateau: cache.size <= cap && last.heapMb <= settled.heapMb * 1.05 + 0.5,
  addsPerSecBelowCap: below.length ? Math.min(...below.map((s) => s.addsPerSec)) : NaN,
  addsPerSecAtCap: above.length ? Math.min(...above.map((s) => s.addsPerSec)) : NaN,
  series,
});
